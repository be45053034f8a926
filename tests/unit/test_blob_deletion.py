"""Blob deletions are never lost, and failed ingests leave no object (both stores).

In-process, on the real index (SQLite, or PostgreSQL with PHAROS_TEST_DATABASE_URL) and
the real stores: the filesystem and moto's S3 server, whose outages are real (the
endpoint refuses connections).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.config import Settings
from app.context import ServerContext, blob_deletion
from app.dicom.levels import Level
from app.errors import BadFileFormat, FullStorage, StorageUnavailable
from app.index import blob_deletions_repository as queue
from app.index import repository
from app.index.db import Database
from app.services.delete import delete_resource
from app.services.ingest import ingest_instance
from tests.helpers import make_dicom, pinned_database
from tests.s3server import moto_s3

ORIGIN = {"Origin": "Unknown"}


@pytest.fixture()
def database(tmp_path: Path) -> Iterator[dict]:
    with pinned_database(tmp_path) as document:
        yield document.get("Pharos", {})


def _open(tmp_path: Path, database: dict, backend: str, **options: object) -> ServerContext:
    values: dict = {"storage_directory": str(tmp_path / "storage"),
                    "database_url": database.get("DatabaseUrl")}
    if backend == "s3":
        s3 = moto_s3()
        values["blobstore_url"] = s3.url(s3.new_bucket(), connect_timeout=1)
    return ServerContext.open(Settings(**values, **options))


@pytest.fixture(params=["filesystem", "s3"])
def context(request: pytest.FixtureRequest, tmp_path: Path, database: dict
            ) -> Iterator[ServerContext]:
    context = _open(tmp_path, database, request.param)
    yield context
    context.close()


def _stored(context: ServerContext) -> set[str]:
    return set(context.blobs.keys())


def _queued(context: ServerContext) -> list[str]:
    with context.db.read() as conn:
        return [key for key, _, _ in queue.pending(conn)]


def _instance_pk(context: ServerContext, public_id: str) -> int:
    with context.db.read() as conn:
        return repository.get_row(conn, Level.INSTANCE, public_id).pk


# --- failed ingests leave no object -----------------------------------------------------------

def test_a_file_that_does_not_parse_leaves_no_blob(context: ServerContext) -> None:
    with pytest.raises(BadFileFormat):
        ingest_instance(context, b"DICM but not really" * 100, ORIGIN)
    assert _stored(context) == set()


def test_a_failed_index_transaction_removes_its_blob(tmp_path: Path, database: dict) -> None:
    """MaximumStorageMode Reject refuses inside the index transaction: the blob written
    beside the parse is removed, the first instance is untouched."""
    for backend in ("filesystem", "s3"):
        context = _open(tmp_path / backend, database, backend, maximum_storage_size=1,
                        maximum_storage_mode="Reject")
        try:
            first = ingest_instance(context, make_dicom(size=500), ORIGIN)  # ~500 kB
            with pytest.raises(FullStorage):
                ingest_instance(context, make_dicom(size=600), ORIGIN)  # ~720 kB more
            with context.db.read() as conn:
                row = repository.get_row(conn, Level.INSTANCE, first.parsed.ids.instance)
            assert _stored(context) == {row.blob_key}
        finally:
            context.close()


def test_a_duplicate_leaves_no_second_blob(context: ServerContext) -> None:
    data = make_dicom()
    ingest_instance(context, data, ORIGIN)
    assert ingest_instance(context, data, ORIGIN).status == "AlreadyStored"
    assert len(_stored(context)) == 1


def test_an_ingest_during_an_s3_outage_stores_nothing(tmp_path: Path, database: dict) -> None:
    context = _open(tmp_path, database, "s3")
    try:
        with moto_s3().outage(), pytest.raises(StorageUnavailable):
            ingest_instance(context, make_dicom(), ORIGIN)
        with context.db.read() as conn:
            assert repository.count_level(conn, Level.INSTANCE) == 0
        assert _stored(context) == set()
    finally:
        context.close()


# --- deletions: at once, or queued and retried ------------------------------------------------

def test_a_delete_removes_the_blob_and_leaves_no_queue(context: ServerContext) -> None:
    result = ingest_instance(context, make_dicom(), ORIGIN)
    delete_resource(context, Level.INSTANCE, result.parsed.ids.instance)
    assert _stored(context) == set()
    assert _queued(context) == []


def test_overwrite_deletes_the_replaced_blob(tmp_path: Path, database: dict) -> None:
    context = _open(tmp_path, database, "s3", overwrite_instances=True)
    try:
        data = make_dicom()
        ingest_instance(context, data, ORIGIN)
        result = ingest_instance(context, data, ORIGIN)
        with context.db.read() as conn:
            row = repository.get_row(conn, Level.INSTANCE, result.parsed.ids.instance)
        assert _stored(context) == {row.blob_key}
        assert _queued(context) == []
    finally:
        context.close()


def test_a_delete_during_an_s3_outage_is_queued_then_retried(tmp_path: Path,
                                                             database: dict) -> None:
    """The rows go at once (the API answers), the object stays queued through the outage
    and is deleted by the drainer once S3 is back: no orphan, no dangling row."""
    context = _open(tmp_path, database, "s3")
    try:
        results = [ingest_instance(context, make_dicom(patient_id="P", study_uid="1.2.3",
                                                       series_uid="1.2.3.4"), ORIGIN)
                   for _ in range(3)]
        keys = _stored(context)
        with moto_s3().outage():
            delete_resource(context, Level.STUDY, results[0].parsed.ids.study)
            with context.db.read() as conn:
                assert repository.count_level(conn, Level.INSTANCE) == 0  # no dangling row
            assert sorted(_queued(context)) == sorted(keys)
            assert blob_deletion.drain_once(context, now=time.time() + 3600) == 0  # still down
            with context.db.read() as conn:
                assert all(attempts >= 1 and error for _, attempts, error in queue.pending(conn))
        assert _stored(context) == keys  # the objects survived the outage
        assert blob_deletion.drain_once(context, now=time.time() + 7200) == 3
        assert _stored(context) == set()
        assert _queued(context) == []
    finally:
        context.close()


def test_a_process_killed_after_the_commit_leaves_its_deletions_queued(
        context: ServerContext) -> None:
    """The row deletion and the queue entry commit together; the blob delete that never
    came (the process died) is done by any process's drainer after the grace delay."""
    result = ingest_instance(context, make_dicom(), ORIGIN)
    with context.db.write() as conn:
        keys, _ = repository.delete_resource(conn, Level.INSTANCE,
                                             _instance_pk(context, result.parsed.ids.instance))
        blob_deletion.schedule(conn, keys)
    # ...killed here: delete_scheduled never runs.
    assert blob_deletion.drain_once(context) == 0  # the scheduling process's grace delay
    assert len(_stored(context)) == 1
    assert blob_deletion.drain_once(context, now=time.time() + blob_deletion.GRACE + 1) == 1
    assert _stored(context) == set()
    assert _queued(context) == []


