"""``POST /instances`` with ``multipart/form-data``: the upload of an HTML form.

Orthanc accepts a form upload on ``POST`` (its built-in server posts each part of the
form to the same URI, then answers 200): Orthanc Explorer's "Upload" button sends its
files that way, one part per file, through jQuery File Upload. Pharos does the same for
``/instances``, with its own rules for bad input: every part is checked (a DICOM file,
or a ZIP of DICOM files) before any is stored, so a form holding one bad file stores
nothing, as a bad ZIP does. Empty parts (a file input left empty) are skipped.

jQuery File Upload's ``maxChunkSize`` splits one file over several requests, each a
form whose one part is the next slice, with ``X-File-Name`` and ``X-File-Size``
headers; Orthanc gathers the slices by file name and stores the file once it has all
its bytes (more bytes than announced: the slices are dropped). Pharos keeps the slices
in files under ``IndexDirectory`` (``upload-chunks/``), so that the processes of a
multi-process server gather them together; as in Orthanc, at most ten files are pending
(the oldest is dropped, and its next slice refused) and a file pending for an hour is
dropped.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from app.context import ServerContext
from app.errors import BadRequest
from app.protocols.multipart import SpooledBody
from app.services import ingest
from app.validation import is_digits

PENDING_FILES = 10  # Orthanc's ChunkStore: ten places
PENDING_MAX_AGE = 3600.0  # seconds


@dataclass(frozen=True, slots=True)
class ChunkHeaders:
    """``X-File-Name`` and ``X-File-Size`` of a jQuery File Upload slice."""

    name: str
    size: int


def chunk_headers(headers: dict[str, str]) -> ChunkHeaders | None:
    """Read and check the upload headers Orthanc reads (400 where Orthanc fails)."""
    requested_with = headers.get("x-requested-with")
    if requested_with is not None and requested_with != "XMLHttpRequest":
        raise BadRequest('HTTP header "X-Requested-With" should be "XMLHttpRequest" in '
                         "multipart uploads")
    name, size = headers.get("x-file-name"), headers.get("x-file-size")
    if name is None and size is None:
        return None
    if name is None:
        raise BadRequest('HTTP header "X-File-Name" is missing')
    if size is None:
        raise BadRequest('HTTP header "X-File-Size" is missing')
    size = size.strip()
    if not is_digits(size.lstrip("-")):
        raise BadRequest('HTTP header "X-File-Size" is not an integer')
    if size.startswith("-"):
        raise BadRequest('HTTP header "X-File-Size" has negative value')
    return ChunkHeaders(name, int(size))


def ingest_form(context: ServerContext, body: SpooledBody, origin: dict[str, str],
                chunk: ChunkHeaders | None) -> list[ingest.IngestResult]:
    """Store the files of a form: every part checked first, then each stored."""
    payloads = [body.read(part) for part in body.parts if part.size]
    if chunk is not None:
        store = ChunkStore(context.settings.index_path / "upload-chunks")
        completed = [store.add(chunk, piece) for piece in payloads]
        payloads = [data for data in completed if data is not None]
    for data in payloads:
        _check(context, data)
    results: list[ingest.IngestResult] = []
    for data in payloads:
        if ingest.is_zip(data[:4]):
            results.extend(ingest.ingest_zip(context, io.BytesIO(data), origin))
        elif ingest.check_instance(data):
            results.append(ingest.ingest_instance(context, data, origin))
    return results


def _check(context: ServerContext, data: bytes) -> None:
    if ingest.is_zip(data[:4]):
        ingest.check_zip(context, io.BytesIO(data))
    else:
        ingest.check_instance(data)


class ChunkStore:
    """Slices of files being uploaded, gathered by file name in a shared folder."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def add(self, chunk: ChunkHeaders, data: bytes) -> bytes | None:
        """Append a slice; the whole file once it has ``X-File-Size`` bytes, else None."""
        self.directory.mkdir(parents=True, exist_ok=True)
        key = hashlib.sha256(chunk.name.encode("utf-8", "surrogateescape")).hexdigest()
        path = self.directory / f"{key}.part"
        dropped = self.directory / f"{key}.dropped"
        with self._locked():
            if dropped.exists():  # its earlier slices were dropped to make room
                dropped.unlink()
                raise BadRequest("Error in the multipart form upload: the earlier slices of "
                                 f"{chunk.name!r} were dropped")
            if not path.exists():
                self._make_room()
            with path.open("ab") as file:
                file.write(data)
                size = file.tell()
            if size < chunk.size:
                return None
            complete = path.read_bytes() if size == chunk.size else None
            path.unlink()
            return complete

    def _make_room(self) -> None:
        """Drop stale files, then the oldest ones while ten are pending (as Orthanc)."""
        pending = sorted(self.directory.glob("*.part"), key=lambda p: p.stat().st_mtime)
        now = time.time()
        for path in list(pending):
            if now - path.stat().st_mtime > PENDING_MAX_AGE:
                path.unlink(missing_ok=True)
                pending.remove(path)
        for stale in self.directory.glob("*.dropped"):
            if now - stale.stat().st_mtime > PENDING_MAX_AGE:
                stale.unlink(missing_ok=True)
        while len(pending) >= PENDING_FILES:
            oldest = pending.pop(0)
            oldest.unlink(missing_ok=True)
            oldest.with_suffix(".dropped").touch()

    @contextmanager
    def _locked(self) -> Iterator[None]:
        descriptor = os.open(self.directory / ".lock", os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)
