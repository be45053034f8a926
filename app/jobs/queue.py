"""Submitting, controlling and waiting for jobs (the queue lives in the index database).

Everything here is correct across processes: the database row is the truth, and the
in-process wake-up event only shortens the workers' polling delay.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import orjson

from app.context import ServerContext, blob_deletion
from app.errors import BadRequest, InexistentItem, ParameterOutOfRange
from app.index import jobs_repository as jobs
from app.index.db import note_events
from app.index.records import JobRecord
from app.jobs.json import CANCELED_JOB, error_for_code, job_json, job_time
from app.jobs.kinds import get_kind

_WAKEUP_KEY = "jobs.wakeup"


def wakeup_event(context: ServerContext) -> threading.Event:
    """The event workers of this process wait on between two polls."""
    event = context.extras.get(_WAKEUP_KEY)
    if not isinstance(event, threading.Event):
        event = threading.Event()
        context.extras[_WAKEUP_KEY] = event
    return event


# ``user_data`` when the client gave no "UserData" (None is JSON's null, a value it may give).
NO_USER_DATA: Any = object()


def user_data_of(body: Any) -> Any:
    """The ``UserData`` of a request body that creates a job (Orthanc 1.12.9: any JSON
    value, shown as given in ``/jobs/{id}``), or :data:`NO_USER_DATA`."""
    if isinstance(body, dict) and "UserData" in body:
        return body["UserData"]
    return NO_USER_DATA


def submit(context: ServerContext, job_type: str, payload: dict[str, Any], *,
           content: dict[str, Any] | None = None, priority: int = 0,
           user_data: Any = NO_USER_DATA) -> str:
    """Queue a job of a registered kind; answer its ID."""
    if get_kind(job_type) is None:
        raise BadRequest(f"Unknown job type: {job_type}")
    job_id = str(uuid.uuid4())
    stored_user_data = None if user_data is NO_USER_DATA else orjson.dumps(user_data)
    with context.db.write() as conn:
        jobs.insert_job(conn, job_id=job_id, job_type=job_type, priority=int(priority),
                        payload=orjson.dumps(payload), content=orjson.dumps(content or {}),
                        creation_time=job_time(), user_data=stored_user_data)
        note_events(conn, [("JobSubmitted", None, job_id)])  # OnJobSubmitted (Lua)
    wakeup_event(context).set()
    return job_id


def job_row(context: ServerContext, job_id: str) -> JobRecord:
    with context.db.read() as conn:
        row = jobs.get_job(conn, job_id)
    if row is None:
        raise InexistentItem(f"Unknown job: {job_id}")
    return row


def list_jobs(context: ServerContext) -> list[JobRecord]:
    with context.db.read() as conn:
        return jobs.list_jobs(conn)


def wait(context: ServerContext, job_id: str, timeout: float | None = None) -> JobRecord:
    """Poll until the job succeeds or fails (synchronous REST calls)."""
    delay = 0.01
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        row = job_row(context, job_id)
        if row.state in jobs.DONE_STATES:
            return row
        if deadline is not None and time.monotonic() > deadline:
            return row
        time.sleep(delay)
        delay = min(delay * 1.5, 0.2)


def run_synchronously(context: ServerContext, job_type: str, payload: dict[str, Any], *,
                      content: dict[str, Any] | None = None, priority: int = 0,
                      user_data: Any = NO_USER_DATA) -> dict[str, Any]:
    """Submit, wait, and answer the content, or raise the job's error (as Orthanc's
    ``SubmitAndWait``: the job also shows in ``/jobs``). A ReadOnly server, which keeps
    no job rows, runs the job in the calling thread instead (what does not write, such as
    sending to a modality or a peer, works; what writes is refused by the index)."""
    if context.settings.read_only:
        return _run_here(context, job_type, payload)
    row = wait(context, submit(context, job_type, payload, content=content, priority=priority,
                               user_data=user_data))
    if row.state != jobs.SUCCESS:
        raise error_for_code(int(row.error_code), row.error_description)
    return orjson.loads(row.content) if row.content else {}


def _run_here(context: ServerContext, job_type: str, payload: dict[str, Any]) -> dict[str, Any]:
    kind = get_kind(job_type)
    if kind is None:
        raise BadRequest(f"Unknown job type: {job_type}")
    return kind.run(context, payload, lambda *_args, **_kwargs: None, lambda: False)


def submit_or_run(context: ServerContext, job_type: str, payload: dict[str, Any], *,
                  synchronous: bool, content: dict[str, Any] | None = None,
                  priority: int = 0, user_data: Any = NO_USER_DATA) -> dict[str, Any]:
    """The answer of a REST route that can run a job either way: the job's content when
    synchronous, ``{"ID", "Path"}`` otherwise (Orthanc's ``OrthancRestApi::SubmitJob``)."""
    if synchronous:
        return run_synchronously(context, job_type, payload, content=content, priority=priority,
                                 user_data=user_data)
    job_id = submit(context, job_type, payload, content=content, priority=priority,
                    user_data=user_data)
    return {"ID": job_id, "Path": f"/jobs/{job_id}"}


def job_document(context: ServerContext, job_id: str) -> dict[str, Any]:
    return job_json(job_row(context, job_id))


def delete(context: ServerContext, job_id: str) -> None:
    """``DELETE /jobs/{id}`` (Orthanc 1.12.2): forget a completed job and delete its
    outputs. Unknown jobs and jobs that have not completed (cancel them first) answer
    Orthanc's 404 "No job found with this id"."""
    with context.db.write() as conn:
        deleted, output = jobs.delete_done_job(conn, job_id)
        if output is not None:
            blob_deletion.schedule(conn, [output])
    if not deleted:
        raise InexistentItem(f"No job found with this id: {job_id}")
    if output is not None:
        blob_deletion.delete_scheduled(context, [output])


def pause(context: ServerContext, job_id: str) -> bool:
    """Pending and Retry jobs become Paused; a running one is asked to pause; done jobs
    are left as they are (all answer true, as in Orthanc's ``JobsRegistry::Pause``)."""
    with context.db.write() as conn:
        _exists(conn, job_id)
        if not jobs.transition(conn, job_id, (jobs.PENDING, jobs.RETRY), {"state": jobs.PAUSED}):
            jobs.transition(conn, job_id, (jobs.RUNNING,), {"state": jobs.PAUSING})
    return True


def resume(context: ServerContext, job_id: str) -> bool:
    """Only a Paused job resumes (false otherwise, which the route answers with 400)."""
    with context.db.write() as conn:
        _exists(conn, job_id)
        resumed = jobs.transition(conn, job_id, (jobs.PAUSED,), {"state": jobs.PENDING})
        if not resumed:
            # A pause requested on a running job is simply withdrawn.
            resumed = jobs.transition(conn, job_id, (jobs.PAUSING,), {"state": jobs.RUNNING})
    if resumed:
        wakeup_event(context).set()
    return resumed


def cancel(context: ServerContext, job_id: str) -> bool:
    """Pending, Retry and Paused jobs fail at once with "This job was canceled"; a running
    one is asked to stop; done jobs are left as they are."""
    with context.db.write() as conn:
        _exists(conn, job_id)
        if not jobs.transition(conn, job_id, (jobs.PENDING, jobs.RETRY, jobs.PAUSED), {
                "state": jobs.FAILURE, "error_code": CANCELED_JOB, "error_description": "",
                "completion_time": job_time()}):
            jobs.transition(conn, job_id, (jobs.RUNNING, jobs.PAUSING),
                            {"state": jobs.CANCELLING})
    return True


def resubmit(context: ServerContext, job_id: str) -> bool:
    """Only a failed job is resubmitted: it restarts from its payload, runtime reset."""
    with context.db.write() as conn:
        _exists(conn, job_id)
        done = jobs.transition(conn, job_id, (jobs.FAILURE,), {
            "state": jobs.PENDING, "progress": 0, "error_code": 0, "error_description": "",
            "completion_time": None, "effective_runtime": 0.0})
    if done:
        wakeup_event(context).set()
    return done


def set_priority(context: ServerContext, job_id: str, priority: int) -> None:
    if not isinstance(priority, int):
        raise ParameterOutOfRange("The priority must be an integer")
    with context.db.write() as conn:
        _exists(conn, job_id)
        jobs.transition(conn, job_id, (jobs.PENDING, jobs.PAUSED, jobs.RUNNING, jobs.SUCCESS,
                                       jobs.FAILURE, jobs.RETRY, jobs.PAUSING, jobs.CANCELLING),
                        {"priority": priority})


def _exists(conn: Any, job_id: str) -> None:
    if jobs.get_job(conn, job_id) is None:
        raise InexistentItem(f"Unknown job: {job_id}")
