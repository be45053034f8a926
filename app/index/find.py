"""The query compiler: matching constraints -> one SQL statement per /tools/find.

Constraints on tags with a typed column become SQL (GLOB on SQLite, LIKE on PostgreSQL,
both able to use B-tree indexes for prefixes); constraints on other tags are checked in
Python on the stored main tags or DICOM JSON (the "post-filters"). When a column holds
the normalised value but the match is case-sensitive, SQL filters on the normalised
value (a superset) and the exact value is re-checked in Python.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    and_,
    exists,
    func,
    or_,
    select,
    true,
)

from app.dicom.levels import Level
from app.dicom.matching import Constraint, Kind
from app.dicom.tags import MAIN_TAG_KEYWORDS
from app.dicom.text import normalize
from app.index.repository import INSTANCES, LABELS, PARENT_FK, SERIES, STUDIES, TABLE


@dataclass(frozen=True)
class Column:
    level: Level
    name: str
    normalized: bool = False  # holds normalize(value): exact matches are re-checked


COLUMNS: dict[str, Column] = {
    "PatientID": Column(Level.PATIENT, "patient_id"),
    "PatientName": Column(Level.PATIENT, "patient_name_norm", normalized=True),
    "PatientBirthDate": Column(Level.PATIENT, "birth_date"),
    "PatientSex": Column(Level.PATIENT, "sex"),
    "StudyInstanceUID": Column(Level.STUDY, "study_uid"),
    "StudyDate": Column(Level.STUDY, "study_date"),
    "StudyTime": Column(Level.STUDY, "study_time"),
    "AccessionNumber": Column(Level.STUDY, "accession"),
    "StudyDescription": Column(Level.STUDY, "description_norm", normalized=True),
    "ReferringPhysicianName": Column(Level.STUDY, "referring_norm", normalized=True),
    "SeriesInstanceUID": Column(Level.SERIES, "series_uid"),
    "Modality": Column(Level.SERIES, "modality"),
    "SeriesNumber": Column(Level.SERIES, "series_number"),
    "SeriesDescription": Column(Level.SERIES, "description_norm", normalized=True),
    "SOPInstanceUID": Column(Level.INSTANCE, "sop_uid"),
    "SOPClassUID": Column(Level.INSTANCE, "sop_class_uid"),
    "InstanceNumber": Column(Level.INSTANCE, "instance_number"),
}

# The level whose main tags hold each keyword (the lowest level wins for shared ones,
# e.g. ImageOrientationPatient is a series and an instance main tag).
MAIN_TAG_LEVEL: dict[str, Level] = {}
for _level in (Level.INSTANCE, Level.SERIES, Level.STUDY, Level.PATIENT):
    for _keyword in MAIN_TAG_KEYWORDS[_level]:
        MAIN_TAG_LEVEL.setdefault(_keyword, _level)

COMPUTED_TAGS = {
    "ModalitiesInStudy": Level.STUDY, "SOPClassesInStudy": Level.STUDY,
    "NumberOfStudyRelatedSeries": Level.STUDY, "NumberOfStudyRelatedInstances": Level.STUDY,
    "NumberOfPatientRelatedStudies": Level.PATIENT, "NumberOfPatientRelatedSeries": Level.PATIENT,
    "NumberOfPatientRelatedInstances": Level.PATIENT,
    "NumberOfSeriesRelatedInstances": Level.SERIES,
}


@dataclass
class LeveledConstraint:
    """A constraint bound to the level whose data it applies to."""

    constraint: Constraint
    level: Level


@dataclass
class FindQuery:
    level: Level
    constraints: list[LeveledConstraint] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    labels_constraint: str = "All"  # All | Any | None
    since: int = 0
    limit: int = 0


def level_of_keyword(keyword: str, default: Level) -> Level:
    if keyword in COMPUTED_TAGS:
        return COMPUTED_TAGS[keyword]
    if keyword in COLUMNS:
        return COLUMNS[keyword].level
    return MAIN_TAG_LEVEL.get(keyword, default)


# --- SQL pieces -----------------------------------------------------------------------------

def _glob_pattern(pattern: str) -> str:
    return pattern.replace("[", "[[]")


def _like_pattern(pattern: str) -> str:
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def _sql_condition(column: Any, constraint: Constraint, values: Sequence[str],
                   dialect: str) -> ColumnElement[bool]:
    if constraint.kind == Kind.EQUAL:
        return column == values[0]
    if constraint.kind == Kind.LIST:
        return column.in_(list(values))
    if constraint.kind == Kind.RANGE:
        parts = []
        if constraint.low is not None:
            parts.append(column >= constraint.low)
        if constraint.high is not None:
            parts.append(column <= constraint.high)
        return and_(column.is_not(None), *parts)
    if constraint.kind == Kind.WILDCARD:
        if dialect == "sqlite":
            return column.op("GLOB")(_glob_pattern(values[0]))
        return column.like(_like_pattern(values[0]), escape="\\")
    return true()


@dataclass
class _Compiled:
    where: list[tuple[Level, ColumnElement[bool]]]  # (level of the table read, condition)
    post: list[LeveledConstraint]


def _compile(constraints: Sequence[LeveledConstraint], dialect: str) -> _Compiled:
    compiled = _Compiled([], [])
    for item in constraints:
        constraint = item.constraint
        if constraint.kind == Kind.UNIVERSAL:
            continue
        if constraint.keyword == "ModalitiesInStudy":
            # PS3.4 C.6.2.1.2: a study matches when one of its series has the modality.
            compiled.where.append((Level.SERIES, _sql_condition(
                SERIES.c.modality, constraint, constraint.values, dialect)))
            continue
        column = COLUMNS.get(constraint.keyword)
        if column is None or column.level != item.level:
            compiled.post.append(item)
            continue
        sql_column = TABLE[column.level].c[column.name]
        if column.normalized:
            # normalised column: case-insensitive matches are exact, others a superset
            compiled.where.append((item.level, _sql_condition(
                sql_column, constraint, _normalized_values(constraint), dialect)))
            if constraint.case_sensitive:
                compiled.post.append(item)
        elif constraint.case_sensitive or constraint.kind == Kind.RANGE:
            compiled.where.append((item.level, _sql_condition(
                sql_column, constraint, constraint.values, dialect)))
        else:
            compiled.post.append(item)  # raw column, normalised comparison: in Python
    return compiled


def _normalized_values(constraint: Constraint) -> tuple[str, ...]:
    return tuple(normalize(v) or "" for v in constraint.values)


def _child_exists(query_level: Level, data_level: Level,
                  condition: ColumnElement[bool]) -> ColumnElement[bool]:
    """EXISTS (a descendant at data_level, linked to the query row, meeting condition)."""
    chain = []
    current = data_level
    while current != query_level:
        chain.append(current)
        current = current.parent  # type: ignore[assignment]
    subquery = select(1).select_from(TABLE[chain[0]])
    for lower, upper in zip(chain, chain[1:], strict=False):
        subquery = subquery.join(TABLE[upper], TABLE[lower].c[PARENT_FK[lower]] ==
                                 TABLE[upper].c.pk)
    top = chain[-1]
    subquery = subquery.where(TABLE[top].c[PARENT_FK[top]] == TABLE[query_level].c.pk, condition)
    return exists(subquery)


def _join_up(statement: Select, level: Level, top: Level) -> Select:
    current = level
    while current != top:
        parent = current.parent
        assert parent is not None
        statement = statement.join(TABLE[parent], TABLE[current].c[PARENT_FK[current]] ==
                                   TABLE[parent].c.pk)
        current = parent
    return statement


def _base_select(query: FindQuery, where: list[tuple[Level, ColumnElement[bool]]]) -> Select:
    level = query.level
    table = TABLE[level]
    statement = select(table.c.pk).select_from(table)
    ancestors = [lvl for lvl, _ in where if lvl.depth < level.depth]
    if ancestors:
        statement = _join_up(statement, level, min(ancestors, key=lambda lvl: lvl.depth))
    conditions = [_child_exists(level, lvl, condition) if lvl.depth > level.depth else condition
                  for lvl, condition in where]
    if conditions:
        statement = statement.where(*conditions)
    if query.labels:
        statement = statement.where(_labels_condition(query))
    return statement.order_by(table.c.pk)


def _labels_condition(query: FindQuery) -> ColumnElement[bool]:
    table = TABLE[query.level]

    def has(label: str) -> ColumnElement[bool]:
        return exists(select(1).where(LABELS.c.level == query.level.value,
                                      LABELS.c.resource_pk == table.c.pk,
                                      LABELS.c.label == label))
    mode = query.labels_constraint.lower()
    if mode == "any":
        return or_(*(has(label) for label in query.labels))
    if mode == "none":
        return and_(*(~has(label) for label in query.labels))
    return and_(*(has(label) for label in query.labels))


# --- running a query ----------------------------------------------------------------------

def find_pks(conn: Connection, query: FindQuery) -> list[int]:
    """The pks at ``query.level`` matching every constraint, in index order."""
    compiled = _compile(query.constraints, conn.dialect.name)
    statement = _base_select(query, compiled.where)
    if not compiled.post:
        if query.since:
            statement = statement.offset(query.since)
        if query.limit:
            statement = statement.limit(query.limit)
        return [pk for (pk,) in conn.execute(statement)]
    answer: list[int] = []
    skipped = 0
    checker = _PostFilter(conn, query.level, compiled.post)
    for batch in _batches(conn, statement, 500):
        for pk in checker.accept(batch):
            if skipped < query.since:
                skipped += 1
                continue
            answer.append(pk)
            if query.limit and len(answer) >= query.limit:
                return answer
    return answer


def _batches(conn: Connection, statement: Select, size: int) -> Iterator[list[int]]:
    result = conn.execute(statement)
    while rows := result.fetchmany(size):
        yield [pk for (pk,) in rows]


class _PostFilter:
    """Checks constraints in Python on main tags (any level) or an instance's DICOM JSON."""

    def __init__(self, conn: Connection, level: Level, items: list[LeveledConstraint]) -> None:
        self.conn = conn
        self.level = level
        self.items = items

    def accept(self, pks: list[int]) -> list[int]:
        values = tag_values(self.conn, self.level, pks, [i.constraint.keyword for i in self.items],
                            [i.level for i in self.items])
        return [pk for pk in pks if all(
            _accept(item, values[pk].get(item.constraint.keyword)) for item in self.items)]


