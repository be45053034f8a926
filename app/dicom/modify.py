"""Orthanc's ``DicomModification``: modify and anonymize pydicom datasets (pure, no I/O).

One :class:`Modification` is built from a ``/modify`` or ``/anonymize`` request and then
applied to every instance of the resource, in place. It keeps the map of regenerated
identifiers (``uid_map``) so that all the instances of one request agree: the instances of a
series get one new SeriesInstanceUID, references between them (ReferencedSOPInstanceUID,
FrameOfReferenceUID...) follow the new UIDs, and one patient gets one new PatientID.

The order of the steps is Orthanc's (``DicomModification::Apply``): private tags, clearings,
removals, replacements, identifiers by level, then for anonymizations the walk through the
nested sequences, then the paths inside sequences (``Seq[0].Tag``, ``Seq[*].Tag``).
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pydicom.datadict import dictionary_VR, get_private_entry
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

from app import ORTHANC_API_VERSION, orthanc_api_at_least
from app.dicom.anonymize import profile
from app.dicom.levels import Level
from app.dicom.tags import parse_tag
from app.errors import BadFileFormat, BadRequest, ParameterOutOfRange

PATIENT_ID = 0x00100020
PATIENT_NAME = 0x00100010
STUDY_UID = 0x0020000D
SERIES_UID = 0x0020000E
SOP_UID = 0x00080018
DEIDENTIFICATION_METHOD = 0x00120063
PATIENT_IDENTITY_REMOVED = 0x00120062
SPECIFIC_CHARACTER_SET = 0x00080005
REFERENCED_IMAGE_SEQUENCE = 0x00081140
SOURCE_IMAGE_SEQUENCE = 0x00082112
REFERENCED_SOP_INSTANCE_UID = 0x00081155
REFERENCED_FRAME_OF_REFERENCE_SEQUENCE = 0x30060010
RT_REFERENCED_STUDY_SEQUENCE = 0x30060012
DATABASE_KEYS = frozenset({PATIENT_ID, STUDY_UID, SERIES_UID, SOP_UID})
LEVEL_UID_TAG = {Level.STUDY: STUDY_UID, Level.SERIES: SERIES_UID, Level.INSTANCE: SOP_UID}

# VRs Orthanc's tag visitor treats as text (FromDcmtkBridge: VisitString).
STRING_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST",
                        "TM", "UC", "UI", "UR", "UT"})
_INTEGER_VRS = frozenset({"SL", "SS", "UL", "US", "SV", "UV"})
_FLOAT_VRS = frozenset({"FL", "FD"})
_BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
# Orthanc 1.12.11: a value of these VRs given as text is its numbers ("1.5\\2"), packed.
_NUMERIC_BINARY_VRS = {"OF": "f", "OD": "d", "OL": "L"}


def _packed_numbers(vr: str, value: str, name: str) -> bytes:
    import struct
    code = _NUMERIC_BINARY_VRS[vr]
    try:
        numbers = [int(p.strip()) if code == "L" else float(p.strip())
                   for p in value.split("\\")] if value else []
        return struct.pack("<" + code * len(numbers), *numbers)
    except (ValueError, struct.error) as error:
        raise BadRequest(f"The value of {name} ({vr}) must be numbers separated by "
                         f"backslashes: {value!r}") from error
_DATA_URI = re.compile(r"^data:([^;,]*)(;[^,]*)?,", re.DOTALL)


def deidentification_method(text: str) -> str:
    return f"Orthanc {ORTHANC_API_VERSION} - {text}"


# --- paths: "PatientName", "0010,0010", "ReferencedImageSequence[0].ReferencedSOPInstanceUID",
# "0008,1140[*].0008,1155" (Orthanc 1.9.4's DicomPath, the dcmodify syntax) -----------------

@dataclass(frozen=True, slots=True)
class DicomPath:
    prefix: tuple[tuple[int, int | None], ...]  # (sequence tag, item index or None for [*])
    final: int

    @classmethod
    def parse(cls, text: str) -> DicomPath:
        if not isinstance(text, str) or not text.strip():
            raise BadRequest("Empty DICOM path")
        steps = text.strip().split(".")
        prefix: list[tuple[int, int | None]] = []
        for step in steps[:-1]:
            match = re.fullmatch(r"(.+)\[(\*|\d+)\]", step.strip())
            if match is None:
                raise BadRequest(f"Bad DICOM path {text!r}: {step!r} lacks an item index")
            index = None if match.group(2) == "*" else int(match.group(2))
            prefix.append((_tag(match.group(1)), index))
        return cls(tuple(prefix), _tag(steps[-1]))

    def matches(self, parents: list[tuple[int, int]], tag: int) -> bool:
        """Orthanc's ``DicomPath::IsMatch``: the path itself or anything nested inside it."""
        if len(parents) < len(self.prefix):
            return False
        for (want_tag, want_index), (tag_here, index_here) in zip(self.prefix, parents,
                                                                   strict=False):
            if want_tag != tag_here or (want_index is not None and want_index != index_here):
                return False
        if len(parents) == len(self.prefix):
            return tag == self.final
        return parents[len(self.prefix)][0] == self.final


