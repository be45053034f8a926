"""Stability: a resource with no new instance for StableAge seconds becomes stable."""

from __future__ import annotations

import logging
import threading
from typing import IO

from app.config import Settings
from app.context import ServerContext
from app.index import repository
from app.timeutil import now_stamp, stamp_seconds_ago

log = logging.getLogger(__name__)


def check_stability(context: ServerContext) -> int:
    with context.db.write() as conn:
        return repository.mark_stable(conn, stamp_seconds_ago(context.settings.stable_age),
                                      now_stamp())


class StabilityMonitor:
    """A daemon thread that checks stability every second (Orthanc's period too)."""

    def __init__(self, context: ServerContext, period: float = 1.0) -> None:
        self.context = context
        self.period = period
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pharos-stability", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            try:
                check_stability(self.context)
            except Exception:  # noqa: BLE001 — keep monitoring through transient DB errors
                log.exception("Stability check failed")


class ProcessLeadership:
    """An exclusive lock file in IndexDirectory: the process holding it leads.

    Several worker processes of one server share the index; only one may listen on the
    DICOM port and run the stability monitor. The lock is released by the OS if the
    process dies. (Servers on several hosts sharing one PostgreSQL each have a leader:
    the DIMSE ports are per host, and stability marking is idempotent.)
    """

    def __init__(self, settings: Settings) -> None:
        self.path = settings.index_path / ".pharos-leader.lock"
        self._file: IO[bytes] | None = None

    def acquire(self) -> bool:
        import fcntl
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "ab")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._file = handle
        return True

    def release(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
