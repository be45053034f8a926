"""Request URIs and methods as Orthanc's HTTP server reads them.

Orthanc (CivetWeb, then ``Toolbox::SplitUriComponents``) collapses repeated slashes and
ignores a trailing slash: ``//instances/`` is ``/instances``. Clients depend on it: every
request of Orthanc's own test suite is ``http://host:8042/`` + ``/route``, and tools that
configure a base URL ending in ``/`` do the same. It also honours method "faking" for
clients that can only send GET and POST: ``X-HTTP-Method-Override: PUT|DELETE`` (Google's
convention) and ``GET ...?_method=delete`` (Ruby on Rails').

The normalisation is an ASGI middleware placed first, so that authentication, routing,
Lua/Python request filters and logs all see the same path. Paths of the single-page
apps (``/ohif/``, ``/ui/``) keep their trailing slash: their routers tell a folder from
a file by it, as a static file server does.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_KEEP_TRAILING_SLASH = ("/ohif/", "/ui/")


def normalize_path(path: str) -> str:
    """``//a///b/`` -> ``/a/b``; ``/`` stays ``/``."""
    if "//" not in path and (len(path) <= 1 or not path.endswith("/")):
        return path
    keep_slash = path.startswith(_KEEP_TRAILING_SLASH) or path in ("/ohif/", "/ui/")
    parts = [part for part in path.split("/") if part]
    normalized = "/" + "/".join(parts)
    if keep_slash and path.endswith("/") and parts:
        normalized += "/"
    return normalized


def _overridden_method(scope: Scope) -> str | None:
    """The method a GET/POST fakes, as Orthanc's ``ExtractMethod`` reads it."""
    for name, value in scope.get("headers", ()):
        if name == b"x-http-method-override":
            return value.decode("latin-1").strip().upper()
    if scope.get("method") == "GET" and b"_method" in scope.get("query_string", b""):
        for key, value in parse_qsl(scope["query_string"].decode("latin-1")):
            if key == "_method":
                return value.strip().upper()
    return None


class UriNormalizer:
    """Rewrite ``scope`` so that every later layer sees Orthanc's view of the request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            normalized = normalize_path(path)
            method = _overridden_method(scope)
            if normalized != path or method:
                scope = dict(scope)
                if normalized != path:
                    scope["path"] = normalized
                    raw = scope.get("raw_path")
                    if raw is not None:
                        scope["raw_path"] = normalize_path(raw.decode("latin-1")).encode("latin-1")
                if method in ("PUT", "DELETE"):
                    scope["method"] = method
                elif method:
                    await _bad_method(send, method)
                    return
            send = _nosniff(send)
        await self.app(scope, receive, send)


def _nosniff(send: Send) -> Send:
    """Orthanc 1.12.2+: ``X-Content-Type-Options: nosniff`` on every answer with a
    Content-Type, so browsers never guess another type (a stored HTML attachment, an
    error echoing the URI) than the one declared."""
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers") or [])
            names = {name.lower() for name, _ in headers}
            if b"content-type" in names and b"x-content-type-options" not in names:
                headers.append((b"x-content-type-options", b"nosniff"))
                message = {**message, "headers": headers}
        await send(message)
    return wrapped


async def _bad_method(send: Send, method: str) -> None:
    # Orthanc answers a faked method other than PUT/DELETE with a bare 400.
    body = f"Unsupported HTTP method override: {method}".encode()
    await send({"type": "http.response.start", "status": 400,
                "headers": [(b"content-type", b"text/plain"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
