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
  LimitFindResults / LimitFindInstances (``candidate_cap``) cap the candidates read from
  the index when some constraint is checked on the DICOM JSON, as Orthanc 1.12.5+ caps
  what its database returns before it reads files (the service turns the cap into a
  plain limit when everything is answered by the index).

Orthanc 1.12.5's extended find adds, for both modes: ``OrderBy`` keys (main tags of the
level or its ancestors, metadata; compared as text, integers or floats; missing values
last), always followed by the pk, so that pages are stable and resources stored later
come after the ones stored earlier among equal keys; a parent resource
(``ParentPatient``/``ParentStudy``/``ParentSeries``); ``MetadataQuery`` constraints;
and counting (``count_matches``). Ordering keys with an index (see migration 0012) let
``OrderBy`` + ``Limit`` read a few index entries instead of sorting every row.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Float,
    Integer,
    Select,
    String,
    Text,
    and_,
    case,
    cast,
    exists,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB

from app.dicom.levels import Level
from app.dicom.matching import Constraint, Kind
from app.dicom.tag_values import TagValue, from_dicom_json
from app.dicom.tags import MAIN_TAG_KEYWORDS, main_tags_signature
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


@dataclass(frozen=True)
class OrderKey:
    """One ``OrderBy`` item (Orthanc 1.12.5): a main tag keyword (``kind`` "tag") or a
    metadata name as stored (``kind`` "metadata"), compared as ``cast`` "string", "int"
    or "float"."""

    kind: str
    key: str
    cast: str = "string"
    descending: bool = False


@dataclass(frozen=True)
class MetadataConstraint:
    """One ``MetadataQuery`` item: a constraint (equal, list or wildcard) on the value of
    a metadata of the resource (a resource without that metadata never matches)."""

    name: str
    constraint: Constraint


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
    order_by: list[OrderKey] = field(default_factory=list)
    parent: tuple[Level, int] | None = None  # (level, pk): descendants of that resource
    metadata: list[MetadataConstraint] = field(default_factory=list)
    # LabelsConstraint "None" with no label: resources without any label (Orthanc 1.12.11).
    unlabelled: bool = False


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


def _wildcard(column: ColumnElement[Any], pattern: str, dialect: str) -> ColumnElement[bool]:
    if dialect == "sqlite":
        return column.op("GLOB")(_glob_pattern(pattern))
    return column.like(_like_pattern(pattern), escape="\\")


def _sql_condition(column: ColumnElement[Any], constraint: Constraint, values: Sequence[str],
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


def _literal_superset(upper: ColumnElement[Any], value: str, dialect: str) -> ColumnElement[bool]:
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
    first instance ("sample"), on the main tags of every descendant ("children"), on the
    modalities of a study's series ("modalities") or on a metadata ("metadata")."""

    item: LeveledConstraint
    source: str
    metadata: str = ""  # source "metadata": the metadata name


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
        not is_main_tag(i.constraint.keyword) and not _series_modality(query, i)
        for i in query.constraints if i.constraint.kind != Kind.UNIVERSAL)
    divergent: list[int] | None = None
    for item in query.constraints:
        constraint = item.constraint
        if constraint.kind == Kind.UNIVERSAL:
            continue
        keyword = constraint.keyword
        if _series_modality(query, item):
            # PS3.4 C.6.2.1.2: a study matches when one of its series has the modality
            # (Orthanc 1.12.6+ answers /tools/find so too: a "child exists" query).
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


def _series_modality(query: FindQuery, item: LeveledConstraint) -> bool:
    """ModalitiesInStudy: a condition on the series' Modality, but in a REST query only
    at study level (elsewhere Orthanc reads it from the DICOM JSON, where it is absent)."""
    return item.constraint.keyword == "ModalitiesInStudy" and (
        not query.rest or query.level == Level.STUDY)