def test_a_rolled_back_transaction_queues_nothing(context: ServerContext) -> None:
    result = ingest_instance(context, make_dicom(), ORIGIN)
    with pytest.raises(RuntimeError), context.db.write() as conn:
        keys, _ = repository.delete_resource(conn, Level.INSTANCE,
                                             _instance_pk(context, result.parsed.ids.instance))
        blob_deletion.schedule(conn, keys)
        raise RuntimeError("the transaction fails after the schedule")
    assert _queued(context) == []
    assert len(_stored(context)) == 1


def test_processes_sharing_the_queue_claim_each_key_once(tmp_path: Path,
                                                         database: dict) -> None:
    """Four "processes" (their own engines) claim the same due keys at once."""
    first = _open(tmp_path, database, "filesystem")
    try:
        keys = [f"0000{i:04d}-aaaa-4aaa-8aaa-000000000000" for i in range(200)]
        with first.db.write() as conn:
            queue.enqueue(conn, keys, due=0.0)
        databases = [Database(first.db.url) for _ in range(4)]
        claims: list[list[str]] = [[] for _ in databases]
        barrier = threading.Barrier(len(databases))

        def claim(index: int) -> None:
            barrier.wait()
            while True:
                with databases[index].write() as conn:
                    batch = queue.claim_due(conn, time.time(), 300.0, 7)
                if not batch:
                    return
                claims[index] += batch

        threads = [threading.Thread(target=claim, args=(i,)) for i in range(len(databases))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        every = [key for claimed in claims for key in claimed]
        assert sorted(every) == sorted(keys)  # each key claimed, by exactly one process
        for database_ in databases:
            database_.dispose()
    finally:
        first.close()


def test_the_drainer_thread_retries_queued_deletions(context: ServerContext) -> None:
    key = "0123abcd-0000-4000-8000-00000000beef"
    context.blobs.put(key, b"to delete")
    with context.db.write() as conn:
        queue.enqueue(conn, [key], due=0.0)
    drainer = blob_deletion.BlobDeletionDrainer(context, period=0.05).start()
    try:
        deadline = time.monotonic() + 30
        while _queued(context) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        drainer.stop()
    assert _queued(context) == []
    assert key not in _stored(context)
