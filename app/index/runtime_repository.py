"""SQL of the runtime settings (one ``name -> value`` row each)."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Connection, Table, select
from sqlalchemy.dialects import postgresql, sqlite

from app.index import models

RUNTIME_SETTINGS: Table = models.RuntimeSetting.__table__  # type: ignore[assignment]


def read_all(conn: Connection) -> dict[str, str]:
    table = RUNTIME_SETTINGS
    return {row.name: row.value for row in conn.execute(select(table.c.name, table.c.value))}


def put(conn: Connection, values: Mapping[str, str]) -> None:
    """Insert or replace each value (one upsert: two processes may write at once)."""
    if not values:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(RUNTIME_SETTINGS)
    statement = statement.on_conflict_do_update(
        index_elements=[RUNTIME_SETTINGS.c.name], set_={"value": statement.excluded.value})
    conn.execute(statement, [{"name": k, "value": v} for k, v in values.items()])
