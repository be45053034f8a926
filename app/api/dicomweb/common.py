"""What every DICOMweb route shares: the service root URL, CORS, errors, JSON answers.

* URLs in answers (RetrieveURL, BulkDataURI) are absolute and built from the request:
  ``X-Forwarded-Proto`` / ``X-Forwarded-Host`` (first value) behind a proxy, else the
  ``Host`` header, plus the root the request came through (``/dicom-web`` or ``/rs``).
* CORS (Fetch standard): ``Pharos.CorsAllowOrigins`` lists the origins allowed to read
  answers (``"*"`` for any); preflight ``OPTIONS`` requests are answered with 204 (Orthanc
  answers 404, which breaks viewers served from another origin).
  ``Pharos.CoopCoep`` adds the cross-origin isolation headers viewers need for
  SharedArrayBuffer (OHIF's multi-threaded decoders).
* Errors raised by a DICOMweb route are rendered by the route class itself, so that the
  CORS headers are on error answers too.
"""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any

import orjson
from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from app.api.errors import orthanc_error
from app.dicom.dicomweb_json import to_xml
from app.errors import PharosError
from app.protocols.multipart import multipart_content_type, multipart_stream, new_boundary
from app.services.dicomweb_plugin import public_root

ALLOWED_METHODS = "GET, POST, OPTIONS"
ALLOWED_HEADERS = ("Accept, Accept-Encoding, Authorization, Content-Type, Content-Location, "
                   "Range, X-Requested-With")
EXPOSED_HEADERS = "Content-Type, Content-Length, Content-Location, Warning, Location"
GZIP_MINIMUM = 1024


def service_root(request: Request) -> str:
    """``scheme://host/dicom-web`` (or ``/rs``) as the client reached this server.

    The path is ``DicomWeb.PublicRoot`` (the Root by default, ``/dicom-web``) or ``/rs``.
    The host and scheme come, in this order (Orthanc's plugin, ``GetBasePublicUrl``), from
    ``DicomWeb.Host`` / ``DicomWeb.Ssl`` in the configuration, ``X-Forwarded-Host`` and
    ``X-Forwarded-Proto``, the first element of ``Forwarded`` (RFC 7239: ``host=``,
    ``proto=``), then ``Host``. ``X-Forwarded-Prefix`` is prepended to the path.
    """
    headers = request.headers
    section = getattr(request.app.state.settings, "dicom_web", None) or {}
    proto = "https" if section.get("Ssl") is True else request.url.scheme
    host = str(section.get("Host") or "").strip()
    if not host:
        forwarded_host = _first(headers.get("x-forwarded-host"))
        if forwarded_host:
            host = forwarded_host
            proto = _first(headers.get("x-forwarded-proto")) or proto
    if not host and headers.get("forwarded"):
        forwarded = _forwarded(headers["forwarded"])
        host = forwarded.get("host", "")
        proto = forwarded.get("proto") or proto
    host = host or headers.get("host") or request.url.netloc
    path = request.url.path
    root = "/rs" if path == "/rs" or path.startswith("/rs/") \
        else public_root(request.app.state.settings)
    prefix = (headers.get("x-forwarded-prefix") or "").rstrip("/")
    return f"{proto}://{host}{prefix}{request.scope.get('root_path', '')}{root}"


def _first(value: str | None) -> str:
    """The first value of a comma-separated header (the client's side of the proxies)."""
    return (value or "").split(",")[0].strip()


def _forwarded(value: str) -> dict[str, str]:
    """``host`` and ``proto`` of the first element of a ``Forwarded`` header (RFC 7239)."""
    pairs: dict[str, str] = {}
    for pair in value.split(",")[0].split(";"):
        name, equals, text = pair.partition("=")
        if equals:
            pairs[name.strip().lower()] = text.strip().strip('"')
    return {k: v for k, v in pairs.items() if k in ("host", "proto") and v}


