"""``/tools/metrics-prometheus``: Orthanc's metrics, then Pharos' own, in Prometheus' text
format (0.0.4).

**Orthanc's** (``OrthancRestSystem.cpp``, ``GetMetricsPrometheus``) come first, named and
shaped as Orthanc prints them — ``name value timestamp-in-ms``, integers without a
decimal point — with a ``# TYPE ... gauge`` line each: ``orthanc_disk_size_mb``,
``orthanc_uncompressed_size_mb``, ``orthanc_count_{patients,studies,series,instances}``,
``orthanc_jobs_{pending,running,completed,success,failed}``, ``orthanc_up_time_s``,
``orthanc_last_change``. They are read from the index at each scrape, so any process
answers the archive's figures. (Orthanc's timers ``orthanc_rest_api_duration_ms``,
``orthanc_store_dicom_duration_ms``... — a maximum over a window, per process — are not
given: the histograms below answer the same questions, summed over the processes.)

**Pharos'** follow, with HELP and TYPE (``prometheus_client`` formats them):

* ``pharos_http_requests_total{method,route,status}`` and the histogram
  ``pharos_http_request_duration_seconds{method,route}``: ``route`` is the route template
  (``/instances/{id}``; ``unmatched`` for a path no route knows), so the series stay few;
* ``pharos_ingest_total{origin,status}``, ``pharos_ingest_bytes_total{origin}``: every
  instance through the one ingest path, by Orthanc's origin (``RestApi``: REST and
  STOW-RS; ``DicomProtocol``: C-STORE, C-MOVE/C-GET retrievals; ``Lua``; ``Plugins``:
  DICOMweb retrievals; ``Unknown``: ``pharos import``) and outcome (``Success``,
  ``AlreadyStored``, ``FilteredOut``, ``Failure``);
* ``pharos_jobs{state}``: jobs by state, from the index;
* ``pharos_storage_bytes``: bytes of the stored DICOM files, from the index;
* ``pharos_webhook_deliveries_total{url,outcome}`` (``delivered``, ``failed``) and
  ``pharos_webhook_pending{url}`` (events waiting, from the index), ``url`` without its
  query string.

The counters are the archive's: each process adds its counts to the index every
:data:`FLUSH_PERIOD` seconds (:mod:`app.context.metrics`), and the scraped process flushes
its own first; another process' last seconds may show at the next scrape. A ``ReadOnly``
server writes nothing: it shows the index's counters plus its own process' counts.

With ``MetricsEnabled`` false (or ``PUT /tools/metrics 0``) nothing is counted and the
answer is empty, as Orthanc's.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from typing import Any, cast

import orjson
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector, CollectorRegistry

from app.context import ServerContext
from app.context import metrics as process_metrics
from app.index import jobs_repository, metrics_repository, repository
from app.services import browse, runtime, webhooks

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"  # Orthanc's MimeType_PrometheusText
FLUSH_PERIOD = 2.0

_MEGA_BYTES = 1024 * 1024
_PENDING = {jobs_repository.PENDING, jobs_repository.RETRY}
_RUNNING = {jobs_repository.RUNNING, jobs_repository.PAUSED, jobs_repository.PAUSING,
            jobs_repository.CANCELLING}


def enabled(context: ServerContext) -> bool:
    return runtime.current(context).metrics_enabled


def prometheus_text(context: ServerContext) -> str:
    """The answer of ``/tools/metrics-prometheus`` (empty when metrics are disabled)."""
    metrics = process_metrics.metrics_of(context)
    metrics.enabled = enabled(context)
    if not metrics.enabled:
        return ""
    process_metrics.flush(context)
    with context.db.read() as conn:
        statistics = browse.global_statistics(conn)
        jobs = jobs_repository.count_by_state(conn)
        counters = metrics_repository.all_counters(conn)
    with context.db.read_log() as conn:
        last_change = repository.last_change_index(conn)
    if context.settings.read_only:
        for key, amount in metrics.snapshot().items():
            counters[key] = counters.get(key, 0.0) + amount
    orthanc = _orthanc_lines(statistics, jobs, last_change, time.time() - metrics.started)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(cast(Collector, _Collector(
        counters, jobs, int(statistics["TotalDiskSize"]),
        webhooks.pending(context) if context.settings.webhooks else {})))
    return orthanc + generate_latest(registry).decode()


def _orthanc_lines(statistics: dict[str, Any], jobs: dict[str, int], last_change: int,
                   up_time: float) -> str:
    size_mb = int(statistics["TotalDiskSize"]) / _MEGA_BYTES
    success, failed = jobs.get(jobs_repository.SUCCESS, 0), jobs.get(jobs_repository.FAILURE, 0)
    values: list[tuple[str, float | int]] = [
        ("orthanc_count_instances", statistics["CountInstances"]),
        ("orthanc_count_patients", statistics["CountPatients"]),
        ("orthanc_count_series", statistics["CountSeries"]),
        ("orthanc_count_studies", statistics["CountStudies"]),
        ("orthanc_disk_size_mb", size_mb),
        ("orthanc_jobs_completed", success + failed),
        ("orthanc_jobs_failed", failed),
        ("orthanc_jobs_pending", sum(n for s, n in jobs.items() if s in _PENDING)),
        ("orthanc_jobs_running", sum(n for s, n in jobs.items() if s in _RUNNING)),
        ("orthanc_jobs_success", success),
        ("orthanc_last_change", last_change),
        ("orthanc_uncompressed_size_mb", size_mb),
        ("orthanc_up_time_s", int(up_time)),
    ]
    stamp = int(time.time() * 1000)
    return "".join(f"# TYPE {name} gauge\n{name} {_format(value)} {stamp}\n"
                   for name, value in values)


def _format(value: float | int) -> str:
    """Orthanc's ``FormatValue``: integers as integers, floats as ``lexical_cast`` does."""
    return str(value) if isinstance(value, int) else f"{value:.9g}"