def _accept(item: LeveledConstraint, value: Any) -> bool:
    if isinstance(value, list):  # values of several descendants: any may match
        return any(item.constraint.matches(v) for v in value)
    return item.constraint.matches(value)


# --- reading tag values for many resources --------------------------------------------------

def tag_values(conn: Connection, level: Level, pks: Sequence[int], keywords: Sequence[str],
               levels: Sequence[Level] | None = None) -> dict[int, dict[str, Any]]:
    """Values of *keywords* for resources at *level*: main tags of the resource or its
    ancestors, computed tags, or the DICOM JSON of the first instance below."""
    answer: dict[int, dict[str, Any]] = {pk: {} for pk in pks}
    if not pks:
        return answer
    levels = list(levels) if levels is not None else [level_of_keyword(k, level) for k in keywords]
    by_level: dict[Level, list[str]] = {}
    json_keywords: list[str] = []
    computed: list[str] = []
    for keyword, data_level in zip(keywords, levels, strict=True):
        if keyword in COMPUTED_TAGS:
            computed.append(keyword)
        elif keyword in MAIN_TAG_KEYWORDS.get(data_level, ()) and data_level.depth <= level.depth:
            by_level.setdefault(data_level, []).append(keyword)
        elif data_level.depth > level.depth and keyword in MAIN_TAG_KEYWORDS.get(data_level, ()):
            by_level.setdefault(data_level, []).append(keyword)
        else:
            json_keywords.append(keyword)
    for data_level, names in by_level.items():
        for pk, tags in _main_tags(conn, level, pks, data_level).items():
            for name in names:
                if isinstance(tags, list):
                    answer[pk][name] = [t.get(name) for t in tags]
                else:
                    answer[pk][name] = tags.get(name)
    if json_keywords:
        for pk, document in _first_instance_json(conn, level, pks).items():
            for name in json_keywords:
                answer[pk][name] = json_value(document, name)
    for name in computed:
        for pk, value in computed_tag(conn, level, pks, name).items():
            answer[pk][name] = value
    return answer


