"""Blob stores: put/open/read_range/delete by key. The filesystem store is the default;
an ``s3://`` URL selects the S3 store (boto3, the ``s3`` extra)."""

from __future__ import annotations

from app.blobstore.base import BlobStore, BlobStoreConfigError
from app.blobstore.filesystem import FileSystemBlobStore


def open_blobstore(url: str | None, storage_directory: str) -> BlobStore:
    """``file:///path`` or None (StorageDirectory): the filesystem store; ``s3://bucket/
    prefix?...``: the S3 store (see :mod:`app.blobstore.s3`). Raises BlobStoreConfigError,
    whose message is one line fit for the console, when the URL cannot be used."""
    if url is None or not url.strip() or url.startswith("file://"):
        root = url[len("file://"):] if url and url.strip() else storage_directory
        return FileSystemBlobStore(root)
    if url.startswith("s3://"):
        from app.blobstore.s3 import S3BlobStore  # boto3 is imported only for S3
        return S3BlobStore.from_url(url)
    scheme = url.split(":", 1)[0] if ":" in url else url
    raise BlobStoreConfigError(f"unsupported BlobstoreUrl scheme {scheme!r}: use file:///path "
                               "or s3://bucket/prefix")


__all__ = ["BlobStore", "BlobStoreConfigError", "FileSystemBlobStore", "open_blobstore"]
