"""SQL of the network area: modalities and peers added through the REST API, the answers
of ``/modalities/{name}/query`` kept for ``/queries/{id}``, and ``/exports`` entries."""

from __future__ import annotations

from sqlalchemy import Connection, Table, delete, insert, select, update

from app.dicom.levels import Level
from app.index import models, repository
from app.index.records import (
    CommitmentReport,
    InstanceRecord,
    InstanceUid,
    QueryRecord,
    SeriesRecord,
    StudyRecord,
    build,
    build_one,
    columns_of,
)
from app.index.repository import EXPORTS, get_row, parent_row

MODALITIES: Table = models.StoredModality.__table__  # type: ignore[assignment]
PEERS: Table = models.StoredPeer.__table__  # type: ignore[assignment]
DICOMWEB_SERVERS: Table = models.StoredDicomWebServer.__table__  # type: ignore[assignment]
QUERIES: Table = models.Query.__table__  # type: ignore[assignment]
REPORTS: Table = models.StorageCommitmentReport.__table__  # type: ignore[assignment]

_TABLES = {"modalities": MODALITIES, "peers": PEERS, "dicomweb-servers": DICOMWEB_SERVERS}


# --- modalities and peers (a JSON document per name; b"null" marks a deleted config entry)

def stored_entries(conn: Connection, kind: str) -> dict[str, bytes]:
    table = _TABLES[kind]
    return {row.name: row.config for row in conn.execute(select(table))}


def put_entry(conn: Connection, kind: str, name: str, config: bytes) -> None:
    table = _TABLES[kind]
    if conn.execute(update(table).where(table.c.name == name).values(config=config)).rowcount:
        return
    conn.execute(insert(table).values(name=name, config=config))


# --- queries --------------------------------------------------------------------------

def insert_query(conn: Connection, *, query_id: str, modality: str, level: str, query: bytes,
                 answers: bytes, created: float, options: bytes) -> None:
    conn.execute(insert(QUERIES).values(id=query_id, modality=modality, level=level,
                                        query=query, answers=answers, created=created,
                                        options=options))


def get_query(conn: Connection, query_id: str) -> QueryRecord | None:
    return build_one(QueryRecord, conn.execute(
        select(*columns_of(QUERIES, QueryRecord)).where(QUERIES.c.id == query_id)).first())


def list_queries(conn: Connection) -> list[str]:
    return [r[0] for r in conn.execute(select(QUERIES.c.id).order_by(QUERIES.c.created))]


def forget_old_queries(conn: Connection, keep: int) -> None:
    """Keep the *keep* most recent queries (Orthanc's QueryRetrieveSize, 100 by default)."""
    old = [r[0] for r in conn.execute(select(QUERIES.c.id).order_by(QUERIES.c.created.desc())
                                      .offset(keep))]
    if old:
        conn.execute(delete(QUERIES).where(QUERIES.c.id.in_(old)))


def delete_query(conn: Connection, query_id: str) -> bool:
    return bool(conn.execute(delete(QUERIES).where(QUERIES.c.id == query_id)).rowcount)


# --- storage commitment reports -------------------------------------------------------

def insert_report(conn: Connection, transaction_uid: str, remote_aet: str,
                  created: float) -> None:
    conn.execute(insert(REPORTS).values(transaction_uid=transaction_uid, remote_aet=remote_aet,
                                        complete=False, success=b"[]", failures=b"[]",
                                        created=created))


def get_report(conn: Connection, transaction_uid: str) -> CommitmentReport | None:
    return build_one(CommitmentReport, conn.execute(
        select(*columns_of(REPORTS, CommitmentReport))
        .where(REPORTS.c.transaction_uid == transaction_uid)).first())


def complete_report(conn: Connection, transaction_uid: str, success: bytes,
                    failures: bytes) -> bool:
    """Complete a pending report; False when it is unknown or already complete."""
    done = conn.execute(update(REPORTS).where(REPORTS.c.transaction_uid == transaction_uid,
                                              REPORTS.c.complete.is_(False))
                        .values(complete=True, success=success, failures=failures))
    return bool(done.rowcount)


def forget_old_reports(conn: Connection, keep: int) -> None:
    """Keep the *keep* most recent reports (Orthanc's StorageCommitmentReportsSize)."""
    old = [r[0] for r in conn.execute(select(REPORTS.c.transaction_uid)
                                      .order_by(REPORTS.c.created.desc()).offset(keep))]
    if old:
        conn.execute(delete(REPORTS).where(REPORTS.c.transaction_uid.in_(old)))


def instances_with_sop_uid(conn: Connection, sop_uid: str) -> list[InstanceUid]:
    """The instances with this SOPInstanceUID."""
    table = repository.INSTANCES
    return build(InstanceUid, conn.execute(select(table.c.public_id, table.c.sop_class_uid)
                             .where(table.c.sop_uid == sop_uid)))


# --- exports --------------------------------------------------------------------------

def log_export(conn: Connection, level: Level, public_id: str, remote: str, date: str) -> None:
    """One ``/exports`` entry with the DICOM identifiers of the resource and its ancestors."""
    row = get_row(conn, level, public_id)
    if row is None:
        return
    identifiers = {"patient_id": "", "study_uid": "", "series_uid": "", "sop_uid": ""}
    current, current_level = row, level
    while True:
        if isinstance(current, InstanceRecord):
            identifiers["sop_uid"] = current.sop_uid
        elif isinstance(current, SeriesRecord):
            identifiers["series_uid"] = current.series_uid
        elif isinstance(current, StudyRecord):
            identifiers["study_uid"] = current.study_uid
        else:
            identifiers["patient_id"] = current.patient_id
            break
        current = parent_row(conn, current_level, current)
        current_level = current_level.parent  # type: ignore[assignment]
    conn.execute(insert(EXPORTS).values(level=level.value, public_id=public_id,
                                        remote_modality=remote, date=date, **identifiers))