def _main_tags(conn: Connection, level: Level, pks: Sequence[int],
               data_level: Level) -> dict[int, Any]:
    """Main tags at data_level for each resource: a dict (same level or ancestor) or a
    list of dicts (descendants)."""
    table = TABLE[level]
    if data_level == level:
        return {pk: orjson.loads(tags) for pk, tags in conn.execute(
            select(table.c.pk, table.c.main_tags).where(table.c.pk.in_(list(pks))))}
    if data_level.depth < level.depth:
        statement = _join_up(select(table.c.pk, TABLE[data_level].c.main_tags)
                             .select_from(table), level, data_level)
        return {pk: orjson.loads(tags) for pk, tags in
                conn.execute(statement.where(table.c.pk.in_(list(pks))))}
    chain = []
    current = data_level
    while current != level:
        chain.append(current)
        current = current.parent  # type: ignore[assignment]
    top = chain[-1]
    statement = select(TABLE[top].c[PARENT_FK[top]], TABLE[data_level].c.main_tags) \
        .select_from(TABLE[data_level])
    for lower, upper in zip(chain, chain[1:], strict=False):
        statement = statement.join(TABLE[upper], TABLE[lower].c[PARENT_FK[lower]] ==
                                   TABLE[upper].c.pk)
    answer: dict[int, list[dict[str, str]]] = {pk: [] for pk in pks}
    for parent_pk, tags in conn.execute(statement.where(
            TABLE[top].c[PARENT_FK[top]].in_(list(pks)))):
        answer[parent_pk].append(orjson.loads(tags))
    return answer


