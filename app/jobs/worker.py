"""Job workers: ``ConcurrentJobs`` threads polling the jobs table of the index database.

Each worker claims one Pending job at a time (see :func:`jobs_repository.claim_next`),
runs its kind, and settles the row. The claim is a lease: a heartbeat thread renews it
(stamps the rows this process runs) every sixth of ``JobLease`` seconds, and every
process sharing the index puts back to Pending the running jobs whose lease expired
(their process or host died: ``kill -9``, power loss, network partition) or whose
process is a dead PID of this host; another worker then claims and runs the job again
from its start. A clean shutdown asks running jobs to stop and puts them back to Pending
itself. A worker whose lease was taken over while it still ran (a node frozen longer than
the lease) cannot settle the job: :func:`jobs_repository.settle` checks the claimant.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
import uuid
from typing import Any

import orjson

from app.context import ServerContext, blob_deletion
from app.errors import PharosError
from app.index import jobs_repository as jobs
from app.index.db import note_events
from app.index.records import JobRecord
from app.jobs.json import CANCELED_JOB, job_time
from app.jobs.kinds import JobInterrupted, get_kind
from app.jobs.queue import wakeup_event
from app.validation import is_digits

log = logging.getLogger(__name__)

POLL_INTERVAL = 0.5  # seconds between two polls when idle (a submission wakes workers at once)
PROGRESS_INTERVAL = 0.5  # at most two progress writes per second per job
CANCEL_CHECK_INTERVAL = 0.25
SYNC_PROTECTION = 120  # seconds a completed job is kept beyond JobsHistorySize


class Workers:
    """The running worker threads of one process; :meth:`stop` joins them."""

    def __init__(self, context: ServerContext, count: int) -> None:
        self.context = context
        self.identity = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.stopping = threading.Event()
        self.wakeup = wakeup_event(context)
        self.running: set[str] = set()
        # A running job whose heartbeat is older than the lease belongs to a dead process.
        self.lease = float(context.settings.job_lease)
        self.heartbeat_interval = max(0.2, self.lease / 6)
        self._lock = threading.Lock()
        self.threads = [threading.Thread(target=self._work, name=f"pharos-job-{i}", daemon=True)
                        for i in range(count)]
        self.threads.append(threading.Thread(target=self._beat, name="pharos-job-heartbeat",
                                             daemon=True))

    def start(self) -> None:
        self._requeue_at_start()
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.wakeup.set()
        deadline = time.monotonic() + 10
        for thread in self.threads:
            thread.join(timeout=max(0.1, deadline - time.monotonic()))

    # --- crash recovery ---------------------------------------------------------------

    def _requeue_at_start(self) -> None:
        """Jobs left Running by a dead process become Pending again: a process of this host
        that no longer runs (or an earlier incarnation with our PID), or any process whose
        heartbeat stopped. Sibling HTTP worker processes keep theirs."""
        with self.context.db.write() as conn:
            count = jobs.requeue_abandoned(conn, jobs.database_time(conn) - self.lease)
            count += self._requeue_dead_local(conn)
        if count:
            log.warning("Requeued %d job(s) interrupted by a previous stop", count)

    def _requeue_dead_local(self, conn: Any) -> int:
        count = 0
        host = socket.gethostname()
        for row in jobs.list_jobs(conn):
            if row.state not in jobs.ACTIVE_STATES or not row.claimed_by:
                continue
            owner_host, _, rest = row.claimed_by.partition(":")
            pid = rest.partition(":")[0]
            if owner_host != host or not is_digits(pid):
                continue
            dead = (row.claimed_by != self.identity if int(pid) == os.getpid()
                    else not _pid_alive(int(pid)))
            if dead:
                count += jobs.transition(conn, row.id, jobs.ACTIVE_STATES, {
                    "state": jobs.PENDING, "claimed_by": None, "heartbeat": None})
        return count

    def _beat(self) -> None:
        while not self.stopping.wait(self.heartbeat_interval):
            try:
                with self._lock:
                    running = list(self.running)
                with self.context.db.write() as conn:
                    now = jobs.database_time(conn)
                    jobs.heartbeat(conn, running, now)
                    if jobs.requeue_abandoned(conn, now - self.lease):
                        self.wakeup.set()
            except Exception:  # noqa: BLE001 - a lost beat must not kill the thread
                log.exception("Job heartbeat failed")

    # --- the work loop ----------------------------------------------------------------

    def _work(self) -> None:
        while not self.stopping.is_set():
            try:
                row = self._claim()
            except Exception:  # noqa: BLE001 - e.g. database briefly unavailable
                log.exception("Cannot claim a job")
                row = None
            if row is None:
                self.wakeup.wait(POLL_INTERVAL)
                self.wakeup.clear()
                continue
            self._run(row)

    def _claim(self) -> JobRecord | None:
        with self.context.db.write() as conn:
            row = jobs.claim_next(conn, self.identity, jobs.database_time(conn))
        if row is not None:
            with self._lock:
                self.running.add(row.id)
        return row

    def _run(self, row: JobRecord) -> None:
        started = time.monotonic()
        runner = _JobRun(self, row)
        outcome: dict[str, Any]
        try:
            kind = get_kind(row.type)
            if kind is None:
                raise PharosError(f"No job kind is registered under the type {row.type!r}")
            content = kind.run(self.context, orjson.loads(row.payload), runner.progress,
                               runner.should_stop)
            outcome = {"state": jobs.SUCCESS, "progress": 100, "content": orjson.dumps(content),
                       "error_code": 0, "error_details": ""}
        except JobInterrupted:
            outcome = self._interrupted(row.id)
        except PharosError as error:
            log.warning("Job %s (%s) failed: %s", row.id, row.type, error)
            outcome = self._failed(row.id, runner, error.orthanc_code, str(error))
        except Exception as error:  # noqa: BLE001 - a job failure, not a worker failure
            log.error("Job %s (%s) crashed:\n%s", row.id, row.type, traceback.format_exc())
            outcome = self._failed(row.id, runner, -1, str(error))
        runtime = time.monotonic() - started
        done = outcome["state"] in jobs.DONE_STATES
        pruned: list[str] = []
        try:
            with self.context.db.write() as conn:
                settled = jobs.settle(
                    conn, row.id, self.identity, state=outcome["state"],
                    progress=outcome.get("progress"), content=outcome.get("content"),
                    error_code=outcome["error_code"], error_details=outcome["error_details"],
                    completion_time=job_time() if done else None, runtime=runtime)
                if settled and done:  # OnJobSuccess / OnJobFailure (Lua)
                    note_events(conn, [("JobSuccess" if outcome["state"] == jobs.SUCCESS
                                        else "JobFailure", None, row.id)])
                    pruned = jobs.prune_history(conn, self.context.settings.jobs_history_size,
                                                _seconds_ago(SYNC_PROTECTION))
                    blob_deletion.schedule(conn, pruned)  # outputs of forgotten jobs
        finally:
            with self._lock:
                self.running.discard(row.id)
        blob_deletion.delete_scheduled(self.context, pruned)
        if not settled:
            log.warning("Job %s was taken over by another worker; its outcome is dropped", row.id)

    def _failed(self, job_id: str, runner: _JobRun, code: int, details: str) -> dict[str, Any]:
        """A failed run; when a cancel or a pause was asked meanwhile, that wins (the
        failure is most likely the interruption itself)."""
        with self.context.db.read() as conn:
            state = jobs.current_state(conn, job_id)
        if state in (jobs.CANCELLING, jobs.PAUSING):
            return self._interrupted(job_id)
        return {"state": jobs.FAILURE, "progress": None, "content": runner.content,
                "error_code": code, "error_details": details}

    def _interrupted(self, job_id: str) -> dict[str, Any]:
        """The state a job that stopped early settles in: what was asked of it."""
        with self.context.db.read() as conn:
            state = jobs.current_state(conn, job_id)
        if state == jobs.CANCELLING:
            return {"state": jobs.FAILURE, "error_code": CANCELED_JOB, "error_details": ""}
        if state == jobs.PAUSING:
            return {"state": jobs.PAUSED, "error_code": 0, "error_details": ""}
        return {"state": jobs.PENDING, "error_code": 0, "error_details": ""}  # shutdown


class _JobRun:
    """Callbacks given to one run: throttled progress writes and stop checks."""

    def __init__(self, workers: Workers, row: JobRecord) -> None:
        self.workers = workers
        self.job_id = row.id
        self.content: bytes | None = None
        self._last_write = 0.0
        self._last_check = 0.0
        self._stop = False

    def progress(self, fraction: float, content: dict[str, Any] | None = None) -> None:
        if content is not None:
            self.content = orjson.dumps(content)
        now = time.monotonic()
        if now - self._last_write < PROGRESS_INTERVAL and fraction < 1.0:
            return
        self._last_write = now
        percent = max(0, min(100, round(fraction * 100)))
        with self.workers.context.db.write() as conn:
            jobs.update_progress(conn, self.job_id, percent, self.content)

    def should_stop(self) -> bool:
        if self._stop or self.workers.stopping.is_set():
            return True
        now = time.monotonic()
        if now - self._last_check >= CANCEL_CHECK_INTERVAL:
            self._last_check = now
            with self.workers.context.db.read() as conn:
                state = jobs.current_state(conn, self.job_id)
            self._stop = state in (jobs.PAUSING, jobs.CANCELLING)
        return self._stop


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _seconds_ago(seconds: int) -> str:
    from datetime import UTC, datetime, timedelta
    return job_time(datetime.now(UTC) - timedelta(seconds=seconds))


def start_workers(context: ServerContext) -> Workers:
    """Start ConcurrentJobs worker threads; return a handle whose stop() joins them."""
    count = context.settings.concurrent_jobs
    workers = Workers(context, count if count > 0 else (os.cpu_count() or 1))
    workers.start()
    return workers
