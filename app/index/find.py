"""The query compiler: matching constraints -> one SQL statement per /tools/find.

Constraints on tags with a typed column become SQL (GLOB on SQLite, LIKE on PostgreSQL,
both able to use B-tree indexes for prefixes); constraints on other tags are checked in
Python on the stored main tags or DICOM JSON (the "post-filters"). A constraint whose SQL
is only a superset of the answer (a ``*_norm`` column, a non-ASCII case-insensitive
value) is re-checked in Python with the reference matcher (``app.dicom.matching``).

Two query modes mirror Orthanc's two lookups:

* DICOM (C-FIND, C-MOVE keys): a key of a lower level than the query matches when one
  descendant matches (``EXISTS``); a tag that is no main tag is matched on the DICOM
  JSON of the resource's first instance, as Orthanc's C-FIND SCP does.
* REST (``FindQuery.rest``, ``/tools/find``), like Orthanc 1.10's
  ``ServerContext::Apply``: tags of the query level and its parents are matched on the
  resource's main tags; patient tags of a study, series or instance are the copy the
  study took when it was created (Orthanc's study-level patient tags); a main tag of a
  lower level never matches, unless the query also holds a tag that is no main tag, in
  which case both are read from the DICOM JSON of the resource's first instance
  (Orthanc's "DICOM-as-JSON" path); at study level, ``ModalitiesInStudy`` turns the
  query into a series query on ``Modality`` whose studies are the answer; and
  LimitFindResults / LimitFindInstances cap the candidates read from the index at the
  limit plus one, before Since and Limit (Orthanc's ``lookupLimit``).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    String,
    and_,
    cast,
    exists,
    func,
    or_,
    select,
    true,
)

from app.dicom.levels import Level
from app.dicom.matching import Constraint, Kind
from app.dicom.tag_values import TagValue, from_dicom_json
from app.dicom.tags import MAIN_TAG_KEYWORDS
from app.dicom.text import normalize
from app.index.repository import (
    INSTANCES,
    LABELS,
    METADATA,
    PARENT_FK,
    PATIENTS,
    SERIES,
    STUDIES,
    STUDY_PATIENT_TAGS,
    TABLE,
)


@dataclass(frozen=True)
class Column:
    level: Level
    name: str
    normalized: bool = False  # holds normalize(value): matches are re-checked
    raw: str | None = None  # the exact value, for case-sensitive matching


COLUMNS: dict[str, Column] = {
    "PatientID": Column(Level.PATIENT, "patient_id"),
    "PatientName": Column(Level.PATIENT, "patient_name_norm", normalized=True,
                          raw="patient_name"),
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

# Case variants of a case-insensitive ASCII value looked up with an index (IN list) up to
# this many; beyond, ``upper(column)`` is compared (a scan of that table).
MAX_CASE_VARIANTS = 64


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
    rest: bool = False  # Orthanc's /tools/find semantics (see the module docstring)
    candidate_cap: int = 0  # REST: LimitFindResults / LimitFindInstances (0: none)


def level_of_keyword(keyword: str, default: Level) -> Level:
    if keyword in COMPUTED_TAGS:
        return COMPUTED_TAGS[keyword]
    if keyword in COLUMNS:
        return COLUMNS[keyword].level
    return MAIN_TAG_LEVEL.get(keyword, default)


def is_main_tag(keyword: str) -> bool:
    return keyword in MAIN_TAG_LEVEL


# --- SQL pieces -----------------------------------------------------------------------------

def _glob_escape(text: str) -> str:
    return "".join("[" + c + "]" if c in "[]*?" else c for c in text)


def _glob_pattern(pattern: str) -> str:
    """A wildcard pattern as GLOB: * and ? stay, [ and ] are literal."""
    return "".join("[" + c + "]" if c in "[]" else c for c in pattern)


def _like_pattern(pattern: str) -> str:
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def _wildcard(column: Any, pattern: str, dialect: str) -> ColumnElement[bool]:
    if dialect == "sqlite":
        return column.op("GLOB")(_glob_pattern(pattern))
    return column.like(_like_pattern(pattern), escape="\\")


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
        return _wildcard(column, values[0], dialect)
    return true()


def _caseless(text: str) -> bool:
    """True when case-insensitive comparison of *text* is plain equality (no letters)."""
    return text.isascii() and text.upper() == text.lower()


def _case_variants(text: str) -> list[str] | None:
    letters = sum(1 for c in text if c.upper() != c.lower())
    if not text.isascii() or 2 ** letters > MAX_CASE_VARIANTS:
        return None
    choices = [(c.lower(), c.upper()) if c.upper() != c.lower() else (c,) for c in text]
    return ["".join(p) for p in itertools.product(*choices)]


def _non_ascii_as_any(text: str, any_char: str = "?") -> str:
    """Upper-case ASCII, and any single character for non-ASCII ones (their upper case
    differs between SQLite, PostgreSQL and Orthanc): a superset pattern."""
    return "".join(c.upper() if c.isascii() else any_char for c in text)


def _raw_condition(column: Any, constraint: Constraint,
                   dialect: str) -> tuple[ColumnElement[bool], bool]:
    """(SQL condition, exact) for a column holding the value as stored."""
    values = constraint.values
    if constraint.case_sensitive or constraint.kind == Kind.RANGE and all(
            _caseless(b) for b in (constraint.low or "", constraint.high or "")):
        # Ranges: bounds without letters (dates, times) compare the same in any case,
        # for stored values without letters (valid DA, TM, DT).
        return _sql_condition(column, constraint, values, dialect), True
    if constraint.kind in (Kind.EQUAL, Kind.LIST):
        if all(_caseless(v) for v in values):
            return _sql_condition(column, constraint, values, dialect), True
        variants = [_case_variants(v) for v in values]
        if all(v is not None for v in variants):
            flat = [x for v in variants for x in v]  # type: ignore[union-attr]
            if len(flat) <= MAX_CASE_VARIANTS:
                return column.in_(flat), True
        upper = func.upper(column)
        if all(v.isascii() for v in values):
            return upper.in_([v.upper() for v in values]), True
        return or_(*(_literal_superset(upper, v, dialect) for v in values)), False
    if constraint.kind == Kind.WILDCARD:
        pattern = values[0]
        return (_wildcard(func.upper(column), _non_ascii_as_any(pattern), dialect),
                pattern.isascii())
    return _sql_condition(column, constraint, values, dialect), False


def _literal_superset(upper: Any, value: str, dialect: str) -> ColumnElement[bool]:
    """``upper(column)`` against a literal value with any character for non-ASCII ones."""
    if dialect == "sqlite":
        pattern = "".join("[" + c + "]" if c in "[*?" else c.upper() if c.isascii() else "?"
                          for c in value)
        return upper.op("GLOB")(pattern)
    pattern = "".join("\\" + c if c in "\\%_" else c.upper() if c.isascii() else "_"
                      for c in value)
    return upper.like(pattern, escape="\\")


def _normalized_condition(column: Any, constraint: Constraint,
                          dialect: str) -> ColumnElement[bool]:
    """A superset condition on a ``*_norm`` column (upper case, accents folded)."""
    values = tuple(normalize(v) or "" for v in constraint.values)
    if constraint.kind == Kind.WILDCARD:
        # Folding may change lengths (ß -> SS, combining marks vanish): ? becomes *.
        values = (values[0].replace("?", "*"),)
    return _sql_condition(column, constraint, values, dialect)


def _column_condition(constraint: Constraint, dialect: str,
                      table_level: Level) -> tuple[ColumnElement[bool], bool] | None:
    """(SQL condition, exact) for a keyword with a typed column, else None."""
    column = COLUMNS.get(constraint.keyword)
    if column is None or column.level != table_level:
        return None
    table = TABLE[column.level]
    if column.normalized:
        if constraint.case_sensitive and column.raw is not None:
            return _sql_condition(table.c[column.raw], constraint, constraint.values,
                                  dialect), True
        return _normalized_condition(table.c[column.name], constraint, dialect), False
    return _raw_condition(table.c[column.name], constraint, dialect)


@dataclass
class _PostItem:
    """A constraint checked in Python: on main tags ("main"), on the DICOM JSON of the
    first instance ("sample"), or on the main tags of every descendant ("children")."""

    item: LeveledConstraint
    source: str


@dataclass
class _Compiled:
    where: list[tuple[Level, ColumnElement[bool]]]  # (level of the table read, condition)
    post: list[_PostItem]
    impossible: bool = False  # REST: a lower-level main tag without the JSON path


def _compile(conn: Connection, query: FindQuery) -> _Compiled:
    dialect = conn.dialect.name
    compiled = _Compiled([], [])
    level = query.level
    sample_path = query.rest and any(
        not is_main_tag(i.constraint.keyword) for i in query.constraints
        if i.constraint.kind != Kind.UNIVERSAL)
    divergent: list[int] | None = None
    for item in query.constraints:
        constraint = item.constraint
        if constraint.kind == Kind.UNIVERSAL:
            continue
        keyword = constraint.keyword
        if not query.rest and keyword == "ModalitiesInStudy":
            # PS3.4 C.6.2.1.2: a study matches when one of its series has the modality.
            condition, exact = _raw_condition(SERIES.c.modality, constraint, dialect)
            compiled.where.append((Level.SERIES, condition))
            if not exact:
                compiled.post.append(_PostItem(LeveledConstraint(
                    constraint, Level.SERIES), "modalities"))
            continue
        if not is_main_tag(keyword) and (query.rest or keyword not in COLUMNS):
            # Orthanc matches a tag that is no main tag on the DICOM JSON of the first
            # instance (C-FIND and /tools/find alike); DICOM queries keep the indexed
            # columns Pharos has beyond the main tags (SOPClassUID).
            compiled.post.append(_PostItem(item, "sample"))
            continue
        below = item.level.depth > level.depth
        if query.rest and below and not sample_path:
            compiled.impossible = True  # Orthanc: no main tags of lower levels
            return compiled
        sql = _column_condition(constraint, dialect, item.level)
        if sql is not None:
            condition, exact = sql
            if (item.level == Level.PATIENT and level != Level.PATIENT
                    and keyword != "PatientID"):
                # Patient tags as the study keeps them: the patient's, but for studies
                # whose copy differs from the patient's tags (rare: re-checked). The
                # patient level is joined through the studies, so both tables are there.
                if divergent is None:
                    divergent = _divergent_studies(conn)
                if divergent:
                    condition = or_(condition, STUDIES.c.pk.in_(divergent))
                    exact = False
                compiled.where.append((Level.PATIENT, condition))
            else:
                compiled.where.append((item.level, condition))
            if not exact:
                compiled.post.append(_PostItem(item, "children" if below and not query.rest
                                               else "main"))
        else:
            compiled.post.append(_PostItem(item, "children" if below and not query.rest
                                           else "main"))
        if query.rest and below:
            # Orthanc's DICOM-as-JSON path: the first instance decides.
            compiled.post.append(_PostItem(item, "sample"))
    return compiled


def _divergent_studies(conn: Connection) -> list[int]:
    """Studies whose copy of the patient tags differs from their patient's main tags."""
    if conn.dialect.name == "postgresql":
        patient_tags: Any = func.convert_from(PATIENTS.c.main_tags, "UTF8")
    else:
        patient_tags = cast(PATIENTS.c.main_tags, String)
    statement = (select(STUDIES.c.pk).select_from(METADATA)
                 .join(STUDIES, STUDIES.c.pk == METADATA.c.resource_pk)
                 .join(PATIENTS, PATIENTS.c.pk == STUDIES.c.patient_pk)
                 .where(METADATA.c.level == Level.STUDY.value,
                        METADATA.c.name == STUDY_PATIENT_TAGS,
                        METADATA.c.value != patient_tags))
    return [pk for (pk,) in conn.execute(statement)]


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
    statement = select(table.c.pk, table.c.public_id).select_from(table)
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
    return [pk for pk, _ in find_matches(conn, query)]


