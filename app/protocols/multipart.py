"""multipart/related bodies (RFC 2387) both ways, streamed.

Reading: ``spool_multipart`` parses the request body incrementally as it arrives
(``request.stream()``), writing part contents into one spooled temporary file (memory
below a threshold, disk above), so that a 2 GB STOW-RS takes disk, not memory. Only the
part headers and offsets stay in memory. The whole body is checked (closing delimiter
present) before anything is stored, so that a truncated upload stores nothing.

Writing: ``multipart_stream`` yields a multipart/related body part by part, each part
with its own Content-Type (and Content-Location when given), with a fresh random
boundary per answer (PS3.18 8.7.1.2).
"""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, cast

from app.errors import BadRequest, PayloadTooLarge

CRLF = b"\r\n"
_HEADER_LIMIT = 64 * 1024
_READ_CHUNK = 1 << 20


class MalformedMultipart(BadRequest):
    """400: the body is not a well-formed multipart/related message (PS3.18 10.5.3)."""


@dataclass
class Part:
    """One part of a spooled body: its headers and where its content lies in the spool."""

    headers: dict[str, str]
    offset: int
    size: int = 0

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    @property
    def content_location(self) -> str | None:
        return self.headers.get("content-location") or self.headers.get("content-id")


@dataclass
class SpooledBody:
    """The parts of a multipart body, their contents held by one spooled file."""

    parts: list[Part] = field(default_factory=list)
    spool: IO[bytes] | None = None

    def read(self, part: Part) -> bytes:
        assert self.spool is not None
        self.spool.seek(part.offset)
        data = self.spool.read(part.size)
        if len(data) != part.size:
            raise MalformedMultipart("A part of the body could not be read back")
        return data

    def close(self) -> None:
        if self.spool is not None:
            self.spool.close()
            self.spool = None

    def __enter__(self) -> SpooledBody:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _parse_headers(block: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in block.split(CRLF):
        if not line.strip():
            continue
        if line[:1] in (b" ", b"\t") and headers:  # obsolete line folding
            last = next(reversed(headers))
            headers[last] += " " + line.strip().decode("latin-1")
            continue
        name, colon, value = line.partition(b":")
        if not colon:
            raise MalformedMultipart(f"Malformed part header line: {line[:80]!r}")
        headers[name.strip().decode("latin-1").lower()] = value.strip().decode("latin-1")
    return headers


class MultipartReader:
    """An incremental multipart parser (RFC 2046 5.1): bytes in as they arrive, events out.

    ``feed(chunk)`` answers the events that chunk completes: ``("part", headers)`` when a
    part's headers are read, ``("data", bytes)`` for its content (in pieces), ``("end",
    None)`` when the part is complete. Only a part's headers and the tail that may start
    a delimiter are held in memory. ``close()`` raises MalformedMultipart unless the
    closing delimiter was seen. STOW-RS bodies and the DICOMweb client's WADO-RS answers
    are read with it.
    """

    def __init__(self, boundary: str) -> None:
        if not boundary or len(boundary) > 200:
            raise MalformedMultipart("The multipart boundary is missing or too long")
        self.boundary = boundary
        self._delimiter = b"--" + boundary.encode("latin-1")
        self._body_delimiter = CRLF + self._delimiter  # content ends with CRLF--boundary
        self._buffer = bytearray()
        # preamble -> after_delimiter -> headers -> content -> after_delimiter ... -> done
        self._state = "preamble"
        self.parts = 0

    @property
    def done(self) -> bool:
        return self._state == "done"

    def feed(self, chunk: bytes) -> list[tuple[str, object]]:
        events: list[tuple[str, object]] = []
        if self._state == "done":
            return events  # an epilogue: read and ignored
        self._buffer += chunk
        while self._step(events):
            pass
        return events

    def close(self, *, allow_unclosed: bool = False) -> None:
        """Check the body ended properly. *allow_unclosed* also accepts a body ending
        right after a part's delimiter without the closing ``--`` (what jQuery File
        Upload's chunks look like, and Orthanc's reader accepts for form uploads)."""
        unclosed = self._state == "after_delimiter" and not bytes(self._buffer).strip()
        if self._state != "done" and not (allow_unclosed and unclosed):
            raise MalformedMultipart("The multipart body ends before its closing delimiter "
                                     f"--{self.boundary}--")
        if not self.parts:
            raise MalformedMultipart("The multipart body has no part")

    def _step(self, events: list[tuple[str, object]]) -> bool:
        """Advance one state if the buffer allows it; False when more bytes are needed."""
        buffer = self._buffer
        if self._state == "preamble":
            # The first delimiter may start the body (no preceding CRLF).
            index = buffer.find(self._delimiter)
            if index < 0:
                keep = len(self._delimiter) - 1
                if len(buffer) > keep:
                    del buffer[:len(buffer) - keep]
                return False
            del buffer[:index + len(self._delimiter)]
            self._state = "after_delimiter"
            return True
        if self._state == "after_delimiter":
            if len(buffer) < 2:
                return False
            if buffer[:2] == b"--":
                self._state = "done"
                buffer.clear()
                return False
            end = buffer.find(CRLF)
            if end < 0:
                if len(buffer) > 1024:
                    raise MalformedMultipart("Garbage after a multipart delimiter")
                return False
            if buffer[:end].strip(b" \t"):  # transport padding only (RFC 2046)
                raise MalformedMultipart("Garbage after a multipart delimiter")
            del buffer[:end + 2]
            self._state = "headers"
            return True
        if self._state == "headers":
            if buffer[:2] == CRLF:  # a part without any header
                block, skip = b"", 2
            else:
                index = buffer.find(CRLF + CRLF)
                if index < 0:
                    if len(buffer) > _HEADER_LIMIT:
                        raise MalformedMultipart("The headers of a part are too long")
                    return False
                block, skip = bytes(buffer[:index]), index + 4
            del buffer[:skip]
            self.parts += 1
            events.append(("part", _parse_headers(block)))
            self._state = "content"
            return True
        if self._state == "content":
            index = buffer.find(self._body_delimiter)
            if index < 0:
                # Keep a tail that might be the start of the delimiter.
                flush = len(buffer) - (len(self._body_delimiter) - 1)
                if flush > 0:
                    events.append(("data", bytes(buffer[:flush])))
                    del buffer[:flush]
                return False
            if index:
                events.append(("data", bytes(buffer[:index])))
            events.append(("end", None))
            del buffer[:index + len(self._body_delimiter)]
            self._state = "after_delimiter"
            return True
        return False


async def spool_multipart(chunks: AsyncIterator[bytes], boundary: str, *,
                          memory_threshold: int, limit: int,
                          allow_unclosed: bool = False) -> SpooledBody:
    """Parse a multipart body from an async stream of chunks into a SpooledBody.

    Raises MalformedMultipart (400) for a body without the opening or closing delimiter,
    a part without a blank line after its headers, or headers over 64 KiB.
    """
    reader = MultipartReader(boundary)
    spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=memory_threshold)
    result = SpooledBody(spool=spool)
    part: Part | None = None
    written = 0
    total = 0
    try:
        async for chunk in chunks:
            total += len(chunk)
            if total > limit:
                raise PayloadTooLarge(f"The body is over the limit of {limit} bytes")
            for kind, value in reader.feed(chunk):
                if kind == "part":
                    part = Part(value, offset=written)  # type: ignore[arg-type]
                    result.parts.append(part)
                elif kind == "data":
                    assert part is not None
                    data: bytes = value  # type: ignore[assignment]
                    spool.write(data)
                    written += len(data)
                    part.size += len(data)
        reader.close(allow_unclosed=allow_unclosed)
    except BaseException:
        result.close()
        raise
    return result


