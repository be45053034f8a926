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

Other areas add kinds with ``@job_kind("Type")`` in their own module and list the module
in :data:`KIND_MODULES` so that workers import it at start.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from app.context import ServerContext

# Modules that register kinds when imported (add yours here).
KIND_MODULES: tuple[str, ...] = ("app.services.network", "app.services.query_retrieve",
                                  "app.services.storage_commitment",
                                  "app.jobs.archive_kind",
                                  "app.services.merge_split", "app.services.bulk_modify",
                                  "app.scripting.lua_jobs",
                                  "app.services.dicomweb_remote")


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


def register(name: str, run: RunFunction) -> JobKind:
    """Register (or replace) the kind called *name*."""
    kind = JobKind(name, run)
    _KINDS[name] = kind
    return kind


def job_kind(name: str) -> Callable[[RunFunction], RunFunction]:
    """Decorator form of :func:`register`."""
    def decorate(run: RunFunction) -> RunFunction:
        register(name, run)
        return run
    return decorate


def get_kind(name: str) -> JobKind | None:
    load_kind_modules()
    return _KINDS.get(name)


def load_kind_modules() -> None:
    """Import every module of :data:`KIND_MODULES` (idempotent)."""
    for module in KIND_MODULES:
        importlib.import_module(module)
