"""Job workers started by the app's lifespan (filled in by the jobs issue)."""

from __future__ import annotations

from app.dimse.scp import Stoppable, _Nothing
from app.services.context import ServerContext


def start_workers(context: ServerContext) -> Stoppable:
    """Start ConcurrentJobs worker threads; return a handle whose stop() joins them."""
    return _Nothing()
