"""Answering a stored blob over HTTP: whole (streamed when large) or one byte range.

``Range: bytes=first-last`` (RFC 9110 14.2) is answered with 206 and only those bytes,
read by :meth:`BlobStore.read_range` (one ranged GET on S3): a client resuming a large
download, or a viewer reading a file piecewise, never makes the server read the whole
blob. Orthanc ignores ``Range``; so does Pharos where RFC 9110 allows it: several ranges,
an ``If-Range`` (no validator to compare), a malformed header (then the whole blob, 200).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse

from app.blobstore.base import BlobKey, BlobStore

READ_AT_ONCE = 4 * 1024 * 1024  # bytes: smaller answers are read in one go
_CHUNK = 4 * 1024 * 1024
_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)


class Unsatisfiable(Exception):
    """A syntactically valid range that starts past the end of the blob (416)."""


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) inclusive of a single ``bytes=`` range, None to send the whole blob."""
    if header is None:
        return None
    match = _RANGE.match(header)
    if match is None:  # another unit, several ranges or garbage: ignored (RFC 9110 14.2)
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # a suffix: the last N bytes
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise Unsatisfiable
        return max(size - suffix, 0), size - 1
    start = int(first)
    if last and int(last) < start:
        return None  # invalid: ignored
    if start >= size:
        raise Unsatisfiable
    return start, min(int(last) if last else size - 1, size - 1)


def blob_answer(request: Request, blobs: BlobStore, key: BlobKey, size: int, media_type: str,
                headers: dict[str, str], missing: Callable[[], Exception]) -> Response:
    """The blob *key* of *size* bytes; *missing()* is raised when the store lost it."""
    headers = {**headers, "Accept-Ranges": "bytes"}
    try:
        wanted = None if "if-range" in request.headers else \
            byte_range(request.headers.get("range"), size)
    except Unsatisfiable:
        return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    try:
        if wanted is not None:
            return _ranged(blobs, key, size, wanted, media_type, headers)
        if size <= READ_AT_ONCE:
            # Most files: one read in this worker thread beats FileResponse's thread hop
            # per stat, open and 64 KiB chunk. Bigger files stream (memory stays flat).
            return Response(blobs.read(key), media_type=media_type, headers=headers)
        path = blobs.local_path(key)
        if path is not None:
            return FileResponse(path, media_type=media_type, headers=headers)
        stream = blobs.open(key)
    except FileNotFoundError as error:
        raise missing() from error
    return StreamingResponse(_chunks(stream), media_type=media_type,
                             headers={**headers, "Content-Length": str(size)})


def _ranged(blobs: BlobStore, key: BlobKey, size: int, wanted: tuple[int, int],
            media_type: str, headers: dict[str, str]) -> Response:
    first, last = wanted
    length = last - first + 1
    headers = {**headers, "Content-Range": f"bytes {first}-{last}/{size}"}
    head = blobs.read_range(key, first, min(length, _CHUNK))  # FileNotFoundError: before 206
    if len(head) == length:
        return Response(head, status_code=206, media_type=media_type, headers=headers)
    return StreamingResponse(_ranges(blobs, key, head, first, length), status_code=206,
                             media_type=media_type,
                             headers={**headers, "Content-Length": str(length)})


def _ranges(blobs: BlobStore, key: BlobKey, head: bytes, first: int,
            length: int) -> Iterator[bytes]:
    yield head
    done = len(head)
    while done < length:
        piece = blobs.read_range(key, first + done, min(_CHUNK, length - done))
        if not piece:
            return
        yield piece
        done += len(piece)


def _chunks(stream) -> Iterator[bytes]:  # noqa: ANN001
    with stream:
        while chunk := stream.read(1 << 20):
            yield chunk