def needs_storage(query: FindQuery) -> bool:
    """Orthanc 1.12.5's "cannot be fully performed in the database": a constraint on a tag
    that is no main tag (computed tags included, but ModalitiesInStudy at study level),
    or a case-sensitive constraint on one of the tags Orthanc's index keeps upper-cased
    (``DicomIdentifiers``). Orthanc then refuses ``Since`` and counting."""
    for item in query.constraints:
        constraint = item.constraint
        if constraint.kind == Kind.UNIVERSAL or _series_modality(query, item):
            continue
        if not is_main_tag(constraint.keyword):
            return True
        if constraint.case_sensitive and constraint.keyword in ORTHANC_IDENTIFIERS:
            return True
    return False


# Orthanc's DicomIdentifiers (ServerToolbox.cpp): the tags its index keeps normalized.
ORTHANC_IDENTIFIERS = {"PatientID", "PatientName", "PatientBirthDate", "StudyInstanceUID",
                       "AccessionNumber", "StudyDescription", "StudyDate",
                       "SeriesInstanceUID", "SOPInstanceUID"}


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


def _join_up(statement: Select[*tuple[Any, ...]], level: Level, top: Level) -> Select[*tuple[Any, ...]]:
    current = level
    while current != top:
        parent = current.parent
        assert parent is not None
        statement = statement.join(TABLE[parent], TABLE[current].c[PARENT_FK[current]] ==
                                   TABLE[parent].c.pk)
        current = parent
    return statement


def _base_select(conn: Connection, query: FindQuery,
                 where: list[tuple[Level, ColumnElement[bool]]]) -> Select[*tuple[Any, ...]]:
    """``SELECT pk, public_id`` of the query level with every SQL condition, the joins to
    the ancestors they (and the ordering, and the parent) read, and the order."""
    level = query.level
    table = TABLE[level]
    dialect = conn.dialect.name
    orders = [_order_source(key, level, dialect) for key in query.order_by]
    needed = [lvl for lvl, _ in where if lvl.depth < level.depth]
    needed += [source.level for source in orders if source.level.depth < level.depth]
    parent_condition = None
    if query.parent is not None:
        parent_condition, joined = _parent_condition(level, *query.parent)
        if joined is not None:
            needed.append(joined)
    statement = select(table.c.pk, table.c.public_id).select_from(table)
    if needed:
        statement = _join_up(statement, level, min(needed, key=lambda lvl: lvl.depth))
    for source in orders:
        if source.outer_join is not None:
            statement = statement.outerjoin(*source.outer_join)
    conditions = [_child_exists(level, lvl, condition) if lvl.depth > level.depth else condition
                  for lvl, condition in where]
    if parent_condition is not None:
        conditions.append(parent_condition)
    conditions += [_metadata_condition(level, item, dialect)[0] for item in query.metadata]
    if conditions:
        statement = statement.where(*conditions)
    if query.labels:
        statement = statement.where(_labels_condition(query))
    elif query.unlabelled:
        statement = statement.where(~exists(select(1).where(
            LABELS.c.level == level.value, LABELS.c.resource_pk == table.c.pk)))
    order_by: list[Any] = []
    for key, source in zip(query.order_by, orders, strict=True):
        if source.constant:
            continue
        expression = _cast(source.expression, key.cast, source.kind, dialect)
        ordered = expression.desc() if key.descending else expression.asc()
        # Missing values come last in both directions, as in Orthanc; a column that is
        # never NULL is left without NULLS LAST, so that PostgreSQL can walk its index
        # backwards.
        order_by.append(ordered if source.not_null else ordered.nulls_last())
    return statement.order_by(*order_by, table.c.pk)


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


def _parent_condition(level: Level, parent: Level,
                      parent_pk: int) -> tuple[ColumnElement[bool] | None, Level | None]:
    """(condition, level to join up to) keeping the descendants of one resource. A parent
    below the query level is ignored, as Orthanc does."""
    if parent == level:
        return TABLE[level].c.pk == parent_pk, None
    if parent.depth > level.depth:
        return None, None
    child = parent.child
    assert child is not None
    return TABLE[child].c[PARENT_FK[child]] == parent_pk, child


# --- ordering and metadata ----------------------------------------------------------------

