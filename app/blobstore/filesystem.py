"""Blobs as files under StorageDirectory, laid out like Orthanc's (``ab/cd/abcd...``).

A blob is written to a temporary name in its final folder, fsynced, then renamed: a
reader or a crash never sees half a file. The index row that points at a blob is
written only after ``put`` returns.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from app.blobstore.base import BlobKey, BlobStore, check_key

_TMP_SUFFIX = ".tmp"


class FileSystemBlobStore(BlobStore):
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: BlobKey) -> Path:
        check_key(key)
        return self.root / key[0:2] / key[2:4] / key

    def put(self, key: BlobKey, chunks: Iterable[bytes] | bytes) -> int:
        path = self._path(key)
        temporary = path.with_name(path.name + _TMP_SUFFIX)
        size = 0
        try:
            with self._create(temporary) as stream:
                if isinstance(chunks, bytes | bytearray | memoryview):
                    stream.write(chunks)
                    size = len(chunks)
                else:
                    for chunk in chunks:
                        stream.write(chunk)
                        size += len(chunk)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temporary, path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        return size

    @staticmethod
    def _create(temporary: Path) -> BinaryIO:
        """Open a new file, creating its folders only when they are missing (most exist:
        no mkdir on every put). A folder emptied and removed by a concurrent delete
        between the two steps is created again."""
        for _ in range(3):
            try:
                return open(temporary, "wb")
            except FileNotFoundError:
                temporary.parent.mkdir(parents=True, exist_ok=True)
        return open(temporary, "wb")

    def open(self, key: BlobKey) -> BinaryIO:
        return open(self._path(key), "rb")

    def read_range(self, key: BlobKey, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0:
            raise ValueError("a range needs a non-negative offset and length")
        with open(self._path(key), "rb") as stream:
            stream.seek(offset)
            return stream.read(length)

    def size(self, key: BlobKey) -> int:
        return self._path(key).stat().st_size

    def delete(self, key: BlobKey) -> None:
        path = self._path(key)
        path.unlink(missing_ok=True)
        for folder in (path.parent, path.parent.parent):
            try:
                folder.rmdir()  # only succeeds when empty
            except OSError:
                break

    def keys(self, older_than: float = 0.0) -> Iterator[BlobKey]:
        deadline = time.time() - older_than
        for first in self.root.iterdir():
            if not first.is_dir() or len(first.name) != 2:
                continue
            for second in first.iterdir():
                if not second.is_dir():
                    continue
                for file in second.iterdir():
                    try:
                        if file.stat().st_mtime > deadline:
                            continue  # maybe an ingest in flight in another process
                    except FileNotFoundError:
                        continue
                    if file.name.endswith(_TMP_SUFFIX):
                        file.unlink(missing_ok=True)  # an interrupted write
                    else:
                        yield file.name

    def local_path(self, key: BlobKey) -> str | None:
        return str(self._path(key))

    def describe(self) -> str:
        return f"the filesystem under {self.root}"
