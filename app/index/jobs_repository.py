"""SQL of the durable jobs queue (Orthanc's ``/jobs``).

A job row goes Pending -> Running -> Success | Failure, may be Paused (from Pending or
Running) and resumed, and a Failure may be resubmitted. Two transient states record a
request made to a running job: ``Pausing`` and ``Cancelling`` (shown as ``Running``); the
worker that runs the job sees them through its cancel check and settles the final state.

Claiming is one transaction: on PostgreSQL ``SELECT ... FOR UPDATE SKIP LOCKED`` lets
several processes poll the same table without ever taking the same row; on SQLite the
caller holds the database's single write lock (``BEGIN IMMEDIATE``), which serializes
claims just as well.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Table,
    and_,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)

from app.index import models
from app.index.records import JobOutput, JobRecord, build, build_one, columns_of

JOBS: Table = models.Job.__table__  # type: ignore[assignment]

PENDING, RUNNING, SUCCESS, FAILURE, PAUSED, RETRY = (
    "Pending", "Running", "Success", "Failure", "Paused", "Retry")
PAUSING, CANCELLING = "Pausing", "Cancelling"
ACTIVE_STATES = (RUNNING, PAUSING, CANCELLING)
DONE_STATES = (SUCCESS, FAILURE)


def database_time(conn: Connection) -> float:
    """Now, in seconds since the epoch, by the clock of the database server on PostgreSQL:
    heartbeats and lease expiries of processes on several hosts are then compared on one
    clock, whatever the hosts' clock skew. SQLite is on this host: its clock is ours."""
    if conn.dialect.name == "postgresql":
        return float(conn.execute(select(func.extract(
            "epoch", func.clock_timestamp()))).scalar_one())
    return time.time()


def insert_job(conn: Connection, *, job_id: str, job_type: str, priority: int, payload: bytes,
               content: bytes, creation_time: str, user_data: bytes | None = None) -> None:
    """Add a Pending job at the end of the submission order (*user_data*: the JSON of the
    client's ``UserData``, None when it gave none)."""
    seq = int(conn.execute(select(func.coalesce(func.max(JOBS.c.seq), 0))).scalar_one()) + 1
    conn.execute(insert(JOBS).values(
        id=job_id, seq=seq, type=job_type, state=PENDING, priority=priority, payload=payload,
        content=content, progress=0, error_code=0, error_description="",
        creation_time=creation_time, completion_time=None, effective_runtime=0.0,
        claimed_by=None, heartbeat=None, output_key=None, user_data=user_data))


_COLUMNS = columns_of(JOBS, JobRecord)


def get_job(conn: Connection, job_id: str) -> JobRecord | None:
    return build_one(JobRecord, conn.execute(select(*_COLUMNS).where(JOBS.c.id == job_id)).first())


def list_jobs(conn: Connection) -> list[JobRecord]:
    """Every job, in submission order."""
    return build(JobRecord, conn.execute(select(*_COLUMNS).order_by(JOBS.c.seq)))


def claim_next(conn: Connection, worker: str, now: float) -> JobRecord | None:
    """Take the pending job of highest priority (then oldest) and mark it Running for *worker*.

    Must run inside a write transaction. ``FOR UPDATE SKIP LOCKED`` is rendered on
    PostgreSQL only (SQLite ignores it; there the write lock serializes claimers).
    """
    query = (select(JOBS.c.id).where(JOBS.c.state == PENDING)
             .order_by(JOBS.c.priority.desc(), JOBS.c.seq).limit(1)
             .with_for_update(skip_locked=True))
    job_id = conn.execute(query).scalar()
    if job_id is None:
        return None
    claimed = conn.execute(update(JOBS).where(and_(JOBS.c.id == job_id, JOBS.c.state == PENDING))
                           .values(state=RUNNING, claimed_by=worker, heartbeat=now,
                                   error_code=0, error_description=""))
    if claimed.rowcount != 1:
        return None
    return get_job(conn, job_id)


def heartbeat(conn: Connection, job_ids: Sequence[str], now: float) -> None:
    """Tell other processes the given running jobs are alive."""
    if job_ids:
        conn.execute(update(JOBS).where(and_(JOBS.c.id.in_(list(job_ids)),
                                             JOBS.c.state.in_(ACTIVE_STATES)))
                     .values(heartbeat=now))


def requeue_abandoned(conn: Connection, older_than: float | None) -> int:
    """Put running jobs back to Pending: all of them (``None``) or those whose heartbeat
    stopped before *older_than* (their process died). Paused requests become Paused and
    cancel requests Pending (the cancel is then lost, as if it came after the crash)."""
    condition: ColumnElement[bool] = JOBS.c.state.in_(ACTIVE_STATES)
    if older_than is not None:
        condition = and_(condition, or_(JOBS.c.heartbeat.is_(None),
                                        JOBS.c.heartbeat < older_than))
    paused = conn.execute(update(JOBS).where(and_(condition, JOBS.c.state == PAUSING))
                          .values(state=PAUSED, claimed_by=None, heartbeat=None)).rowcount
    pending = conn.execute(update(JOBS).where(condition)
                           .values(state=PENDING, claimed_by=None, heartbeat=None)).rowcount
    return int(paused or 0) + int(pending or 0)


