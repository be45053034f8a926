"""All SQL of the archive's core: store, look up, walk the hierarchy, delete, changes.

Functions take a SQLAlchemy ``Connection`` inside a transaction opened by the caller
(``Database.write()`` / ``Database.read()``), so that a service can group several of
them in one transaction.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, overload

import orjson
from sqlalchemy import (
    Connection,
    Insert,
    Table,
    and_,
    bindparam,
    delete,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from app.dicom.levels import Level
from app.dicom.parse import ParsedInstance
from app.dicom.text import normalize
from app.index import models
from app.index.db import TRANSACTION_SCOPED_PREFIX, before_commit, note_events
from app.index.records import (
    RECORD_OF_LEVEL,
    ChangeRecord,
    ExportRecord,
    HierarchyTags,
    InstanceRecord,
    LeanInstance,
    PatientRecord,
    ResourceId,
    ResourceRecord,
    SeriesRecord,
    StudyRecord,
    build,
    field_names,
)
from app.timeutil import now_stamp

PATIENTS: Table = models.Patient.__table__  # type: ignore[assignment]
STUDIES: Table = models.Study.__table__  # type: ignore[assignment]
SERIES: Table = models.Series.__table__  # type: ignore[assignment]
INSTANCES: Table = models.Instance.__table__  # type: ignore[assignment]
CHANGES: Table = models.Change.__table__  # type: ignore[assignment]
EXPORTS: Table = models.Export.__table__  # type: ignore[assignment]
METADATA: Table = models.Metadata.__table__  # type: ignore[assignment]
LABELS: Table = models.Label.__table__  # type: ignore[assignment]

TABLE: dict[Level, Table] = {Level.PATIENT: PATIENTS, Level.STUDY: STUDIES,
                             Level.SERIES: SERIES, Level.INSTANCE: INSTANCES}
PARENT_FK: dict[Level, str] = {Level.STUDY: "patient_pk", Level.SERIES: "study_pk",
                               Level.INSTANCE: "series_pk"}


# Metadata names starting with this prefix are Pharos' own bookkeeping: never listed.
INTERNAL_METADATA_PREFIX = "pharos:"
STUDY_PATIENT_TAGS = "pharos:PatientMainDicomTags"
MAIN_DICOM_SEQUENCES = "MainDicomSequences"
PIXEL_DATA_OFFSET = "PixelDataOffset"
PIXEL_DATA_VR = "PixelDataVR"  # Orthanc 1.12.1: only when PixelData's VR is not the expected one


@dataclass(slots=True)
class StoreOutcome:
    status: str  # "Success" | "AlreadyStored"
    instance_pk: int
    # Blobs of the overwritten instance (its file, and attachments of emptied parents).
    replaced_blob_keys: list[str] = field(default_factory=list)


def _insert_ignore(conn: Connection, table: Table, values: dict[str, Any]) -> int | None:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING pk: the new pk, or None when another
    writer created the row first (rowcount cannot tell: psycopg reports -1 here)."""
    dialect = conn.dialect.name
    statement: postgresql.Insert | sqlite.Insert | Insert
    if dialect == "postgresql":
        statement = postgresql.insert(table).values(values).on_conflict_do_nothing(
            index_elements=["public_id"])
    elif dialect == "sqlite":
        statement = sqlite.insert(table).values(values).on_conflict_do_nothing(
            index_elements=["public_id"])
    else:  # pragma: no cover
        statement = insert(table).values(values)
    row = conn.execute(statement.returning(table.c.pk)).first()
    return None if row is None else int(row[0])


def _get_or_create(conn: Connection, level: Level, public_id: str, values: dict[str, Any],
                   now: str, changes: list[tuple[str, Level, str]]) -> int:
    table = TABLE[level]
    row = conn.execute(_PK_BY_PUBLIC_ID[level], {"b_public_id": public_id}).first()
    if row is not None:
        return int(row[0])
    created = _insert_ignore(conn, table, {"public_id": public_id, "last_update": now,
                                           "is_stable": False, **values})
    if created is None:  # another writer created it between our SELECT and INSERT
        return int(conn.execute(_PK_BY_PUBLIC_ID[level], {"b_public_id": public_id}).one()[0])
    changes.append((f"New{level.value}", level, public_id))
    return created


# Statements of the ingest hot path, built once: SQLAlchemy then reuses their compiled
# form, which saves ~0.5 ms per instance compared with building them on every call.
_PK_BY_PUBLIC_ID = {level: select(table.c.pk).where(table.c.public_id == bindparam("b_public_id"))
                    for level, table in TABLE.items()}
_INSTANCE_BY_PUBLIC_ID = select(INSTANCES.c.pk, INSTANCES.c.blob_key, INSTANCES.c.md5).where(
    INSTANCES.c.public_id == bindparam("b_public_id"))
_SERIES_CHAIN = (select(SERIES.c.pk, SERIES.c.study_pk, STUDIES.c.patient_pk)
                 .join(STUDIES, SERIES.c.study_pk == STUDIES.c.pk)
                 .where(SERIES.c.public_id == bindparam("b_public_id")))
_TOUCH = {level: update(TABLE[level]).where(TABLE[level].c.pk == bindparam("b_pk"))
          .values(last_update=bindparam("b_now"), is_stable=False)
          for level in (Level.SERIES, Level.STUDY)}
_TOUCH_PATIENT = (update(PATIENTS).where(PATIENTS.c.pk == bindparam("b_pk"))
                  .values(last_update=bindparam("b_now"), is_stable=False,
                          recycle_seq=bindparam("b_seq")))
_INSERT_INSTANCE = insert(INSTANCES)
# The figures that tell whether a series is complete (GetSeriesStatus), aggregated by the
# database on the (series_pk, index_in_series) index: no row travels per instance.
_SERIES_COMPLETENESS = select(
    func.count(), func.count(INSTANCES.c.index_in_series),
    func.count(INSTANCES.c.index_in_series.distinct()),
    func.min(INSTANCES.c.index_in_series), func.max(INSTANCES.c.index_in_series),
).where(INSTANCES.c.series_pk == bindparam("b_pk"))


def _pack(tags: dict[str, str]) -> bytes:
    return orjson.dumps(tags, option=orjson.OPT_SORT_KEYS)


def series_status(expected: int | None, indices: Sequence[int | None]) -> str:
    """Orthanc's ``GetSeriesStatus``: Unknown, Complete, Missing or Inconsistent."""
    if expected is None:
        return "Unknown"
    seen: set[int] = set()
    for index in indices:
        if index is None:
            return "Unknown"
        if not 0 < index <= expected or index in seen:
            return "Inconsistent"
        seen.add(index)
    return "Complete" if len(seen) == expected else "Missing"


