"""``IncomingHttpRequestFilter``: scripts decide whether an HTTP request is served.

Orthanc calls the Lua function (and Pharos also the Python hook) after authentication
and before routing, with the method (GET, POST, PUT or DELETE, after method faking;
WebDAV's methods as the one of these Orthanc maps them to; other methods are not
filtered), the URI path, the client's IP address, the authenticated user
name ("" without authentication) and the headers (lower-case names). ``false`` answers
403 with an empty body. Requests a script sends to the server's own REST API are not
filtered. A failing filter answers 500 with the Lua error, as Orthanc.

When Lua is in use, every request also waits for the Lua callback running at the time,
as in Orthanc (whose HTTP server takes the Lua lock to look for the filter): a request
sent after a C-STORE completes sees what ``OnStoredInstance`` did with the instance if
the callback was already running.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from app.errors import PharosError
from app.scripting import events
from app.scripting.internal_http import internal_origin

_FILTERED_METHODS = ("GET", "POST", "PUT", "DELETE")
# WebDAV's methods are filtered as the one Orthanc maps them to (HttpServer.cpp): reads
# as GET, the writes that are no PUT or DELETE as PUT; HEAD and OPTIONS only under
# /webdav, where Orthanc's WebDAV server answers them.
_WEBDAV_METHODS = {"PROPFIND": "GET", "PROPPATCH": "PUT", "LOCK": "PUT", "UNLOCK": "PUT",
                   "MKCOL": "PUT", "MOVE": "PUT", "COPY": "PUT"}
_WEBDAV_READS = {"HEAD": "GET", "OPTIONS": "GET"}


def filtered_method(method: str, path: str) -> str | None:
    """The method a request filter is shown, None for a request that is not filtered."""
    if method in _FILTERED_METHODS:
        return method
    if method in _WEBDAV_METHODS:
        return _WEBDAV_METHODS[method]
    if path == "/webdav" or path.startswith("/webdav/"):
        return _WEBDAV_READS.get(method)
    return None


class ScriptRequestFilter:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = filtered_method(scope["method"], scope["path"]) \
            if scope["type"] == "http" else None
        if method is None or internal_origin(scope):
            await self.app(scope, receive, send)
            return
        context = scope["app"].state.context
        if context is None or not events.filters_http_requests(context):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        headers = {name.decode("latin-1").lower(): value.decode("latin-1")
                   for name, value in scope.get("headers", ())}
        username = (scope.get("state") or {}).get("username", "")
        try:
            allowed = await events.run_waiting_for_lua(
                events.http_request_allowed, context, method, scope["path"],
                client[0] if client else "", username, headers)
        except PharosError as error:
            await _error(scope, send, error)
            return
        if not allowed:
            await send({"type": "http.response.start", "status": 403,
                        "headers": [(b"content-length", b"0")]})
            await send({"type": "http.response.body", "body": b""})
            return
        await self.app(scope, receive, send)


async def _error(scope: Scope, send: Send, error: PharosError) -> None:
    from http import HTTPStatus

    import orjson
    body = {"HttpError": HTTPStatus(error.http_status).phrase, "HttpStatus": error.http_status,
            "Message": error.orthanc_message, "Method": scope["method"],
            "OrthancError": error.orthanc_message, "OrthancStatus": error.orthanc_code,
            "Uri": scope["path"]}
    if error.details and error.details != error.orthanc_message:
        body = {"Details": error.details, **body}
    data = orjson.dumps(body)
    await send({"type": "http.response.start", "status": error.http_status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})