def _tag(text: str) -> int:
    try:
        return int(parse_tag(text))
    except (ValueError, TypeError) as error:
        raise BadRequest(f"Unknown DICOM tag: {text!r}") from error


# --- the modification ------------------------------------------------------------------------

@dataclass
class Modification:
    level: Level = Level.INSTANCE
    is_anonymization: bool = False
    remove_private_tags: bool = False
    private_creator: str = "PrivateCreator"
    removals: set[int] = field(default_factory=set)
    clearings: set[int] = field(default_factory=set)
    uids: set[int] = field(default_factory=set)
    replacements: dict[int, Any] = field(default_factory=dict)
    keep: set[int] = field(default_factory=set)
    private_tags_to_keep: set[int] = field(default_factory=set)
    keep_paths: list[DicomPath] = field(default_factory=list)
    remove_paths: list[DicomPath] = field(default_factory=list)
    replace_paths: list[tuple[DicomPath, Any]] = field(default_factory=list)
    keep_study_uid: bool = False
    keep_series_uid: bool = False
    keep_sop_uid: bool = False
    # (level, original identifier) -> new identifier, shared by all instances of one job
    uid_map: dict[tuple[Level, str], str] = field(default_factory=dict)

    # -- building (DicomModification::Keep/Remove/Clear/Replace) --

    def _mark_not_orthanc_anonymization(self) -> None:
        """A profile changed by the request is no Orthanc profile any more: its
        DeidentificationMethod goes (Orthanc up to 1.12.6), or says just ``Orthanc
        <version>`` (1.12.7+, as Orthanc's suite checks it after a ``Replace``)."""
        value = self.replacements.get(DEIDENTIFICATION_METHOD)
        if isinstance(value, str) and value.startswith("Orthanc ") and " - PS 3.15-" in value:
            if orthanc_api_at_least(1, 12, 7):
                self.replacements[DEIDENTIFICATION_METHOD] = f"Orthanc {ORTHANC_API_VERSION}"
            else:
                del self.replacements[DEIDENTIFICATION_METHOD]

    def keep_tag(self, tag: int) -> None:
        self.keep.add(tag)
        for collection in (self.removals, self.clearings, self.uids):
            collection.discard(tag)
        self.replacements.pop(tag, None)
        if tag == STUDY_UID:
            self.keep_study_uid = True
        elif tag == SERIES_UID:
            self.keep_series_uid = True
        elif tag == SOP_UID:
            self.keep_sop_uid = True
        elif _is_private(tag):
            self.private_tags_to_keep.add(tag)
        self._mark_not_orthanc_anonymization()

    def remove_tag(self, tag: int) -> None:
        self.removals.add(tag)
        self.clearings.discard(tag)
        self.uids.discard(tag)
        self.replacements.pop(tag, None)
        self.private_tags_to_keep.discard(tag)
        self._mark_not_orthanc_anonymization()

    def replace_tag(self, tag: int, value: Any, safe_for_anonymization: bool = False) -> None:
        self.clearings.discard(tag)
        self.removals.discard(tag)
        self.uids.discard(tag)
        self.private_tags_to_keep.discard(tag)
        self.replacements[tag] = value
        if not safe_for_anonymization:
            self._mark_not_orthanc_anonymization()

    def keep_path(self, path: DicomPath) -> None:
        if not path.prefix:
            self.keep_tag(path.final)
        self.keep_paths.append(path)
        self._mark_not_orthanc_anonymization()

    def remove_path(self, path: DicomPath) -> None:
        if not path.prefix:
            self.remove_tag(path.final)
        else:
            self.remove_paths.append(path)
            self._mark_not_orthanc_anonymization()

    def replace_path(self, path: DicomPath, value: Any) -> None:
        if not path.prefix:
            self.replace_tag(path.final, value)
        else:
            self.replace_paths.append((path, value))
            self._mark_not_orthanc_anonymization()

    def set_remove_private_tags(self, removed: bool) -> None:
        self.remove_private_tags = removed
        if not removed:
            self._mark_not_orthanc_anonymization()

    def setup_anonymization(self, version: str | None) -> None:
        chosen = profile(version)
        self.is_anonymization = True
        self.remove_private_tags = True
        self.level = Level.PATIENT
        self.clearings = set(chosen.clear)
        self.removals = set(chosen.remove)
        self.uids = set(chosen.uids) | {PATIENT_ID, PATIENT_NAME}
        self.replacements = {DEIDENTIFICATION_METHOD: deidentification_method(chosen.method),
                             PATIENT_IDENTITY_REMOVED: "YES"}

    def is_replaced(self, tag: int) -> bool:
        return tag in self.replacements

    def is_in_place(self) -> bool:
        """True when every modified instance keeps its Orthanc identifiers: PatientID not
        replaced and the UIDs of the modification's level and below kept (Orthanc's
        ``PerformSanityChecks``: the results then overwrite their sources)."""
        if self.is_anonymization or self.is_replaced(PATIENT_ID):
            return False
        kept = {Level.STUDY: self.keep_study_uid, Level.SERIES: self.keep_series_uid,
                Level.INSTANCE: self.keep_sop_uid}
        return all(flag for level, flag in kept.items() if level.depth >= self.level.depth)

    def _manually_modified(self, tag: int) -> bool:
        return tag in self.clearings or tag in self.removals or tag in self.replacements

    # -- identifiers --

    def map_identifier(self, original: str, level: Level) -> str:
        stripped = original.strip(" \0")
        key = (level, stripped)
        mapped = self.uid_map.get(key)
        if mapped is None:
            # FromDcmtkBridge::GenerateUniqueIdentifier: a UUID for a PatientID, a UID else.
            mapped = str(uuid.uuid4()) if level == Level.PATIENT else generate_uid()
            self.uid_map[key] = mapped
        return mapped

    # -- applying --

    def check(self) -> None:
        if any(tag in self.removals for tag in DATABASE_KEYS):
            raise BadRequest("It is forbidden to remove one of the main Dicom identifiers")

    def apply(self, ds: Dataset) -> None:
        """Modify *ds* in place (and its file meta information)."""
        self.check()
        if self.is_anonymization:
            for level, tag in LEVEL_UID_TAG.items():
                replacement = self.replacements.get(tag)
                if isinstance(replacement, str) and tag in ds:
                    self.uid_map.setdefault((level, _text(ds[tag]).strip(" \0")), replacement)
        if self.remove_private_tags:
            for element in list(ds):
                tag = int(element.tag)
                if _is_private(tag) and tag not in self.private_tags_to_keep:
                    del ds[tag]
        for tag in self.clearings:
            if tag in ds:
                _clear(ds[tag])
        for tag in self.removals:
            if tag in ds:
                del ds[tag]
        for tag, value in self.replacements.items():
            set_value(ds, tag, value, self.private_creator)
        for level in (Level.STUDY, Level.SERIES, Level.INSTANCE):
            self._map_level(ds, level)
        if self.is_anonymization:
            self._visit(ds, [])
        for path in self.remove_paths:
            for parent in _items(ds, path.prefix):
                if path.final in parent:
                    del parent[path.final]
        for path, value in self.replace_paths:
            for parent in _items(ds, path.prefix):
                set_value(parent, path.final, value, self.private_creator)
        _sync_file_meta(ds)

    def _map_level(self, ds: Dataset, level: Level) -> None:
        if self.level.depth > level.depth:
            return
        tag = LEVEL_UID_TAG[level]
        kept = {Level.STUDY: self.keep_study_uid, Level.SERIES: self.keep_series_uid,
                Level.INSTANCE: self.keep_sop_uid}[level]
        if self.is_replaced(tag) or kept:
            return
        original = _text(ds[tag]) if tag in ds else ""
        ds[tag] = DataElement(tag, "UI", self.map_identifier(original, level))

    def _kept(self, parents: list[tuple[int, int]], tag: int) -> bool:
        return any(path.matches(parents, tag) for path in self.keep_paths)

    def _visit(self, ds: Dataset, parents: list[tuple[int, int]]) -> None:
        """``RelationshipsVisitor``: regenerate the UIDs that tie instances together and
        apply the profile inside sequences (remove/clear nested tags, private tags)."""
        for element in list(ds):
            tag = int(element.tag)
            vr = element.VR
            if not parents:
                if vr in STRING_VRS and tag in self.uids and not self._manually_modified(tag):
                    level = Level.PATIENT if tag in (PATIENT_ID, PATIENT_NAME) else Level.INSTANCE
                    _set_text(element, self.map_identifier(_text(element), level))
                elif vr == "SQ":
                    self._visit_items(element, parents)
                continue
            if self._kept(parents, tag):
                if vr == "SQ":
                    self._visit_items(element, parents)
                continue
            if vr in STRING_VRS:
                if self.remove_private_tags and _is_private(tag) or tag in self.removals:
                    del ds[tag]
                elif tag in self.clearings:
                    _set_text(element, "")
                elif tag in (STUDY_UID, SERIES_UID, SOP_UID):
                    level = {STUDY_UID: Level.STUDY, SERIES_UID: Level.SERIES,
                             SOP_UID: Level.INSTANCE}[tag]
                    _set_text(element, self.map_identifier(_text(element), level))
                elif tag in self.uids:
                    _set_text(element, self.map_identifier(_text(element),
                                                           self._nested_uid_level(parents, tag)))
                continue
            if (self.remove_private_tags and _is_private(tag) or tag in self.removals
                    or tag in self.clearings):
                del ds[tag]
            elif vr == "SQ":
                self._visit_items(element, parents)

    def _visit_items(self, element: DataElement, parents: list[tuple[int, int]]) -> None:
        for index, item in enumerate(element.value or []):
            self._visit(item, [*parents, (int(element.tag), index)])

    @staticmethod
    def _nested_uid_level(parents: list[tuple[int, int]], tag: int) -> Level:
        if tag in (PATIENT_ID, PATIENT_NAME):
            return Level.PATIENT
        # RT-STRUCT: this ReferencedSOPInstanceUID holds a StudyInstanceUID (Orthanc 1.9.4).
        if (len(parents) == 2 and parents[0][0] == REFERENCED_FRAME_OF_REFERENCE_SEQUENCE
                and parents[1][0] == RT_REFERENCED_STUDY_SEQUENCE
                and tag == REFERENCED_SOP_INSTANCE_UID):
            return Level.STUDY
        return Level.INSTANCE