def _series_complete(conn: Connection, series_pk: int, expected: int) -> bool:
    """``series_status(...) == "Complete"`` computed by the database: every instance has
    an index, the indices are distinct, within 1..expected, and there are *expected*."""
    count, indexed, distinct, low, high = conn.execute(
        _SERIES_COMPLETENESS, {"b_pk": series_pk}).one()
    return (count == indexed == distinct == expected and low is not None
            and low >= 1 and high <= expected)


def store_instance(conn: Connection, parsed: ParsedInstance, *, blob_key: str, file_size: int,
                   md5: str, now: str, origin: dict[str, str],
                   overwrite: bool | str, compression: int = 0,
                   compressed_size: int | None = None,
                   compressed_md5: str | None = None) -> StoreOutcome:
    """Index one instance whose blob is already durable (one transaction, by the caller).

    *overwrite* is ``OverwriteInstances``: false or ``"Never"`` keeps the stored instance
    (AlreadyStored), true or ``"Always"`` replaces it, ``"IfChanged"`` replaces it only
    when the new file differs from the stored one (their MD5s differ; an identical file
    is AlreadyStored, the stored one untouched). Overwriting is Orthanc's: the old instance is deleted as by
    ``DELETE /instances/{id}`` (with the parents it leaves empty, their metadata, labels,
    attachments and changes), then the new file is indexed as a new instance, so every
    re-created parent takes its tags from the new file.

    *file_size* and *md5* are the file's; *compression* tells how the blob stores it
    (``app.blobstore.compression``), with the blob's size and MD5 when compressed.
    """
    ids = parsed.ids
    lock_patient(conn, ids.patient)
    existing = conn.execute(_INSTANCE_BY_PUBLIC_ID, {"b_public_id": ids.instance}).first()
    replaced: list[str] = []
    if existing is not None:
        if overwrite in (False, "Never") or (overwrite == "IfChanged" and existing.md5 == md5):
            return StoreOutcome("AlreadyStored", existing.pk)
        replaced, _ = delete_resource(conn, Level.INSTANCE, existing.pk)

    changes: list[tuple[str, Level, str]] = []
    chain = conn.execute(_SERIES_CHAIN, {"b_public_id": ids.series}).first()
    if chain is not None:  # the usual case: the series exists, so do its parents
        series_pk, study_pk, patient_pk = chain
    else:
        series_pk, study_pk, patient_pk = _create_parents(conn, parsed, now, changes)
    instance = parsed.main_tags[Level.INSTANCE]
    result = conn.execute(_INSERT_INSTANCE, dict(
        public_id=ids.instance, series_pk=series_pk, sop_uid=parsed.sop_uid,
        sop_class_uid=parsed.sop_class_uid, instance_number=instance.get("InstanceNumber"),
        index_in_series=parsed.index_in_series, transfer_syntax=parsed.transfer_syntax,
        blob_key=blob_key, file_size=file_size, md5=md5, compression=compression,
        compressed_size=compressed_size, compressed_md5=compressed_md5, received_at=now,
        origin=origin.get("Origin", "Unknown"), remote_aet=origin.get("RemoteAET", ""),
        remote_ip=origin.get("RemoteIP", ""), called_aet=origin.get("CalledAET", ""),
        http_username=origin.get("HttpUsername", ""), main_tags=_pack(instance),
        dicom_json=parsed.dicom_json))
    assert result.inserted_primary_key is not None
    instance_pk = int(result.inserted_primary_key[0])
    _store_automatic_metadata(conn, parsed, changes, study_pk, instance_pk, series_pk)
    # Touch the parents: LastUpdate and stability restart with every new instance.
    conn.execute(_TOUCH[Level.SERIES], {"b_pk": series_pk, "b_now": now})
    conn.execute(_TOUCH[Level.STUDY], {"b_pk": study_pk, "b_now": now})
    conn.execute(_TOUCH_PATIENT, {"b_pk": patient_pk, "b_now": now, "b_seq": time.time_ns()})
    # Orthanc logs NewInstance first, then the new parents from the bottom up, then
    # CompletedSeries when this instance completes its series.
    log = [("NewInstance", Level.INSTANCE, ids.instance)] + list(reversed(changes))
    if parsed.expected_instances is not None and _series_complete(
            conn, series_pk, parsed.expected_instances):
        log.append(("CompletedSeries", Level.SERIES, ids.series))
    add_changes(conn, log, now)
    return StoreOutcome("Success", instance_pk, replaced)


def _create_parents(conn: Connection, parsed: ParsedInstance, now: str,
                    changes: list[tuple[str, Level, str]]) -> tuple[int, int, int]:
    """Get or create the patient, study and series of a new series' first instance."""
    ids = parsed.ids
    patient = parsed.main_tags[Level.PATIENT]
    study = parsed.main_tags[Level.STUDY]
    series = parsed.main_tags[Level.SERIES]
    patient_pk = _get_or_create(conn, Level.PATIENT, ids.patient, {
        "patient_id": parsed.patient_id,
        "patient_name": patient.get("PatientName"),
        "patient_name_norm": normalize(patient.get("PatientName")),
        "birth_date": patient.get("PatientBirthDate"),
        "sex": patient.get("PatientSex"),
        "main_tags": _pack(patient),
        "is_protected": False,
        "recycle_seq": time.time_ns(),
    }, now, changes)
    study_pk = _get_or_create(conn, Level.STUDY, ids.study, {
        "patient_pk": patient_pk,
        "study_uid": parsed.study_uid,
        "study_date": study.get("StudyDate"),
        "study_time": study.get("StudyTime"),
        "accession": study.get("AccessionNumber"),
        "description_norm": normalize(study.get("StudyDescription")),
        "referring_norm": normalize(study.get("ReferringPhysicianName")),
        "main_tags": _pack(study),
    }, now, changes)
    series_pk = _get_or_create(conn, Level.SERIES, ids.series, {
        "study_pk": study_pk,
        "series_uid": parsed.series_uid,
        "modality": series.get("Modality"),
        "series_number": series.get("SeriesNumber"),
        "description_norm": normalize(series.get("SeriesDescription")),
        "expected_instances": parsed.expected_instances,
        "main_tags": _pack(series),
    }, now, changes)
    return series_pk, study_pk, patient_pk


