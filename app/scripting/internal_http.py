"""Calls of the server's own REST API from scripts (Lua ``RestApiGet``..., Python hooks).

Orthanc runs such calls straight through its REST handler: no authentication, no
``IncomingHttpRequestFilter``, the instance origin ``Lua`` (``RequestOrigin_Lua``). Pharos
sends a request through the whole ASGI application (URI normalisation, routing, error
rendering) with ``scope["pharos.internal"]`` set to the origin, which the security and
filter middlewares let through. Only a process-internal caller can set that key: it is
not an HTTP header.

The request runs on the server's event loop; the calling thread waits for it. If that
thread holds a Lua state, it keeps serving its call chain while it waits
(:func:`app.scripting.lua_state.wait_in_chain`), so that a route that itself needs Lua
does not deadlock.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from app.scripting.lua_state import wait_in_chain

# The ASGI interface (what Starlette's ``starlette.types`` names), spelt out here: the
# scripts call the HTTP door's app without this door depending on the web framework.
Message = MutableMapping[str, Any]
ASGIApp = Callable[[MutableMapping[str, Any], Callable[[], Awaitable[Message]],
                    Callable[[Message], Awaitable[None]]], Awaitable[None]]

INTERNAL_KEY = "pharos.internal"

# Routes that Orthanc's plugins provide (DICOMweb, the viewers): left out when a script
# asks for the built-in REST API only (``builtin`` argument of RestApiGet...).
_PLUGIN_PREFIXES = ("/dicom-web", "/wado", "/rs/", "/ohif", "/ui/", "/plugins/")


@dataclass
class InternalAnswer:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def internal_origin(scope: Mapping[str, Any]) -> str | None:
    """``Lua`` or ``Plugins`` for an internal request, None for a real HTTP client."""
    value = scope.get(INTERNAL_KEY)
    return value if isinstance(value, str) else None


class InternalHttp:
    """Sends requests to one ASGI application running on one event loop."""

    def __init__(self, app: ASGIApp, loop: asyncio.AbstractEventLoop | None) -> None:
        self.app = app
        self.loop = loop

    def request(self, method: str, uri: str, body: bytes = b"",
                headers: Mapping[str, str] | None = None, *, origin: str = "Lua",
                builtin: bool = False) -> InternalAnswer:
        """Run one request; answer its status, body and headers."""
        path, _, query = uri.partition("?")
        if not path.startswith("/"):
            path = "/" + path
        if builtin and _is_plugin_route(path):
            return InternalAnswer(404, b"")
        scope = _scope(method, path, query, body, headers or {}, origin)
        pending: Future[InternalAnswer] = Future()
        coroutine = _exchange(self.app, scope, body)
        context = contextvars.copy_context()
        if self.loop is None or not self.loop.is_running():
            return context.run(asyncio.run, coroutine)
        if _on_loop_thread(self.loop):
            coroutine.close()
            raise RuntimeError("internal REST calls cannot block the event loop")

        def start() -> None:
            task = self.loop.create_task(coroutine, context=context)  # type: ignore[union-attr]
            task.add_done_callback(lambda done: _settle(pending, done))
        self.loop.call_soon_threadsafe(start)
        return wait_in_chain(pending)


def _is_plugin_route(path: str) -> bool:
    path = "/" + "/".join(part for part in path.split("/") if part)
    return any(path == prefix.rstrip("/") or path.startswith(prefix.rstrip("/") + "/")
               for prefix in _PLUGIN_PREFIXES)


def _on_loop_thread(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def _settle(pending: Future[InternalAnswer], task: asyncio.Task[InternalAnswer]) -> None:
    if task.cancelled():
        pending.cancel()
    elif task.exception() is not None:
        pending.set_exception(task.exception())  # type: ignore[arg-type]
    else:
        pending.set_result(task.result())


def _scope(method: str, path: str, query: str, body: bytes, headers: Mapping[str, str],
           origin: str) -> dict[str, Any]:
    raw_headers = [(str(k).lower().encode("latin-1"), str(v).encode("latin-1"))
                   for k, v in headers.items()]
    if not any(name == b"content-length" for name, _ in raw_headers):
        raw_headers.append((b"content-length", str(len(body)).encode()))
    return {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1", "method": method.upper(), "scheme": "http",
        "path": unquote(path), "raw_path": path.encode("latin-1", "replace"),
        "query_string": query.encode("latin-1", "replace"), "root_path": "",
        "headers": raw_headers, "client": ("127.0.0.1", 0), "server": ("127.0.0.1", 0),
        "state": {}, INTERNAL_KEY: origin,
    }


async def _exchange(app: ASGIApp, scope: dict[str, Any], body: bytes) -> InternalAnswer:
    sent = False
    status = 500
    headers: dict[str, str] = {}
    chunks: list[bytes] = []

    async def receive() -> Message:
        nonlocal sent
        if sent:
            await asyncio.Event().wait()  # nothing more: the client never disconnects
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])
            for name, value in message.get("headers", ()):
                headers[name.decode("latin-1").lower()] = value.decode("latin-1")
        elif message["type"] == "http.response.body":
            chunks.append(bytes(message.get("body", b"")))

    await app(scope, receive, send)
    return InternalAnswer(status, b"".join(chunks), headers)
