"""Engine creation and schema migration (Alembic, applied at start)."""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, TypeVar

# Connection is re-exported: the transaction handle the layers above pass to the
# repositories without importing SQLAlchemy themselves.
from sqlalchemy import Connection as Connection
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.pool import NullPool

from app.errors import BadRequest, ReadOnlyMode

log = logging.getLogger(__name__)

T = TypeVar("T")

# Inside the package, so that every install (not only an editable one) ships them.
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def ensure_sqlite_directory(url: str) -> None:
    """Create the folder of a SQLite index file, as Orthanc creates its IndexDirectory."""
    if is_sqlite(url):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)


def make_engine(url: str) -> Engine:
    """An engine tuned per backend: SQLite in WAL mode with foreign keys, PostgreSQL pooled."""
    if is_sqlite(url):
        ensure_sqlite_directory(url)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                               pool_size=8, max_overflow=16)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy's BEGIN start transactions (pysqlite's own handling is off).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints, safe in WAL
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA cache_size=-65536")
            cursor.execute("PRAGMA temp_store=MEMORY")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            # IMMEDIATE takes the write lock up front: no deadlock upgrading a read lock.
            conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.info.get("write") else "BEGIN")

        return engine
    engine = create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)

    @event.listens_for(engine, "handle_error")
    def _nul_characters(context: Any) -> None:
        # PostgreSQL text cannot hold U+0000 (SQLite's can): a client's string carrying
        # one (an identifier, a search value, a name) can neither be looked up nor stored.
        # The client's error, answered 400 (nothing was written: the transaction rolls
        # back), not a database failure.
        if "cannot contain NUL (0x00)" in str(context.original_exception):
            raise BadRequest("A text value holds a NUL character (0x00), which the "
                             "PostgreSQL index cannot store nor search for")

    return engine


def check_schema(url: str) -> None:
    """For a read-only server (``ReadOnly``), which never migrates: the index must already
    be at the latest Alembic revision. Raises ValueError saying what to do otherwise."""
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(config).get_current_head()
    path = url.split("///", 1)[-1] if is_sqlite(url) else ""
    if path and path != ":memory:" and not Path(path).is_file():  # never create it
        raise ValueError(f"the index database {path} does not exist; a server with "
                         "ReadOnly never creates or upgrades it: start a writing server "
                         "(or `pharos migrate`) on it first")
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()
    if current != head:
        state = "is empty" if current is None else f"is at revision {current}, not {head}"
        raise ValueError(f"the index database {state}; a server with ReadOnly never "
                         "creates or upgrades it: start a writing server (or `pharos "
                         "migrate`) on it first")


# pg_advisory_xact_lock key of schema migrations (the bytes "pharos-m" as a 64-bit integer).
MIGRATION_LOCK_KEY = int.from_bytes(b"pharos-m", "big", signed=True)


def migrate(url: str) -> None:
    """Bring the schema to the latest Alembic revision.

    Several nodes may start at once on one empty PostgreSQL database: each migrates in
    one transaction (PostgreSQL's DDL is transactional) that first takes an advisory lock,
    so the first creates the schema and the others, let through once it committed, find
    it at the latest revision and do nothing. (Several nodes on SQLite are not a supported
    deployment: the processes of one ``pharos serve`` migrate in the parent, once.)"""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["configure_logger"] = False
    ensure_sqlite_directory(url)
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")
            before = _revision(connection)
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
            after = _revision(connection)
    finally:
        engine.dispose()
    if before != after:  # one line instead of Alembic's one per revision
        log.info("Index schema %s %s", f"upgraded from {before} to" if before else
                 "created at", after)