def _store_automatic_metadata(conn: Connection, parsed: ParsedInstance,
                              changes: list[tuple[str, Level, str]], study_pk: int,
                              instance_pk: int, series_pk: int) -> None:
    """The facts Orthanc keeps as metadata that no column holds.

    * A new study keeps the patient tags of the instance that created it: Orthanc
      duplicates them at the study level and answers them as ``PatientMainDicomTags``
      of the study, even when later instances (or the patient) carry other values.
    * ``PixelDataOffset`` of the instance (Orthanc 1.9.1+), and ``PixelDataVR`` when the
      VR of the pixel data is not the standard one (Orthanc 1.12.1+).
    * ``MainDicomSequences`` of a new series whose first instance has a series main
      sequence (RequestAttributesSequence, Orthanc 1.12.5+).
    """
    rows: list[dict[str, Any]] = []
    if ("NewStudy", Level.STUDY, parsed.ids.study) in changes and \
            ("NewPatient", Level.PATIENT, parsed.ids.patient) not in changes:
        # The copy is kept only when it differs from the patient's own main tags (both
        # are fixed at creation): queries then only re-check these rare studies.
        copy = _pack(parsed.main_tags[Level.PATIENT])
        own = conn.execute(select(PATIENTS.c.main_tags).where(
            PATIENTS.c.public_id == parsed.ids.patient)).scalar_one()
        if bytes(own) != copy:
            rows.append({"level": Level.STUDY.value, "resource_pk": study_pk,
                         "name": STUDY_PATIENT_TAGS, "value": copy.decode()})
    if parsed.pixel_data_offset is not None:
        rows.append({"level": Level.INSTANCE.value, "resource_pk": instance_pk,
                     "name": PIXEL_DATA_OFFSET, "value": str(parsed.pixel_data_offset)})
    if parsed.pixel_data_vr is not None:
        rows.append({"level": Level.INSTANCE.value, "resource_pk": instance_pk,
                     "name": PIXEL_DATA_VR, "value": parsed.pixel_data_vr})
    if parsed.series_sequences is not None and \
            ("NewSeries", Level.SERIES, parsed.ids.series) in changes:
        rows.append({"level": Level.SERIES.value, "resource_pk": series_pk,
                     "name": MAIN_DICOM_SEQUENCES, "value": parsed.series_sequences})
    if rows:
        conn.execute(insert(METADATA), rows)


# Read statements of the browsing hot path, built once like the ingest ones (see
# _PK_BY_PUBLIC_ID): building a select costs more than running it on a warm index.
_METADATA_VALUES = select(METADATA.c.resource_pk, METADATA.c.name, METADATA.c.value).where(
    METADATA.c.level == bindparam("b_level"),
    METADATA.c.resource_pk.in_(bindparam("b_pks", expanding=True)),
    METADATA.c.name.in_(bindparam("b_names", expanding=True)))


def metadata_values(conn: Connection, level: Level, pks: Sequence[int],
                    names: Sequence[str]) -> dict[int, dict[str, str]]:
    """Chosen metadata of many resources of one level, in one query."""
    answer: dict[int, dict[str, str]] = {pk: {} for pk in pks}
    if len(pks) == 1 and names:  # a resource has a few metadata: all read, some kept
        answer[pks[0]] = {name: value for name, value in _driver_rows(
            conn, _METADATA_OF_ONE, {"b_level": level.value, "b_pk": pks[0]})
            if name in names}
    elif pks and names:
        for pk, name, value in conn.execute(_METADATA_VALUES, {
                "b_level": level.value, "b_pks": list(pks), "b_names": list(names)}):
            answer[pk][name] = value
    return answer


def study_patient_tags(conn: Connection, study_rows: Sequence[StudyRecord],
                       metadata: dict[int, dict[str, str]]) -> dict[int, dict[str, str]]:
    """For each study pk, the ``PatientMainDicomTags`` Orthanc answers for it.

    That is the copy taken when the study was created (``metadata``, as read by
    ``metadata_values`` with STUDY_PATIENT_TAGS), or (for studies indexed before the
    copy was kept) the patient's current main tags.
    """
    answer = {pk: orjson.loads(values[STUDY_PATIENT_TAGS])
              for pk, values in metadata.items() if STUDY_PATIENT_TAGS in values}
    missing = {r.patient_pk for r in study_rows if r.pk not in answer}
    if missing:
        patients = dict(conn.execute(select(PATIENTS.c.pk, PATIENTS.c.main_tags)
                                     .where(PATIENTS.c.pk.in_(missing))).all())
        for row in study_rows:
            if row.pk not in answer:
                answer[row.pk] = orjson.loads(patients[row.patient_pk])
    return answer


def stored_metadata(conn: Connection, level: Level, pk: int) -> dict[str, str]:
    """Metadata rows of one resource, internal ones (``pharos:``) left out."""
    return {name: value for name, value in conn.execute(
        select(METADATA.c.name, METADATA.c.value).where(and_(
            METADATA.c.level == level.value, METADATA.c.resource_pk == pk))
        .order_by(METADATA.c.name)) if not name.startswith(INTERNAL_METADATA_PREFIX)}


# /changes in commit order (PostgreSQL). A change's Seq comes from a sequence when its row
# is inserted, but concurrent transactions commit in any order: a client reading
# /changes?since=Last between the commit of Seq 11 and that of Seq 10 would skip 10 for
# good. So the writers of the log insert their changes at the very end of their
# transaction under one advisory lock, held until they commit: Seqs are drawn in commit
# order. Readers take the lock shared (:func:`list_changes`): they never see a Seq while
# a smaller one is still to commit. The lock is held from the insert to the commit only,
# after every other lock the transaction takes (no deadlock with the patient locks).
# SQLite has one writer at a time: its order is the commit order already.
_CHANGES_LOCK_KEY = int.from_bytes(b"pharos-c", "big", signed=True)
_PENDING_CHANGES_KEY = TRANSACTION_SCOPED_PREFIX + "pending_changes"


def add_changes(conn: Connection, entries: Sequence[tuple[str, Level, str]], now: str) -> None:
    """Log changes in /changes (and signal them to scripting once the transaction commits)."""
    note_events(conn, entries)
    if not entries:
        return
    rows = [{"change_type": kind, "level": level.value, "public_id": public_id, "date": now}
            for kind, level, public_id in entries]
    if conn.dialect.name != "postgresql":
        conn.execute(insert(CHANGES), rows)
        return
    pending = conn.info.setdefault(_PENDING_CHANGES_KEY, [])
    pending.extend(rows)
    if not before_commit(conn, "changes", _insert_pending_changes):
        _insert_pending_changes(conn)


def hold_commit_order(conn: Connection) -> None:
    """PostgreSQL: take the lock of :func:`add_changes` until the commit, so that rows
    inserted now (webhook deliveries) get sequence numbers in commit order too. Call it
    at the end of the transaction only (after every other lock)."""
    if conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_advisory_xact_lock(_CHANGES_LOCK_KEY)))


