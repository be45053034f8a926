"""QIDO-RS (PS3.18 10.6): search studies, series and instances from the index.

The query goes through the one matching engine (``build_query`` + ``find_pks``); the
answer is built from the index only: the DICOM JSON stored at ingest (of the first
instance below each result, like Orthanc reads one instance), and computed attributes
(ModalitiesInStudy, NumberOfStudyRelated*, NumberOfSeriesRelatedInstances) from
aggregates. Files are never opened.

Matching (PS3.18 8.3.4): keys by keyword or tag (``PatientName=``, ``00100010=``), UID
lists with commas or backslashes, wildcards, date/time ranges; PN matching is
case-insensitive (Orthanc's CaseSensitivePN default); ``fuzzymatching=true`` makes a PN
key without wildcards match any name containing it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydicom.datadict import dictionary_VR

from app import orthanc_api_at_least
from app.context import ServerContext
from app.dicom.dicomweb_json import (
    COMPUTED,
    DEFAULTS,
    INSTANCE_AVAILABILITY,
    RETRIEVE_URL,
    UNIQUE_KEYS,
    computed_element,
    decimal_values_of,
    keyword_of,
    strip_bulk,
    tag_key,
    url_element,
)
from app.dicom.levels import Level
from app.dicom.tags import MAIN_TAG_KEYWORDS
from app.errors import BadRequest
from app.index import find as index_find
from app.services.dicomweb import instance_url, series_url, study_url
from app.services.find import build_query, effective_limit
from app.validation import parse_int

SPECIFIC_CHARACTER_SET = "00080005"
CONTROL_PARAMETERS = {"limit", "offset", "fuzzymatching", "includefield", "accept",
                      "charset", "emptyvaluematching", "multiplevaluematching"}


@dataclass
class QidoQuery:
    """A parsed QIDO-RS request."""

    level: Level
    keys: dict[str, str] = field(default_factory=dict)  # tag key (00100010) -> value
    include: list[str] = field(default_factory=list)  # tag keys
    include_all: bool = False
    limit: int = 0
    offset: int = 0
    fuzzy: bool = False
    # StudyInstanceUID / SeriesInstanceUID given as query parameters (not by the path)
    queried_uids: set[str] = field(default_factory=set)


def _int(value: str, name: str) -> int:
    return parse_int(value, name, error=BadRequest)


def _key(name: str) -> str:
    if "." in name:
        raise BadRequest(f"Matching on sequence attributes ({name}) is not supported")
    key = tag_key(name)
    if key is None:
        raise BadRequest(f"Unknown attribute {name!r}: use a keyword (PatientName) or a tag "
                         "(00100010)")
    return key


def parse_query(level: Level, params: Sequence[tuple[str, str]],
                scope: dict[str, str]) -> QidoQuery:
    """The QIDO-RS query parameters (PS3.18 8.3.4) plus the UIDs of the path (*scope*)."""
    query = QidoQuery(level)
    for name, value in params:
        lowered = name.lower()
        if lowered == "limit":
            query.limit = _int(value, "limit")
        elif lowered == "offset":
            query.offset = _int(value, "offset")
        elif lowered == "fuzzymatching":
            query.fuzzy = value.strip().lower() == "true"
        elif lowered == "includefield":
            for item in value.split(","):
                item = item.strip()
                if not item:
                    continue
                if item.lower() == "all":
                    query.include_all = True
                else:
                    query.include.append(_key(item))
        elif lowered in CONTROL_PARAMETERS:
            continue
        else:
            key = _key(name)
            query.keys[key] = value
            query.queried_uids.add(key)
    for keyword, uid in scope.items():
        query.keys[_key(keyword)] = uid
    return query


def _matching_value(key: str, value: str, fuzzy: bool) -> str:
    try:
        vr = dictionary_VR(int(key, 16))
    except KeyError:
        vr = ""
    if vr == "UI":
        # PS3.18 8.3.4.1: UID lists are comma-separated in QIDO-RS.
        return "\\".join(v.strip() for v in value.replace(",", "\\").split("\\"))
    if vr == "PN" and fuzzy and value.strip() and not any(c in value for c in "*?\\"):
        return f"*{value.strip()}*"
    return value


def search(context: ServerContext, query: QidoQuery, root: str) -> list[dict[str, Any]]:
    """The answers of a QIDO-RS search, each a DICOM JSON dataset."""
    constraints = {_name(key): _matching_value(key, value, query.fuzzy)
                   for key, value in query.keys.items()}
    limit = effective_limit(context, query.level, query.limit)
    find_query = build_query(query.level, constraints, case_sensitive=False,
                             since=query.offset, limit=limit)
    wanted = _return_keys(query)
    with context.db.read() as conn:
        pks = index_find.find_pks(conn, find_query)
        if not pks:
            return []
        documents = index_find.first_instance_json(conn, query.level, pks)
        computed = {key: index_find.computed_tag(conn, query.level, pks, name)
                    for key, (name, _, level) in COMPUTED.items()
                    if key in wanted and level == query.level}
    answers = []
    for pk in pks:
        document = documents.get(pk)
        if document is None:
            continue  # a resource without instances (being deleted): nothing to show
        answers.append(_answer(query.level, document, wanted, computed, pk, root))
    return answers


def _name(key: str) -> str:
    keyword = keyword_of(key)
    return keyword if keyword != key else f"{key[:4]},{key[4:]}"


def _return_keys(query: QidoQuery) -> list[str]:
    """PS3.18 10.6.3.3.1: default attributes of the level, matching keys, includefield
    keys; and the default attributes of the study (of the series) when StudyInstanceUID
    (SeriesInstanceUID) is not a query parameter (PS3.18 Table 6.7.1-2a/2b, as Orthanc's
    plugin reads it: a UID of the path still brings them)."""
    level = query.level
    keys: list[str] = list(DEFAULTS[level])
    if level in (Level.SERIES, Level.INSTANCE) and "0020000D" not in query.queried_uids:
        keys += DEFAULTS[Level.STUDY]
    if level == Level.INSTANCE and "0020000E" not in query.queried_uids:
        keys += DEFAULTS[Level.SERIES]
    for unique_level, key in UNIQUE_KEYS.items():
        if unique_level.depth <= level.depth:
            keys.append(key)
    keys += list(query.keys) + query.include
    if query.include_all:
        for lvl in (Level.PATIENT, Level.STUDY, Level.SERIES, Level.INSTANCE):
            if lvl.depth <= level.depth:
                keys += [tag_key(k) or k for k in MAIN_TAG_KEYWORDS[lvl]]
    seen: dict[str, None] = {}
    for key in keys:
        seen.setdefault(key, None)
    return list(seen)


def _answer(level: Level, document: dict[str, Any], wanted: list[str],
            computed: dict[str, dict[int, str]], pk: int, root: str) -> dict[str, Any]:
    answer: dict[str, Any] = {}
    for key in wanted:
        if key in computed:
            element = computed_element(key, computed[key].get(pk))
        elif key == RETRIEVE_URL:
            element = url_element(_retrieve_url(level, document, root))
        elif key == SPECIFIC_CHARACTER_SET:
            # PS3.18 F.2: DICOM JSON is UTF-8 whatever the stored file's character set.
            element = {"vr": "CS", "Value": ["ISO_IR 192"]}
        elif key == INSTANCE_AVAILABILITY:
            element = {"vr": "CS", "Value": ["ONLINE"]}
        elif key in COMPUTED:
            element = None  # a computed attribute of another level: omitted, never empty
        else:
            element = document.get(key)
            element = strip_bulk(element) if element is not None else None
            if element is not None:  # DS values as strings from Orthanc 1.12.6
                element = decimal_values_of(element, orthanc_api_at_least(1, 12, 6))
        if element is not None:
            answer[key] = element
    return dict(sorted(answer.items()))


def _uid(document: dict[str, Any], key: str) -> str:
    try:
        return str(document[key]["Value"][0])
    except (KeyError, IndexError, TypeError):
        return ""


def _retrieve_url(level: Level, document: dict[str, Any], root: str) -> str:
    study = _uid(document, "0020000D")
    if level == Level.STUDY:
        return study_url(root, study)
    series = _uid(document, "0020000E")
    if level == Level.SERIES:
        return series_url(root, study, series)
    return instance_url(root, study, series, _uid(document, "00080018"))
