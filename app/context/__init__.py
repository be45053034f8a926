"""The server context: what every use case works with, built once per process.

``ServerContext`` holds the settings, the index database (:mod:`app.index`), the blob
store (:mod:`app.blobstore`) and the scripting hooks (:mod:`app.context.hooks`, the one
way services reach Lua and Python callbacks). This package sits below the jobs and the
services, above the index and the blob store; :mod:`app.context.blob_deletion` is the
durable queue that deletes blobs once the index no longer references them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from app.blobstore import BlobStore, open_blobstore
from app.blobstore.read_only import ReadOnlyBlobStore
from app.config import Settings
from app.dicom import limits
from app.dicom import transcode as transcoding
from app.index import repository
from app.index.db import Database, check_schema, migrate

log = logging.getLogger(__name__)

# An ingest holds a blob unindexed for milliseconds; an hour leaves a wide margin.
ORPHAN_MIN_AGE = 3600.0


@dataclass
class ServerContext:
    settings: Settings
    db: Database
    blobs: BlobStore
    extras: dict[str, object] = field(default_factory=dict)

    @classmethod
    def open(cls, settings: Settings) -> ServerContext:
        limits.configure(settings.max_inflated_size, settings.max_decoded_image_size)
        transcoding.configure(settings.dicom_lossy_transcoding_quality)
        url = settings.effective_database_url
        blobs = open_blobstore(settings.blobstore_url, settings.storage_directory)
        if settings.read_only:  # ReadOnly: nothing is migrated, written or swept
            check_schema(url)
            blobs = ReadOnlyBlobStore(blobs)
        else:
            migrate(url)
        context = cls(settings, Database(url, read_only=settings.read_only), blobs)
        # Webhook events are queued by whoever commits the change (server or import).
        from app.context import webhook_queue
        webhook_queue.install(context.db, list(settings.webhooks))
        log.debug("Blob store: %s", context.blobs.describe())  # `pharos serve` says it
        if settings.read_only:
            log.warning("ReadOnly: this server refuses every change to the index and the "
                        "storage (stores, deletions, modifications, metadata, jobs...)")
        elif settings.sweep_orphans_at_start:
            removed = context.sweep_orphan_blobs(float(settings.orphan_min_age))
            if removed:
                log.warning("Removed %d orphan blob(s) that no index row referenced", removed)
        return context

    def sweep_orphan_blobs(self, older_than: float = ORPHAN_MIN_AGE) -> int:
        """Delete blobs no index row points at (left by a crash between put and commit).

        Only blobs older than *older_than* seconds: other processes sharing the store
        may be between writing a blob and committing its row right now.
        """
        candidates = list(self.blobs.keys(older_than))
        if not candidates:
            return 0
        with self.db.read() as conn:
            known = repository.instance_blob_keys(conn)
            if not known and not repository.attachment_blob_keys(conn):
                # An empty index over a full store: most likely a storage folder to
                # migrate (e.g. a copy of Orthanc's) before `pharos reconstruct`. Never
                # delete a whole archive on a guess.
                log.warning("The index is empty but the storage holds %d file(s): not "
                            "sweeping; run `pharos reconstruct` to index them",
                            len(candidates))
                return 0
            known |= repository.attachment_blob_keys(conn)
        orphans = [key for key in candidates if key not in known]
        failed = self.blobs.delete_many(orphans)  # DeleteObjects by 1000 on S3
        if failed:
            log.warning("Could not remove %d orphan blob(s) now; the next sweep will",
                        len(failed))
        return len(orphans) - len(failed)

    def close(self) -> None:
        self.db.dispose()