class _Collector:
    """Pharos' families from the archive's counters and the index's gauges."""

    def __init__(self, counters: dict[tuple[str, str], float], jobs: dict[str, int],
                 storage_bytes: int, webhooks_pending: dict[str, int]) -> None:
        self.counters = counters
        self.jobs = jobs
        self.storage_bytes = storage_bytes
        self.webhooks_pending = webhooks_pending

    def collect(self) -> Iterator[object]:
        series: defaultdict[str, list[tuple[dict[str, str], float]]] = defaultdict(list)
        for (name, labels), value in sorted(self.counters.items()):
            series[name].append((orjson.loads(labels), value))
        yield _counter(process_metrics.HTTP_REQUESTS, "HTTP requests answered, by route "
                       "template, method and status", ("method", "route", "status"),
                       series[process_metrics.HTTP_REQUESTS])
        yield _histogram(process_metrics.HTTP_DURATION, "Time to answer an HTTP request, "
                         "until its last byte was sent", series)
        yield _counter(process_metrics.INGESTS, "Instances through the ingest path, by "
                       "origin and outcome", ("origin", "status"),
                       series[process_metrics.INGESTS])
        yield _counter(process_metrics.INGEST_BYTES, "Bytes of the instances stored, by "
                       "origin", ("origin",), series[process_metrics.INGEST_BYTES])
        jobs = GaugeMetricFamily("pharos_jobs", "Jobs by state", labels=["state"])
        for state, count in sorted(self.jobs.items()):
            jobs.add_metric([state], count)
        yield jobs
        yield GaugeMetricFamily("pharos_storage_bytes", "Bytes of the stored DICOM files",
                                value=self.storage_bytes)
        yield _counter(webhooks.DELIVERIES_METRIC, "Webhook deliveries, by webhook URL "
                       "(without query) and outcome", ("url", "outcome"),
                       series[webhooks.DELIVERIES_METRIC])
        waiting = GaugeMetricFamily("pharos_webhook_pending", "Webhook events not "
                                    "delivered yet", labels=["url"])
        for url, count in sorted(self.webhooks_pending.items()):
            waiting.add_metric([url], count)
        yield waiting


def _counter(name: str, documentation: str, label_names: tuple[str, ...],
             samples: list[tuple[dict[str, str], float]]) -> CounterMetricFamily:
    family = CounterMetricFamily(name.removesuffix("_total"), documentation,
                                 labels=list(label_names))
    for labels, value in samples:
        family.add_metric([labels.get(n, "") for n in label_names], value)
    return family


def _histogram(name: str, documentation: str,
               series: dict[str, list[tuple[dict[str, str], float]]]) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, documentation, labels=["method", "route"])
    buckets: defaultdict[tuple[str, str], list[tuple[str, float]]] = defaultdict(list)
    for labels, value in series.get(name + "_bucket", []):
        buckets[(labels["method"], labels["route"])].append((labels["le"], value))
    sums = {(labels["method"], labels["route"]): value
            for labels, value in series.get(name + "_sum", [])}
    for key, found in sorted(buckets.items()):
        found.sort(key=lambda bucket: float(bucket[0]))
        family.add_metric(list(key), buckets=found, sum_value=sums.get(key, 0.0))
    return family


class MetricsFlusher:
    """A daemon thread of every writing server process: adds the process' counts to the
    archive's every :data:`FLUSH_PERIOD` seconds and follows ``MetricsEnabled``."""

    def __init__(self, context: ServerContext, period: float = FLUSH_PERIOD) -> None:
        self.context = context
        self.period = period
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pharos-metrics", daemon=True)

    def start(self) -> MetricsFlusher:
        process_metrics.metrics_of(self.context).enabled = enabled(self.context)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._flush()  # the last counts of a process that stops cleanly

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self._flush()

    def _flush(self) -> None:
        try:
            process_metrics.metrics_of(self.context).enabled = enabled(self.context)
            process_metrics.flush(self.context)
        except Exception:  # noqa: BLE001 — counts are kept for the next flush
            log.warning("Could not add this process' metrics to the index; retried",
                        exc_info=True)
