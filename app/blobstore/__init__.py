"""Blob stores: put/open/delete by key. The filesystem store is the default."""

from __future__ import annotations

from app.blobstore.base import BlobStore
from app.blobstore.filesystem import FileSystemBlobStore


def open_blobstore(url: str | None, storage_directory: str) -> BlobStore:
    """``file:///path`` or None (StorageDirectory) gives the filesystem store."""
    if url is None or url.startswith("file://"):
        root = url[len("file://"):] if url else storage_directory
        return FileSystemBlobStore(root)
    raise ValueError(f"unsupported blob store URL: {url!r}")


__all__ = ["BlobStore", "FileSystemBlobStore", "open_blobstore"]