def find_matches(conn: Connection, query: FindQuery) -> list[tuple[int, str]]:
    """(pk, public ID) of the matches: ID-only answers need no second look-up."""
    if query.rest and query.level == Level.STUDY and any(
            i.constraint.keyword == "ModalitiesInStudy" and i.constraint.kind != Kind.UNIVERSAL
            for i in query.constraints):
        pks = _find_by_series_modality(conn, query)
        table = TABLE[query.level]
        ids: dict[int, str] = {}
        for start in range(0, len(pks), 500):
            ids.update(conn.execute(select(table.c.pk, table.c.public_id).where(
                table.c.pk.in_(pks[start:start + 500]))).all())
        return [(pk, ids[pk]) for pk in pks]
    compiled = _compile(conn, query)
    if compiled.impossible:
        return []
    statement = _base_select(query, compiled.where)
    if not compiled.post and not query.candidate_cap:
        if query.since:
            statement = statement.offset(query.since)
        if query.limit:
            statement = statement.limit(query.limit)
        return [(pk, public_id) for pk, public_id in conn.execute(statement)]
    answer: list[tuple[int, str]] = []
    skipped = 0
    candidates = 0
    checker = _PostFilter(conn, query.level, compiled.post)
    for batch in _batches(conn, statement, 500):
        public_ids = dict(batch)
        for pk, is_candidate, is_match in checker.accept([pk for pk, _ in batch]):
            if not is_candidate:
                continue
            candidates += 1
            if query.candidate_cap and candidates > query.candidate_cap + 1:
                return answer
            if not is_match:
                continue
            if skipped < query.since:
                skipped += 1
                continue
            answer.append((pk, public_ids[pk]))
            if query.limit and len(answer) >= query.limit:
                return answer
    return answer