def iter_parts(chunks: Iterable[bytes], boundary: str, *, memory_threshold: int,
               ) -> Iterator[tuple[dict[str, str], IO[bytes]]]:
    """The parts of a multipart stream one by one, as soon as each is complete: (headers,
    content spooled in memory below *memory_threshold*, on disk above, positioned at 0).
    Each content is closed once the next part is asked for: memory stays flat whatever
    the number of parts."""
    reader = MultipartReader(boundary)
    headers: dict[str, str] | None = None
    content: IO[bytes] | None = None
    try:
        for chunk in chunks:
            for kind, value in reader.feed(chunk):
                if kind == "part":
                    headers = cast(dict[str, str], value)
                    content = tempfile.SpooledTemporaryFile(max_size=memory_threshold)
                elif kind == "data":
                    assert content is not None
                    content.write(cast(bytes, value))
                elif kind == "end":
                    assert headers is not None and content is not None
                    content.seek(0)
                    yield headers, content
                    content.close()
                    content = None
        reader.close()
    finally:
        if content is not None:
            content.close()


def split_header_list(value: str, separator: str = ",") -> list[str]:
    """Split on *separator* outside double quotes."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for char in value:
        if char == '"':
            quoted = not quoted
        if char == separator and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def parse_media_type(value: str) -> tuple[str, dict[str, str]]:
    """``type/subtype; a=b; c="d"`` -> (lower-cased type, parameters with lower-cased names)."""
    pieces = split_header_list(value, ";")
    if not pieces:
        return "", {}
    params: dict[str, str] = {}
    for piece in pieces[1:]:
        name, _, raw = piece.partition("=")
        raw = raw.strip()
        if len(raw) >= 2 and raw[0] == raw[-1] == '"':
            raw = raw[1:-1]
        params[name.strip().lower()] = raw
    return pieces[0].lower(), params


def new_boundary() -> str:
    return secrets.token_hex(16)


def part_header(boundary: str, content_type: str, location: str | None = None,
                size: int | None = None) -> bytes:
    """A part's delimiter and headers; ``Content-Length`` when the size is known (as
    Orthanc writes every part: clients such as its own tests read it)."""
    lines = [f"--{boundary}", f"Content-Type: {content_type}"]
    if size is not None:
        lines.append(f"Content-Length: {size}")
    if location:
        lines.append(f"Content-Location: {location}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def multipart_content_type(boundary: str, related_type: str, extra: str = "") -> str:
    """The answer's Content-Type (PS3.18 8.7.1.2): type and boundary quoted."""
    return f'multipart/related; type="{related_type}"{extra}; boundary={boundary}'


