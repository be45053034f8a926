"""Storage SOP classes the archive accepts: Orthanc 1.12.6's ``AcceptedSopClasses`` and
``RejectedSopClasses`` (``ServerContext::SetAcceptedSopClasses``).

* No ``AcceptedSopClasses``: every storage SOP class the DICOM dictionary knows (DCMTK's
  ``dcmAllStorageSOPClassUIDs`` in Orthanc), the common ones first (pynetdicom's storage
  contexts, standing for DCMTK's ``dcmLongSCUStorageSOPClassUIDs``).
* Otherwise, in the order given: an entry with ``*`` or ``?`` adds every known storage
  class it matches; an entry without adds that UID as it is, known or not.
* Then every class a ``RejectedSopClasses`` entry names (or, with wildcards, matches
  among the known ones) is removed.

The order matters where only some can be proposed: a C-GET SCU has room for 127 storage
contexts (PS3.8 9.3.2.2) and proposes the first ones, as Orthanc proposes its first 120.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from pydicom._uid_dict import UID_dictionary
from pynetdicom import StoragePresentationContexts
from pynetdicom.sop_class import _STORAGE_CLASSES


def _known() -> tuple[str, ...]:
    """pynetdicom's storage SOP classes plus the dictionary's retired ones, the common
    ones (pynetdicom's default storage contexts) first."""
    retired = {uid for uid, entry in UID_dictionary.items()
               if entry[1] == "SOP Class" and "Storage" in entry[0]
               and "Commitment" not in entry[0] and "Directory" not in entry[0]}
    common = [str(cx.abstract_syntax) for cx in StoragePresentationContexts]
    rest = sorted((set(_STORAGE_CLASSES.values()) | retired) - set(common))
    return tuple(dict.fromkeys(common + rest))


KNOWN: tuple[str, ...] = _known()
KNOWN_SET: frozenset[str] = frozenset(KNOWN)


def _is_pattern(entry: str) -> bool:
    return "*" in entry or "?" in entry


def _pattern(entry: str) -> re.Pattern[str]:
    """Orthanc's ``Toolbox::WildcardToRegularExpression``: ``*`` any run, ``?`` one
    character, everything else literal."""
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c)
                              for c in entry))


@lru_cache(maxsize=64)
def accepted(accepted_entries: tuple[str, ...] = (),
             rejected_entries: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The accepted storage SOP classes, in order (see the module's docstring)."""
    if not accepted_entries:
        chosen = list(KNOWN)
    else:
        chosen = []
        for entry in accepted_entries:
            if _is_pattern(entry):
                pattern = _pattern(entry)
                chosen += [uid for uid in KNOWN if pattern.fullmatch(uid)]
            else:
                chosen.append(entry)
        chosen = list(dict.fromkeys(chosen))
    removed = rejected(rejected_entries)
    return tuple(uid for uid in chosen if uid not in removed)


@lru_cache(maxsize=64)
def rejected(rejected_entries: tuple[str, ...] = ()) -> frozenset[str]:
    """The classes ``RejectedSopClasses`` names: its UIDs, and the known classes its
    patterns match."""
    removed: set[str] = set()
    for entry in rejected_entries:
        if _is_pattern(entry):
            pattern = _pattern(entry)
            removed |= {uid for uid in KNOWN if pattern.fullmatch(uid)}
        else:
            removed.add(entry)
    return frozenset(removed)


def entries(value: object, option: str) -> tuple[str, ...]:
    """An ``AcceptedSopClasses``/``RejectedSopClasses`` option: a list of UIDs or
    patterns (ValueError otherwise)."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ValueError(f"{option} must be a list of SOP class UIDs (wildcards * and ? "
                         "allowed)")
    return tuple(v.strip() for v in value)


def proposed_for_get(accepted_classes: Iterable[str], in_study: Iterable[str] | None,
                     room: int) -> list[str]:
    """The storage classes a C-GET SCU proposes: those of the study that are accepted
    when the query names them (``SOPClassesInStudy``), else the first accepted ones, at
    most *room* (Orthanc's ``DicomGetScuJob::Retrieve``)."""
    ordered = list(accepted_classes)
    if in_study:
        wanted = {uid.strip() for uid in in_study if uid.strip()}
        return [uid for uid in ordered if uid in wanted][:room]
    return ordered[:room]
