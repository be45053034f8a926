"""Counts every HTTP request for ``/tools/metrics-prometheus``: method, route template,
status and the time until the answer's last byte was sent.

Pure ASGI (no per-request task or body buffering). It runs right inside the URI
normalizer, so it sees Orthanc's view of the path and the answers the security layer
gives (401, 403) too. The route template is the one the router matched (Starlette puts
it in ``scope["route"]``); requests no route matched are counted as ``unmatched``, so
that a scanner's random paths do not create series.
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.context.metrics import metrics_of


class RequestMetrics:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        context = scope["app"].state.context
        metrics = metrics_of(context) if context is not None else None
        if metrics is None or not metrics.enabled:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception before the answer started

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            metrics.http_request(scope.get("method", ""), template, status,
                                 time.perf_counter() - started)
