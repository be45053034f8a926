"""The DICOM SCP started by the app's lifespan (filled in by the DIMSE issue)."""

from __future__ import annotations

from typing import Protocol

from app.services.context import ServerContext


class Stoppable(Protocol):
    def stop(self) -> None: ...


class _Nothing:
    def stop(self) -> None:
        return None


def start_scp(context: ServerContext) -> Stoppable:
    """Start listening on DicomPort with DicomAet; return a handle whose stop() closes it."""
    return _Nothing()
