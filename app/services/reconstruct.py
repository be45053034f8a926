"""Rebuild the index from the stored files (Orthanc's ``/tools/reconstruct``), and adopt
the DICOM files of a storage folder that no index row knows (migration from Orthanc).

* Every indexed instance is re-read and re-parsed: its columns, main tags, DICOM JSON and
  ``PixelDataOffset``, and the main tags and matching columns of its parents, are
  rewritten in place (identifiers and primary keys do not change), one transaction per
  instance.
* Then (``/tools/reconstruct`` only) every blob of the store that neither an instance nor
  an attachment references is parsed; each DICOM file is indexed where it lies (no copy),
  so that pointing ``StorageDirectory`` at a copy of an Orthanc storage folder (its
  ``ab/cd/uuid`` files; the ``index`` database at its root is not looked at) and
  reconstructing makes every instance appear under Orthanc's own identifiers. Files
  Orthanc wrote compressed (``StorageCompression``) are indexed as they lie, flagged
  compressed (Pharos reads that format). Larger files are adopted first, so that a full file wins over an Orthanc
  ``dicom-until-pixel-data`` fragment of the same instance. Other files are left alone.

Unreferenced blobs younger than *minimum_age* seconds are not adopted: they may belong to
an ingest in flight in another process (written, not yet committed). The offline command
``pharos reconstruct`` uses 0. Beware the startup orphan sweep: a server started on an
un-indexed storage folder removes its files older than an hour, so migrate with ``pharos
reconstruct`` before the first ``pharos serve`` (or set ``Pharos.SweepOrphansAtStart`` to
false until the reconstruction is done).
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from app.blobstore.base import BlobKey
from app.blobstore.compression import (
    COMPRESSION_NONE,
    COMPRESSION_ZLIB,
    looks_compressed,
    uncompress,
)
from app.blobstore.filesystem import FileSystemBlobStore
from app.context import ServerContext
from app.dicom.levels import Level
from app.dicom.parse import ParsedInstance, parse_instance
from app.errors import CorruptedFile, PharosError
from app.index import attachments_repository, reconstruct_repository, repository
from app.services.browse import get_row_or_404
from app.services.instances import stored_file
from app.timeutil import now_stamp

log = logging.getLogger(__name__)

ADOPTION_MINIMUM_AGE = 60.0  # seconds; an ingest holds a blob unindexed for milliseconds
ORIGIN = {"Origin": "Unknown"}


@dataclass
class ReconstructReport:
    refreshed: int = 0
    adopted: int = 0
    already_stored: int = 0
    skipped: list[str] = field(default_factory=list)  # blob keys that are not DICOM
    failed: list[str] = field(default_factory=list)  # indexed instances whose file is bad

    def as_json(self) -> dict[str, object]:
        return {"Refreshed": self.refreshed, "Adopted": self.adopted,
                "AlreadyStored": self.already_stored, "NotDicom": len(self.skipped),
                "Failed": self.failed}


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _parse_stored(data: bytes) -> tuple[ParsedInstance, bytes] | None:
    """The file as DICOM, else as Orthanc's zlib format holding DICOM; None otherwise."""
    try:
        return parse_instance(data), data
    except PharosError:
        pass
    except Exception:  # noqa: BLE001 — arbitrary bytes must never stop a reconstruction
        return None
    if looks_compressed(data):  # Orthanc's StorageCompression
        try:
            plain = uncompress(data)
            return parse_instance(plain), plain
        except Exception:  # noqa: BLE001
            return None
    return None


def _storage(stored: bytes, plain: bytes) -> dict[str, Any]:
    """The storage columns of a blob holding *stored*, whose DICOM file is *plain*."""
    if plain is stored:
        return {"compression": COMPRESSION_NONE, "compressed_size": None,
                "compressed_md5": None}
    return {"compression": COMPRESSION_ZLIB, "compressed_size": len(stored),
            "compressed_md5": _md5(stored)}


# --- existing instances ---------------------------------------------------------------------

