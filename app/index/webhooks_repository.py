"""SQL of the webhook deliveries (``webhook_deliveries``, ``webhook_endpoints``; see
models.WebhookDelivery and app.services.webhooks)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Table, and_, delete, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.index import models, repository
from app.index.records import WebhookDelivery, build, columns_of

DELIVERIES: Table = models.WebhookDelivery.__table__  # type: ignore[assignment]
ENDPOINTS: Table = models.WebhookEndpoint.__table__  # type: ignore[assignment]


def enqueue(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Queue deliveries (webhook, event_id, event, body, created), at the end of the
    transaction: their sequence numbers follow the commit order (on PostgreSQL under the
    change-order lock), so the deliverer, reading by sequence, sends in commit order."""
    if rows:
        repository.hold_commit_order(conn)
        conn.execute(insert(DELIVERIES), [{**row, "attempts": 0} for row in rows])


def ensure_endpoints(conn: Connection, webhooks: Iterable[str]) -> None:
    rows = [{"webhook": key, "next_attempt": 0.0, "failures": 0, "lease_owner": None,
             "lease_until": 0.0} for key in webhooks]
    if rows:
        dialect = postgresql_insert if conn.dialect.name == "postgresql" else sqlite_insert
        conn.execute(dialect(ENDPOINTS).on_conflict_do_nothing(), rows)


def forget_others(conn: Connection, webhooks: Sequence[str]) -> int:
    """Drop the deliveries (and state) of webhooks no longer configured; how many."""
    removed = conn.execute(delete(DELIVERIES).where(DELIVERIES.c.webhook.not_in(
        list(webhooks)))).rowcount
    conn.execute(delete(ENDPOINTS).where(ENDPOINTS.c.webhook.not_in(list(webhooks))))
    return int(removed or 0)


def due(conn: Connection, webhook: str, now: float, owner: str) -> bool:
    """Whether *webhook* has deliveries waiting, may be tried at *now* and is not leased
    by another process (a cheap read before any write transaction)."""
    state = conn.execute(select(ENDPOINTS).where(ENDPOINTS.c.webhook == webhook)).first()
    if state is None or state.next_attempt > now or (
            state.lease_owner not in (None, owner) and state.lease_until > now):
        return False
    return conn.execute(select(DELIVERIES.c.seq).where(DELIVERIES.c.webhook == webhook)
                        .limit(1)).first() is not None


def take_lease(conn: Connection, webhook: str, owner: str, now: float, lease: float) -> bool:
    """Become the one process delivering *webhook* for *lease* seconds (a conditional
    UPDATE: two processes never both succeed)."""
    return conn.execute(update(ENDPOINTS).where(and_(
        ENDPOINTS.c.webhook == webhook, ENDPOINTS.c.next_attempt <= now,
        or_(ENDPOINTS.c.lease_owner.is_(None), ENDPOINTS.c.lease_owner == owner,
            ENDPOINTS.c.lease_until <= now)))
        .values(lease_owner=owner, lease_until=now + lease)).rowcount == 1


def next_deliveries(conn: Connection, webhook: str, limit: int) -> list[WebhookDelivery]:
    return build(WebhookDelivery, conn.execute(
        select(*columns_of(DELIVERIES, WebhookDelivery)).where(DELIVERIES.c.webhook == webhook)
        .order_by(DELIVERIES.c.seq).limit(limit)))


def delivered(conn: Connection, seqs: Sequence[int]) -> None:
    for start in range(0, len(seqs), 500):
        conn.execute(delete(DELIVERIES).where(DELIVERIES.c.seq.in_(seqs[start:start + 500])))


def succeeded(conn: Connection, webhook: str, owner: str) -> int:
    """After deliveries went through: failures reset, lease released; the failures
    count it had."""
    failures = conn.execute(select(ENDPOINTS.c.failures)
                            .where(ENDPOINTS.c.webhook == webhook)).scalar() or 0
    conn.execute(update(ENDPOINTS).where(and_(ENDPOINTS.c.webhook == webhook,
                                              ENDPOINTS.c.lease_owner == owner))
                 .values(failures=0, next_attempt=0.0, lease_owner=None, lease_until=0.0))
    return int(failures)


def failed(conn: Connection, webhook: str, owner: str, seq: int, now: float,
           base_delay: float, max_delay: float, error: str) -> tuple[int, float]:
    """After a failed attempt on delivery *seq*: the webhook waits base * 2^(failures-1)
    seconds (capped) before its next attempt. Answers (failures, delay)."""
    conn.execute(update(DELIVERIES).where(DELIVERIES.c.seq == seq).values(
        attempts=DELIVERIES.c.attempts + 1, last_error=error[:1000]))
    failures = int(conn.execute(select(ENDPOINTS.c.failures)
                                .where(ENDPOINTS.c.webhook == webhook)).scalar() or 0) + 1
    delay = min(base_delay * 2 ** (failures - 1), max_delay)
    conn.execute(update(ENDPOINTS).where(and_(ENDPOINTS.c.webhook == webhook,
                                              ENDPOINTS.c.lease_owner == owner))
                 .values(failures=failures, next_attempt=now + delay, lease_owner=None,
                         lease_until=0.0))
    return failures, delay


def pending_counts(conn: Connection) -> dict[str, int]:
    return {webhook: int(count) for webhook, count in conn.execute(
        select(DELIVERIES.c.webhook, func.count()).group_by(DELIVERIES.c.webhook))}