# Typed columns that order a main tag as Orthanc's index does: its identifiers
# (DicomIdentifiers) in their normalized form, other tags as stored.
SORT_COLUMNS: dict[str, tuple[Level, str]] = {
    "PatientID": (Level.PATIENT, "patient_id"),
    "PatientName": (Level.PATIENT, "patient_name_norm"),
    "PatientBirthDate": (Level.PATIENT, "birth_date"),
    "PatientSex": (Level.PATIENT, "sex"),
    "StudyInstanceUID": (Level.STUDY, "study_uid"),
    "StudyDate": (Level.STUDY, "study_date"),
    "StudyTime": (Level.STUDY, "study_time"),
    "AccessionNumber": (Level.STUDY, "accession"),
    "StudyDescription": (Level.STUDY, "description_norm"),
    "SeriesInstanceUID": (Level.SERIES, "series_uid"),
    "Modality": (Level.SERIES, "modality"),
    "SeriesNumber": (Level.SERIES, "series_number"),
    "SOPInstanceUID": (Level.INSTANCE, "sop_uid"),
    "InstanceNumber": (Level.INSTANCE, "instance_number"),
}

# Orthanc's automatic metadata that Pharos keeps in columns: (level, column).
METADATA_COLUMNS: dict[str, tuple[tuple[Level, ...], str]] = {
    "LastUpdate": ((Level.PATIENT, Level.STUDY, Level.SERIES), "last_update"),
    "ExpectedNumberOfInstances": ((Level.SERIES,), "expected_instances"),
    "IndexInSeries": ((Level.INSTANCE,), "index_in_series"),
    "ReceptionDate": ((Level.INSTANCE,), "received_at"),
    "RemoteAET": ((Level.INSTANCE,), "remote_aet"),
    "Origin": ((Level.INSTANCE,), "origin"),
    "TransferSyntax": ((Level.INSTANCE,), "transfer_syntax"),
    "SopClassUid": ((Level.INSTANCE,), "sop_class_uid"),
    "RemoteIP": ((Level.INSTANCE,), "remote_ip"),
    "CalledAET": ((Level.INSTANCE,), "called_aet"),
    "HttpUsername": ((Level.INSTANCE,), "http_username"),
}
_NUMERIC_COLUMNS = {"expected_instances", "index_in_series"}
_OPTIONAL_TEXT_COLUMNS = {"remote_ip", "called_aet"}  # "" is "no such metadata"
_NOT_NULL_COLUMNS = {"last_update", "received_at", "origin", "transfer_syntax",
                     "sop_class_uid", "public_id"}

# PostgreSQL refuses to cast a text that is no number: only numbers are cast (others are
# missing values). SQLite's CAST reads a leading number (0 for none), as Orthanc's does.
_PG_INTEGER = r"^\s*[-+]?[0-9]+\s*$"
_PG_FLOAT = r"^\s*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?\s*$"


@dataclass
class _OrderSource:
    expression: Any
    level: Level  # the table the expression reads (the query level or an ancestor)
    kind: str = "text"  # "text" or "number": the expression's own type
    outer_join: tuple[Any, Any] | None = None  # (table, ON) for a metadata value
    not_null: bool = False
    constant: bool = False  # the same for every resource: orders nothing


def _order_source(key: OrderKey, level: Level, dialect: str) -> _OrderSource:
    """What an ``OrderBy`` key reads; a key the level does not have orders nothing (as in
    Orthanc, resources without a value are all last, in pk order)."""
    if key.kind == "metadata":
        return _metadata_source(key.key, level, alias_name=f"order_{id(key):x}")
    source = _main_tag_source(level, key.key)
    if source is None:
        return _OrderSource(null(), level, constant=True)
    if key.key in SORT_COLUMNS and SORT_COLUMNS[key.key][0] == source:
        return _OrderSource(TABLE[source].c[SORT_COLUMNS[key.key][1]], source)
    return _OrderSource(_json_text(TABLE[source].c.main_tags, key.key, dialect), source)


