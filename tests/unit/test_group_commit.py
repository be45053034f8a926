"""Database.write_grouped: concurrent writes commit together, a failing one fails alone."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from app.index.db import Connection, Database


@pytest.fixture
def database(tmp_path: Path) -> Database:
    db = Database(f"sqlite:///{tmp_path / 'index.sqlite'}")
    with db.write() as conn:
        conn.execute(text("CREATE TABLE t (k TEXT PRIMARY KEY)"))
    yield db
    db.dispose()


def _insert(value: str, seen: list[int] | None = None):  # noqa: ANN202
    def work(conn: Connection) -> str:
        if seen is not None:
            seen.append(id(conn.get_transaction()))
        conn.execute(text("INSERT INTO t (k) VALUES (:k)"), {"k": value})
        return value
    return work


def _rows(db: Database) -> set[str]:
    with db.read() as conn:
        return {row[0] for row in conn.execute(text("SELECT k FROM t"))}


def _queued_behind_a_blocked_leader(db: Database, works: list) -> tuple[list, list]:
    """Run *works* from threads while a first write holds the group: they queue, then
    form the next group together. Answers (results, errors) per work."""
    release = threading.Event()
    entered = threading.Event()

    def blocking(conn: Connection) -> str:
        entered.set()
        release.wait(10)
        conn.execute(text("INSERT INTO t (k) VALUES ('first')"))
        return "first"

    leader = threading.Thread(target=db.write_grouped, args=(blocking,))
    leader.start()
    assert entered.wait(10)
    results: list = [None] * len(works)
    errors: list = [None] * len(works)

    def run(index: int) -> None:
        try:
            results[index] = db.write_grouped(works[index], key=str(index))
        except Exception as error:  # noqa: BLE001 — checked by the test
            errors[index] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(works))]
    for thread in threads:
        thread.start()
    while len(db._group_pending) < len(works):  # all queued behind the leader
        threading.Event().wait(0.01)
    release.set()
    leader.join(10)
    for thread in threads:
        thread.join(10)
    return results, errors


def test_writes_waiting_together_commit_in_one_transaction(database: Database) -> None:
    transactions: list[int] = []
    works = [_insert(f"v{i}", transactions) for i in range(6)]
    results, errors = _queued_behind_a_blocked_leader(database, works)
    assert errors == [None] * 6
    assert results == [f"v{i}" for i in range(6)]
    assert len(set(transactions)) == 1  # one transaction for the six
    assert _rows(database) == {"first"} | {f"v{i}" for i in range(6)}


def test_a_failing_write_fails_alone(database: Database) -> None:
    def broken(conn: Connection) -> str:
        conn.execute(text("INSERT INTO t (k) VALUES ('broken')"))
        raise ValueError("bad input")

    works = [_insert("a"), broken, _insert("b"), _insert("first")]  # the last: a duplicate
    results, errors = _queued_behind_a_blocked_leader(database, works)
    assert results[0] == "a" and results[2] == "b"
    assert isinstance(errors[1], ValueError)
    assert errors[3] is not None  # the primary key is taken: its own error, nobody else's
    assert _rows(database) == {"first", "a", "b"}  # nothing of the failed writes


def test_a_lone_write_commits_at_once(database: Database) -> None:
    assert database.write_grouped(_insert("alone")) == "alone"
    assert _rows(database) == {"alone"}
    assert database._group_leading is False