def refresh_instances(context: ServerContext, pks: list[int] | None = None,
                      report: ReconstructReport | None = None,
                      cancel_check: Callable[[], bool] | None = None) -> ReconstructReport:
    report = report or ReconstructReport()
    with context.db.read() as conn:
        rows = reconstruct_repository.instance_rows(conn, pks)
    for row in rows:
        if cancel_check is not None and cancel_check():
            break
        try:
            data = stored_file(context, row).read()
        except (FileNotFoundError, CorruptedFile) as error:
            log.warning("Reconstruct: the file of instance %s cannot be read: %s",
                        row.public_id, error)
            report.failed.append(row.public_id)
            continue
        parsed = _parse_stored(data)
        if parsed is None or parsed[0].ids.instance != row.public_id:
            log.warning("Reconstruct: the file of instance %s no longer parses as that "
                        "instance; left as it is", row.public_id)
            report.failed.append(row.public_id)
            continue
        instance, plain = parsed
        storage = _storage(data, plain) if not row.compression else {
            "compression": row.compression, "compressed_size": row.compressed_size,
            "compressed_md5": row.compressed_md5}
        with context.db.write() as conn:
            reconstruct_repository.refresh(conn, row.pk, instance, blob_key=row.blob_key,
                                           file_size=len(plain), md5=_md5(plain), **storage)
        report.refreshed += 1
    return report


def reconstruct_resource(context: ServerContext, level: Level, public_id: str) -> None:
    """``POST /{level}/{id}/reconstruct``."""
    with context.db.read() as conn:
        row = get_row_or_404(conn, level, public_id)
        pks = repository.descendant_pks(conn, level, row.pk, Level.INSTANCE)
    refresh_instances(context, pks)


# --- files no row knows ---------------------------------------------------------------------

def _stored_blobs(context: ServerContext, minimum_age: float) -> Iterator[tuple[BlobKey, int]]:
    """(key, size) of stored blobs at least *minimum_age* old, largest first. Nothing is
    removed on the way (unlike the sweep's listing, which drops stale temporary files)."""
    blobs = context.blobs
    deadline = time.time() - minimum_age
    found: list[tuple[BlobKey, int]] = []
    if isinstance(blobs, FileSystemBlobStore):
        for first in sorted(os.scandir(blobs.root), key=lambda e: e.name):
            if not first.is_dir() or len(first.name) != 2:
                continue
            for second in os.scandir(first.path):
                if not second.is_dir() or len(second.name) != 2:
                    continue
                for entry in os.scandir(second.path):
                    if not entry.is_file() or entry.name.endswith(".tmp") or \
                            len(entry.name) < 4 or entry.name.startswith("."):
                        continue
                    stat = entry.stat()
                    if stat.st_mtime <= deadline:
                        found.append((entry.name, stat.st_size))
    else:
        found = [(key, 0) for key in blobs.keys(max(minimum_age, 60.0))]
    found.sort(key=lambda item: -item[1])
    yield from found


def adopt_orphan_files(context: ServerContext, report: ReconstructReport, *,
                       minimum_age: float = ADOPTION_MINIMUM_AGE,
                       cancel_check: Callable[[], bool] | None = None) -> None:
    with context.db.read() as conn:
        known = reconstruct_repository.referenced_blob_keys(conn)
        known |= attachments_repository.blob_keys(conn)
    for key, _size in _stored_blobs(context, minimum_age):
        if cancel_check is not None and cancel_check():
            return
        if key in known:
            continue
        try:
            data = context.blobs.read(key)
        except (FileNotFoundError, ValueError):
            continue
        parsed = _parse_stored(data)
        if parsed is None:
            report.skipped.append(key)
            continue
        instance, plain = parsed
        with context.db.write() as conn:
            outcome = repository.store_instance(
                conn, instance, blob_key=key, file_size=len(plain), md5=_md5(plain),
                now=now_stamp(), origin=ORIGIN, overwrite=False, **_storage(data, plain))
        if outcome.status == "AlreadyStored":
            report.already_stored += 1  # a duplicate: left to the orphan sweep
            continue
        report.adopted += 1


def reconstruct_all(context: ServerContext, *, adopt: bool = True,
                    minimum_age: float = ADOPTION_MINIMUM_AGE,
                    cancel_check: Callable[[], bool] | None = None) -> ReconstructReport:
    """``POST /tools/reconstruct`` and ``pharos reconstruct``."""
    report = refresh_instances(context, cancel_check=cancel_check)
    if adopt:
        adopt_orphan_files(context, report, minimum_age=minimum_age, cancel_check=cancel_check)
    log.info("Reconstruct: %s", report.as_json())
    return report
