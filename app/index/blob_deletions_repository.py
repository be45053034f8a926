"""SQL of the pending blob deletions (``blob_deletions``, see models.BlobDeletion)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, Table, and_, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.index import models

BLOB_DELETIONS: Table = models.BlobDeletion.__table__  # type: ignore[assignment]


def enqueue(conn: Connection, keys: Iterable[str], due: float) -> None:
    """Queue *keys* (a key already queued keeps its entry)."""
    rows = [{"blob_key": key, "due": due, "attempts": 0} for key in dict.fromkeys(keys)]
    if not rows:
        return
    dialect = postgresql_insert if conn.dialect.name == "postgresql" else sqlite_insert
    conn.execute(dialect(BLOB_DELETIONS).on_conflict_do_nothing(), rows)


def any_due(conn: Connection, now: float) -> bool:
    """Whether some deletion is due at *now* (a cheap read before any write transaction)."""
    return conn.execute(select(BLOB_DELETIONS.c.blob_key)
                        .where(BLOB_DELETIONS.c.due <= now).limit(1)).first() is not None


def forget(conn: Connection, keys: Iterable[str]) -> None:
    keys = list(keys)
    for start in range(0, len(keys), 500):  # bounded IN lists
        conn.execute(delete(BLOB_DELETIONS).where(
            BLOB_DELETIONS.c.blob_key.in_(keys[start:start + 500])))


def claim_due(conn: Connection, now: float, lease: float, limit: int) -> list[str]:
    """Keys due at *now*, each moved *lease* seconds forward so that no other process
    takes it meanwhile (the UPDATE only succeeds if nobody moved it since the SELECT)."""
    due = conn.execute(select(BLOB_DELETIONS.c.blob_key, BLOB_DELETIONS.c.due)
                       .where(BLOB_DELETIONS.c.due <= now)
                       .order_by(BLOB_DELETIONS.c.due).limit(limit)).all()
    claimed = []
    for key, when in due:
        moved = conn.execute(update(BLOB_DELETIONS).where(and_(
            BLOB_DELETIONS.c.blob_key == key, BLOB_DELETIONS.c.due == when))
            .values(due=now + lease, attempts=BLOB_DELETIONS.c.attempts + 1))
        if moved.rowcount == 1:
            claimed.append(key)
    return claimed


def postpone(conn: Connection, keys: Iterable[str], now: float, base_delay: float,
             max_delay: float, error: str) -> None:
    """After a failed attempt: the next one in base_delay * 2^(attempts - 1), capped."""
    for key in keys:
        attempts = conn.execute(select(BLOB_DELETIONS.c.attempts).where(
            BLOB_DELETIONS.c.blob_key == key)).scalar_one_or_none()
        if attempts is None:
            continue
        delay = min(base_delay * 2 ** max(attempts - 1, 0), max_delay)
        conn.execute(update(BLOB_DELETIONS).where(BLOB_DELETIONS.c.blob_key == key)
                     .values(due=now + delay, last_error=error[:1000]))


def pending(conn: Connection) -> list[tuple[str, int, str | None]]:
    """(key, attempts, last error) of every queued deletion, oldest due first."""
    return [tuple(row) for row in conn.execute(
        select(BLOB_DELETIONS.c.blob_key, BLOB_DELETIONS.c.attempts,
               BLOB_DELETIONS.c.last_error).order_by(BLOB_DELETIONS.c.due))]


def count(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(BLOB_DELETIONS)).scalar_one())
