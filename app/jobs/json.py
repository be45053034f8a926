"""Orthanc's ``/jobs/{id}`` JSON (``JobInfo::Format`` in Orthanc's framework)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from app import errors
from app.index.jobs_repository import CANCELLING, PAUSING, RUNNING
from app.index.records import JobRecord

# Orthanc's ErrorCode descriptions beyond those app.errors defines (Enumerations.cpp).
_EXTRA_DESCRIPTIONS = {
    0: "Success",
    -1: "Internal error",
    1: "Success",  # never used by Orthanc for jobs; keeps the table total
    37: "This job was canceled",
}
CANCELED_JOB = 37


def job_time(moment: datetime | None = None) -> str:
    """Orthanc's job timestamps: UTC, ISO basic format with microseconds."""
    return (moment or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S.%f")


def error_description(code: int) -> str:
    """The text Orthanc gives an ``ErrorCode`` (``EnumerationToString``)."""
    if code in _EXTRA_DESCRIPTIONS:
        return _EXTRA_DESCRIPTIONS[code]
    for cls in _error_classes():
        if cls.orthanc_code == code:
            return cls.orthanc_message
    return "Internal error"


def error_for_code(code: int, details: str) -> errors.PharosError:
    """An exception carrying a failed job's error, for synchronous callers."""
    for cls in _error_classes():
        if cls.orthanc_code == code and cls.http_status >= 400:
            return cls(details or None)
    error = errors.PharosError(details or error_description(code))
    error.orthanc_code = code
    error.orthanc_message = error_description(code)
    return error


def _error_classes() -> list[type[errors.PharosError]]:
    found: list[type[errors.PharosError]] = []
    pending = [errors.PharosError]
    while pending:
        cls = pending.pop()
        for sub in cls.__subclasses__():
            found.append(sub)
            pending.append(sub)
    return found


def public_state(state: str) -> str:
    """Requests pending on a running job are Pharos' bookkeeping: the job is Running."""
    return RUNNING if state in (PAUSING, CANCELLING) else state


def job_json(row: JobRecord) -> dict[str, Any]:
    """One job as Orthanc shows it; keys in Orthanc's (alphabetical) order."""
    state = public_state(row.state)
    answer: dict[str, Any] = {}
    if state in ("Success", "Failure") and row.completion_time:
        answer["CompletionTime"] = row.completion_time
    answer.update({
        "Content": orjson.loads(row.content) if row.content else {},
        "CreationTime": row.creation_time,
        "EffectiveRuntime": round(float(row.effective_runtime or 0.0), 3),
        "ErrorCode": int(row.error_code),
        "ErrorDescription": error_description(int(row.error_code)),
        "ErrorDetails": row.error_description or "",
        "ID": row.id,
        "Priority": int(row.priority),
        "Progress": int(row.progress),
        "State": state,
        "Timestamp": job_time(),
        "Type": row.type,
    })
    if row.user_data is not None:  # Orthanc 1.12.9: only when given
        answer["UserData"] = orjson.loads(row.user_data)
    return answer
