"""Dependencies shared by the HTTP doors: the server context, bodies, flags, origins."""

from __future__ import annotations

import math
import tempfile
from collections.abc import AsyncIterator, Callable
from typing import IO, Any, TypeVar

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from app.context import ServerContext
from app.dicom.limits import BoundedInflater
from app.dicom.tags import parse_tag
from app.errors import (
    BadJson,
    BadRequest,
    DecompressionLimit,
    PayloadTooLarge,
    UnsupportedContentEncoding,
)
from app.scripting.internal_http import internal_origin
from app.validation import MAX_INT64, check_json_depth, is_digits, parse_float, parse_int


def get_context(request: Request) -> ServerContext:
    return request.app.state.context


T = TypeVar("T")


async def small_read(request: Request, read: Callable[..., T], *args: Any) -> T:
    """``read(context, *args)``: a read of a few index rows (one resource's JSON).

    On a SQLite index it runs here, on the event loop, on the loop's own connection
    (``Database.inline_reads``): a local read of a few indexed rows costs ~0.1-0.3 ms
    of CPU, less than handing it to a worker thread and back (which also waits for the
    GIL), and the answer's size is bounded by one level of children (a series of 5,000
    instances: ~5 ms). Everything else, PostgreSQL included (network round trips, a
    server that may be slow), goes to the thread pool, so that it never blocks the loop.
    """
    context = get_context(request)
    if context.db.sqlite:
        with context.db.inline_reads():
            return read(context, *args)
    return await run_in_threadpool(read, context, *args)


def flag(request: Request, name: str) -> bool:
    """Orthanc's boolean query arguments: present (``?expand``), ``=1``/``=true`` are true."""
    value = request.query_params.get(name)
    if value is None:
        return False
    return value.strip().lower() not in ("0", "false", "no")


def dicom_format(request: Request, default: str) -> str:
    """Orthanc's ``GetDicomFormat``: ``?simplify``, ``?short`` or ``?full``, else *default*
    (``full`` for tags routes, ``simplify`` for resources)."""
    for name in ("simplify", "short", "full"):
        if flag(request, name):
            return name
    return default


def ignore_length(request: Request) -> frozenset[int]:
    """``?ignore-length=PatientName,0018-1020``: tags to show whatever their length."""
    raw = request.query_params.get("ignore-length")
    if not raw:
        return frozenset()
    tags = set()
    for name in raw.split(","):
        if name.strip():
            try:
                tags.add(int(parse_tag(name)))
            except ValueError as error:
                raise BadRequest(f"Unknown DICOM tag in ignore-length: {name!r}") from error
    return frozenset(tags)


def int_param(request: Request, name: str, default: int = 0, *, minimum: int = 0,
              maximum: int = MAX_INT64) -> int:
    """An integer query argument within [minimum, maximum] (Orthanc's
    ``ParameterOutOfRange``, 400, otherwise); *default* when absent or empty."""
    value = request.query_params.get(name)
    if value is None or value == "":
        return default
    return parse_int(value, name, minimum=minimum, maximum=maximum)


def float_param(request: Request, *names: str, minimum: float = -math.inf,
                maximum: float = math.inf) -> float | None:
    """The first of *names* present as a finite number within bounds; None if absent."""
    for name in names:
        value = request.query_params.get(name)
        if value not in (None, ""):
            return parse_float(value, name, minimum=minimum, maximum=maximum)
    return None


def rest_origin(request: Request) -> dict[str, str]:
    internal = internal_origin(request.scope)
    if internal:  # a script's own REST call: Orthanc's RequestOrigin "Lua" (or "Plugins")
        return {"Origin": internal}
    client = request.client
    return {"Origin": "RestApi", "RemoteIP": client.host if client else "",
            "HttpUsername": request.scope.get("state", {}).get("username", "")}


_CODINGS = {"gzip", "x-gzip", "deflate"}


async def body_chunks(request: Request, context: ServerContext) -> AsyncIterator[bytes]:
    """The request body as it arrives, decoded when sent with ``Content-Encoding: gzip`` or
    ``deflate`` (RFC 9110 8.4; Orthanc ignores the header), in bounded memory: the decoded
    size may not pass MaxUploadSize (413). Other codings answer 415 (RFC 9110 15.5.16)."""
    coding = request.headers.get("content-encoding", "").strip().lower()
    if coding in ("", "identity"):
        async for chunk in request.stream():
            yield chunk
        return
    if coding not in _CODINGS:
        raise UnsupportedContentEncoding(f"Unsupported Content-Encoding: {coding[:40]}")
    inflater = BoundedInflater(coding, context.settings.max_upload_size)
    try:
        async for chunk in request.stream():
            for out in inflater.feed(chunk):
                yield out
        inflater.finish()
    except DecompressionLimit as error:
        raise PayloadTooLarge(str(error)) from error


async def read_body(request: Request, context: ServerContext) -> bytes:
    """The whole body in memory, refusing bodies over the configured limit (413)."""
    limit = context.settings.max_upload_size
    declared = request.headers.get("content-length")
    if declared and is_digits(declared) and int(declared) > limit:
        raise PayloadTooLarge(f"The body ({declared} bytes) is over the limit of {limit} bytes")
    chunks = []
    size = 0
    async for chunk in body_chunks(request, context):
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"The body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def spool_body(request: Request, context: ServerContext) -> tuple[IO[bytes], int]:
    """The body in a spooled temporary file (memory below a threshold, disk above)."""
    limit = context.settings.max_upload_size
    declared = request.headers.get("content-length")
    if declared and is_digits(declared) and int(declared) > limit:
        raise PayloadTooLarge(f"The body ({declared} bytes) is over the limit of {limit} bytes")
    spool = tempfile.SpooledTemporaryFile(max_size=context.settings.ingest_spool_threshold)
    size = 0
    try:
        async for chunk in body_chunks(request, context):
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"The body is over the limit of {limit} bytes")
            spool.write(chunk)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool, size


async def json_body(request: Request, context: ServerContext) -> object:
    import orjson
    raw = await read_body(request, context)
    try:
        document = orjson.loads(raw) if raw.strip() else None
    except orjson.JSONDecodeError as error:
        raise BadJson(f"The body is not valid JSON: {error}") from error
    return check_json_depth(document, error=BadJson)