# --- parsing requests (DicomModification::ParseModifyRequest / ParseAnonymizationRequest) ----

def _boolean(request: dict[str, Any], name: str, default: bool = False) -> bool:
    if name not in request:
        return default
    value = request[name]
    if not isinstance(value, bool):
        raise BadFileFormat(f'Member "{name}" should be a Boolean value')
    return value


def _list_of_tags(modification: Modification, query: Any, keep: bool, force: bool) -> None:
    if not isinstance(query, list):
        raise BadRequest(f"{'Keep' if keep else 'Remove'} must be a list of tags")
    for name in query:
        if not isinstance(name, str):
            raise BadRequest("Tags must be given as strings")
        path = DicomPath.parse(name)
        if not path.prefix and not force and path.final in DATABASE_KEYS:
            raise BadRequest(f'Marking tag "{name}" as to be {"kept" if keep else "removed"} '
                             'requires the "Force" option to be set to true')
        if keep:
            modification.keep_path(path)
        else:
            modification.remove_path(path)


def _replacements(modification: Modification, replacements: Any, force: bool) -> None:
    if not isinstance(replacements, dict):
        raise BadRequest("Replace must be an object mapping tags to values")
    for name, value in replacements.items():
        path = DicomPath.parse(name)
        if not path.prefix and not force and path.final in DATABASE_KEYS:
            raise BadRequest(f'Marking tag "{name}" as to be replaced requires the "Force" '
                             'option to be set to true')
        if not isinstance(value, str | list):
            raise BadRequest(f"The value of {name!r} must be a string (or a list of items "
                             "for a sequence)")
        modification.replace_path(path, value)