def _insert_pending_changes(conn: Connection) -> None:
    rows = conn.info.pop(_PENDING_CHANGES_KEY, [])
    if rows:
        conn.execute(select(func.pg_advisory_xact_lock(_CHANGES_LOCK_KEY)))
        conn.execute(insert(CHANGES), rows)


# --- look-ups -----------------------------------------------------------------------------

def record_columns(level: Level) -> list[Any]:
    """The columns of the level's record (``app.index.records``), in its field order."""
    table = TABLE[level]
    names = field_names(RECORD_OF_LEVEL[level])
    columns: list[Any] = [table.c[name] for name in names if name != "pixel_data_offset"]
    if level == Level.INSTANCE:  # an instance record also carries PixelDataOffset (metadata)
        columns.append(select(METADATA.c.value).where(and_(
            METADATA.c.level == Level.INSTANCE.value, METADATA.c.resource_pk == table.c.pk,
            METADATA.c.name == PIXEL_DATA_OFFSET)).scalar_subquery().label("pixel_data_offset"))
    return columns


_RECORD_BY_PUBLIC_ID = {level: select(*record_columns(level)).where(
    TABLE[level].c.public_id == bindparam("b_public_id")) for level in TABLE}
_RECORDS_BY_PK = {level: select(*record_columns(level)).where(
    TABLE[level].c.pk.in_(bindparam("b_pks", expanding=True))) for level in TABLE}
_RECORD_BY_PK = {level: select(*record_columns(level)).where(TABLE[level].c.pk == bindparam("b_pk"))
                 for level in TABLE}
_PUBLIC_IDS_BY_PK = {level: select(table.c.pk, table.c.public_id).where(
    table.c.pk.in_(bindparam("b_pks", expanding=True))) for level, table in TABLE.items()}
_CHILD_IDS = {level: select(TABLE[child].c[PARENT_FK[child]], TABLE[child].c.public_id)
              .where(TABLE[child].c[PARENT_FK[child]].in_(bindparam("b_pks", expanding=True)))
              .order_by(TABLE[child].c.pk)
              for level in TABLE if (child := level.child) is not None}
_LABELS_OF = select(LABELS.c.resource_pk, LABELS.c.label).where(
    LABELS.c.level == bindparam("b_level"),
    LABELS.c.resource_pk.in_(bindparam("b_pks", expanding=True))).order_by(LABELS.c.label)


# --- one resource, through the driver -------------------------------------------------------
# The JSON of one resource (GET /{level}/{id}, its parent, its children...) takes 4 to 6
# statements on a handful of rows; through SQLAlchemy's execution (parameter processing,
# expanding IN lists, result set-up, events) each cost ~60 us of CPU where the driver
# needs ~10 (benchmarks/README.md, small reads). These selects are compiled once per
# dialect and run on the connection's DBAPI cursor, in its transaction.

class _DriverStatement:
    """A select (without expanding parameters) compiled for one dialect: its SQL, the
    order of its positional parameters, its constant parameters and the result
    processors of its columns (booleans on SQLite...), as SQLAlchemy would apply them."""

    def __init__(self, statement: Any, dialect: Any) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql = str(compiled)
        self.names: tuple[str, ...] | None = tuple(compiled.positiontup or ()) \
            if compiled.positional else None
        self.defaults: dict[str, Any] = {name: bind.value for name, bind in compiled.binds.items()
                                         if not bind.required}
        processors = [column.type._cached_result_processor(dialect, None)
                      for column in statement.selected_columns]
        self.processors = processors if any(processors) else None

    def rows(self, conn: Connection, params: dict[str, Any]) -> Sequence[Any]:
        values = {**self.defaults, **params}
        arguments: Any = tuple(values[name] for name in self.names) \
            if self.names is not None else values
        if not conn.in_transaction():
            conn.begin()  # the read's transaction (SQLite: BEGIN), as an execute would
        cursor = conn.connection.cursor()
        try:
            cursor.execute(self.sql, arguments)
            rows = cursor.fetchall()
        finally:
            cursor.close()
        if self.processors is None:
            return rows
        processors = self.processors
        return [tuple(p(v) if p else v for p, v in zip(processors, row, strict=True))
                for row in rows]


_DRIVER_STATEMENTS: dict[tuple[str, int], _DriverStatement] = {}


def _driver_rows(conn: Connection, statement: Any,
                 params: dict[str, Any]) -> Sequence[Any]:
    """Run *statement* (a module constant) through the driver, compiled once per dialect."""
    key = (conn.dialect.name, id(statement))
    compiled = _DRIVER_STATEMENTS.get(key)
    if compiled is None:
        compiled = _DRIVER_STATEMENTS[key] = _DriverStatement(statement, conn.dialect)
    return compiled.rows(conn, params)


_LABELS_OF_ONE = select(LABELS.c.label).where(
    LABELS.c.level == bindparam("b_level"),
    LABELS.c.resource_pk == bindparam("b_pk")).order_by(LABELS.c.label)
_METADATA_OF_ONE = select(METADATA.c.name, METADATA.c.value).where(
    METADATA.c.level == bindparam("b_level"), METADATA.c.resource_pk == bindparam("b_pk"))
_PUBLIC_ID_BY_PK = {level: select(table.c.public_id).where(table.c.pk == bindparam("b_pk"))
                    for level, table in TABLE.items()}
_CHILD_IDS_OF_ONE = {level: select(TABLE[child].c.public_id)
                     .where(TABLE[child].c[PARENT_FK[child]] == bindparam("b_pk"))
                     .order_by(TABLE[child].c.pk)
                     for level in TABLE if (child := level.child) is not None}
_INDICES_IN_ONE_SERIES = select(INSTANCES.c.index_in_series).where(
    INSTANCES.c.series_pk == bindparam("b_pk"))


@overload
def get_row(conn: Connection, level: Literal[Level.PATIENT], public_id: str) -> PatientRecord | None: ...
@overload
def get_row(conn: Connection, level: Literal[Level.STUDY], public_id: str) -> StudyRecord | None: ...
@overload
def get_row(conn: Connection, level: Literal[Level.SERIES], public_id: str) -> SeriesRecord | None: ...
@overload
def get_row(conn: Connection, level: Literal[Level.INSTANCE], public_id: str) -> InstanceRecord | None: ...
@overload
def get_row(conn: Connection, level: Level, public_id: str) -> ResourceRecord | None: ...
def get_row(conn: Connection, level: Level, public_id: str) -> ResourceRecord | None:
    """One resource; an instance's record also carries ``pixel_data_offset`` (metadata)."""
    if "\x00" in public_id:  # no ID holds one (and PostgreSQL's text cannot)
        return None
    rows = _driver_rows(conn, _RECORD_BY_PUBLIC_ID[level], {"b_public_id": public_id})
    return RECORD_OF_LEVEL[level](*rows[0]) if rows else None


