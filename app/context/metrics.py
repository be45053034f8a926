"""What one server process counts for ``/tools/metrics-prometheus``.

Counters live in memory (a dict increment under a lock: ~1 µs per record) and are added to
the index's ``metric_counters`` rows every few seconds by :func:`flush` (called by the
flusher thread of :mod:`app.services.metrics` and by a scrape, first), so that the figures a
scrape answers are the archive's, summed over every HTTP worker process and every host
sharing the index, not one worker's. A process that dies loses at most its last few
seconds of counts; nothing else depends on them.

Series names follow Prometheus' conventions (base units, ``_total`` for counters); the
histogram buckets are stored cumulative, as the exposition format shows them.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
import time
from collections import defaultdict

import orjson

from app.context import ServerContext
from app.index import metrics_repository

log = logging.getLogger(__name__)

CONTEXT_KEY = "metrics.process"

HTTP_REQUESTS = "pharos_http_requests_total"
HTTP_DURATION = "pharos_http_request_duration_seconds"
INGESTS = "pharos_ingest_total"
INGEST_BYTES = "pharos_ingest_bytes_total"
# Prometheus' default buckets: requests from a millisecond (a cached look-up) to a
# ten-second archive; slower ones fall in +Inf.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def labels_key(**labels: str) -> str:
    """The canonical text of a label set (the ``labels`` column)."""
    return orjson.dumps(labels, option=orjson.OPT_SORT_KEYS).decode()


@functools.lru_cache(maxsize=4096)
def _http_series(method: str, route: str, status: int) -> tuple[
        tuple[str, str], tuple[tuple[float, tuple[str, str]], ...], tuple[str, str]]:
    """The series one request adds to (requests, cumulative buckets, sum), computed once
    per method, route template and status (a few hundred in all)."""
    buckets = tuple((bound, (HTTP_DURATION + "_bucket",
                             labels_key(method=method, route=route, le=repr(bound))))
                    for bound in DURATION_BUCKETS)
    infinite = (HTTP_DURATION + "_bucket", labels_key(method=method, route=route, le="+Inf"))
    return ((HTTP_REQUESTS, labels_key(method=method, route=route, status=str(status))),
            (*buckets, (math.inf, infinite)),
            (HTTP_DURATION + "_sum", labels_key(method=method, route=route)))


class ProcessMetrics:
    """This process' counts since its last flush: (series name, labels JSON) -> amount."""

    def __init__(self) -> None:
        self.enabled = True  # MetricsEnabled, refreshed by the flusher (and PUT /tools/metrics)
        self.started = time.time()
        self._lock = threading.Lock()
        self._pending: defaultdict[tuple[str, str], float] = defaultdict(float)

    def add(self, name: str, labels: str, amount: float = 1.0) -> None:
        if not self.enabled:
            return
        with self._lock:
            self._pending[(name, labels)] += amount

    def http_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """One HTTP request answered: *route* is the template (``/instances/{id}``)."""
        if not self.enabled:
            return
        requests, buckets, total = _http_series(method, route, status)
        with self._lock:
            pending = self._pending
            pending[requests] += 1
            for bound, bucket in buckets:
                if seconds <= bound:
                    pending[bucket] += 1
            pending[total] += seconds

    def ingest(self, origin: str, status: str, size: int) -> None:
        """One instance through the ingest path (Success, AlreadyStored, FilteredOut,
        Failure), by Orthanc's RequestOrigin (RestApi, DicomProtocol, Lua, Plugins...)."""
        if not self.enabled:
            return
        with self._lock:
            self._pending[(INGESTS, labels_key(origin=origin, status=status))] += 1
            if status == "Success":
                self._pending[(INGEST_BYTES, labels_key(origin=origin))] += size

    def take(self) -> dict[tuple[str, str], float]:
        with self._lock:
            pending, self._pending = self._pending, defaultdict(float)
        return dict(pending)

    def snapshot(self) -> dict[tuple[str, str], float]:
        """The counts not flushed yet, left in place (a ReadOnly server never flushes)."""
        with self._lock:
            return dict(self._pending)

    def give_back(self, deltas: dict[tuple[str, str], float]) -> None:
        """Counts a failed flush could not write: kept for the next one."""
        with self._lock:
            for key, amount in deltas.items():
                self._pending[key] += amount


def metrics_of(context: ServerContext) -> ProcessMetrics:
    found = context.extras.get(CONTEXT_KEY)
    if found is None:
        found = context.extras.setdefault(CONTEXT_KEY, ProcessMetrics())
    return found  # type: ignore[return-value]


def flush(context: ServerContext) -> None:
    """Add this process' counts to the archive's (one short write transaction). On a
    read-only server the counts stay in the process (nothing may be written)."""
    metrics = metrics_of(context)
    if context.settings.read_only:
        return
    deltas = metrics.take()
    if not deltas:
        return
    try:
        with context.db.write() as conn:
            metrics_repository.add(conn, deltas)
    except Exception:
        metrics.give_back(deltas)
        raise
