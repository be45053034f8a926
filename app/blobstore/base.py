"""The blob store interface every backend implements (filesystem, S3).

The contract, checked against every backend by ``tests/unit/test_blobstore_contract.py``:

* ``put`` returns only once the blob is durable (fsynced file; S3 acknowledgement of the
  PUT or of CompleteMultipartUpload) and a reader never sees a partial blob; a failed
  ``put`` leaves nothing behind;
* ``open`` streams (never the whole blob in memory), ``read_range`` reads a slice;
  both raise ``FileNotFoundError`` for an absent key;
* ``delete`` is idempotent; ``delete_many`` reports the keys it could not delete
  instead of raising, so that callers can keep them for a retry;
* ``keys(older_than)`` lists blobs by age for the orphan sweep.
"""

from __future__ import annotations

import abc
import uuid
from collections.abc import Iterable, Iterator
from typing import BinaryIO

BlobKey = str


class BlobStoreConfigError(ValueError):
    """A blob store URL that cannot be used (bad syntax, missing client library,
    unreachable bucket): the server refuses to start with this one-line message."""


def new_key() -> BlobKey:
    """Orthanc names its attachments by UUID (``FileUuid``); so does Pharos."""
    return str(uuid.uuid4())


def check_key(key: BlobKey) -> BlobKey:
    """Keys are flat names (UUIDs): no path separators, no hidden names."""
    if len(key) < 4 or "/" in key or "\\" in key or key.startswith("."):
        raise ValueError(f"invalid blob key {key!r}")
    return key


class BlobStore(abc.ABC):
    @abc.abstractmethod
    def put(self, key: BlobKey, chunks: Iterable[bytes] | bytes) -> int:
        """Store durably under *key*; return the size once the store acknowledged it."""

    @abc.abstractmethod
    def open(self, key: BlobKey) -> BinaryIO:
        """A seekable binary stream positioned at the start; FileNotFoundError when absent."""

    def read(self, key: BlobKey) -> bytes:
        with self.open(key) as stream:
            return stream.read()

    @abc.abstractmethod
    def read_range(self, key: BlobKey, offset: int, length: int) -> bytes:
        """Bytes ``[offset, offset + length)`` of the blob, shorter at its end (empty past
        it); FileNotFoundError when absent. What frames and HTTP ranges read."""

    @abc.abstractmethod
    def size(self, key: BlobKey) -> int:
        """The size in bytes; FileNotFoundError when absent."""

    @abc.abstractmethod
    def delete(self, key: BlobKey) -> None:
        """Remove; no error when already absent; raises when the store cannot be reached."""

    def delete_many(self, keys: Iterable[BlobKey]) -> list[BlobKey]:
        """Remove every key; return those that could not be removed (never raises for
        them: the caller keeps them in the pending-deletion list for a retry)."""
        failed = []
        for key in keys:
            try:
                self.delete(key)
            except Exception:  # noqa: BLE001 — reported to the caller, who retries later
                failed.append(key)
        return failed

    @abc.abstractmethod
    def keys(self, older_than: float = 0.0) -> Iterator[BlobKey]:
        """Stored keys whose blob is at least *older_than* seconds old (orphan sweep).

        Abandoned temporary files (or multipart uploads) of that age are removed on the
        way. The age matters when several processes share the store: a younger blob may
        belong to an ingest still in flight in another process, between its write and its
        index commit.
        """

    def local_path(self, key: BlobKey) -> str | None:
        """A filesystem path for zero-copy responses, when the backend has one."""
        return None

    def describe(self) -> str:
        """What the logs say about this store (never a credential)."""
        return type(self).__name__