def _private_creator(modification: Modification, request: dict[str, Any]) -> None:
    if "PrivateCreator" in request:
        value = request["PrivateCreator"]
        if not isinstance(value, str):
            raise BadFileFormat('"PrivateCreator" must be a string')
        modification.private_creator = value


# Entries of Replace + Remove + Keep in one request: more than a dataset has elements in
# practice; 100,000 made a single instance take minutes (one pydicom insertion each).
MAX_MODIFICATION_ENTRIES = 10_000


def _check_entry_count(request: dict[str, Any]) -> None:
    count = sum(len(request[name]) for name in ("Replace", "Remove", "Keep")
                if isinstance(request.get(name), dict | list))
    if count > MAX_MODIFICATION_ENTRIES:
        raise ParameterOutOfRange(f"{count} Replace/Remove/Keep entries: at most "
                                  f"{MAX_MODIFICATION_ENTRIES} in one request")


def parse_modify_request(request: Any, default_private_creator: str) -> tuple[Modification, bool]:
    """A modification from a ``/modify`` body; returns it with the ``Force`` flag."""
    if not isinstance(request, dict):
        raise BadFileFormat("The body of /modify must be a JSON object")
    _check_entry_count(request)
    modification = Modification(private_creator=default_private_creator)
    force = _boolean(request, "Force")
    if _boolean(request, "RemovePrivateTags"):
        modification.set_remove_private_tags(True)
    if "Remove" in request:
        _list_of_tags(modification, request["Remove"], keep=False, force=force)
    if "Replace" in request:
        _replacements(modification, request["Replace"], force)
    if "Keep" in request:
        _list_of_tags(modification, request["Keep"], keep=True, force=force)
    _private_creator(modification, request)
    return modification, force


