"""Orthanc's compressed storage format (``StorageCompression``, CompressionType 1,
"zlib with size prefix"): the uncompressed size as an 8-byte little-endian integer, then
one zlib stream (level 6, Orthanc's ``ZlibCompressor`` default); an empty content is
stored as an empty blob. Blobs Orthanc wrote this way are read as they are, and Orthanc
reads those Pharos writes.

Everything here streams with bounded memory: :func:`compressed_chunks` compresses an
iterable of chunks, :class:`UncompressingReader` reads a compressed blob as a seekable
stream of its content (a zlib ``decompressobj`` fed piecewise, never more than
:data:`CHUNK` bytes out per call).
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from app.errors import CorruptedFile

COMPRESSION_NONE, COMPRESSION_ZLIB = 0, 1
ZLIB_LEVEL = 6
CHUNK = 1 << 20  # bytes read from the stored blob, and produced, per step
_PREFIX = struct.Struct("<Q")


def compress(data: bytes) -> bytes:
    """The whole content in Orthanc's format; empty stays empty."""
    if not data:
        return b""
    return _PREFIX.pack(len(data)) + zlib.compress(data, ZLIB_LEVEL)


def compressed_chunks(chunks: Iterable[bytes], size: int) -> Iterator[bytes]:
    """Orthanc's format of a content of *size* bytes given piecewise (the size prefix
    comes first, so it must be known: the index knows it)."""
    if size == 0:
        return
    yield _PREFIX.pack(size)
    deflater = zlib.compressobj(ZLIB_LEVEL)
    given = 0
    for chunk in chunks:
        given += len(chunk)
        if out := deflater.compress(chunk):
            yield out
    if given != size:
        raise CorruptedFile(f"The content to compress has {given} bytes, not {size}")
    yield deflater.flush()


def uncompress(data: bytes) -> bytes:
    """The content of a whole compressed blob held in memory."""
    if not data:
        return b""
    if len(data) < _PREFIX.size:
        raise CorruptedFile("A compressed blob is shorter than its size prefix")
    (size,) = _PREFIX.unpack_from(data)
    try:
        content = zlib.decompress(data[_PREFIX.size:])
    except zlib.error as error:
        raise CorruptedFile(f"Cannot uncompress a stored blob: {error}") from error
    if len(content) != size:
        raise CorruptedFile("An uncompressed blob does not have its declared size")
    return content


def looks_compressed(data: bytes) -> bool:
    """True when *data* starts like Orthanc's format: a size prefix, then a zlib header
    (RFC 1950: CMF 0x78, and CMF*256+FLG a multiple of 31). A DICOM file starts with a
    128-byte preamble or a group 0002/0008 tag: never this."""
    return len(data) > _PREFIX.size + 1 and data[8] == 0x78 and \
        (data[8] * 256 + data[9]) % 31 == 0


class UncompressingReader(io.RawIOBase):
    """The content of a compressed blob, read from *source* (a seekable stream of the
    blob as stored, closed with this reader) piecewise.

    Seeking forward uncompresses and drops what it skips; seeking backward starts over
    from the beginning of the blob. A blob whose zlib stream is broken, truncated or of
    another length than its prefix says raises :class:`CorruptedFile` when reached.
    """

    def __init__(self, source: BinaryIO) -> None:
        super().__init__()
        self._source = source
        self.name = getattr(source, "name", "")  # pydicom shows it in its messages
        self._restart()

    def _restart(self) -> None:
        self._source.seek(0)
        prefix = self._source.read(_PREFIX.size)
        if len(prefix) not in (0, _PREFIX.size):
            raise CorruptedFile("A compressed blob is shorter than its size prefix")
        self._size = _PREFIX.unpack(prefix)[0] if prefix else 0
        self._inflater = zlib.decompressobj()
        self._position = 0
        self._done = not prefix

    @property
    def size(self) -> int:
        """The size of the content, as the blob's prefix declares it."""
        return self._size

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def _produce(self, limit: int) -> bytes:
        """Up to *limit* (> 0) bytes of content; empty at its end."""
        while not self._done:
            if self._inflater.unconsumed_tail:
                data = self._inflater.unconsumed_tail
            elif self._inflater.eof:
                self._done = True
                break
            else:
                data = self._source.read(CHUNK)
                if not data:
                    raise CorruptedFile("A compressed blob ends before its zlib stream")
            try:
                out = self._inflater.decompress(data, limit)
            except zlib.error as error:
                raise CorruptedFile(f"Cannot uncompress a stored blob: {error}") from error
            if out:
                self._position += len(out)
                if self._position > self._size:
                    raise CorruptedFile("A compressed blob holds more than its declared size")
                return out
        if self._position != self._size:
            raise CorruptedFile("A compressed blob holds less than its declared size")
        return b""

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        out = self._produce(min(len(buffer), CHUNK)) if len(buffer) else b""
        buffer[:len(out)] = out
        return len(out)

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            return self.readall()
        pieces, wanted = [], size
        while wanted > 0 and (out := self._produce(min(wanted, CHUNK))):
            pieces.append(out)
            wanted -= len(out)
        return b"".join(pieces)

    def readall(self) -> bytes:
        pieces = []
        while out := self._produce(CHUNK):
            pieces.append(out)
        return b"".join(pieces)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        target = {io.SEEK_SET: offset, io.SEEK_CUR: self._position + offset,
                  io.SEEK_END: self._size + offset}[whence]
        if target < 0:
            raise ValueError(f"negative seek position {target}")
        if target < self._position:
            self._restart()
        while self._position < target and self._produce(min(target - self._position, CHUNK)):
            pass
        return self._position

    def close(self) -> None:
        if not self.closed:
            self._source.close()
        super().close()
