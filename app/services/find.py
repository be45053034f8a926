"""``/tools/find``, ``/tools/lookup``, RequestedTags and labels: the shared query service.

QIDO-RS and C-FIND build the same ``FindQuery`` through ``build_query`` and read values
through ``app.index.find.tag_values``: one matching engine for every door.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, delete, insert, select

from app.dicom.levels import Level
from app.dicom.matching import WildcardNotAllowed, parse_constraint
from app.dicom.tag_values import format_tags
from app.dicom.tags import format_tag, parse_tag, tag_name
from app.errors import BadRequest, ParameterOutOfRange, PharosError, UnknownResource
from app.index import find as index_find
from app.index import repository
from app.index.find import FindQuery, LeveledConstraint, level_of_keyword
from app.index.repository import LABELS
from app.services.browse import get_row_or_404, resources_json
from app.services.context import ServerContext
from app.validation import MAX_INT64

LABEL_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

# Orthanc's StringToResourceType (case-insensitive).
REST_LEVELS = {"patient": Level.PATIENT, "patients": Level.PATIENT, "study": Level.STUDY,
               "studies": Level.STUDY, "series": Level.SERIES, "instance": Level.INSTANCE,
               "instances": Level.INSTANCE, "image": Level.INSTANCE, "images": Level.INSTANCE}


class UnknownDicomTag(PharosError):
    """Orthanc's ErrorCode_UnknownDicomTag (27). Orthanc 1.10.1 answers it with HTTP 500;
    a name that is no tag is the client's error: 400 here (see the find differential)."""

    orthanc_code, orthanc_message, http_status = 27, "Unknown DICOM tag", 400


def keyword_of(name: str) -> tuple[int, str]:
    """(tag, keyword) for a keyword or ``gggg,eeee``; computed tags keep their names."""
    if name in index_find.COMPUTED_TAGS:
        from pydicom.datadict import tag_for_keyword
        return int(tag_for_keyword(name) or 0), name
    try:
        tag = parse_tag(name)
    except ValueError as error:
        raise UnknownDicomTag(f"Unknown DICOM tag: {name}") from error
    keyword = tag_name(tag)
    return int(tag), keyword if keyword != "Unknown Tag & Data" else format_tag(tag)


def build_query(level: Level, query: dict[str, str], *, case_sensitive: bool = True,
                since: int = 0, limit: int = 0, labels: Sequence[str] = (),
                labels_constraint: str = "All", cfind: bool = False) -> FindQuery:
    """A DICOM query (QIDO-RS, C-MOVE keys; C-FIND with *cfind*, see app.dicom.matching);
    a value the rules refuse (a sequence, a misplaced wildcard) is a BadRequest."""
    constraints = []
    for name, value in query.items():
        tag, keyword = keyword_of(name)
        try:
            constraint = parse_constraint(tag, keyword, value, case_sensitive_pn=case_sensitive,
                                          cfind=cfind)
        except ValueError as error:
            raise BadRequest(str(error)) from error
        constraints.append(LeveledConstraint(constraint, level_of_keyword(keyword, level)))
    return FindQuery(level, constraints, list(labels), labels_constraint, since, limit)


def build_rest_query(level: Level, query: dict[str, str], *, case_sensitive: bool,
                     since: int = 0, limit: int = 0, candidate_cap: int = 0,
                     labels: Sequence[str] = (), labels_constraint: str = "All") -> FindQuery:
    """A ``/tools/find`` query, parsed like Orthanc's ``DatabaseLookup::AddRestConstraint``:
    empty values are universal and skipped, ``CaseSensitive`` applies to every tag."""
    constraints = []
    for name, value in query.items():
        if value == "":
            continue
        tag, keyword = keyword_of(name)
        try:
            constraint = parse_constraint(tag, keyword, value, rest=True,
                                          case_sensitive=case_sensitive)
        except WildcardNotAllowed as error:
            raise ParameterOutOfRange(str(error)) from error
        constraints.append(LeveledConstraint(constraint, level_of_keyword(keyword, level)))
    return FindQuery(level, constraints, list(labels), labels_constraint, since, limit,
                     rest=True, candidate_cap=candidate_cap)


def effective_limit(context: ServerContext, level: Level, requested: int) -> int:
    """Orthanc: LimitFindInstances at instance level, LimitFindResults elsewhere."""
    configured = configured_limit(context, level)
    if configured and (not requested or requested > configured):
        return configured
    return requested


def configured_limit(context: ServerContext, level: Level) -> int:
    settings = context.settings
    return (settings.limit_find_instances if level == Level.INSTANCE
            else settings.limit_find_results) or 0


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise BadRequest(message)


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _json_bool(body: dict[str, Any], key: str) -> bool:
    """jsoncpp's ``asBool()``: Booleans, numbers and null convert; other types fail (an
    unhandled exception, HTTP 500, in Orthanc 1.10.1: a 400 here)."""
    value = body.get(key, False)
    _require(value is None or isinstance(value, (bool, int, float)),
             f'Field "{key}" should be a Boolean')
    return bool(value)