@overload
def get_rows_by_pk(conn: Connection, level: Literal[Level.PATIENT], pks: Sequence[int]) -> list[PatientRecord]: ...
@overload
def get_rows_by_pk(conn: Connection, level: Literal[Level.STUDY], pks: Sequence[int]) -> list[StudyRecord]: ...
@overload
def get_rows_by_pk(conn: Connection, level: Literal[Level.SERIES], pks: Sequence[int]) -> list[SeriesRecord]: ...
@overload
def get_rows_by_pk(conn: Connection, level: Literal[Level.INSTANCE], pks: Sequence[int]) -> list[InstanceRecord]: ...
@overload
def get_rows_by_pk(conn: Connection, level: Level, pks: Sequence[int]) -> list[ResourceRecord]: ...
def get_rows_by_pk(conn: Connection, level: Level, pks: Sequence[int]) -> list[Any]:
    """The resources of one level with these pks, in the order of *pks*."""
    if not pks:
        return []
    record = RECORD_OF_LEVEL[level]
    rows = conn.execute(_RECORDS_BY_PK[level], {"b_pks": list(pks)}).all()
    order = {pk: i for i, pk in enumerate(pks)}
    return [record(*row) for row in sorted(rows, key=lambda r: order[r[0]])]


def public_ids_by_pk(conn: Connection, level: Level, pks: Iterable[int]) -> dict[int, str]:
    """The public IDs of resources of one level, by pk."""
    wanted = list(pks)
    if not wanted:
        return {}
    if len(wanted) == 1:
        rows = _driver_rows(conn, _PUBLIC_ID_BY_PK[level], {"b_pk": wanted[0]})
        return {wanted[0]: rows[0][0]} if rows else {}
    return dict(conn.execute(_PUBLIC_IDS_BY_PK[level], {"b_pks": wanted}).all())


def list_public_ids(conn: Connection, level: Level, *, since: int = 0,
                    limit: int = 0) -> list[ResourceId]:
    table = TABLE[level]
    query = select(table.c.pk, table.c.public_id).order_by(table.c.pk)
    if since:
        query = query.offset(since)
    if limit:
        query = query.limit(limit)
    return build(ResourceId, conn.execute(query))


def child_ids(conn: Connection, level: Level, pks: Sequence[int]) -> dict[int, list[str]]:
    """For each parent pk at *level*, the public IDs of its children (ordered by pk)."""
    child = level.child
    if child is None or not pks:
        return {}
    if len(pks) == 1:
        return {pks[0]: [public_id for public_id, in
                         _driver_rows(conn, _CHILD_IDS_OF_ONE[level], {"b_pk": pks[0]})]}
    answer: dict[int, list[str]] = {pk: [] for pk in pks}
    for parent_pk, public_id in conn.execute(_CHILD_IDS[level], {"b_pks": list(pks)}):
        answer[parent_pk].append(public_id)
    return answer


@overload
def parent_row(conn: Connection, level: Literal[Level.STUDY], row: ResourceRecord) -> PatientRecord: ...
@overload
def parent_row(conn: Connection, level: Literal[Level.SERIES], row: ResourceRecord) -> StudyRecord: ...
@overload
def parent_row(conn: Connection, level: Literal[Level.INSTANCE], row: ResourceRecord) -> SeriesRecord: ...
@overload
def parent_row(conn: Connection, level: Level, row: ResourceRecord) -> ResourceRecord: ...
def parent_row(conn: Connection, level: Level, row: ResourceRecord) -> ResourceRecord:
    """The parent of a resource of *level* (it must have one)."""
    parent = level.parent
    assert parent is not None and row.parent_pk is not None
    return RECORD_OF_LEVEL[parent](*conn.execute(_RECORD_BY_PK[parent],
                                                  {"b_pk": row.parent_pk}).one())


def descendant_pks(conn: Connection, level: Level, pk: int, target: Level) -> list[int]:
    """The pks at *target* level below (or equal to) the resource *pk* at *level*."""
    pks = [pk]
    current = level
    while current != target:
        child = current.child
        assert child is not None
        table = TABLE[child]
        fk = table.c[PARENT_FK[child]]
        pks = [r[0] for r in conn.execute(
            select(table.c.pk).where(fk.in_(pks)).order_by(table.c.pk))]
        current = child
        if not pks:
            break
    return pks


def instances_below(conn: Connection, level: Level, pk: int) -> list[InstanceRecord]:
    """The instances below a resource, in hierarchy then pk order."""
    instance_pks = descendant_pks(conn, level, pk, Level.INSTANCE)
    if not instance_pks:
        return []
    return build(InstanceRecord, conn.execute(
        _RECORDS_BY_PK[Level.INSTANCE].order_by(INSTANCES.c.pk), {"b_pks": instance_pks}))


def count_children(conn: Connection, level: Level, pk: int) -> dict[Level, int]:
    counts: dict[Level, int] = {}
    pks = [pk]
    current = level
    while current.child is not None:
        child = current.child
        table = TABLE[child]
        fk = table.c[PARENT_FK[child]]
        pks = [r[0] for r in conn.execute(select(table.c.pk).where(fk.in_(pks)))] if pks else []
        counts[child] = len(pks)
        current = child
    return counts


def storage_totals(conn: Connection,
                   instance_pks: Iterable[int] | None = None) -> tuple[int, int, int]:
    """(count, bytes of the files, bytes on disk) of instances, all or the given ones: the
    files uncompressed, and their blobs as stored (smaller when compressed)."""
    stored = func.coalesce(INSTANCES.c.compressed_size, INSTANCES.c.file_size)
    query = select(func.count(INSTANCES.c.pk), func.coalesce(func.sum(INSTANCES.c.file_size), 0),
                   func.coalesce(func.sum(stored), 0))
    if instance_pks is not None:
        query = query.where(INSTANCES.c.pk.in_(list(instance_pks)))
    count, total, disk = conn.execute(query).one()
    return int(count), int(total), int(disk)


def count_level(conn: Connection, level: Level) -> int:
    return int(conn.execute(select(func.count()).select_from(TABLE[level])).scalar_one())


# --- concurrent writers (PostgreSQL) -----------------------------------------------------
#
# SQLite runs one writer at a time. PostgreSQL runs them in parallel (READ COMMITTED), so
# the writers of one patient's hierarchy (stores, overwrites, deletions, recycling) take a
# transaction-scoped advisory lock on the patient first: a deletion then sees every
# instance committed before it (no instance cascaded away without its blob key, no
# metadata row left behind), a store never inserts below a parent being deleted, and two
# stores of the same instance meet in order (the second finds the first's row). One lock
# per patient keeps a fixed order (patient, then its rows) and costs nothing the stores
# did not already pay: they all update the patient row (LastUpdate) before committing.

