"""The registry of job kinds: a type name (Orthanc's ``Type``) and the function that runs it.

A kind is a plain function ``run(context, payload, progress, cancel_check) -> content``:

* ``payload`` is the JSON document given at submission (all a run needs: a job is
  restarted from its payload after a pause, a resubmission or a crash, so runs must be
  safe to repeat);
* ``progress(fraction, content=None)`` reports 0..1 and optionally the public content;
* ``cancel_check()`` is true when the job should stop (cancel, pause or server shutdown);
  the run then raises :class:`JobInterrupted` between two steps;
* the returned dictionary is the job's public ``Content``; an exception fails the job
  (a :class:`app.errors.PharosError` gives Orthanc's ``ErrorCode`` and details).

The jobs engine knows no kind: the table of every kind is :data:`app.services.job_kinds.KINDS`
(a plain dictionary, one line per kind), which the server hands over with :func:`install`
when the app is built (``app.main.create_app``), before any job is submitted or run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from app.context import ServerContext

class ProgressCallback(Protocol):
    def __call__(self, fraction: float, content: dict[str, Any] | None = None) -> None: ...


CancelCheck = Callable[[], bool]
RunFunction = Callable[["ServerContext", dict[str, Any], ProgressCallback, CancelCheck],
                       dict[str, Any]]


class JobInterrupted(Exception):
    """Raised by a run that noticed ``cancel_check()`` and stopped between two steps."""


@dataclass(frozen=True)
class JobKind:
    name: str
    run: RunFunction


_KINDS: dict[str, JobKind] = {}


def install(table: Mapping[str, RunFunction]) -> None:
    """The job kinds this process runs and accepts: *table* maps Orthanc's ``Type`` to the
    run function (:data:`app.services.job_kinds.KINDS`). Replaces what was installed."""
    kinds = {name: JobKind(name, run) for name, run in table.items()}
    _KINDS.clear()
    _KINDS.update(kinds)


def get_kind(name: str) -> JobKind | None:
    return _KINDS.get(name)