def tools_find(context: ServerContext, body: Any) -> list[Any]:
    """Validate an Orthanc ``/tools/find`` request (same checks, order and messages as
    ``OrthancRestResources.cpp``) and answer it."""
    _require(isinstance(body, dict), "The body must contain a JSON object")
    _require(isinstance(body.get("Level"), str),
             'Field "Level" is missing, or should be a string')
    query = body.get("Query")
    _require(isinstance(query, dict), 'Field "Query" is missing, or should be a JSON object')
    _require("CaseSensitive" not in body or isinstance(body["CaseSensitive"], bool),
             'Field "CaseSensitive" should be a Boolean')
    for name in ("Limit", "Since"):
        _require(name not in body or _is_integer(body[name]),
                 f'Field "{name}" should be an integer')
    requested = body.get("RequestedTags", [])
    _require(isinstance(requested, list) and all(isinstance(x, str) for x in requested),
             'Field "RequestedTags" should be an array of strings')
    labels = body.get("Labels", [])
    _require(isinstance(labels, list) and all(isinstance(x, str) for x in labels),
             'Field "Labels" should be an array of strings')
    labels_constraint = body.get("LabelsConstraint", "All")
    _require(labels_constraint in ("All", "Any", "None"),
             'Field "LabelsConstraint" must be "All", "Any" or "None"')
    for label in labels:
        check_label(label)
    expand = _json_bool(body, "Expand")
    case_sensitive = body.get("CaseSensitive", False)  # Orthanc's default: insensitive
    limit, since = body.get("Limit", 0), body.get("Since", 0)
    for name, value in (("Limit", limit), ("Since", since)):
        if value < 0:
            raise ParameterOutOfRange(f'Field "{name}" should be a positive integer')
        if value > MAX_INT64:  # beyond what the index databases store
            raise ParameterOutOfRange(f'Field "{name}" should be below 2^63')
    level = REST_LEVELS.get(body["Level"].lower())
    if level is None:
        raise ParameterOutOfRange(f"Unknown resource level: {body['Level']}")
    for name, value in query.items():
        _require(isinstance(value, str), f'Tag "{name}" should be associated with a string')
    fmt = "full" if _json_bool(body, "Full") else (
        "short" if _json_bool(body, "Short") else "simplify")
    find_query = build_rest_query(level, query, case_sensitive=case_sensitive, since=since,
                                  limit=limit, candidate_cap=configured_limit(context, level),
                                  labels=labels, labels_constraint=labels_constraint)
    with context.db.read() as conn:
        matches = index_find.find_matches(conn, find_query)
        if not expand:
            return [public_id for _, public_id in matches]
        rows = repository.get_rows_by_pk(conn, level, [pk for pk, _ in matches])
        return expanded(conn, level, rows, requested, fmt)


def expanded(conn: Connection, level: Level, rows: Sequence[Any], requested: Sequence[str],
             fmt: str = "simplify") -> list[dict[str, Any]]:
    """Resources as ``GET /{level}/{id}`` shows them, plus ``RequestedTags`` when asked
    (see ``index.find.requested_tag_values``), tags in Orthanc's *fmt* (``simplify``,
    ``short`` or ``full``)."""
    answers = resources_json(conn, level, rows)
    if requested:
        tags = list(dict.fromkeys(keyword_of(name) for name in requested))
        values = index_find.requested_tag_values(conn, level, rows, tags)
        for answer, row in zip(answers, rows, strict=True):
            answer["RequestedTags"] = format_tags(values[row.pk], fmt)
    if fmt != "simplify":
        for answer in answers:
            for key in ("MainDicomTags", "PatientMainDicomTags"):
                if key in answer:
                    answer[key] = format_tags(
                        {int(parse_tag(keyword)): value for keyword, value in answer[key].items()},
                        fmt)
    return answers


def parse_requested_tags(text: str | None) -> list[str]:
    """``requested-tags`` / ``requestedTags`` of browsing routes: names or ``gggg,eeee``
    separated by ``;`` (Orthanc's ``ParseListOfTags``); an unknown name answers 400."""
    names = [name.strip() for name in (text or "").split(";") if name.strip()]
    for name in names:
        keyword_of(name)
    return names


def lookup(context: ServerContext, text: str) -> list[dict[str, str]]:
    """``/tools/lookup``: resources whose PatientID or UID is *text* (case ignored, as
    Orthanc compares its upper-cased identifiers)."""
    with context.db.read() as conn:
        found = index_find.lookup_identifier(conn, text.strip())
    return [{"ID": public_id, "Path": f"/{level.plural}/{public_id}", "Type": level.value}
            for level, public_id in found]


# --- labels ---------------------------------------------------------------------------------

def check_label(label: str) -> None:
    if not LABEL_PATTERN.match(label):
        raise ParameterOutOfRange(f"Invalid label {label!r}: use 1-64 characters of "
                                  "[A-Za-z0-9_-]")


def add_label(context: ServerContext, level: Level, public_id: str, label: str) -> None:
    check_label(label)
    with context.db.write() as conn:
        row = get_row_or_404(conn, level, public_id)
        if not repository.lock_resource(conn, level, row.pk):  # deleted meanwhile
            raise UnknownResource(f"Unknown {level.value.lower()}: {public_id}")
        exists = conn.execute(select(LABELS.c.pk).where(
            LABELS.c.level == level.value, LABELS.c.resource_pk == row.pk,
            LABELS.c.label == label)).first()
        if exists is None:
            conn.execute(insert(LABELS).values(level=level.value, resource_pk=row.pk,
                                               label=label))


def remove_label(context: ServerContext, level: Level, public_id: str, label: str) -> None:
    check_label(label)
    with context.db.write() as conn:
        row = get_row_or_404(conn, level, public_id)
        conn.execute(delete(LABELS).where(LABELS.c.level == level.value,
                                          LABELS.c.resource_pk == row.pk,
                                          LABELS.c.label == label))


def labels_of(context: ServerContext, level: Level, public_id: str) -> list[str]:
    with context.db.read() as conn:
        row = get_row_or_404(conn, level, public_id)
        return repository.labels_of(conn, level, [row.pk])[row.pk]


def all_labels(context: ServerContext) -> list[str]:
    with context.db.read() as conn:
        return [label for (label,) in conn.execute(
            select(LABELS.c.label).distinct().order_by(LABELS.c.label))]
