"""Answering a stored content over HTTP: whole (streamed when large) or one byte range.

``Range: bytes=first-last`` (RFC 9110 14.2) is answered with 206 and only those bytes of
the content, read by :meth:`BlobStore.read_range` (one ranged GET on S3): a client
resuming a large download, or a viewer reading a file piecewise, never makes the server
read the whole blob. A compressed blob (``StorageCompression``) is answered uncompressed,
its ranges too: uncompressed from the start of the blob, streamed. Orthanc ignores ``Range``; so does Pharos where RFC 9110 allows it: several ranges,
an ``If-Range`` (no validator to compare), a malformed header (then the whole blob, 200).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse

from app.blobstore.stored import StoredFile

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


def blob_answer(request: Request, file: StoredFile, media_type: str,
                headers: dict[str, str], missing: Callable[[], Exception]) -> Response:
    """The content of *file*; *missing()* is raised when the store lost its blob."""
    size = file.size
    headers = {**headers, "Accept-Ranges": "bytes"}
    try:
        wanted = None if "if-range" in request.headers else \
            byte_range(request.headers.get("range"), size)
    except Unsatisfiable:
        return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    try:
        if wanted is not None:
            return _ranged(file, wanted, media_type, headers)
        if size <= READ_AT_ONCE:
            # Most files: one read in this worker thread beats FileResponse's thread hop
            # per stat, open and 64 KiB chunk. Bigger files stream (memory stays flat).
            return Response(file.read(), media_type=media_type, headers=headers)
        path = file.local_path()
        if path is not None:
            return FileResponse(path, media_type=media_type, headers=headers)
        chunks = file.chunks()  # opens the blob: FileNotFoundError before the answer
    except FileNotFoundError as error:
        raise missing() from error
    return StreamingResponse(chunks, media_type=media_type,
                             headers={**headers, "Content-Length": str(size)})


def _ranged(file: StoredFile, wanted: tuple[int, int], media_type: str,
            headers: dict[str, str]) -> Response:
    first, last = wanted
    length = last - first + 1
    headers = {**headers, "Content-Range": f"bytes {first}-{last}/{file.size}"}
    if file.compressed:  # one pass over the blob, uncompressing up to the range
        pieces = file.chunks(first, length)  # FileNotFoundError: before 206
        return StreamingResponse(pieces, status_code=206, media_type=media_type,
                                 headers={**headers, "Content-Length": str(length)})
    head = file.read_range(first, min(length, _CHUNK))  # FileNotFoundError: before 206
    if len(head) == length:
        return Response(head, status_code=206, media_type=media_type, headers=headers)
    return StreamingResponse(_ranges(file, head, first, length), status_code=206,
                             media_type=media_type,
                             headers={**headers, "Content-Length": str(length)})


def _ranges(file: StoredFile, head: bytes, first: int, length: int) -> Iterator[bytes]:
    yield head
    done = len(head)
    while done < length:
        piece = file.read_range(first + done, min(_CHUNK, length - done))
        if not piece:
            return
        yield piece
        done += len(piece)
