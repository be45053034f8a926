"""Deleting blobs without losing a delete: no orphan object, no row pointing at nothing.

The index row goes first and its blob after (a reader never finds a row without its
blob). Between the two, the blob's key waits in a durable list in the index
(``blob_deletions``), written in the same transaction as the row deletion:

1. ``schedule(conn, keys)`` inside the transaction that drops the references;
2. ``delete_scheduled(context, keys)`` right after the commit: deletes the blobs (one
   DeleteObjects per thousand on S3) and forgets the keys that are gone;
3. what the store refused (an S3 outage, after botocore's retries) stays queued, and the
   :class:`BlobDeletionDrainer` of any server process retries it with exponential
   backoff; a process killed between 1 and 2 leaves its keys to the same drainer.

Blobs that no committed row ever referenced (an ingest whose parse or transaction
failed, a duplicate) go through ``discard``: deleted at once, queued only when the store
refuses; the startup orphan sweep is the last resort if even the index is unreachable.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Sequence

from app.context import ServerContext
from app.index import blob_deletions_repository as queue
from app.index.db import Connection

log = logging.getLogger(__name__)

# The process that scheduled a key deletes it at once; other processes' drainers leave it
# alone this long (a crash between commit and delete is caught after it).
GRACE = 60.0
RETRY_BASE_DELAY = 5.0  # then 10, 20, 40 s... per key
RETRY_MAX_DELAY = 3600.0
DRAIN_PERIOD = 5.0
CLAIM_LEASE = 300.0  # a claimed key comes back if its claimer died
CLAIM_BATCH = 1000


def schedule(conn: Connection, keys: Sequence[str]) -> None:
    """Queue *keys* inside the transaction that drops their last references."""
    if keys:
        queue.enqueue(conn, keys, time.time() + GRACE)


def delete_scheduled(context: ServerContext, keys: Sequence[str]) -> None:
    """After the commit: delete the scheduled blobs now, forget those that are gone and
    leave the rest for the drainer. Never raises (the deletion is already committed)."""
    if not keys:
        return
    try:
        failed = context.blobs.delete_many(keys)
        done = set(keys) - set(failed)
        with context.db.write() as conn:
            queue.forget(conn, done)
            if failed:
                queue.postpone(conn, failed, time.time(), RETRY_BASE_DELAY, RETRY_MAX_DELAY,
                               "the blob store refused the deletion")
    except Exception:  # noqa: BLE001 — the drainer retries whatever is still queued
        log.exception("Deleting %d blob(s) failed; they stay queued", len(keys))
        return
    if failed:
        log.warning("%d blob(s) could not be deleted now; queued for a retry", len(failed))


def discard(context: ServerContext, keys: Iterable[str]) -> None:
    """Remove blobs no committed row references; queue those the store refuses.

    Never raises: it runs while another error (the one the caller reports) is handled.
    """
    keys = list(keys)
    if not keys:
        return
    try:
        failed = context.blobs.delete_many(keys)
    except Exception:  # noqa: BLE001 — e.g. an invalid key: queue them all
        failed = keys
    if not failed:
        return
    try:
        with context.db.write() as conn:
            queue.enqueue(conn, failed, time.time() + RETRY_BASE_DELAY)
        log.warning("%d unreferenced blob(s) could not be deleted now; queued", len(failed))
    except Exception:  # noqa: BLE001 — the orphan sweep at start removes them
        log.exception("Cannot queue %d unreferenced blob(s) for deletion", len(failed))


def drain_once(context: ServerContext, now: float | None = None) -> int:
    """Retry the due deletions (claimed by this process only); return how many are done."""
    now = time.time() if now is None else now
    with context.db.read() as conn:
        if not queue.any_due(conn, now):
            return 0  # the usual case: no write transaction at all
    with context.db.write() as conn:
        keys = queue.claim_due(conn, now, CLAIM_LEASE, CLAIM_BATCH)
    if not keys:
        return 0
    failed = context.blobs.delete_many(keys)
    done = set(keys) - set(failed)
    with context.db.write() as conn:
        queue.forget(conn, done)
        queue.postpone(conn, failed, time.time(), RETRY_BASE_DELAY, RETRY_MAX_DELAY,
                       "the blob store refused the deletion")
    if done:
        log.info("Deleted %d queued blob(s)", len(done))
    if failed:
        log.warning("%d queued blob deletion(s) failed again; retried later", len(failed))
    return len(done)


class BlobDeletionDrainer:
    """A daemon thread of every server process retrying the queued deletions."""

    def __init__(self, context: ServerContext, period: float = DRAIN_PERIOD) -> None:
        self.context = context
        self.period = period
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pharos-blob-deletions",
                                        daemon=True)

    def start(self) -> BlobDeletionDrainer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            try:
                while drain_once(self.context) >= CLAIM_BATCH and not self._stop.is_set():
                    pass  # a backlog: go on at once
            except Exception:  # noqa: BLE001 — keep draining through transient DB errors
                log.exception("Draining the queued blob deletions failed")
            if self._stop.wait(self.period):
                return