OutgoingPart = tuple[str, str | None, Iterable[bytes]] | \
    tuple[str, str | None, Iterable[bytes], int | None]


def multipart_stream(boundary: str, parts: Iterable[OutgoingPart]) -> Iterator[bytes]:
    """Yield a multipart body: each part is (content type, location, content chunks[,
    size]); a part given as one ``bytes`` chunk in a list has its size known too."""
    for part in parts:
        content_type, location, content = part[0], part[1], part[2]
        size = part[3] if len(part) > 3 else None
        if size is None and isinstance(content, list) and len(content) == 1:
            size = len(content[0])
        yield part_header(boundary, content_type, location, size)
        yield from content
        yield CRLF
    yield f"--{boundary}--\r\n".encode("latin-1")


def coalesce(chunks: Iterable[bytes], size: int = 1 << 20) -> Iterator[bytes]:
    """Join small chunks into pieces of about *size* bytes: a streamed answer then costs
    one thread hop and one socket write per piece instead of three per instance."""
    pending: list[bytes] = []
    held = 0
    for chunk in chunks:
        pending.append(chunk)
        held += len(chunk)
        if held >= size:
            yield b"".join(pending)
            pending, held = [], 0
    if pending:
        yield b"".join(pending)


def multipart_length(boundary: str, parts: Iterable[tuple[str, str | None, int]]) -> int:
    """The exact size of what ``multipart_stream`` yields for parts of known sizes."""
    total = len(f"--{boundary}--\r\n")
    for content_type, location, size in parts:
        total += len(part_header(boundary, content_type, location, size)) + size + len(CRLF)
    return total


def file_chunks(stream: IO[bytes], size: int = _READ_CHUNK) -> Iterator[bytes]:
    """The content of an open binary file, in chunks; closes it at the end."""
    with stream:
        while chunk := stream.read(size):
            yield chunk