def _find_by_series_modality(conn: Connection, query: FindQuery) -> list[int]:
    """Orthanc 1.10 answers ``ModalitiesInStudy`` at study level with a series query on
    ``Modality`` (same other constraints): the studies of the matching series."""
    constraints = []
    for item in query.constraints:
        constraint = item.constraint
        if constraint.keyword == "ModalitiesInStudy":
            constraint = Constraint(0x00080060, "Modality", constraint.kind, constraint.values,
                                    constraint.low, constraint.high, constraint.case_sensitive)
            item = LeveledConstraint(constraint, Level.SERIES)
        constraints.append(item)
    series_query = FindQuery(Level.SERIES, constraints, rest=True,
                             candidate_cap=query.candidate_cap)
    series_pks = find_pks(conn, series_query)
    study_pks: set[int] = set()
    for start in range(0, len(series_pks), 500):
        study_pks.update(pk for (pk,) in conn.execute(
            select(SERIES.c.study_pk).where(SERIES.c.pk.in_(series_pks[start:start + 500]))))
    ordered = sorted(study_pks)
    if query.labels and ordered:
        kept: set[int] = set()
        condition = _labels_condition(query)
        for start in range(0, len(ordered), 500):
            kept.update(pk for (pk,) in conn.execute(select(STUDIES.c.pk).where(
                STUDIES.c.pk.in_(ordered[start:start + 500]), condition)))
        ordered = [pk for pk in ordered if pk in kept]
    ordered = ordered[query.since:]
    return ordered[:query.limit] if query.limit else ordered


