"""A blob store that refuses every change: the storage of a server running with
``ReadOnly`` (Orthanc 1.12.5 forbids such a server "any modification to the index
database or to the storage area"). Reads go to the wrapped store unchanged."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import BinaryIO

from app.blobstore.base import BlobKey, BlobStore
from app.errors import ReadOnlyMode

_REFUSAL = "Pharos runs with \"ReadOnly\": the storage area cannot be modified"


class ReadOnlyBlobStore(BlobStore):
    def __init__(self, inner: BlobStore) -> None:
        self.inner = inner

    def put(self, key: BlobKey, chunks: Iterable[bytes] | bytes) -> int:
        raise ReadOnlyMode(_REFUSAL)

    def delete(self, key: BlobKey) -> None:
        raise ReadOnlyMode(_REFUSAL)

    def delete_many(self, keys: Iterable[BlobKey]) -> list[BlobKey]:
        raise ReadOnlyMode(_REFUSAL)

    def open(self, key: BlobKey) -> BinaryIO:
        return self.inner.open(key)

    def read(self, key: BlobKey) -> bytes:
        return self.inner.read(key)

    def read_range(self, key: BlobKey, offset: int, length: int) -> bytes:
        return self.inner.read_range(key, offset, length)

    def size(self, key: BlobKey) -> int:
        return self.inner.size(key)

    def keys(self, older_than: float = 0.0) -> Iterator[BlobKey]:
        return self.inner.keys(older_than)

    def local_path(self, key: BlobKey) -> str | None:
        return self.inner.local_path(key)

    def describe(self) -> str:
        return f"{self.inner.describe()} (read-only)"