def _json_text(column: Any, keyword: str, dialect: str) -> Any:
    """The string of *keyword* in a main tags JSON document (NULL when absent)."""
    if dialect == "postgresql":
        return cast(func.convert_from(column, literal_column("'UTF8'")), JSONB).op("->>")(
            literal_column(f"'{keyword}'"))
    return func.json_extract(cast(column, String), literal_column(f"'$.\"{keyword}\"'"))


def _metadata_source(name: str, level: Level, alias_name: str) -> _OrderSource:
    """The value of one metadata of the resources at *level*: a column for Orthanc's
    automatic metadata kept in columns, else the metadata table (outer join)."""
    table = TABLE[level]
    if name in METADATA_COLUMNS:
        levels, column_name = METADATA_COLUMNS[name]
        if level not in levels:
            if name == "RemoteAET" and level == Level.SERIES:  # its first instance's
                return _OrderSource(select(INSTANCES.c.remote_aet).where(
                    INSTANCES.c.series_pk == SERIES.c.pk).order_by(INSTANCES.c.pk)
                    .limit(1).scalar_subquery(), level)
            return _OrderSource(null(), level, constant=True)
        column: Any = table.c[column_name]
        if column_name in _OPTIONAL_TEXT_COLUMNS:
            column = func.nullif(column, "")
        elif column_name == "http_username":
            column = case((table.c.origin == "RestApi", column), else_=null())
        return _OrderSource(column, level,
                            "number" if column_name in _NUMERIC_COLUMNS else "text",
                            not_null=column_name in _NOT_NULL_COLUMNS)
    if name == "MainDicomTagsSignature":
        return _OrderSource(literal(main_tags_signature(level)), level, constant=True)
    alias = METADATA.alias(alias_name)
    on = and_(alias.c.level == level.value, alias.c.resource_pk == table.c.pk,
              alias.c.name == name)
    return _OrderSource(alias.c.value, level, outer_join=(alias, on))


def _cast(expression: Any, wanted: str, kind: str, dialect: str) -> Any:
    """*expression* compared as text, integer or float (``DicomTagAsInt``...)."""
    if wanted == "string":
        return cast(expression, Text) if kind == "number" else expression
    if kind == "number":
        return expression
    sql_type = BigInteger if wanted == "int" else Float
    if dialect == "postgresql":
        pattern = _PG_INTEGER if wanted == "int" else _PG_FLOAT
        return case((expression.op("~")(literal_column(f"'{pattern}'")),
                     cast(func.trim(expression), sql_type)), else_=null())
    return cast(expression, Integer if wanted == "int" else Float)


def _metadata_condition(level: Level, item: MetadataConstraint,
                        dialect: str) -> tuple[ColumnElement[bool], bool]:
    """(condition, exact) of one ``MetadataQuery`` item: EXISTS a metadata row matching,
    or the condition on the column of an automatic metadata. Not exact: case-insensitive
    non-ASCII values, re-checked in Python (``_PostFilter``)."""
    table = TABLE[level]
    source = _metadata_source(item.name, level, alias_name="unused")
    if source.outer_join is None:
        value = _cast(source.expression, "string", source.kind, dialect)
        condition, exact = _raw_condition(value, item.constraint, dialect)
        return and_(value.is_not(None), condition), exact
    condition, exact = _raw_condition(METADATA.c.value, item.constraint, dialect)
    return exists(select(1).where(METADATA.c.level == level.value,
                                  METADATA.c.resource_pk == table.c.pk,
                                  METADATA.c.name == item.name, condition)), exact


def metadata_values(conn: Connection, level: Level, pks: Sequence[int],
                    name: str) -> dict[int, str | None]:
    """The value of one metadata (automatic or stored) of resources at *level*."""
    table = TABLE[level]
    source = _metadata_source(name, level, alias_name="m")
    value = _cast(source.expression, "string", source.kind, conn.dialect.name)
    statement = select(table.c.pk, value).select_from(table)
    if source.outer_join is not None:
        statement = statement.outerjoin(*source.outer_join)
    answer: dict[int, str | None] = dict.fromkeys(pks)
    for start in range(0, len(pks), 500):
        answer.update(conn.execute(statement.where(
            table.c.pk.in_(list(pks[start:start + 500])))).all())
    return answer