def _first_instance_json(conn: Connection, level: Level, pks: Sequence[int]) -> dict[int, Any]:
    """The DICOM JSON of one instance below each resource (Orthanc reads one instance too)."""
    if level == Level.INSTANCE:
        return {pk: orjson.loads(doc) for pk, doc in conn.execute(
            select(INSTANCES.c.pk, INSTANCES.c.dicom_json).where(INSTANCES.c.pk.in_(list(pks))))}
    chain = []
    current = Level.INSTANCE
    while current != level:
        chain.append(current)
        current = current.parent  # type: ignore[assignment]
    top = chain[-1]
    owner = TABLE[top].c[PARENT_FK[top]]
    first = select(owner.label("owner"), func.min(INSTANCES.c.pk).label("instance_pk")) \
        .select_from(INSTANCES)
    for lower, upper in zip(chain, chain[1:], strict=False):
        first = first.join(TABLE[upper], TABLE[lower].c[PARENT_FK[lower]] == TABLE[upper].c.pk)
    first = first.where(owner.in_(list(pks))).group_by(owner).subquery()
    rows = conn.execute(select(first.c.owner, INSTANCES.c.dicom_json)
                        .join(INSTANCES, INSTANCES.c.pk == first.c.instance_pk))
    return {owner_pk: orjson.loads(doc) for owner_pk, doc in rows}


def json_value(document: dict[str, Any], keyword: str) -> str | None:
    """An Orthanc-style string from a DICOM JSON element (multi-values joined by ``\\``)."""
    from pydicom.datadict import tag_for_keyword
    tag = tag_for_keyword(keyword)
    key = f"{tag:08X}" if tag is not None else keyword.replace(",", "").upper()
    element = document.get(key)
    if element is None:
        return None
    values = element.get("Value")
    if values is None:
        return ""
    parts = []
    for value in values:
        if isinstance(value, dict):
            if "Alphabetic" in value or "Ideographic" in value or "Phonetic" in value:
                groups = [value.get(g, "") for g in ("Alphabetic", "Ideographic", "Phonetic")]
                while groups and not groups[-1]:
                    groups.pop()
                parts.append("=".join(groups))
            else:
                return None  # a sequence: not comparable as a string
        elif isinstance(value, float) and value.is_integer():
            parts.append(str(int(value)))
        else:
            parts.append(str(value))
    return "\\".join(parts)