def detect_modify_level(modification: Modification) -> Level:
    """The level of ``/instances/{id}/modify``: the highest identifier replaced."""
    for tag, level in ((PATIENT_ID, Level.PATIENT), (STUDY_UID, Level.STUDY),
                       (SERIES_UID, Level.SERIES)):
        if modification.is_replaced(tag):
            return level
    return Level.INSTANCE


def check_modify_level(modification: Modification, level: Level) -> None:
    """Orthanc's sanity check at the patient level (the other per-level checks are
    disabled, identifiers being guarded by ``Force`` instead); since Orthanc 1.11.3 it is
    skipped when the request has ``"Force": true`` (renaming a whole patient)."""
    if level == Level.PATIENT and not modification.is_replaced(PATIENT_ID):
        raise BadRequest("When modifying a patient, her PatientID is required to be modified")


def parse_anonymization_request(request: Any, default_private_creator: str
                                ) -> tuple[Modification, bool]:
    """An anonymization from an ``/anonymize`` body; also says whether the request chose the
    PatientName itself (else the caller replaces it by ``Anonymized<N>``)."""
    if request is None:
        request = {}
    if not isinstance(request, dict):
        raise BadFileFormat("The body of /anonymize must be a JSON object")
    _check_entry_count(request)
    modification = Modification(private_creator=default_private_creator)
    force = _boolean(request, "Force")
    version = request.get("DicomVersion")
    if version is not None and not isinstance(version, str):
        raise BadFileFormat('"DicomVersion" must be a string')
    modification.setup_anonymization(version)
    if _boolean(request, "KeepPrivateTags"):
        modification.set_remove_private_tags(False)
    if "Remove" in request:
        _list_of_tags(modification, request["Remove"], keep=False, force=force)
    if "Replace" in request:
        _replacements(modification, request["Replace"], force)
    if "Keep" in request:
        _list_of_tags(modification, request["Keep"], keep=True, force=force)
    _private_creator(modification, request)
    return modification, PATIENT_NAME not in modification.uids


# --- values -------------------------------------------------------------------------------

def _is_private(tag: int) -> bool:
    return bool((tag >> 16) & 1)


def _text(element: DataElement) -> str:
    value = element.value
    if value is None:
        return ""
    if isinstance(value, MultiValue | list):
        return "\\".join(str(v) for v in value)
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return str(value)


def _set_text(element: DataElement, text: str) -> None:
    element.value = text


def _clear(element: DataElement) -> None:
    if element.VR == "SQ":
        element.value = Sequence([])
    elif element.VR in STRING_VRS:
        element.value = ""
    else:
        element.value = None


def _items(ds: Dataset, prefix: tuple[tuple[int, int | None], ...]) -> Iterator[Dataset]:
    """The datasets a path prefix designates (every item for ``[*]``)."""
    if not prefix:
        yield ds
        return
    (tag, index), rest = prefix[0], prefix[1:]
    if tag not in ds or ds[tag].VR != "SQ":
        return
    items = list(ds[tag].value or [])
    chosen = items if index is None else items[index:index + 1]
    for item in chosen:
        yield from _items(item, rest)