# --- running a query ----------------------------------------------------------------------

def find_pks(conn: Connection, query: FindQuery) -> list[int]:
    """The pks at ``query.level`` matching every constraint, in the query's order."""
    return [pk for pk, _ in find_matches(conn, query)]


def find_matches(conn: Connection, query: FindQuery) -> list[tuple[int, str]]:
    """(pk, public ID) of the matches, in order: ID-only answers need no second look-up.

    ``since`` and ``limit`` page the matches; ``candidate_cap`` (REST) stops reading
    candidates from the index after that many when constraints are checked on the
    DICOM JSON (Orthanc 1.12.5+ reads at most that many resources from its database)."""
    compiled = _compile(conn, query)
    if compiled.impossible:
        return []
    statement = _base_select(conn, query, compiled.where)
    post = compiled.post + _metadata_post_items(conn, query)
    if not post:
        if query.since:
            statement = statement.offset(query.since)
        if query.limit:
            statement = statement.limit(query.limit)
        return [(pk, public_id) for pk, public_id in conn.execute(statement)]
    answer: list[tuple[int, str]] = []
    skipped = candidates = 0
    cap = query.candidate_cap if any(p.source == "sample" for p in post) else 0
    checker = _PostFilter(conn, query.level, post)
    for batch in _batches(conn, statement, 500):
        public_ids = dict(batch)
        for pk, is_candidate, is_match in checker.accept([pk for pk, _ in batch]):
            if not is_candidate:
                continue
            candidates += 1
            if cap and candidates > cap:
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


def count_matches(conn: Connection, query: FindQuery) -> int:
    """How many resources match (``/tools/count-resources``): counted by the database
    when its conditions are exact, else by re-checking its candidates."""
    compiled = _compile(conn, query)
    if compiled.impossible:
        return 0
    statement = _base_select(conn, query, compiled.where).order_by(None)
    post = compiled.post + _metadata_post_items(conn, query)
    if not post:
        return int(conn.execute(select(func.count()).select_from(statement.subquery()))
                   .scalar_one())
    checker = _PostFilter(conn, query.level, post)
    return sum(1 for batch in _batches(conn, statement, 500)
               for _, _, is_match in checker.accept([pk for pk, _ in batch]) if is_match)


def _metadata_post_items(conn: Connection, query: FindQuery) -> list[_PostItem]:
    """Re-checks of the MetadataQuery items SQL can only approximate."""
    return [_PostItem(LeveledConstraint(item.constraint, query.level), "metadata", item.name)
            for item in query.metadata
            if not _metadata_condition(query.level, item, conn.dialect.name)[1]]


def _batches(conn: Connection, statement: Select[*tuple[Any, ...]],
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
            elif post.source == "metadata":
                for pk, value in metadata_values(self.conn, self.level, pks,
                                                 post.metadata).items():
                    answer[pk][id(post)] = value
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
    firsts = first.where(owner.in_(list(pks))).group_by(owner).subquery()
    rows = conn.execute(select(firsts.c.owner, INSTANCES.c.dicom_json)
                        .join(INSTANCES, INSTANCES.c.pk == firsts.c.instance_pk))
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


def _distinct_join(conn: Connection, pks: list[int], column: Any, joins: Callable[[Select[*tuple[Any, ...]]], Select[*tuple[Any, ...]]],
                   owner: Any) -> dict[int, str]:
    values: dict[int, set[str]] = {pk: set() for pk in pks}
    statement = joins(select(owner, column).distinct()).where(owner.in_(pks))
    for pk, value in conn.execute(statement):
        if value:
            values[pk].add(value)
    return {pk: "\\".join(sorted(v)) for pk, v in values.items()}


def _count(conn: Connection, pks: list[int], statement: Select[*tuple[Any, ...]], owner: Any) -> dict[int, str]:
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

