"""SQL for user attachments (table ``attachments``, see :class:`app.index.models.Attachment`).

Functions take a ``Connection`` inside a transaction opened by the caller, like
:mod:`app.index.repository`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table, and_, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from app.dicom.levels import Level
from app.index import models
from app.index.records import AttachmentRecord, build_one, columns_of

ATTACHMENTS: Table = models.Attachment.__table__  # type: ignore[assignment]

# The foreign key that ties a row to its resource (deleted by cascade with it).
_OWNER_COLUMN = {Level.PATIENT: "patient_pk", Level.STUDY: "study_pk",
                 Level.SERIES: "series_pk", Level.INSTANCE: "instance_pk"}


def _key(level: Level, resource_pk: int, content_type: int) -> Any:
    return and_(ATTACHMENTS.c.level == level.value, ATTACHMENTS.c.resource_pk == resource_pk,
                ATTACHMENTS.c.content_type == content_type)


_COLUMNS = columns_of(ATTACHMENTS, AttachmentRecord)


def get(conn: Connection, level: Level, resource_pk: int,
        content_type: int) -> AttachmentRecord | None:
    return build_one(AttachmentRecord, conn.execute(
        select(*_COLUMNS).where(_key(level, resource_pk, content_type))).first())


def content_types(conn: Connection, level: Level, resource_pk: int) -> list[int]:
    """The user content types attached to a resource, in numeric order (as Orthanc)."""
    return [t for (t,) in conn.execute(
        select(ATTACHMENTS.c.content_type).where(and_(
            ATTACHMENTS.c.level == level.value, ATTACHMENTS.c.resource_pk == resource_pk))
        .order_by(ATTACHMENTS.c.content_type))]


def attachments_of(conn: Connection, level: Level,
                   pks: list[int]) -> dict[int, list[AttachmentRecord]]:
    """The user attachments of many resources of one level, by pk, in numeric order."""
    answer: dict[int, list[AttachmentRecord]] = {pk: [] for pk in pks}
    for start in range(0, len(pks), 500):
        for row in conn.execute(select(ATTACHMENTS.c.resource_pk, *_COLUMNS).where(
                ATTACHMENTS.c.level == level.value,
                ATTACHMENTS.c.resource_pk.in_(pks[start:start + 500]))
                .order_by(ATTACHMENTS.c.resource_pk, ATTACHMENTS.c.content_type)):
            answer[row[0]].append(AttachmentRecord(*row[1:]))
    return answer


def size_totals(conn: Connection,
                owners: dict[Level, list[int]] | None = None) -> tuple[int, int]:
    """(uncompressed, stored) bytes of the user attachments of the given resources (by
    level), or of all of them."""
    sums = select(func.coalesce(func.sum(ATTACHMENTS.c.uncompressed_size), 0),
                  func.coalesce(func.sum(ATTACHMENTS.c.compressed_size), 0))
    if owners is None:
        total, stored = conn.execute(sums).one()
        return int(total), int(stored)
    total = stored = 0
    for level, pks in owners.items():
        for start in range(0, len(pks), 500):
            part, part_stored = conn.execute(sums.where(
                ATTACHMENTS.c.level == level.value,
                ATTACHMENTS.c.resource_pk.in_(pks[start:start + 500]))).one()
            total, stored = total + int(part), stored + int(part_stored)
    return total, stored


class AttachmentExists(Exception):
    """Another writer created the attachment first: the unique key refused the insert (the
    transaction is spoiled; the caller lets it roll back)."""


def insert_attachment(conn: Connection, level: Level, resource_pk: int, content_type: int,
                      values: dict[str, Any]) -> None:
    """A new attachment at revision 0 (``AttachmentExists`` when a concurrent writer
    inserted it first)."""
    try:
        conn.execute(insert(ATTACHMENTS).values(
            level=level.value, resource_pk=resource_pk, content_type=content_type, revision=0,
            **{_OWNER_COLUMN[level]: resource_pk}, **values))
    except IntegrityError as error:
        raise AttachmentExists(str(error.orig)) from error


def replace_attachment(conn: Connection, level: Level, resource_pk: int, content_type: int,
                       revision: int, values: dict[str, Any]) -> bool:
    """Replace the content if the stored revision is still *revision*; bump it."""
    result = conn.execute(update(ATTACHMENTS).where(and_(
        _key(level, resource_pk, content_type), ATTACHMENTS.c.revision == revision))
        .values(revision=revision + 1, **values))
    return bool(result.rowcount)


def delete_attachment(conn: Connection, level: Level, resource_pk: int, content_type: int,
                      revision: int) -> bool:
    result = conn.execute(delete(ATTACHMENTS).where(and_(
        _key(level, resource_pk, content_type), ATTACHMENTS.c.revision == revision)))
    return bool(result.rowcount)


def blob_keys(conn: Connection) -> set[str]:
    """Every blob an attachment row references (kept by the orphan sweep)."""
    return {key for (key,) in conn.execute(select(ATTACHMENTS.c.uuid))}
