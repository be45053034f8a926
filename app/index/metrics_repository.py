"""SQL of the archive's Prometheus counters (``metric_counters``, see models.MetricCounter)."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Connection, Table, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.index import models

METRIC_COUNTERS: Table = models.MetricCounter.__table__  # type: ignore[assignment]


def add(conn: Connection, deltas: Mapping[tuple[str, str], float]) -> None:
    """Add each delta to its series ((name, labels JSON) -> amount), creating it at 0."""
    rows = [{"name": name, "labels": labels, "value": value}
            for (name, labels), value in sorted(deltas.items())]  # sorted: no PG deadlock
    if not rows:
        return
    dialect = postgresql_insert if conn.dialect.name == "postgresql" else sqlite_insert
    statement = dialect(METRIC_COUNTERS)
    conn.execute(statement.on_conflict_do_update(
        index_elements=[METRIC_COUNTERS.c.name, METRIC_COUNTERS.c.labels],
        set_={"value": METRIC_COUNTERS.c.value + statement.excluded.value}), rows)


def all_counters(conn: Connection) -> dict[tuple[str, str], float]:
    return {(name, labels): float(value) for name, labels, value in conn.execute(
        select(METRIC_COUNTERS.c.name, METRIC_COUNTERS.c.labels, METRIC_COUNTERS.c.value))}