def _vr_of(ds: Dataset, tag: int, private_creator: str) -> str:
    if tag in ds:
        return ds[tag].VR
    if _is_private(tag):
        if tag & 0xFFFF < 0x0100:
            return "LO"  # a private creator
        try:
            return get_private_entry(tag, private_creator)[0].split(" or ")[0]
        except KeyError:
            return "UN"
    try:
        return dictionary_VR(tag).split(" or ")[0]
    except KeyError:
        return "UN"


def _reserve_private_block(ds: Dataset, tag: int, private_creator: str) -> None:
    """Insert the private creator (gggg,00xx) of a new private tag when it is missing."""
    if tag & 0xFFFF < 0x0100:
        return
    creator_tag = (tag & 0xFFFF0000) | ((tag >> 8) & 0xFF)
    if creator_tag not in ds:
        ds[creator_tag] = DataElement(creator_tag, "LO", private_creator)


def decode_data_uri(text: str) -> bytes | None:
    """The bytes of a ``data:...;base64,...`` value, or None when *text* is not one."""
    match = _DATA_URI.match(text)
    if match is None:
        return None
    payload = text[match.end():]
    if match.group(2) and "base64" in match.group(2):
        try:
            return base64.b64decode(payload, validate=False)
        except (binascii.Error, ValueError) as error:
            raise BadRequest(f"Bad base64 payload in a data URI: {error}") from error
    from urllib.parse import unquote_to_bytes
    return unquote_to_bytes(payload)


def set_value(ds: Dataset, tag: int, value: Any, private_creator: str, *,
              reserve: bool = True) -> None:
    """Set (or insert) *tag* from Orthanc's JSON value: a string, or a list of items.

    A new private element takes the VR that the dictionary gives it for *private_creator*.
    With *reserve*, its block is reserved by a (gggg,00xx) element holding *private_creator*
    when missing (PS3.5 7.8.1; Orthanc never inserts one).  Items of sequences given as
    JSON are filled without reservation, exactly as Orthanc does (its suite counts their
    elements, ``test_anonymize_nested``).
    """
    vr = _vr_of(ds, tag, private_creator)
    if reserve and _is_private(tag) and tag not in ds:
        _reserve_private_block(ds, tag, private_creator)
    ds[tag] = DataElement(tag, vr, element_value(vr, value, private_creator, tag))


def element_value(vr: str, value: Any, private_creator: str, tag: int) -> Any:
    name = f"{tag >> 16:04x},{tag & 0xFFFF:04x}"
    if vr == "SQ":
        if isinstance(value, str) and not value:
            return Sequence([])
        if not isinstance(value, list):
            raise BadRequest(f"The value of the sequence {name} must be a list of objects")
        return Sequence([dataset_from_json(item, private_creator) for item in value])
    if not isinstance(value, str):
        raise BadRequest(f"The value of {name} must be a string")
    if vr in _BINARY_VRS:
        decoded = decode_data_uri(value)
        if decoded is not None:
            return decoded
        if vr in _NUMERIC_BINARY_VRS and orthanc_api_at_least(1, 12, 11):
            return _packed_numbers(vr, value, name)
        return value.encode("utf-8")
    if vr in STRING_VRS:
        return value
    parts = [p for p in value.split("\\")] if value else []
    try:
        if vr in _INTEGER_VRS:
            numbers: list[Any] = [int(p.strip()) for p in parts]
        elif vr in _FLOAT_VRS:
            numbers = [float(p.strip()) for p in parts]
        elif vr == "AT":
            numbers = [int(parse_tag(p)) for p in parts]
        else:
            return value
    except ValueError as error:
        raise BadRequest(f"Bad value {value!r} for {name} (VR {vr})") from error
    if not numbers:
        return None
    return numbers[0] if len(numbers) == 1 else numbers


def dataset_from_json(item: Any, private_creator: str) -> Dataset:
    """A sequence item from ``{"Tag": value, ...}`` (tags as keywords or ``gggg,eeee``)."""
    if not isinstance(item, dict):
        raise BadRequest("The items of a sequence must be JSON objects")
    ds = Dataset()
    for name, value in item.items():
        set_value(ds, _tag(name), value, private_creator, reserve=False)
    return ds


def _sync_file_meta(ds: Dataset) -> None:
    meta = getattr(ds, "file_meta", None)
    if meta is None:
        return
    if "SOPInstanceUID" in ds:
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    if "SOPClassUID" in ds:
        meta.MediaStorageSOPClassUID = ds.SOPClassUID
