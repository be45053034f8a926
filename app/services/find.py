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
from app.dicom.matching import parse_constraint
from app.dicom.tags import format_tag, parse_tag, tag_name
from app.errors import BadRequest, ParameterOutOfRange
from app.index import find as index_find
from app.index import repository
from app.index.find import FindQuery, LeveledConstraint, level_of_keyword
from app.index.repository import INSTANCES, LABELS, PATIENTS, SERIES, STUDIES
from app.services.browse import get_row_or_404, resources_json
from app.services.context import ServerContext

LABEL_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def keyword_of(name: str) -> tuple[int, str]:
    """(tag, keyword) for a keyword or ``gggg,eeee``; computed tags keep their names."""
    if name in index_find.COMPUTED_TAGS:
        from pydicom.datadict import tag_for_keyword
        return int(tag_for_keyword(name) or 0), name
    try:
        tag = parse_tag(name)
    except ValueError as error:
        raise BadRequest(f"Unknown DICOM tag: {name}") from error
    keyword = tag_name(tag)
    return int(tag), keyword if keyword != "Unknown Tag & Data" else format_tag(tag)


def build_query(level: Level, query: dict[str, str], *, case_sensitive: bool = True,
                since: int = 0, limit: int = 0, labels: Sequence[str] = (),
                labels_constraint: str = "All") -> FindQuery:
    constraints = []
    for name, value in query.items():
        tag, keyword = keyword_of(name)
        try:
            constraint = parse_constraint(tag, keyword, value, case_sensitive_pn=case_sensitive)
        except ValueError as error:
            raise BadRequest(str(error)) from error
        constraints.append(LeveledConstraint(constraint, level_of_keyword(keyword, level)))
    return FindQuery(level, constraints, list(labels), labels_constraint, since, limit)


def effective_limit(context: ServerContext, level: Level, requested: int) -> int:
    """Orthanc: LimitFindInstances at instance level, LimitFindResults elsewhere."""
    settings = context.settings
    configured = settings.limit_find_instances if level == Level.INSTANCE \
        else settings.limit_find_results
    if configured and (not requested or requested > configured):
        return configured
    return requested


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise BadRequest(message)


def tools_find(context: ServerContext, body: Any) -> list[Any]:
    """Validate an Orthanc ``/tools/find`` request and answer it."""
    _require(isinstance(body, dict), "The body of /tools/find must be a JSON object")
    _require(isinstance(body.get("Level"), str),
             'Field "Level" is missing, or should be a string')
    try:
        level = Level.parse(body["Level"])
    except ValueError as error:
        raise BadRequest(str(error)) from error
    query = body.get("Query")
    _require(isinstance(query, dict), 'Field "Query" is missing, or should be a JSON object')
    _require(all(isinstance(v, str) for v in query.values()),
             'Tag "Query" must be associated with strings')
    expand = body.get("Expand", False)
    case_sensitive = body.get("CaseSensitive", True)
    limit = body.get("Limit", 0)
    since = body.get("Since", 0)
    requested = body.get("RequestedTags", [])
    labels = body.get("Labels", [])
    labels_constraint = body.get("LabelsConstraint", "All")
    _require(isinstance(expand, bool), 'Field "Expand" must be a Boolean')
    _require(isinstance(case_sensitive, bool), 'Field "CaseSensitive" must be a Boolean')
    for name, value in (("Limit", limit), ("Since", since)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ParameterOutOfRange(f'Field "{name}" must be a positive integer')
    _require(isinstance(requested, list) and all(isinstance(x, str) for x in requested),
             'Field "RequestedTags" must be a list of strings')
    _require(isinstance(labels, list) and all(isinstance(x, str) for x in labels),
             'Field "Labels" must be a list of strings')
    _require(labels_constraint in ("All", "Any", "None"),
             'Field "LabelsConstraint" must be "All", "Any" or "None"')
    fmt = "full" if body.get("Full") else ("short" if body.get("Short") else "simplify")
    find_query = build_query(level, query, case_sensitive=case_sensitive, since=since,
                             limit=effective_limit(context, level, limit), labels=labels,
                             labels_constraint=labels_constraint)
    with context.db.read() as conn:
        pks = index_find.find_pks(conn, find_query)
        if not expand:
            return [r.public_id for r in repository.get_rows_by_pk(conn, level, pks)]
        rows = repository.get_rows_by_pk(conn, level, pks)
        return expanded(conn, level, rows, requested, fmt)


def expanded(conn: Connection, level: Level, rows: Sequence[Any], requested: Sequence[str],
             fmt: str = "simplify") -> list[dict[str, Any]]:
    """Resources as ``GET /{level}/{id}`` shows them, plus ``RequestedTags`` when asked."""
    answers = resources_json(conn, level, rows)
    if requested:
        keywords = [keyword_of(name)[1] for name in requested]
        values = index_find.tag_values(conn, level, [r.pk for r in rows], keywords)
        for answer, row in zip(answers, rows, strict=True):
            answer["RequestedTags"] = {k: v for k, v in values[row.pk].items()
                                       if v is not None and not isinstance(v, list)}
    if fmt != "simplify":
        for answer in answers:
            for key in ("MainDicomTags", "PatientMainDicomTags", "RequestedTags"):
                if key in answer:
                    answer[key] = _reformat(answer[key], fmt)
    return answers


def _reformat(tags: dict[str, str], fmt: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for keyword, value in tags.items():
        try:
            key = format_tag(int(parse_tag(keyword)))
        except ValueError:
            key = keyword
        out[key] = value if fmt == "short" else {"Name": keyword, "Type": "String",
                                                 "Value": value}
    return out


def lookup(context: ServerContext, text: str) -> list[dict[str, str]]:
    """``/tools/lookup``: resources whose PatientID or UID equals *text* exactly."""
    value = text.strip()
    answer = []
    with context.db.read() as conn:
        for level, column in ((Level.PATIENT, PATIENTS.c.patient_id),
                              (Level.STUDY, STUDIES.c.study_uid),
                              (Level.SERIES, SERIES.c.series_uid),
                              (Level.INSTANCE, INSTANCES.c.sop_uid)):
            table = repository.TABLE[level]
            for (public_id,) in conn.execute(select(table.c.public_id).where(column == value)
                                             .order_by(table.c.pk)):
                answer.append({"ID": public_id, "Path": f"/{level.plural}/{public_id}",
                               "Type": level.value})
    return answer


# --- labels ---------------------------------------------------------------------------------

def check_label(label: str) -> None:
    if not LABEL_PATTERN.match(label):
        raise ParameterOutOfRange(f"Invalid label {label!r}: use 1-64 characters of "
                                  "[A-Za-z0-9_-]")


def add_label(context: ServerContext, level: Level, public_id: str, label: str) -> None:
    check_label(label)
    with context.db.write() as conn:
        row = get_row_or_404(conn, level, public_id)
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
