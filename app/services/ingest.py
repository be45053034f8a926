"""The one ingest path: REST, STOW-RS and C-STORE all end here.

``ingest_instance`` parses once, writes the blob durably (temporary file, fsync,
rename), then indexes it in one transaction; if indexing fails the blob is removed, so
nothing is ever half stored. Storage quotas (MaximumStorageSize, MaximumPatientCount)
are enforced inside the same transaction, recycling the oldest unprotected patients or
refusing, as Orthanc does.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import zipfile
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from functools import partial
from typing import IO, Any

from app.blobstore.base import new_key
from app.blobstore.stored import (
    COMPRESSION_NONE,
    COMPRESSION_ZLIB,
    WrittenContent,
    describe_bytes,
)
from app.context import ServerContext, blob_deletion
from app.context.metrics import metrics_of
from app.dicom.levels import Level
from app.dicom.limits import check_deflated_dataset
from app.dicom.parse import ParsedInstance, parse_instance, read_dataset, sop_instance_uid_of
from app.errors import BadFileFormat, FullStorage, PharosError, ReadOnlyMode, ZipBomb
from app.index import repository
from app.index.db import Connection
from app.timeutil import now_stamp

log = logging.getLogger(__name__)


@dataclass(slots=True)
class IngestResult:
    status: str  # Success | AlreadyStored | FilteredOut
    parsed: ParsedInstance
    dimse_status: int = 0  # the C-STORE status a refusing script chose (0: success)

    def orthanc_json(self) -> dict[str, str]:
        """The answer of ``POST /instances``."""
        ids = self.parsed.ids
        return {"ID": ids.instance, "ParentPatient": ids.patient, "ParentSeries": ids.series,
                "ParentStudy": ids.study, "Path": f"/instances/{ids.instance}",
                "Status": self.status}


# Blob writes run beside parsing: the fsync (~2 ms here) waits on the disk, not the
# CPU, so overlapping it with the parse of the same file saves most of the parse time.
_BLOB_WRITERS = ThreadPoolExecutor(max_workers=16, thread_name_prefix="pharos-blob")


def _write_blob(context: ServerContext, key: str, data: bytes,
                described: Future[WrittenContent]) -> WrittenContent:
    """Write durably (temporary name, fsync, rename), zlib-compressed in Orthanc's format
    with ``StorageCompression``; answer the sizes and MD5s the index keeps, and give them
    to *described* as soon as they are known, before the write (see ``_ingest_instance``)."""
    compression = COMPRESSION_ZLIB if context.settings.storage_compression \
        else COMPRESSION_NONE
    try:
        stored, written = describe_bytes(key, data, compression)
    except BaseException as error:
        described.set_exception(error)
        raise
    described.set_result(written)
    context.blobs.put(key, stored)
    return written


def ingest_instance(context: ServerContext, data: bytes, origin: dict[str, str], *,
                    check: Callable[[ParsedInstance], None] | None = None) -> IngestResult:
    """Store one DICOM file held in memory. Raises a PharosError for bad input or full storage.

    *check* (a door's own rule, e.g. STOW-RS's study of the URL) sees the parsed file
    before anything is indexed and refuses it by raising a PharosError: the file is
    parsed once. Counted for ``/tools/metrics-prometheus`` by origin and outcome."""
    counted = metrics_of(context)
    try:
        result = _ingest_instance(context, data, origin, check)
    except Exception:
        counted.ingest(origin.get("Origin", "Unknown"), "Failure", len(data))
        raise
    counted.ingest(origin.get("Origin", "Unknown"), result.status, len(data))
    return result


def _ingest_instance(context: ServerContext, data: bytes, origin: dict[str, str],
                     check: Callable[[ParsedInstance], None] | None) -> IngestResult:
    """Store one DICOM file held in memory.

    The blob is written (and fsynced) after the parse on this thread when no other
    ingest runs, else on a blob thread while the file is parsed; the index transaction
    commits only once the blob is durable, and the blob is removed if parsing or
    indexing fails: nothing is half stored.
    """
    settings = context.settings
    if settings.read_only:  # refused before any work (the index and the store refuse too)
        raise ReadOnlyMode("Pharos runs with \"ReadOnly\": no instance can be stored")
    check_deflated_dataset(data)  # a decompression bomb is refused before any write
    key = new_key()
    described: Future[WrittenContent] = Future()
    with _IN_FLIGHT_LOCK:
        global _in_flight
        _in_flight += 1
        alone = _in_flight == 1
    try:
        return _ingest_started(context, data, origin, check, key, described, alone)
    finally:
        with _IN_FLIGHT_LOCK:
            _in_flight -= 1


# Ingests in progress in this process. A lone one (one client, one C-STORE association)
# writes its blob on its own thread: under CPU contention, handing the write to another
# thread and back costs more than overlapping it with the parse saves (measured with
# benchmarks/writes.py on the loaded 2-core machine: 1 client 28-68 against 16-48 inst/s,
# C-STORE 41-57 against 15-35, in 5 alternated pairs). Several at once hand their blob
# writes to _BLOB_WRITERS, so that each fsync overlaps the parse and the index rows (4
# clients and STOW-RS: 93-127 against 117-188 inst/s the other way round).
_IN_FLIGHT_LOCK = threading.Lock()
_in_flight = 0


def _ingest_started(context: ServerContext, data: bytes, origin: dict[str, str],
                    check: Callable[[ParsedInstance], None] | None, key: str,
                    described: Future[WrittenContent], alone: bool) -> IngestResult:
    settings = context.settings
    if alone:
        written: Future[WrittenContent] = Future()
    else:
        written = _BLOB_WRITERS.submit(_write_blob, context, key, data, described)
    try:
        parsed = parse_instance(data)
        if check is not None:
            check(parsed)
        # ReceivedInstanceFilter (Lua, Python hooks), before anything is indexed.
        refusal = context.hooks.filter_incoming_instance(context, data, parsed, origin)
        if refusal is not None:
            if not alone:  # (alone: nothing was written)
                _discard(context, key, written)
            return IngestResult("FilteredOut", parsed, refusal)
        if alone:  # parsed and accepted: now the blob, durably, on this thread
            try:
                written.set_result(_write_blob(context, key, data, described))
            except BaseException as error:
                written.set_exception(error)
                raise
        blob = described.result()  # sizes and MD5s: the blob may still be in writing
        if not context.db.sqlite:
            # PostgreSQL: the transaction's locks (the patient's) are seen by the writers
            # of every node; it starts once the blob is durable, so that they never wait
            # for a write (an S3 upload may take far longer than the statements).
            written.result()
    except BaseException:
        if written.done() or not alone:  # (alone and not done: nothing was written)
            _discard(context, key, written)
        raise
    # No read-only "already stored?" pre-check: store_instance checks inside its
    # transaction, and a duplicate costing one blob write is cheaper than a read
    # transaction on every instance (measured: benchmarks/experiments_ingest.py).
    def index(conn: Connection) -> tuple[repository.StoreOutcome, list[str]]:
        repository.lock_patient(conn, parsed.ids.patient)  # before recycling others
        freed = _make_room(context, conn, parsed, blob.stored_size)
        stored = repository.store_instance(
            conn, parsed, blob_key=key, file_size=blob.size, md5=blob.md5, now=now_stamp(),
            origin=origin, overwrite=settings.overwrite_mode, **_storage_columns(blob))
        freed.extend(stored.replaced_blob_keys)
        # Durably queued with the commit: a failed delete is retried, never lost.
        blob_deletion.schedule(conn, freed)
        # SQLite: the row is written while the blob is fsynced (the statements overlap
        # the disk's wait; the one writer of the host is this process's group), but
        # commits only once the blob is durable: an index row never points at a blob a
        # crash could lose. A failed write fails the transaction.
        if stored.status == "Success":
            written.result()
        return stored, freed

    try:
        # One place for every door (REST, STOW-RS, C-STORE, jobs): a race lost to another
        # writer (the same instance or parent created, or deleted, at the same moment; a
        # deadlock) is run again and then sees what the other writer committed.
        # Committed with the other ingests of the moment (group commit), and retried
        # alone when the group fails: acknowledged only once its own commit is done.
        outcome, recycled = context.db.write_grouped(index, key=parsed.ids.patient)
    except BaseException:
        _discard(context, key, written)
        raise
    if outcome.status == "AlreadyStored":
        _discard(context, key, written)
    blob_deletion.delete_scheduled(context, recycled)
    if outcome.status == "Success":  # OnStoredInstance, after the commit, asynchronously
        context.hooks.instance_stored(context, data, parsed, origin)
    return IngestResult(outcome.status, parsed)


# Files of one request (ZIP entries) are ingested by a few threads: the blob fsync of
# one overlaps the parse of the next, and their index writes commit in groups.
_INGESTERS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="pharos-ingest")
_IN_FLIGHT = 8  # files of one request held in memory at once


def stored_identically(context: ServerContext, data: bytes) -> bool:
    """Whether these very bytes are stored already: an instance with the file's
    SOPInstanceUID was stored from a file with the same MD5. Reads only up to that tag
    (no full parse); any doubt (unreadable header, no UID) answers False, and the file
    then takes the ingest path, which decides."""
    sop_uid = sop_instance_uid_of(data)
    if sop_uid is None:
        return False
    md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
    with context.db.read() as conn:
        return repository.has_identical_instance(conn, sop_uid, md5)


def ingest_each(context: ServerContext, files: Iterator[Callable[[], bytes]],
                origin: dict[str, str]) -> list[IngestResult]:
    """``ingest_instance`` of every file (each read by calling its reader, at most
    ``_IN_FLIGHT`` held at once), on a few threads; the results in order. The first
    failure is raised once the files in flight are done; the files before it are stored,
    as they would be one after the other."""
    results: list[IngestResult] = []
    pending: deque[Future[IngestResult]] = deque()
    try:
        for read in files:
            if len(pending) >= _IN_FLIGHT:
                results.append(pending.popleft().result())
            pending.append(_INGESTERS.submit(_ingest_read, context, read, origin))
        while pending:
            results.append(pending.popleft().result())
    finally:
        wait(pending)  # a failure: let the files in flight finish before raising
    return results


def _ingest_read(context: ServerContext, read: Callable[[], bytes],
                 origin: dict[str, str]) -> IngestResult:
    return ingest_instance(context, read(), origin)


def _storage_columns(blob: WrittenContent) -> dict[str, Any]:
    """How the index describes the blob (see :func:`repository.store_instance`)."""
    if blob.compression == COMPRESSION_NONE:
        return {}
    return {"compression": blob.compression, "compressed_size": blob.stored_size,
            "compressed_md5": blob.stored_md5}


def _discard(context: ServerContext, key: str, written: Future[WrittenContent]) -> None:
    """Wait for a blob write whose file turned out unusable, then remove the blob."""
    try:
        written.result()
    except Exception:  # noqa: BLE001 — the write failed: put() already removed its temp file
        return
    blob_deletion.discard(context, [key])


def _make_room(context: ServerContext, conn: Connection, parsed: ParsedInstance,
               size: int) -> list[str]:
    """Enforce MaximumPatientCount / MaximumStorageSize (on the disk size, as Orthanc:
    compressed blobs count as stored) for a new blob of *size* bytes; return blob keys to
    delete."""
    settings = context.settings
    max_patients = settings.maximum_patient_count
    max_bytes = settings.maximum_storage_size * 1024 * 1024
    if not max_patients and not max_bytes:
        return []
    new_patient = repository.get_row(conn, Level.PATIENT, parsed.ids.patient) is None
    freed: list[str] = []
    while True:
        too_many = bool(max_patients) and new_patient and \
            repository.count_level(conn, Level.PATIENT) >= max_patients
        too_big = bool(max_bytes) and repository.storage_totals(conn)[2] + size > max_bytes
        if not (too_many or too_big):
            return freed
        if settings.maximum_storage_mode.lower() == "reject":
            raise FullStorage("The storage is full and MaximumStorageMode is Reject")
        victim = repository.oldest_unprotected_patient(conn, parsed.ids.patient)
        if victim is None:
            raise FullStorage("Cannot recycle more patients: all are protected or in use")
        log.info("Recycling patient %s to make room", victim.public_id)
        repository.lock_patient(conn, victim.public_id)
        if repository.get_row(conn, Level.PATIENT, victim.public_id) is None:
            continue  # deleted by another writer meanwhile: look again
        keys, _ = repository.delete_resource(conn, Level.PATIENT, victim.pk)
        freed.extend(keys)


# --- ZIP archives -------------------------------------------------------------------------

ZIP_MAGIC = b"PK\x03\x04"
_SKIPPED_NAMES = {"DICOMDIR", ".DS_Store", "Thumbs.db"}


def is_zip(head: bytes) -> bool:
    return head.startswith(ZIP_MAGIC)


def _zip_members(archive: zipfile.ZipFile, context: ServerContext) -> list[zipfile.ZipInfo]:
    """The entries to ingest, after the bomb checks (count, total size, ratio)."""
    settings = context.settings
    infos = [i for i in archive.infolist() if not i.is_dir()]
    if len(infos) > settings.max_zip_entries:
        raise ZipBomb(f"The ZIP archive has {len(infos)} entries, more than the limit "
                      f"of {settings.max_zip_entries}")
    total = 0
    members = []
    for info in infos:
        name = info.filename.rsplit("/", 1)[-1]
        if info.filename.startswith("__MACOSX/") or name in _SKIPPED_NAMES or not name:
            continue
        if info.file_size > settings.max_upload_size:
            raise ZipBomb(f"ZIP entry {info.filename!r} is larger than the upload limit")
        if info.compress_size and info.file_size / info.compress_size > settings.max_zip_ratio:
            raise ZipBomb(f"ZIP entry {info.filename!r} has a compression ratio above "
                          f"{settings.max_zip_ratio}: refused as a possible ZIP bomb")
        total += info.file_size
        members.append(info)
    if total > settings.max_zip_uncompressed_size:
        raise ZipBomb("The ZIP archive expands beyond the configured limit")
    return members


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    with archive.open(info) as stream:
        # Never trust the declared size: read at most one byte more than it.
        data = stream.read(info.file_size + 1)
    if len(data) != info.file_size:
        raise ZipBomb(f"ZIP entry {info.filename!r} is larger than it declares")
    return data


def ingest_zip(context: ServerContext, stream: IO[bytes],
               origin: dict[str, str]) -> list[IngestResult]:
    """Store every DICOM file of a ZIP, all or nothing as far as parsing goes.

    A first pass (``check_zip``) checks that every entry (DICOMDIR and OS junk aside) is
    a DICOM instance, so that a ZIP with a bad entry stores nothing; the second pass
    ingests.
    """
    with _open_zip(stream) as archive:
        members = _dicom_members(archive, context)
        return ingest_each(context, (partial(_read_member_checked, archive, info)
                                     for info in members), origin)


def ingest_zip_members(context: ServerContext, stream: IO[bytes],
                       origin: dict[str, str]) -> list[IngestResult]:
    """Store each DICOM file of a ZIP, skipping the members that are not DICOM (logged):
    Orthanc's WebDAV upload of a ZIP (1.8.2+), where a folder dropped by a file manager
    may hold anything. The ZIP bomb limits apply as to ``ingest_zip``."""
    results = []
    with _open_zip(stream) as archive:
        for info in _zip_members(archive, context):
            try:
                data = _read_member_checked(archive, info)
                if not check_instance(data, f"ZIP entry {info.filename!r}"):
                    continue
                results.append(ingest_instance(context, data, origin))
            except BadFileFormat as error:
                log.warning("Cannot import non-DICOM file from ZIP archive: %s (%s)",
                            info.filename, error)
    return results


def check_zip(context: ServerContext, stream: IO[bytes]) -> None:
    """Raise what ``ingest_zip`` would raise for this archive before storing anything."""
    with _open_zip(stream) as archive:
        _dicom_members(archive, context)
    stream.seek(0)


def check_instance(data: bytes, name: str = "") -> bool:
    """Whether *data* is a DICOM instance to store (False: a DICOMDIR, to skip); raise
    BadFileFormat when it is not DICOM or lacks a UID that identifies it."""
    dataset = read_dataset(data, stop_before_pixels=True)
    if str(getattr(dataset, "file_meta", {}).get("MediaStorageSOPClassUID", "")) \
            == "1.2.840.10008.1.3.10":
        return False  # a DICOMDIR under another name
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        if not str(dataset.get(keyword, "")).strip():
            where = f"{name}: " if name else ""
            raise BadFileFormat(f"{where}missing {keyword}")
    return True


def _open_zip(stream: IO[bytes]) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(stream)
    except zipfile.BadZipFile as error:
        raise BadFileFormat(f"Invalid ZIP archive: {error}") from error


def _dicom_members(archive: zipfile.ZipFile, context: ServerContext) -> list[zipfile.ZipInfo]:
    """The entries to ingest, each checked to be a DICOM instance (DICOMDIRs left out)."""
    return [info for info in _zip_members(archive, context)
            if check_instance(_read_member_checked(archive, info), f"ZIP entry {info.filename!r}")]


def _read_member_checked(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    try:
        return _read_member(archive, info)
    except PharosError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:
        raise BadFileFormat(f"ZIP entry {info.filename!r} cannot be read: {error}") from error


def iter_chunks(stream: IO[bytes], size: int = 1 << 20) -> Iterator[bytes]:
    while chunk := stream.read(size):
        yield chunk
