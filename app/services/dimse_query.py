"""C-FIND identifiers <-> the find engine (PS3.4 C.4.1, C.6.1, C.6.2).

A door-neutral service: the C-FIND SCP uses it; the REST ``/modalities/{x}/query`` and
QIDO-RS may share its helpers (``parse_level``, ``element_text``, ``answer_dataset``).
The identifier's keys with a value become matching constraints of the one engine
(``app.services.find.build_query``); every key, empty or not, is a return key. An answer
holds the return keys, QueryRetrieveLevel and RetrieveAETitle, in the server's default
encoding named by SpecificCharacterSet (Orthanc's ``OrthancFindRequestHandler``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pydicom.datadict import dictionary_VR, keyword_for_tag
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.tag import Tag

from app.context import ServerContext
from app.dicom.encodings import Encoding
from app.dicom.levels import Level
from app.errors import BadRequest
from app.index import find as index_find
from app.index import repository
from app.services import runtime
from app.services.find import build_query, effective_limit

log = logging.getLogger(__name__)

QUERY_RETRIEVE_LEVEL = 0x00080052
SPECIFIC_CHARACTER_SET = 0x00080005
RETRIEVE_AE_TITLE = 0x00080054
INSTANCE_AVAILABILITY = 0x00080056

# PS3.4 C.6.1.1.2 ("IMAGE"); Orthanc also reads "INSTANCE".
_LEVELS = {"PATIENT": Level.PATIENT, "STUDY": Level.STUDY, "SERIES": Level.SERIES,
           "IMAGE": Level.INSTANCE, "INSTANCE": Level.INSTANCE}
_LEVEL_NAMES = {Level.PATIENT: "PATIENT", Level.STUDY: "STUDY", Level.SERIES: "SERIES",
                Level.INSTANCE: "IMAGE"}
_NOT_KEYS = {QUERY_RETRIEVE_LEVEL, SPECIFIC_CHARACTER_SET}
_INTEGER_VRS = {"US", "UL", "SS", "SL", "UV", "SV"}
_FLOAT_VRS = {"FL", "FD"}
_BINARY_VRS = {"OB", "OW", "OF", "OD", "OL", "OV", "UN", "AT"}
_TEXT_VRS = {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM",
             "UC", "UI", "UR", "UT"}
BATCH = 200


def parse_level(identifier: Dataset) -> Level:
    """The QueryRetrieveLevel of an identifier; BadRequest when absent or unknown."""
    value = element_text(identifier, "QueryRetrieveLevel")
    level = _LEVELS.get((value or "").strip().upper())
    if level is None:
        raise BadRequest(f"Bad or missing QueryRetrieveLevel: {value!r}")
    return level


def level_name(level: Level) -> str:
    return _LEVEL_NAMES[level]


def element_text(dataset: Dataset, keyword: str | int) -> str | None:
    """A value as the matching engine reads it: multi-values joined by a backslash;
    None when the element is absent."""
    tag = Tag(keyword)  # a keyword or a tag number
    element = dataset.get(tag) if tag in dataset else None
    if element is None:
        return None
    return value_text(element.value)


def value_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, MultiValue | list | tuple):
        return "\\".join(value_text(v) for v in value)
    if isinstance(value, bytes):
        return value.decode("latin-1").strip("\0 ")
    return str(value)


@dataclass(frozen=True)
class Key:
    """One key of the identifier: its tag, the name the engine knows it by, its VR."""

    tag: int
    name: str
    vr: str
    value: str | None  # None: a sequence (a return key only)


def _key_name(tag: int) -> str:
    keyword = keyword_for_tag(tag)
    return keyword or f"{tag >> 16:04X},{tag & 0xFFFF:04X}"


def identifier_keys(identifier: Dataset) -> list[Key]:
    keys = []
    for element in identifier:
        tag = int(element.tag)
        if tag in _NOT_KEYS or element.tag.group in (0x0000, 0x0002) \
                or element.tag.element == 0x0000:
            continue
        vr = str(element.VR)
        if vr == "SQ":
            keys.append(Key(tag, _key_name(tag), vr, None))
        else:
            keys.append(Key(tag, _key_name(tag), vr, value_text(element.value)))
    return keys


@dataclass
class FindAnswers:
    """The answers to one C-FIND identifier, produced lazily in batches.

    ``truncated`` becomes true when LimitFindResults / LimitFindInstances stopped the
    search (read it after iterating)."""

    context: ServerContext
    identifier: Dataset
    retrieve_aet: str = ""
    case_sensitive_pn: bool = False  # Orthanc's CaseSensitivePN default
    truncated: bool = False
    level: Level = field(init=False)
    keys: list[Key] = field(init=False)
    encoding: Encoding = field(init=False)

    def __post_init__(self) -> None:
        self.encoding = runtime.current(self.context).default_encoding
        if not element_text(self.identifier, "SpecificCharacterSet") and self.encoding.term:
            # A query without SpecificCharacterSet is read in the default encoding.
            self.identifier.SpecificCharacterSet = self.encoding.term
        self.level = parse_level(self.identifier)
        self.keys = identifier_keys(self.identifier)

    def _constraints(self) -> dict[str, str]:
        return {key.name: key.value for key in self.keys
                if key.value and key.tag not in (RETRIEVE_AE_TITLE, INSTANCE_AVAILABILITY)}

    def __iter__(self) -> Iterator[Dataset]:
        limit = effective_limit(self.context, self.level, 0)
        query = build_query(self.level, self._constraints(),
                            case_sensitive=self.case_sensitive_pn,
                            limit=limit + 1 if limit else 0, cfind=True)
        with self.context.db.read() as conn:
            pks = index_find.find_pks(conn, query)
        if limit and len(pks) > limit:
            self.truncated = True
            pks = pks[:limit]
        names = [k.name for k in self.keys if k.value is not None
                 and k.tag not in (RETRIEVE_AE_TITLE, INSTANCE_AVAILABILITY)]
        for start in range(0, len(pks), BATCH):
            batch = pks[start:start + BATCH]
            with self.context.db.read() as conn:
                rows = repository.get_rows_by_pk(conn, self.level, batch)
                values = index_find.tag_values(conn, self.level, [r.pk for r in rows], names)
            for row in rows:
                yield self.answer(values[row.pk])

    def answer(self, values: dict[str, Any]) -> Dataset:
        return answer_dataset(self.level, self.keys, values, encoding=self.encoding,
                              retrieve_aet=self.retrieve_aet)


def answer_dataset(level: Level, keys: list[Key], values: dict[str, Any], *,
                   encoding: Encoding, retrieve_aet: str = "") -> Dataset:
    """One C-FIND answer as Orthanc's ``AddAnswer`` builds it: every return key (empty when
    the resource has no value), QueryRetrieveLevel, RetrieveAETitle (always, PS3.4
    C.4.1.1.3.2), and the strings in the default *encoding*, named by
    SpecificCharacterSet; characters it cannot encode are dropped, as Orthanc does."""
    answer = Dataset()
    if encoding.term:
        answer.SpecificCharacterSet = encoding.term
    answer.add_new(RETRIEVE_AE_TITLE, "AE", retrieve_aet)
    for key in keys:
        if key.value is None:
            answer.add_new(key.tag, "SQ", Sequence())
            continue
        if key.tag == RETRIEVE_AE_TITLE:
            continue
        if key.tag == INSTANCE_AVAILABILITY:
            value: Any = "ONLINE"  # PS3.4 C.4.1.1.3.2: everything is on line
        else:
            value = values.get(key.name)
        if isinstance(value, list):  # values of several descendants: not one answer
            value = None
        _put(answer, key, "" if value is None else str(value), encoding.codec)
    answer.QueryRetrieveLevel = level_name(level)
    return answer


def _put(answer: Dataset, key: Key, text: str, codec: str) -> None:
    vr = key.vr if key.vr not in ("UN", "") else _dictionary_vr(key.tag)
    if vr in _BINARY_VRS:
        answer.add(DataElement(key.tag, vr, b"" if vr != "AT" else None))
        return
    if vr in _TEXT_VRS:
        data = text.encode(codec, "ignore")
        if len(data) % 2:
            data += b"\0" if vr == "UI" else b" "
        answer[key.tag] = RawDataElement(Tag(key.tag), vr, len(data), data, 0, True, True)
        return
    value: Any = text
    try:
        if vr in _INTEGER_VRS:
            parts = [int(float(p)) for p in text.split("\\") if p.strip()]
            value = parts[0] if len(parts) == 1 else (parts or None)
        elif vr in _FLOAT_VRS:
            parts_f = [float(p) for p in text.split("\\") if p.strip()]
            value = parts_f[0] if len(parts_f) == 1 else (parts_f or None)
        answer.add_new(key.tag, vr, value)
    except (ValueError, TypeError, OverflowError) as error:
        log.warning("C-FIND: value %r of %s not valid as %s: %s", text, key.name, vr, error)
        answer.add_new(key.tag, vr, None)


def _dictionary_vr(tag: int) -> str:
    try:
        return dictionary_VR(tag)
    except KeyError:
        return "LO"
