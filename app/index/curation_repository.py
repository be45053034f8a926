"""SQL for editing and curation: global sequences, user metadata with revisions,
attachments, patient protection.

Functions take a ``Connection`` inside a transaction opened by the caller, like
:mod:`app.index.repository`.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import (
    BigInteger,
    Connection,
    Table,
    Text,
    and_,
    cast,
    delete,
    insert,
    select,
    update,
)

from app.dicom.levels import Level
from app.index import models, repository
from app.index.records import MetadataValue, build_one
from app.index.repository import METADATA, PATIENTS

GLOBAL_PROPERTIES: Table = models.GlobalProperty.__table__  # type: ignore[assignment]


def next_global_sequence(conn: Connection, name: str) -> int:
    """Increment and return a counter kept in ``global_properties`` (e.g. Orthanc's
    AnonymizationSequence). The row is updated in the caller's write transaction, so two
    concurrent callers never get the same value (row lock on PostgreSQL, one writer on
    SQLite)."""
    updated = conn.execute(
        update(GLOBAL_PROPERTIES).where(GLOBAL_PROPERTIES.c.name == name)
        .values(value=cast(cast(GLOBAL_PROPERTIES.c.value, BigInteger) + 1, Text))
        .returning(GLOBAL_PROPERTIES.c.value)).first()
    if updated is not None:
        return int(updated[0])
    conn.execute(insert(GLOBAL_PROPERTIES).values(name=name, value="1"))
    return 1


# --- metadata --------------------------------------------------------------------------------

def get_metadata(conn: Connection, level: Level, pk: int, name: str) -> MetadataValue | None:
    """One stored metadata value and its revision, or None."""
    return build_one(MetadataValue, conn.execute(select(METADATA.c.value, METADATA.c.revision)
                                                 .where(and_(METADATA.c.level == level.value,
                                                             METADATA.c.resource_pk == pk,
                                                             METADATA.c.name == name))).first())


def set_metadata(conn: Connection, level: Level, pk: int, name: str, value: str) -> int | None:
    """Insert or update a metadata value; returns its new revision (0 for a new value, then
    one more at each change, as Orthanc 1.12.8's SQLite index), or None when the resource
    was deleted meanwhile (nothing written: no metadata row may outlive its resource)."""
    if not repository.lock_resource(conn, level, pk):
        return None
    current = get_metadata(conn, level, pk, name)
    if current is None:
        conn.execute(insert(METADATA).values(level=level.value, resource_pk=pk, name=name,
                                             value=value, revision=0))
        return 0
    revision = int(current.revision or 0) + 1
    conn.execute(update(METADATA).where(and_(
        METADATA.c.level == level.value, METADATA.c.resource_pk == pk,
        METADATA.c.name == name)).values(value=value, revision=revision))
    return revision


def set_metadata_many(conn: Connection, entries: Sequence[tuple[Level, int, str, str]]) -> None:
    for level, pk, name, value in entries:
        set_metadata(conn, level, pk, name, value)


def delete_metadata(conn: Connection, level: Level, pk: int, name: str) -> bool:
    result = conn.execute(delete(METADATA).where(and_(
        METADATA.c.level == level.value, METADATA.c.resource_pk == pk,
        METADATA.c.name == name)))
    return bool(result.rowcount)


# --- protection ------------------------------------------------------------------------------

def set_protected(conn: Connection, patient_pk: int, protected: bool) -> None:
    conn.execute(update(PATIENTS).where(PATIENTS.c.pk == patient_pk)
                 .values(is_protected=protected))