def _batches(conn: Connection, statement: Select,
             size: int) -> Iterator[list[tuple[int, str]]]:
    result = conn.execute(statement)
    while rows := result.fetchmany(size):
        yield [(pk, public_id) for pk, public_id in rows]


class _PostFilter:
    """Checks constraints in Python: main tags (candidates, Orthanc's index stage), then
    the first instance's DICOM JSON (Orthanc's match on "DICOM-as-JSON")."""

    def __init__(self, conn: Connection, level: Level, items: list[_PostItem]) -> None:
        self.conn = conn
        self.level = level
        self.index_items = [p for p in items if p.source != "sample"]
        self.sample_items = [p for p in items if p.source == "sample"]

    def accept(self, pks: list[int]) -> list[tuple[int, bool, bool]]:
        values = self._values(pks, self.index_items)
        candidates = [pk for pk in pks if all(
            _accept(p.item, values[pk].get(id(p))) for p in self.index_items)]
        samples = self._values(candidates, self.sample_items)
        kept = {pk for pk in candidates if all(
            p.item.constraint.matches(samples[pk].get(id(p))) for p in self.sample_items)}
        chosen = set(candidates)
        return [(pk, pk in chosen, pk in kept) for pk in pks]

    def _values(self, pks: list[int], items: list[_PostItem]) -> dict[int, dict[int, Any]]:
        answer: dict[int, dict[int, Any]] = {pk: {} for pk in pks}
        if not pks or not items:
            return answer
        sample: dict[int, Any] | None = None
        for post in items:
            keyword = post.item.constraint.keyword
            if post.source == "sample":
                if sample is None:
                    sample = first_instance_json(self.conn, self.level, pks)
                for pk in pks:
                    document = sample.get(pk)
                    answer[pk][id(post)] = (json_value(document, keyword)
                                            if document is not None else None)
            elif post.source == "modalities":
                for pk, value in _modalities(self.conn, pks).items():
                    answer[pk][id(post)] = value.split("\\") if value else []
            else:
                data_level = post.item.level
                tags_by_pk = (_study_patient_tags(self.conn, self.level, pks)
                              if data_level == Level.PATIENT and self.level != Level.PATIENT
                              else _main_tags(self.conn, self.level, pks, data_level))
                for pk, tags in tags_by_pk.items():
                    answer[pk][id(post)] = ([t.get(keyword) for t in tags]
                                            if isinstance(tags, list) else tags.get(keyword))
        return answer