def cors_headers(request: Request) -> dict[str, str]:
    settings = request.app.state.settings
    configured = getattr(settings, "cors_allow_origins", None) or []
    allowed = [o.strip() for o in configured.split(",")] if isinstance(configured, str) \
        else list(configured)
    headers: dict[str, str] = {}
    origin = request.headers.get("origin")
    if allowed and origin:
        if "*" in allowed:
            # With credentials ("*" is refused by browsers then) echo the origin.
            headers["Access-Control-Allow-Origin"] = origin
            headers["Access-Control-Allow-Credentials"] = "true"
        elif origin in allowed:
            headers["Access-Control-Allow-Origin"] = origin
            headers["Access-Control-Allow-Credentials"] = "true"
        if headers:
            headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
            headers["Vary"] = "Origin"
    if getattr(settings, "coop_coep", False):
        headers["Cross-Origin-Opener-Policy"] = "same-origin"
        headers["Cross-Origin-Embedder-Policy"] = "require-corp"
        headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    return headers


def preflight(request: Request) -> Response:
    """Answer a CORS preflight (or a plain OPTIONS) with the methods and headers allowed."""
    headers = {"Allow": ALLOWED_METHODS, **cors_headers(request)}
    if "Access-Control-Allow-Origin" in headers:
        headers["Access-Control-Allow-Methods"] = ALLOWED_METHODS
        asked = request.headers.get("access-control-request-headers")
        headers["Access-Control-Allow-Headers"] = asked or ALLOWED_HEADERS
        headers["Access-Control-Max-Age"] = "600"
    return Response(status_code=204, headers=headers)


class DicomWebRoute(APIRoute):
    """Adds CORS headers to every answer of the route, errors included."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                response = await handler(request)
            except PharosError as error:
                response = orthanc_error(request, error.http_status, error.orthanc_code,
                                         error.orthanc_message, error.details)
            for name, value in cors_headers(request).items():
                if name == "Vary" and "vary" in response.headers:
                    response.headers["Vary"] = response.headers["vary"] + ", Origin"
                else:
                    response.headers[name] = value
            return response

        return route


async def prefetched(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    """Iterate a blocking iterator in a worker thread, one piece ahead: the next piece is
    read from disk while the current one is written to the socket."""
    done = object()

    def step() -> Any:
        return next(chunks, done)

    upcoming = asyncio.ensure_future(run_in_threadpool(step))
    try:
        while (piece := await upcoming) is not done:
            upcoming = asyncio.ensure_future(run_in_threadpool(step))
            yield piece
    finally:
        if not upcoming.done():
            await asyncio.wait([upcoming])


def accepts_gzip(request: Request) -> bool:
    for item in request.headers.get("accept-encoding", "").split(","):
        name, _, params = item.strip().partition(";")
        if name.strip().lower() == "gzip":
            return "q=0" not in params.replace(" ", "") or "q=0." in params
    return False


def json_response(request: Request, body: bytes | Any, media_type: str,
                  status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON answer (already encoded or not), gzip-compressed when the client accepts it."""
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    answer_headers = dict(headers or {})
    if len(content) >= GZIP_MINIMUM and accepts_gzip(request):
        content = gzip.compress(content, compresslevel=1)
        answer_headers["Content-Encoding"] = "gzip"
        answer_headers["Vary"] = "Accept-Encoding"
    return Response(content, status_code=status_code, media_type=media_type,
                    headers=answer_headers)


def xml_multipart(documents: list[Any]) -> Response:
    """DICOM XML answers (PS3.18 8.7.3.2, PS3.19 Native DICOM Model): one
    ``application/dicom+xml`` part per dataset, in one multipart/related body."""
    boundary = new_boundary()
    parts = [("application/dicom+xml", None, [to_xml(document).encode()])
             for document in documents]
    return Response(b"".join(multipart_stream(boundary, parts)),
                    media_type=multipart_content_type(boundary, "application/dicom+xml"))