# --- computed tags --------------------------------------------------------------------------

def computed_tag(conn: Connection, level: Level, pks: Sequence[int], name: str) -> dict[int, str]:
    """ModalitiesInStudy, SOPClassesInStudy and the NumberOf*Related* counters."""
    if not pks:
        return {}
    handler = _COMPUTED.get(name)
    if handler is None or COMPUTED_TAGS[name] != level:
        return {}
    return handler(conn, list(pks))


def _distinct_join(conn: Connection, pks: list[int], column: Any, joins: Callable[[Select], Select],
                   owner: Any) -> dict[int, str]:
    values: dict[int, set[str]] = {pk: set() for pk in pks}
    statement = joins(select(owner, column).distinct()).where(owner.in_(pks))
    for pk, value in conn.execute(statement):
        if value:
            values[pk].add(value)
    return {pk: "\\".join(sorted(v)) for pk, v in values.items()}


def _count(conn: Connection, pks: list[int], statement: Select, owner: Any) -> dict[int, str]:
    counts = {pk: 0 for pk in pks}
    for pk, count in conn.execute(statement.where(owner.in_(pks)).group_by(owner)):
        counts[pk] = count
    return {pk: str(c) for pk, c in counts.items()}


def _modalities(conn: Connection, pks: list[int]) -> dict[int, str]:
    return _distinct_join(conn, pks, SERIES.c.modality, lambda s: s.select_from(SERIES),
                          SERIES.c.study_pk)


def _sop_classes(conn: Connection, pks: list[int]) -> dict[int, str]:
    return _distinct_join(conn, pks, INSTANCES.c.sop_class_uid,
                          lambda s: s.select_from(INSTANCES).join(
                              SERIES, INSTANCES.c.series_pk == SERIES.c.pk), SERIES.c.study_pk)


_COMPUTED: dict[str, Callable[[Connection, list[int]], dict[int, str]]] = {
    "ModalitiesInStudy": _modalities,
    "SOPClassesInStudy": _sop_classes,
    "NumberOfStudyRelatedSeries": lambda conn, pks: _count(
        conn, pks, select(SERIES.c.study_pk, func.count()), SERIES.c.study_pk),
    "NumberOfStudyRelatedInstances": lambda conn, pks: _count(
        conn, pks, select(SERIES.c.study_pk, func.count()).select_from(INSTANCES).join(
            SERIES, INSTANCES.c.series_pk == SERIES.c.pk), SERIES.c.study_pk),
    "NumberOfSeriesRelatedInstances": lambda conn, pks: _count(
        conn, pks, select(INSTANCES.c.series_pk, func.count()), INSTANCES.c.series_pk),
    "NumberOfPatientRelatedStudies": lambda conn, pks: _count(
        conn, pks, select(STUDIES.c.patient_pk, func.count()), STUDIES.c.patient_pk),
    "NumberOfPatientRelatedSeries": lambda conn, pks: _count(
        conn, pks, select(STUDIES.c.patient_pk, func.count()).select_from(SERIES).join(
            STUDIES, SERIES.c.study_pk == STUDIES.c.pk), STUDIES.c.patient_pk),
    "NumberOfPatientRelatedInstances": lambda conn, pks: _count(
        conn, pks, select(STUDIES.c.patient_pk, func.count()).select_from(INSTANCES).join(
            SERIES, INSTANCES.c.series_pk == SERIES.c.pk).join(
            STUDIES, SERIES.c.study_pk == STUDIES.c.pk), STUDIES.c.patient_pk),
}