def _accept(item: LeveledConstraint, value: Any) -> bool:
    if isinstance(value, list):  # values of several descendants: any may match
        return any(item.constraint.matches(v) for v in value)
    return item.constraint.matches(value)


def _study_patient_tags(conn: Connection, level: Level, pks: Sequence[int]) -> dict[int, Any]:
    """For resources below the patient level: the patient tags their study keeps."""
    table = TABLE[level]
    statement = _join_up(select(table.c.pk, STUDIES.c.pk, PATIENTS.c.main_tags)
                         .select_from(table), level, Level.PATIENT) \
        if level != Level.STUDY else select(STUDIES.c.pk, STUDIES.c.pk, PATIENTS.c.main_tags) \
        .join(PATIENTS, PATIENTS.c.pk == STUDIES.c.patient_pk)
    rows = conn.execute(statement.where(table.c.pk.in_(list(pks)))).all()
    study_pks = {study_pk for _, study_pk, _ in rows}
    copies = {pk: orjson.loads(value) for pk, value in conn.execute(
        select(METADATA.c.resource_pk, METADATA.c.value).where(
            METADATA.c.level == Level.STUDY.value, METADATA.c.name == STUDY_PATIENT_TAGS,
            METADATA.c.resource_pk.in_(list(study_pks))))}
    return {pk: copies[study_pk] if study_pk in copies else orjson.loads(tags)
            for pk, study_pk, tags in rows}


# --- /tools/lookup ---------------------------------------------------------------------------

IDENTIFIER_COLUMNS = ((Level.PATIENT, "PatientID"), (Level.STUDY, "StudyInstanceUID"),
                      (Level.SERIES, "SeriesInstanceUID"), (Level.INSTANCE, "SOPInstanceUID"))