def _patient_lock_key(patient_public_id: str) -> int:
    digest = hashlib.sha1(patient_public_id.encode(), usedforsecurity=False).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


_ADVISORY_LOCK = select(func.pg_advisory_xact_lock(bindparam("b_key")))


def lock_patient(conn: Connection, patient_public_id: str) -> None:
    """Serialize this transaction with the other writers of the patient's hierarchy
    (PostgreSQL ``pg_advisory_xact_lock``, released at commit; SQLite: nothing to do)."""
    if conn.dialect.name == "postgresql":
        conn.execute(_ADVISORY_LOCK, {"b_key": _patient_lock_key(patient_public_id)})


def patient_public_id(conn: Connection, level: Level, pk: int) -> str | None:
    """The public ID of the patient above (or equal to) a resource, read in one statement
    (one snapshot: an ancestor deleted meanwhile cannot break the walk); None when the
    resource is gone."""
    query = select(PATIENTS.c.public_id)
    if level == Level.PATIENT:
        query = query.where(PATIENTS.c.pk == pk)
    else:
        query = query.join(STUDIES, STUDIES.c.patient_pk == PATIENTS.c.pk)
        if level == Level.STUDY:
            query = query.where(STUDIES.c.pk == pk)
        else:
            query = query.join(SERIES, SERIES.c.study_pk == STUDIES.c.pk)
            if level == Level.SERIES:
                query = query.where(SERIES.c.pk == pk)
            else:
                query = query.join(INSTANCES, INSTANCES.c.series_pk == SERIES.c.pk) \
                    .where(INSTANCES.c.pk == pk)
    return conn.execute(query).scalar()


def lock_resource(conn: Connection, level: Level, pk: int) -> bool:
    """Keep a resource from being deleted until this transaction ends (PostgreSQL
    ``FOR KEY SHARE``, what a foreign key takes): metadata or labels written now can
    never dangle. False when the resource is gone (deleted meanwhile)."""
    table = TABLE[level]
    query = select(table.c.pk).where(table.c.pk == pk)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(key_share=True, read=True)
    return conn.execute(query).first() is not None


def _lock_for_delete(conn: Connection, doomed: dict[Level, list[int]]) -> None:
    """PostgreSQL: lock the rows about to be deleted before their attached rows go, so a
    writer of metadata or labels (:func:`lock_resource`) either finished first (and its
    rows are seen and deleted) or waits and finds the resource gone."""
    if conn.dialect.name != "postgresql":
        return
    for level, pks in doomed.items():
        table = TABLE[level]
        for chunk in _chunks(sorted(pks)):
            conn.execute(select(table.c.pk).where(table.c.pk.in_(chunk))
                         .order_by(table.c.pk).with_for_update())


# --- deletion -----------------------------------------------------------------------------

def delete_resource(conn: Connection, level: Level, pk: int) -> tuple[list[str], tuple[Level, str] | None]:
    """Delete a resource, its descendants and the ancestors it leaves empty.

    Returns the blob keys to remove once the transaction commits (the instances' files
    and the user attachments of every deleted resource), and the remaining ancestor
    (level, public ID), if any. Like Orthanc, a deletion is not logged in ``/changes``
    but the changes of the deleted resources go with them (Orthanc's ``Changes`` rows
    reference their resource ``ON DELETE CASCADE``).
    """
    row = conn.execute(select(TABLE[level]).where(TABLE[level].c.pk == pk)).one()
    doomed: dict[Level, list[int]] = {level: [pk]}
    for child_level in _levels_below(level):
        doomed[child_level] = descendant_pks(conn, level, pk, child_level)
    remaining: tuple[Level, str] | None = None
    current, current_row = level, row
    while current.parent is not None:
        parent = current.parent
        parent_pk = getattr(current_row, PARENT_FK[current])
        table = TABLE[current]
        still = conn.execute(select(table.c.pk).where(and_(
            table.c[PARENT_FK[current]] == parent_pk,
            table.c.pk.not_in(doomed[current]))).limit(1)).first()
        parent_row_ = conn.execute(select(TABLE[parent]).where(TABLE[parent].c.pk == parent_pk)).one()
        if still is not None:
            remaining = (parent, parent_row_.public_id)
            _touch_ancestors(conn, parent, parent_pk)
            break
        doomed[parent] = [parent_pk]
        current, current_row = parent, parent_row_
    _lock_for_delete(conn, doomed)
    blob_keys = _blob_keys_of(conn, doomed)
    deleted = [(doomed_level, public_id) for doomed_level, pks in doomed.items()
               for chunk in _chunks(pks)
               for public_id in public_ids_by_pk(conn, doomed_level, chunk).values()]
    public_ids = [public_id for _, public_id in deleted]
    # Orthanc signals a "Deleted" change per resource without logging it in /changes.
    note_events(conn, [("Deleted", doomed_level, public_id) for doomed_level, public_id in deleted])
    for chunk in _chunks(public_ids):
        conn.execute(delete(CHANGES).where(CHANGES.c.public_id.in_(chunk)))
    for doomed_level, pks in doomed.items():
        _delete_attached(conn, doomed_level, pks)
    top = min(doomed, key=lambda lv: lv.depth)  # the highest level deleted
    conn.execute(delete(TABLE[top]).where(TABLE[top].c.pk.in_(doomed[top])))  # cascades down
    return blob_keys, remaining


def _touch_ancestors(conn: Connection, level: Level, pk: int | None) -> None:
    """Orthanc 1.12.1+: a deletion sets LastUpdate of the remaining ancestor and of its own
    ancestors to now (their stability is left as it is)."""
    now = now_stamp()
    current: Level | None = level
    while current is not None and pk is not None:
        table = TABLE[current]
        conn.execute(update(table).where(table.c.pk == pk).values(last_update=now))
        if current.parent is None:
            break
        pk = conn.execute(select(table.c[PARENT_FK[current]]).where(table.c.pk == pk)).scalar()
        current = current.parent


def _chunks(values: Sequence[Any], size: int = 500) -> Iterable[list[Any]]:
    for start in range(0, len(values), size):
        yield list(values[start:start + size])