def update_progress(conn: Connection, job_id: str, progress: int,
                    content: bytes | None) -> None:
    values: dict[str, Any] = {"progress": progress}
    if content is not None:
        values["content"] = content
    conn.execute(update(JOBS).where(and_(JOBS.c.id == job_id, JOBS.c.state.in_(ACTIVE_STATES)))
                 .values(**values))


def current_state(conn: Connection, job_id: str) -> str | None:
    return conn.execute(select(JOBS.c.state).where(JOBS.c.id == job_id)).scalar()


def settle(conn: Connection, job_id: str, worker: str, *, state: str, progress: int | None,
           content: bytes | None, error_code: int, error_details: str,
           completion_time: str | None, runtime: float) -> bool:
    """Record the end of one run by *worker*; False when the job is no longer its own.
    ``claimed_by`` keeps the name of the last worker (a trace for operators)."""
    values: dict[str, Any] = {
        "state": state, "error_code": error_code, "error_description": error_details,
        "completion_time": completion_time, "heartbeat": None,
        "effective_runtime": JOBS.c.effective_runtime + runtime}
    if progress is not None:
        values["progress"] = progress
    if content is not None:
        values["content"] = content
    result = conn.execute(update(JOBS).where(and_(JOBS.c.id == job_id,
                                                  JOBS.c.claimed_by == worker,
                                                  JOBS.c.state.in_(ACTIVE_STATES)))
                          .values(**values))
    return result.rowcount == 1


def transition(conn: Connection, job_id: str, from_states: Sequence[str],
               values: dict[str, Any]) -> bool:
    """Change a job only if it is in one of *from_states* (compare-and-set)."""
    result = conn.execute(update(JOBS).where(and_(JOBS.c.id == job_id,
                                                  JOBS.c.state.in_(list(from_states))))
                          .values(**values))
    return result.rowcount == 1


def prune_history(conn: Connection, keep: int, protect_after: str) -> list[str]:
    """Forget completed jobs beyond the *keep* most recent ones (Orthanc's JobsHistorySize),
    sparing those completed after *protect_after* (a synchronous caller may still read them).
    Answer the blob keys of the outputs the forgotten jobs had (for the caller to delete)."""
    done = JOBS.c.state.in_(DONE_STATES)
    newest = [r[0] for r in conn.execute(
        select(JOBS.c.id).where(done).order_by(JOBS.c.completion_time.desc(), JOBS.c.seq.desc())
        .limit(keep))] if keep > 0 else []
    condition = and_(done, JOBS.c.completion_time < protect_after)
    if newest:
        condition = and_(condition, JOBS.c.id.not_in(newest))
    outputs = [str(r[0]) for r in conn.execute(
        select(JOBS.c.output_key).where(and_(condition, JOBS.c.output_key.is_not(None))))]
    conn.execute(delete(JOBS).where(condition))
    return outputs


def delete_done_job(conn: Connection, job_id: str) -> tuple[bool, str | None]:
    """Forget one completed (Success or Failure) job: (whether it was deleted, the blob key
    of its output if it had one). A job that has not completed is left alone (Orthanc's
    ``JobsRegistry::DeleteJobInfo`` only deletes jobs of its completed history)."""
    row = conn.execute(select(JOBS.c.output_key).where(
        and_(JOBS.c.id == job_id, JOBS.c.state.in_(DONE_STATES)))).first()
    if row is None:
        return False, None
    deleted = conn.execute(delete(JOBS).where(
        and_(JOBS.c.id == job_id, JOBS.c.state.in_(DONE_STATES)))).rowcount == 1
    return deleted, (str(row.output_key) if deleted and row.output_key else None)


def count_by_state(conn: Connection) -> dict[str, int]:
    return {state: int(count) for state, count in conn.execute(
        select(JOBS.c.state, func.count()).group_by(JOBS.c.state))}


def job_outputs(conn: Connection, job_types: Sequence[str]) -> list[JobOutput]:
    """The finished jobs of *job_types* that still have an output, the most recently
    completed first."""
    return build(JobOutput, conn.execute(
        select(JOBS.c.id, JOBS.c.output_key)
        .where(and_(JOBS.c.type.in_(list(job_types)), JOBS.c.state == SUCCESS,
                    JOBS.c.output_key.is_not(None)))
        .order_by(JOBS.c.completion_time.desc(), JOBS.c.seq.desc())))


def clear_output(conn: Connection, job_id: str) -> str | None:
    """Forget the output of a job; answer the blob key it had (None: it had none)."""
    key = conn.execute(select(JOBS.c.output_key).where(JOBS.c.id == job_id)).scalar()
    if key is None:
        return None
    conn.execute(update(JOBS).where(and_(JOBS.c.id == job_id, JOBS.c.output_key == key))
                 .values(output_key=None))
    return str(key)