def lookup_identifier(conn: Connection, value: str) -> list[tuple[Level, str]]:
    """Resources whose identifier (PatientID, Study/Series/SOP Instance UID) is *value*,
    ignoring case: Orthanc keeps identifiers upper-cased (``NormalizeIdentifier``) and
    looks them up so. Indexed: case variants of the value, not ``upper(column)``."""
    answer: list[tuple[Level, str]] = []
    for level, keyword in IDENTIFIER_COLUMNS:
        constraint = Constraint(0, keyword, Kind.EQUAL, (value,), case_sensitive=False)
        table = TABLE[level]
        condition, exact = _raw_condition(table.c[COLUMNS[keyword].name], constraint,
                                          conn.dialect.name)
        rows = conn.execute(select(table.c.public_id, table.c[COLUMNS[keyword].name])
                            .where(condition).order_by(table.c.pk))
        answer.extend((level, public_id) for public_id, stored in rows
                      if exact or constraint.matches(stored))
    return answer


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
        for pk, document in first_instance_json(conn, level, pks).items():
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


def first_instance_json(conn: Connection, level: Level, pks: Sequence[int]) -> dict[int, Any]:
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


# --- RequestedTags ---------------------------------------------------------------------------

# Computed tags answered as RequestedTags, at the level each is computed for (Orthanc's
# ``ComputeTags``: asked at another level, they are left out).
REQUESTED_COMPUTED_TAGS = {**COMPUTED_TAGS, "InstanceAvailability": Level.INSTANCE}


def requested_tag_values(conn: Connection, level: Level, rows: Sequence[Any],
                         tags: Sequence[tuple[int, str]]) -> dict[int, dict[int, TagValue]]:
    """Orthanc's ``RequestedTags`` (1.11+) of resources at *level*, by resource pk.

    As ``ServerContext::ExpandResource``: a main tag of the level or of an ancestor comes
    from the index (patient tags of lower levels: the copy their study keeps), and is
    left out when the resource has none; a computed tag is computed when asked at its own
    level; any other tag (a main tag of a lower level included) comes from the DICOM JSON
    of the resource's first instance, sequences included, and is left out when absent.
    """
    answer: dict[int, dict[int, TagValue]] = {row.pk: {} for row in rows}
    pks = [row.pk for row in rows]
    if not pks:
        return answer
    by_level: dict[Level, list[tuple[int, str]]] = {}
    from_file: list[tuple[int, str]] = []
    for tag, keyword in tags:
        if keyword in REQUESTED_COMPUTED_TAGS:
            if REQUESTED_COMPUTED_TAGS[keyword] == level:
                for pk, value in _requested_computed(conn, level, pks, keyword).items():
                    if value is not None:
                        answer[pk][tag] = value
            continue
        source = _main_tag_source(level, keyword)
        if source is None:
            from_file.append((tag, keyword))
        else:
            by_level.setdefault(source, []).append((tag, keyword))
    for source, wanted in by_level.items():
        if source == level:
            main = {row.pk: orjson.loads(row.main_tags) for row in rows}
        elif source == Level.PATIENT:
            main = _study_patient_tags(conn, level, pks)
        else:
            main = _main_tags(conn, level, pks, source)
        for pk, values in main.items():
            for tag, keyword in wanted:
                if keyword in values:
                    answer[pk][tag] = values[keyword]
    if from_file:
        for pk, document in first_instance_json(conn, level, pks).items():
            for tag, _ in from_file:
                element = document.get(f"{tag:08X}")
                if element is not None:
                    answer[pk][tag] = from_dicom_json(element)
    return answer


def _main_tag_source(level: Level, keyword: str) -> Level | None:
    """The level (this one or an ancestor) whose main tags hold *keyword*, if any."""
    current: Level | None = level
    while current is not None:
        if keyword in MAIN_TAG_KEYWORDS[current]:
            return current
        current = current.parent
    return None


def _requested_computed(conn: Connection, level: Level, pks: list[int],
                        keyword: str) -> dict[int, str | None]:
    if keyword == "InstanceAvailability":  # every stored instance is on line
        return dict.fromkeys(pks, "ONLINE")
    values: dict[int, str | None] = dict(computed_tag(conn, level, pks, keyword))
    if keyword == "SOPClassesInStudy":  # Orthanc leaves it out when there is none
        values = {pk: value or None for pk, value in values.items()}
    return values


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