def _blob_keys_of(conn: Connection, doomed: dict[Level, list[int]]) -> list[str]:
    """The instances' blob keys and the attachments' blobs of resources about to go."""
    from app.index.attachments_repository import ATTACHMENTS  # it imports this module
    keys: list[str] = []
    for chunk in _chunks(doomed.get(Level.INSTANCE, [])):
        keys.extend(k for (k,) in conn.execute(
            select(INSTANCES.c.blob_key).where(INSTANCES.c.pk.in_(chunk))
            .order_by(INSTANCES.c.pk)))
    for doomed_level, pks in doomed.items():
        for chunk in _chunks(pks):
            keys.extend(k for (k,) in conn.execute(select(ATTACHMENTS.c.uuid).where(and_(
                ATTACHMENTS.c.level == doomed_level.value,
                ATTACHMENTS.c.resource_pk.in_(chunk)))))
    return keys


def _levels_below(level: Level) -> list[Level]:
    out = []
    current = level.child
    while current is not None:
        out.append(current)
        current = current.child
    return out


def _delete_attached(conn: Connection, level: Level, pks: Sequence[int]) -> None:
    if not pks:
        return
    for table in (METADATA, LABELS):
        for chunk in _chunks(pks):
            conn.execute(delete(table).where(and_(table.c.level == level.value,
                                                  table.c.resource_pk.in_(chunk))))


# --- stability and recycling ----------------------------------------------------------------

def mark_stable(conn: Connection, threshold: str, now: str) -> int:
    """Resources untouched since *threshold* become stable; log Stable* changes."""
    entries: list[tuple[str, Level, str]] = []
    for level in (Level.SERIES, Level.STUDY, Level.PATIENT):
        table = TABLE[level]
        # One UPDATE ... RETURNING: when several processes run this at once, each row
        # flips (and is logged) exactly once.
        rows = conn.execute(update(table).where(and_(
            table.c.is_stable.is_(False), table.c.last_update <= threshold))
            .values(is_stable=True).returning(table.c.pk, table.c.public_id)).all()
        entries.extend((f"Stable{level.value}", level, r.public_id)
                       for r in sorted(rows, key=lambda r: r.pk))
    add_changes(conn, entries, now)
    return len(entries)


def oldest_unprotected_patient(conn: Connection, exclude_public_id: str) -> ResourceId | None:
    row = conn.execute(select(PATIENTS.c.pk, PATIENTS.c.public_id).where(and_(
        PATIENTS.c.is_protected.is_(False), PATIENTS.c.public_id != exclude_public_id))
        .order_by(PATIENTS.c.recycle_seq).limit(1)).first()
    return None if row is None else ResourceId(*row)


# --- changes and exports ------------------------------------------------------------------

_CHANGE_COLUMNS = select(*(CHANGES.c[name] for name in field_names(ChangeRecord)))
_EXPORT_COLUMNS = select(*(EXPORTS.c[name] for name in field_names(ExportRecord)))


def list_changes(conn: Connection, since: int, limit: int, *, to: int | None = None,
                 types: Sequence[str] = ()) -> tuple[list[ChangeRecord], bool, int]:
    """Up to *limit* changes after *since* (and up to *to*, of *types*: Orthanc 1.12.5's
    extended changes), whether no other change is left in that direction, and Orthanc's
    ``Last``: the last change answered, or for an empty page the last sequence number
    ever given (``GetLastChangeIndex``), so that a client polling with ``since=Last``
    neither misses nor repeats a change.

    With *to* but no *since*, the answer is the *limit* changes just before *to*
    (included), in ascending order: a client walks the log backwards with ``to=First-1``
    (``Done`` is then whether none is left before)."""
    _wait_for_committing_changes(conn)
    statement = _CHANGE_COLUMNS
    if since:
        statement = statement.where(CHANGES.c.seq > _seq_bound(conn, since))
    if to is not None:
        statement = statement.where(CHANGES.c.seq <= _seq_bound(conn, to))
    if types:
        statement = statement.where(CHANGES.c.change_type.in_(list(types)))
    backwards = to is not None and not since
    order = CHANGES.c.seq.desc() if backwards else CHANGES.c.seq
    rows = build(ChangeRecord, conn.execute(statement.order_by(order).limit(limit + 1)))
    done = len(rows) <= limit
    rows = rows[:limit]
    if backwards:
        rows.reverse()
    return rows, done, int(rows[-1].seq) if rows else last_change_index(conn)


def _wait_for_committing_changes(conn: Connection) -> None:
    """PostgreSQL: wait until no writer is between inserting changes and committing them
    (see :func:`add_changes`); the lock is held shared until this read ends. Only in a
    READ COMMITTED transaction (``Database.read_log``): a snapshot taken before the wait
    would miss what the awaited writers commit."""
    if conn.dialect.name == "postgresql":
        if conn.get_execution_options().get("isolation_level") == "REPEATABLE READ":
            raise RuntimeError("the change log is read through Database.read_log()")
        conn.execute(select(func.pg_advisory_xact_lock_shared(_CHANGES_LOCK_KEY)))


def newest_change(conn: Connection) -> ChangeRecord | None:
    _wait_for_committing_changes(conn)
    row = conn.execute(_CHANGE_COLUMNS.order_by(CHANGES.c.seq.desc()).limit(1)).first()
    return None if row is None else ChangeRecord(*row)


def last_change_index(conn: Connection) -> int:
    """The last sequence number given to a change, even when that change is gone (on
    PostgreSQL, once no change is being committed: never a number still to commit)."""
    _wait_for_committing_changes(conn)
    if conn.dialect.name == "sqlite":
        value = conn.execute(text("SELECT seq FROM sqlite_sequence WHERE name = 'changes'")
                             ).scalar()
    elif conn.dialect.name == "postgresql":
        value = conn.execute(text("SELECT pg_sequence_last_value(pg_get_serial_sequence("
                                  "'changes', 'seq')::regclass)")).scalar()
    else:  # pragma: no cover
        value = conn.execute(select(func.max(CHANGES.c.seq))).scalar()
    return int(value or 0)


def clear_changes(conn: Connection) -> None:
    conn.execute(delete(CHANGES))


def _seq_bound(conn: Connection, value: int) -> int:
    """A client's sequence number (up to 2^63, as Orthanc's int64) as a bound the ``seq``
    columns can be compared with: they are 32-bit on PostgreSQL (``integer``), where a
    larger value is an error, not an empty page. No sequence number ever exceeds the
    column's range, so clamping changes no answer."""
    return min(value, 2**31 - 1) if conn.dialect.name == "postgresql" else value


def list_exports(conn: Connection, since: int,
                 limit: int) -> tuple[list[ExportRecord], bool, int]:
    rows = build(ExportRecord, conn.execute(
        _EXPORT_COLUMNS.where(EXPORTS.c.seq > _seq_bound(conn, since))
        .order_by(EXPORTS.c.seq).limit(limit + 1)))
    done = len(rows) <= limit
    rows = rows[:limit]
    last = conn.execute(select(func.max(EXPORTS.c.seq))).scalar_one() or 0
    return rows, done, int(rows[-1].seq if rows else last)