def _revision(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext
    return MigrationContext.configure(connection).get_current_revision()


def url_without_password(url: str) -> str:
    """The database URL to show in logs: its password hidden."""
    from sqlalchemy.engine import make_url
    return make_url(url).render_as_string(hide_password=True)


def prepare_index(url: str, *, read_only: bool) -> None:
    """Migrate the index at *url* (check it is at the latest schema when *read_only*): a
    bad URL, an unsupported or unreachable database is a ``ValueError`` whose message is
    one line for the operator (``pharos serve`` prints it)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        raise ValueError(f"DatabaseUrl {url[:80]!r} is not a database URL (e.g. "
                         "postgresql+psycopg://user@host/db): fix Pharos.DatabaseUrl or "
                         "PHAROS_DATABASE_URL") from None
    try:
        check_schema(url) if read_only else migrate(url)
    except ValueError:  # ReadOnly over an index that is not at the latest schema
        raise
    except NoSuchModuleError as error:
        raise ValueError(f"DatabaseUrl {shown}: unsupported database ({error}); use "
                         "sqlite:/// or postgresql+psycopg://") from None
    except DBAPIError as error:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()
        raise ValueError(f"the index database {shown} cannot be used: "
                         f"{reason[0] if reason else type(error).__name__} (check that "
                         "it runs and accepts this user, or fix Pharos.DatabaseUrl / "
                         "PHAROS_DATABASE_URL)") from None


class _FileLock:
    """An exclusive ``flock`` on a file beside the SQLite index.

    Writers of several processes queue in the kernel and are woken the moment the lock
    is free; left to SQLite's busy handler they would sleep and retry (1, 2, 5, 10 ms...),
    which halves the throughput of two HTTP processes ingesting at once.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: int | None = None

    def __enter__(self) -> None:
        import fcntl
        if self._handle is None:
            self._handle = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self._handle, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        import fcntl
        assert self._handle is not None
        fcntl.flock(self._handle, fcntl.LOCK_UN)


# (change type, level, public ID): Orthanc's ServerIndexChange. Change types are those of
# /changes plus the ones Orthanc signals without logging them ("Deleted").
IndexEvent = tuple[str, Any, str]
EVENTS_KEY = "pharos.events"


def note_events(conn: Connection, events: Iterable[IndexEvent]) -> None:
    """Record events of the current write transaction; dispatched only if it commits."""
    pending = conn.info.get(EVENTS_KEY)
    if pending is not None:
        pending.extend(events)


BEFORE_COMMIT_KEY = "pharos.before_commit"
# Keys of ``conn.info`` starting with this live as long as one write transaction: they are
# removed when it ends, committed or not (``conn.info`` outlives it, with the pooled
# connection).
TRANSACTION_SCOPED_PREFIX = "pharos.tx."


def _forget_transaction_state(connection: Connection) -> None:
    connection.info.pop(EVENTS_KEY, None)
    connection.info.pop(BEFORE_COMMIT_KEY, None)
    for key in [k for k in connection.info if isinstance(k, str)
                and k.startswith(TRANSACTION_SCOPED_PREFIX)]:
        del connection.info[key]


def before_commit(conn: Connection, name: str, work: Callable[[Connection], None]) -> bool:
    """Run ``work(conn)`` once at the end of the current write transaction of
    :meth:`Database.write`, just before it commits (a later registration under the same
    *name* replaces it). False when *conn* is not such a transaction: the caller then
    does the work at once."""
    pending = conn.info.get(BEFORE_COMMIT_KEY)
    if pending is None:
        return False
    pending[name] = work
    return True


def _run_before_commit(connection: Connection) -> None:
    for work in connection.info.pop(BEFORE_COMMIT_KEY, {}).values():
        work(connection)


_TRANSIENT_STATES = {"40P01", "40001", "55P03"}  # deadlock, serialization, lock timeout
_INTEGRITY_RACES = {"23505", "23503"}  # unique violation, foreign key violation


def _sqlstate(error: DBAPIError) -> str | None:
    original = getattr(error, "orig", None)
    return getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)


def is_retryable(error: DBAPIError, integrity_races: bool = False) -> bool:
    """Whether a failed write transaction may succeed when run again (see
    :meth:`Database.write_retrying`)."""
    state = _sqlstate(error)
    if state in _TRANSIENT_STATES or (integrity_races and state in _INTEGRITY_RACES):
        return True
    if isinstance(error, OperationalError) and "database is locked" in str(error):
        return True
    return bool(integrity_races and isinstance(error, IntegrityError) and state is None
                and "UNIQUE constraint failed" in str(error))


