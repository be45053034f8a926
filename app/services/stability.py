"""Stability: a resource with no new instance for StableAge seconds becomes stable."""

from __future__ import annotations

import logging
import threading

from app.index import repository
from app.services.context import ServerContext
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