def newest_export(conn: Connection) -> ExportRecord | None:
    row = conn.execute(_EXPORT_COLUMNS.order_by(EXPORTS.c.seq.desc()).limit(1)).first()
    return None if row is None else ExportRecord(*row)


def clear_exports(conn: Connection) -> None:
    conn.execute(delete(EXPORTS))


def labels_of(conn: Connection, level: Level, pks: Sequence[int]) -> dict[int, list[str]]:
    if len(pks) == 1:
        return {pks[0]: [label for label, in _driver_rows(
            conn, _LABELS_OF_ONE, {"b_level": level.value, "b_pk": pks[0]})]}
    answer: dict[int, list[str]] = {pk: [] for pk in pks}
    if pks:
        for pk, label in conn.execute(_LABELS_OF, {"b_level": level.value, "b_pks": list(pks)}):
            answer[pk].append(label)
    return answer


# What retrieval needs of an instance (DICOMweb: UIDs, blob key, size, compression,
# syntax, order).
_LEAN_COLUMNS = tuple(INSTANCES.c[name] for name in field_names(LeanInstance)
                      if name != "dicom_json")


def lean_instance(conn: Connection, pk: int) -> LeanInstance:
    """The retrieval columns of one instance (it must exist)."""
    return LeanInstance(*conn.execute(select(*_LEAN_COLUMNS).where(INSTANCES.c.pk == pk)).one())


def has_identical_instance(conn: Connection, sop_uid: str, md5: str) -> bool:
    """Whether an instance with this SOPInstanceUID was stored from a file with this MD5
    (``pharos import`` skips such files without parsing them: resuming an import)."""
    statement = select(INSTANCES.c.pk).where(INSTANCES.c.sop_uid == sop_uid,
                                             INSTANCES.c.md5 == md5).limit(1)
    return conn.execute(statement).first() is not None


def lean_instances_of_series(conn: Connection, series_pks: Sequence[int], sop_uid: str | None,
                             with_json: bool) -> list[LeanInstance]:
    """The retrieval columns of the instances of the series (only *sop_uid* when given),
    plus the stored DICOM JSON when *with_json*; in no particular order."""
    columns = _LEAN_COLUMNS + ((INSTANCES.c.dicom_json,) if with_json else ())
    statement = select(*columns).where(INSTANCES.c.series_pk.in_(list(series_pks)))
    if sop_uid is not None:
        statement = statement.where(INSTANCES.c.sop_uid == sop_uid)
    return build(LeanInstance, conn.execute(statement))


def hierarchy_tags(conn: Connection, instance_pks: Sequence[int]) -> dict[int, HierarchyTags]:
    """For each instance pk: the main tags of its patient, study and series (``patient``,
    ``study``, ``series``), its ``series_pk`` and ``study_pk`` (archives lay folders out
    with them)."""
    statement = (select(INSTANCES.c.pk, PATIENTS.c.main_tags.label("patient"),
                        STUDIES.c.main_tags.label("study"), SERIES.c.main_tags.label("series"),
                        SERIES.c.pk.label("series_pk"), STUDIES.c.pk.label("study_pk"))
                 .join(SERIES, INSTANCES.c.series_pk == SERIES.c.pk)
                 .join(STUDIES, SERIES.c.study_pk == STUDIES.c.pk)
                 .join(PATIENTS, STUDIES.c.patient_pk == PATIENTS.c.pk)
                 .where(INSTANCES.c.pk.in_(list(instance_pks))))
    return {r.pk: r for r in build(HierarchyTags, conn.execute(statement))}


_INDICES_IN_SERIES = select(INSTANCES.c.series_pk, INSTANCES.c.index_in_series).where(
    INSTANCES.c.series_pk.in_(bindparam("b_pks", expanding=True)))


def indices_in_series(conn: Connection, series_pks: Sequence[int]) -> list[tuple[int, int | None]]:
    """(series pk, IndexInSeries) of every instance of the series."""
    if len(series_pks) == 1:
        return [(series_pks[0], index) for index, in _driver_rows(
            conn, _INDICES_IN_ONE_SERIES, {"b_pk": series_pks[0]})]
    return [(series_pk, index) for series_pk, index in
            conn.execute(_INDICES_IN_SERIES, {"b_pks": list(series_pks)})]


def first_remote_aet(conn: Connection, series_pk: int) -> str:
    """The RemoteAET of the first instance stored in the series ("" without instances)."""
    first = conn.execute(select(INSTANCES.c.remote_aet).where(INSTANCES.c.series_pk == series_pk)
                         .order_by(INSTANCES.c.pk).limit(1)).first()
    return "" if first is None else str(first.remote_aet)


def add_label(conn: Connection, level: Level, pk: int, label: str) -> None:
    """Attach *label* to the resource (nothing if it has it already)."""
    exists = conn.execute(select(LABELS.c.pk).where(
        LABELS.c.level == level.value, LABELS.c.resource_pk == pk,
        LABELS.c.label == label)).first()
    if exists is None:
        conn.execute(insert(LABELS).values(level=level.value, resource_pk=pk, label=label))


def remove_label(conn: Connection, level: Level, pk: int, label: str) -> None:
    conn.execute(delete(LABELS).where(LABELS.c.level == level.value,
                                      LABELS.c.resource_pk == pk, LABELS.c.label == label))


def all_labels(conn: Connection) -> list[str]:
    """Every label in use, sorted."""
    return [label for (label,) in conn.execute(
        select(LABELS.c.label).distinct().order_by(LABELS.c.label))]


def move_instance_blob(conn: Connection, public_id: str, old_key: str, new_key: str, *,
                       compression: int, compressed_size: int | None,
                       compressed_md5: str | None) -> bool:
    """Point an instance at a new blob holding the same file stored another way
    (``compress``/``uncompress``), if it still points at *old_key*."""
    result = conn.execute(update(INSTANCES).where(
        INSTANCES.c.public_id == public_id, INSTANCES.c.blob_key == old_key).values(
        blob_key=new_key, compression=compression, compressed_size=compressed_size,
        compressed_md5=compressed_md5))
    return bool(result.rowcount)


def instance_blob_keys(conn: Connection) -> set[str]:
    """The blob keys of every stored instance (the orphan sweep keeps them)."""
    return {key for (key,) in conn.execute(select(INSTANCES.c.blob_key))}


def attachment_blob_keys(conn: Connection) -> set[str]:
    """Blob keys referenced by rows other than instances (user attachments), which the
    orphan sweep must keep. Attachments stored in the blob store must be listed here."""
    from app.index import attachments_repository  # it imports this module
    return attachments_repository.blob_keys(conn)
