"""The blob store interface every backend implements."""

from __future__ import annotations

import abc
import uuid
from collections.abc import Iterable, Iterator
from typing import BinaryIO

BlobKey = str


def new_key() -> BlobKey:
    """Orthanc names its attachments by UUID (``FileUuid``); so does Pharos."""
    return str(uuid.uuid4())


class BlobStore(abc.ABC):
    @abc.abstractmethod
    def put(self, key: BlobKey, chunks: Iterable[bytes] | bytes) -> int:
        """Store durably (written, flushed to disk) under *key*; return the size."""

    @abc.abstractmethod
    def open(self, key: BlobKey) -> BinaryIO:
        """A binary file object positioned at the start; FileNotFoundError when absent."""

    def read(self, key: BlobKey) -> bytes:
        with self.open(key) as stream:
            return stream.read()

    @abc.abstractmethod
    def delete(self, key: BlobKey) -> None:
        """Remove; no error when already absent."""

    @abc.abstractmethod
    def keys(self, older_than: float = 0.0) -> Iterator[BlobKey]:
        """Stored keys whose blob is at least *older_than* seconds old (orphan sweep).

        Abandoned temporary files of that age are removed on the way. The age matters
        when several processes share the store: a younger blob may belong to an ingest
        still in flight in another process, between its rename and its index commit.
        """

    def local_path(self, key: BlobKey) -> str | None:
        """A filesystem path for zero-copy responses, when the backend has one."""
        return None
