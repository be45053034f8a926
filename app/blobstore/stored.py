"""A stored content as the index describes it: the one way to read or write one.

An index row (an instance's DICOM file, a user attachment) names its blob and says how it
is stored (``compression``: 0 as given, 1 Orthanc's zlib format). :class:`StoredFile`
reads the *content* whatever the storage: streamed, whole, or a byte range, uncompressed
on the fly; :meth:`StoredFile.open_stored` reads the blob as stored (``compressed-data``).
:func:`write_content` stores a content in a new blob, compressed or not, and answers
the sizes and MD5s the index keeps of both forms (Orthanc's FileInfo).

Every reader of instance files and attachments (``/file``, attachments ``/data``,
WADO-RS/URI, archives and DICOMDIR media, C-GET/C-MOVE/C-STORE SCU, peers, decoding and
previews, modification) goes through here, so ``StorageCompression`` is invisible to
them. Errors are the store's: ``FileNotFoundError`` for a missing blob, and
:class:`app.errors.CorruptedFile` for a compressed blob that does not uncompress.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from app.blobstore.base import BlobKey, BlobStore
from app.blobstore.compression import (
    CHUNK,
    COMPRESSION_NONE,
    COMPRESSION_ZLIB,
    UncompressingReader,
    compress,
    compressed_chunks,
    uncompress,
)

__all__ = ["COMPRESSION_NONE", "COMPRESSION_ZLIB", "StoredFile", "WrittenContent",
           "write_content", "describe_bytes"]


@dataclass(frozen=True, slots=True)
class StoredFile:
    store: BlobStore
    key: BlobKey
    size: int  # of the content (uncompressed)
    compression: int = COMPRESSION_NONE

    @property
    def compressed(self) -> bool:
        return self.compression != COMPRESSION_NONE

    def open(self) -> BinaryIO:
        """The content as a seekable stream (forward seeks are cheap; backward ones on a
        compressed blob start over)."""
        stream = self.store.open(self.key)
        if not self.compressed:
            return stream
        return io.BufferedReader(UncompressingReader(stream), buffer_size=CHUNK)

    def read(self) -> bytes:
        """The whole content."""
        stored = self.store.read(self.key)
        return uncompress(stored) if self.compressed else stored

    def chunks(self, first: int = 0, length: int | None = None) -> Iterator[bytes]:
        """The content from byte *first*, *length* bytes (all when None), piecewise. The
        blob is opened now (a missing blob raises here, before an HTTP answer starts)."""
        return _chunks(self.open(), first, self.size - first if length is None else length)

    def read_range(self, first: int, length: int) -> bytes:
        """Bytes ``[first, first + length)`` of the content (shorter at its end). On a
        compressed blob the bytes before *first* are uncompressed and dropped."""
        if not self.compressed:
            return self.store.read_range(self.key, first, length)
        return b"".join(self.chunks(first, length))

    def local_path(self) -> str | None:
        """A file holding the content as it is, for zero-copy answers (not when compressed)."""
        return None if self.compressed else self.store.local_path(self.key)

    def open_stored(self) -> BinaryIO:
        """The blob as stored (compressed when it is)."""
        return self.store.open(self.key)


def _chunks(stream: BinaryIO, first: int, length: int) -> Iterator[bytes]:
    with stream:
        if first:
            stream.seek(first)
        while length > 0 and (chunk := stream.read(min(CHUNK, length))):
            length -= len(chunk)
            yield chunk


@dataclass(frozen=True, slots=True)
class WrittenContent:
    """What the index keeps of a content written by :func:`write_content`."""

    key: BlobKey
    compression: int
    size: int
    md5: str
    stored_size: int
    stored_md5: str


class _Hashing:
    """Passes chunks through, counting and hashing them."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = chunks
        self.size = 0
        self._md5 = hashlib.md5(usedforsecurity=False)

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            self.size += len(chunk)
            self._md5.update(chunk)
            yield chunk

    @property
    def md5(self) -> str:
        return self._md5.hexdigest()


def write_content(store: BlobStore, key: BlobKey, content: bytes | Iterable[bytes],
                  compression: int, size: int | None = None) -> WrittenContent:
    """Store *content* (bytes, or chunks of *size* bytes in all) under *key*, compressed
    when *compression* says so; durable when this returns (see :meth:`BlobStore.put`)."""
    if isinstance(content, bytes | bytearray | memoryview):
        return _write_bytes(store, key, bytes(content), compression)
    if size is None:
        raise ValueError("the size of a content given piecewise must be known")
    plain = _Hashing(content)
    if compression == COMPRESSION_NONE:
        store.put(key, iter(plain))
        return WrittenContent(key, compression, plain.size, plain.md5, plain.size, plain.md5)
    if compression != COMPRESSION_ZLIB:
        raise ValueError(f"unknown compression type {compression}")
    stored = _Hashing(compressed_chunks(plain, size))
    store.put(key, iter(stored))
    return WrittenContent(key, compression, plain.size, plain.md5, stored.size, stored.md5)


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _write_bytes(store: BlobStore, key: BlobKey, content: bytes,
                 compression: int) -> WrittenContent:
    stored, written = describe_bytes(key, content, compression)
    store.put(key, stored)
    return written


def describe_bytes(key: BlobKey, content: bytes,
                   compression: int) -> tuple[bytes, WrittenContent]:
    """(the bytes to put under *key*, what the index will keep of them): the first half
    of :func:`write_content` for a content held in memory, so that a caller can index
    the content while its blob is being written (and commit only once it is durable)."""
    md5 = _md5(content)
    if compression == COMPRESSION_NONE:
        return content, WrittenContent(key, compression, len(content), md5, len(content), md5)
    if compression != COMPRESSION_ZLIB:
        raise ValueError(f"unknown compression type {compression}")
    stored = compress(content)
    return stored, WrittenContent(key, compression, len(content), md5, len(stored),
                                  _md5(stored))