class _GroupMember:
    """One ``write_grouped`` call waiting for its group's commit (or its promotion)."""

    __slots__ = ("work", "key", "woken", "promoted", "finished", "value", "error")

    def __init__(self, work: Callable[[Connection], Any], key: str) -> None:
        self.work = work
        self.key = key
        self.woken = threading.Event()
        self.promoted = False  # woken to lead the next group, not finished
        self.finished = False
        self.value: Any = None
        self.error: BaseException | None = None

    def finish(self, value: Any = None, error: BaseException | None = None) -> None:
        self.value, self.error, self.finished = value, error, True
        self.woken.set()

    def outcome(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.value


# Writes of one group commit at most: a larger group would keep its first members waiting
# for the statements of the last ones.
GROUP_LIMIT = 64


class Database:
    """The engine plus the write discipline: one writer at a time on SQLite (a thread
    lock within the process, a file lock between processes)."""

    def __init__(self, url: str, *, read_only: bool = False) -> None:
        self.url = url
        self.read_only = read_only  # ReadOnly: every write transaction is refused
        self.engine = make_engine(url)
        self.sqlite = is_sqlite(url)
        # Same pool; the level is set per checkout and reset when the connection returns.
        self._reader = self.engine if self.sqlite else \
            self.engine.execution_options(isolation_level="REPEATABLE READ")
        self._write_lock = threading.Lock() if self.sqlite else None
        path = url.split("///", 1)[-1] if self.sqlite else ""
        self._file_lock = _FileLock(Path(path + ".writelock")) \
            if self.sqlite and path and path != ":memory:" else None
        self._listeners: list[Callable[[list[IndexEvent]], None]] = []
        self._commit_hooks: list[Callable[[Connection, list[IndexEvent]], None]] = []
        self._group_lock = threading.Lock()
        self._group_pending: list[_GroupMember] = []
        self._group_leading = False
        # SQLite reads run on the event loop (see inline_reads): the connection each such
        # thread keeps, and all of them (closed with the engine).
        self._inline = threading.local()
        self._inline_connections: list[Connection] = []

    @contextmanager
    def inline_reads(self) -> Iterator[None]:
        """Within this block, :meth:`read` on this thread uses a connection the thread
        keeps for itself instead of one of the pool.

        For a short read run on the event loop (SQLite only): it never waits for a
        pooled connection, which threads blocked on the loop might hold (a streamed
        answer), and it skips the pool's check-out and reset. A read nested in another
        one gets a pooled connection as usual."""
        if not self.sqlite:
            raise RuntimeError("inline reads are for a local SQLite index")
        previous = getattr(self._inline, "enabled", False)
        self._inline.enabled = True
        try:
            yield
        finally:
            self._inline.enabled = previous

    @contextmanager
    def _inline_read(self) -> Iterator[Connection]:
        local = self._inline
        connection = getattr(local, "connection", None)
        if connection is None or connection.closed:
            connection = local.connection = self.engine.connect()
            with self._group_lock:
                self._inline_connections.append(connection)
        local.busy = True
        try:
            with connection.begin():  # BEGIN (a snapshot), then COMMIT of nothing
                yield connection
        finally:
            local.busy = False

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction that sees one snapshot of the index from its first statement
        to its end, whatever commits meanwhile: an answer built from several statements
        (a find's rows, then their parents, children, labels...) is consistent, and a
        resource deleted during it is either wholly in the answer or wholly absent. SQLite
        gives that in WAL mode (a read transaction keeps its snapshot); PostgreSQL's
        default, READ COMMITTED, takes a new snapshot per statement, hence REPEATABLE
        READ (a read-only transaction there never fails to serialize)."""
        local = self._inline
        if getattr(local, "enabled", False) and not getattr(local, "busy", False):
            with self._inline_read() as connection:
                yield connection
            return
        with self._reader.connect() as connection:
            yield connection

    @contextmanager
    def read_log(self) -> Iterator[Connection]:
        """A read of the change log (``/changes``, its stream): on PostgreSQL in READ
        COMMITTED, not in the snapshot of :meth:`read`. The log's readers first wait,
        under a lock, for the writers that are committing changes
        (``repository._wait_for_committing_changes``); a REPEATABLE READ snapshot would
        be taken by that very statement, before the wait, and miss what those writers
        commit while the sequence (``Last``) already counts it: a poller following
        ``since=Last`` would skip those changes for good. Every statement after the lock
        sees every change committed before it, and none can be added until the read ends."""
        if self.sqlite:
            with self.read() as connection:
                yield connection
        else:
            with self.engine.connect() as connection:
                yield connection

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction that commits on success and rolls back on error; after a commit,
        the events it noted (:func:`note_events`) go to the listeners. Refused with
        ``ReadOnlyMode`` when the server runs with ``ReadOnly`` (Orthanc 1.12.5 refuses
        read-write transactions the same way), whatever the door."""
        if self.read_only:
            raise ReadOnlyMode("Pharos runs with \"ReadOnly\": the index cannot be modified")
        events: list[IndexEvent] = []
        if self._write_lock is None:
            with self.engine.begin() as connection:
                connection.info[EVENTS_KEY] = events
                connection.info[BEFORE_COMMIT_KEY] = {}
                try:
                    yield connection
                    self._before_commit(connection, events)
                    _run_before_commit(connection)  # last: it may take the changes lock
                finally:
                    _forget_transaction_state(connection)
        else:
            with self._write_lock, self._file_lock or nullcontext(), \
                    self.engine.connect() as connection:
                connection.info["write"] = True
                connection.info[EVENTS_KEY] = events
                connection.info[BEFORE_COMMIT_KEY] = {}
                try:
                    with connection.begin():
                        yield connection
                        self._before_commit(connection, events)
                        _run_before_commit(connection)
                finally:
                    connection.info["write"] = False
                    _forget_transaction_state(connection)
        if events:
            self._dispatch(events)

    def write_retrying(self, work: Callable[[Connection], T], *, attempts: int = 6,
                       integrity_races: bool = False) -> T:
        """``work(conn)`` in a write transaction, run again from the start when the database
        says the transaction lost a race it can win on a second try: a deadlock or a
        serialization failure (PostgreSQL 40P01, 40001, 55P03), a busy SQLite; and, with
        *integrity_races*, a unique or foreign-key violation (23505, 23503: another writer
        created or deleted the same row in between; the retry sees what it committed).
        Each attempt is atomic, so a retry never half-applies anything; *work* must only
        touch the database (or be safe to repeat)."""
        for attempt in range(attempts):
            try:
                with self.write() as connection:
                    return work(connection)
            except DBAPIError as error:
                if attempt == attempts - 1 or not is_retryable(error, integrity_races):
                    raise
                log.info("Write transaction lost a race (%s), attempt %d of %d",
                         _sqlstate(error) or type(error).__name__, attempt + 2, attempts)
                time.sleep(random.uniform(0.005, 0.05) * (attempt + 1))
        raise AssertionError("unreachable")

    def write_grouped(self, work: Callable[[Connection], T], *, key: str = "") -> T:
        """``write_retrying(work, integrity_races=True)``, committed together with the
        writes other threads of this process ask for at the same moment (group commit).

        The first caller with no group in progress leads: it takes every write waiting
        (its own included, at most GROUP_LIMIT), runs them in one transaction (in the
        order of their *key*: on PostgreSQL, per-patient locks are then always taken in
        the same order), commits once, and wakes their callers; whoever arrived
        meanwhile waits, and the first of them leads the next group. A lone writer pays
        nothing more; under load, one commit (one WAL append on SQLite, one WAL flush on
        PostgreSQL) and one lock hand-over serve a whole group. Each caller returns only
        once the transaction holding its write has committed: as durable as
        ``write_retrying``. If any write of a group fails, or the commit does, nothing of
        the group is kept and each of its writes runs again alone (``write_retrying``),
        so one bad write fails its own caller only. *work* must only touch the database.
        """
        member = _GroupMember(work, key)
        with self._group_lock:
            self._group_pending.append(member)
            leading = not self._group_leading
            self._group_leading = True
        while not leading:
            member.woken.wait()
            if member.finished:
                return member.outcome()  # type: ignore[no-any-return]
            member.woken.clear()  # promoted: lead the next group
            leading = True
        try:
            with self._group_lock:
                group = self._group_pending[:GROUP_LIMIT]
                del self._group_pending[:GROUP_LIMIT]
            self._commit_group(group)
        finally:
            with self._group_lock:
                if self._group_pending:  # hand over to the first one waiting
                    successor = self._group_pending[0]
                    successor.promoted = True
                    successor.woken.set()
                else:
                    self._group_leading = False
        return member.outcome()  # type: ignore[no-any-return]

    def _commit_group(self, group: list[_GroupMember]) -> None:
        if len(group) > 1:
            values: list[Any] = []
            try:
                with self.write() as connection:
                    for member in sorted(group, key=lambda m: m.key):
                        values.append((member, member.work(connection)))
            except BaseException:  # noqa: BLE001 — each write runs again alone below
                log.debug("A group of %d writes failed; each runs alone", len(group),
                          exc_info=True)
            else:
                for member, value in values:
                    member.finish(value)
                return
        for member in group:
            try:
                member.finish(self.write_retrying(member.work, integrity_races=True))
            except BaseException as error:  # noqa: BLE001 — raised in its caller's thread
                member.finish(error=error)

    def add_commit_hook(self, hook: Callable[[Connection, list[IndexEvent]], None]) -> None:
        """Call *hook* inside every write transaction that noted events, just before it
        commits: what it writes (e.g. webhook deliveries) commits with the events or not
        at all. It must only write to the index, and quickly; raising fails the write."""
        self._commit_hooks.append(hook)

    def remove_commit_hook(self, hook: Callable[[Connection, list[IndexEvent]], None]) -> None:
        if hook in self._commit_hooks:
            self._commit_hooks.remove(hook)

    def _before_commit(self, connection: Connection, events: list[IndexEvent]) -> None:
        if events:
            for hook in list(self._commit_hooks):
                hook(connection, events)

    def add_listener(self, listener: Callable[[list[IndexEvent]], None]) -> None:
        """Call *listener* with the events of every committed write transaction (scripting
        callbacks: OnStable*, OnDeleted*, OnUpdated*). It must return quickly."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[list[IndexEvent]], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _dispatch(self, events: list[IndexEvent]) -> None:
        for listener in list(self._listeners):
            try:
                listener(events)
            except Exception:  # noqa: BLE001 — a listener never fails a committed write
                log.exception("Index event listener failed")

    def dispose(self) -> None:
        with self._group_lock:
            inline, self._inline_connections = self._inline_connections, []
        for connection in inline:
            connection.close()
        self.engine.dispose()
