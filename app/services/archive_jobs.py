"""Asynchronous archives and media: Orthanc's ``Archive`` and ``Media`` jobs.

``POST /{level}/{id}/archive|media`` and ``/tools/create-archive|media`` with
``"Asynchronous": true`` submit a job; its run writes the ZIP to the blob store under a
key chosen at submission (``output_key``), so that a repeated run (pause, crash) simply
rewrites the same blob; ``GET /jobs/{id}/archive`` then streams it.

As Orthanc's media archive, at most ``MediaArchiveSize`` outputs (default 1) are kept:
a job that finishes makes the outputs of the older jobs unavailable (their blobs are
deleted), and ``DELETE /jobs/{id}/archive`` removes one. Outputs are not referenced by
instances or attachments: the startup orphan sweep removes those older than an hour whose
job is gone (Orthanc keeps its archives in temporary files, lost at restart).
"""

from __future__ import annotations

from typing import Any

from app.blobstore.base import new_key
from app.context import ServerContext
from app.errors import InexistentItem, UnknownResource
from app.index import jobs_repository
from app.jobs import queue
from app.jobs.kinds import CancelCheck, JobInterrupted, ProgressCallback
from app.services import archive

ARCHIVE_JOB, MEDIA_JOB = "Archive", "Media"
OUTPUT = "archive"  # the only output key Orthanc's archive jobs have
MEGA_BYTES = 1024 * 1024


def submit_archive_job(context: ServerContext, public_ids: list[str], *, media: bool,
                       transcode: str | None = None, filename: str | None = None,
                       priority: int = 0, extended: bool = False,
                       quality: int | None = None, body: Any = None,
                       utf8: bool = True) -> str:
    """Queue the creation of a ZIP (a DICOM media when *media*); answer the job ID (the
    request *body*'s ``UserData`` goes with the job, Orthanc 1.12.9)."""
    for public_id in public_ids:
        if archive.level_of(context, public_id) is None:
            raise UnknownResource(f"Unknown resource {public_id}")
    key = new_key()
    payload = {"Resources": public_ids, "Transcode": transcode, "Filename": filename,
               "OutputKey": key, "Extended": extended, "LossyQuality": quality,
               "Utf8": utf8}
    job_id = queue.submit(context, MEDIA_JOB if media else ARCHIVE_JOB, payload,
                          content=_content(0, 0, 0, transcode), priority=priority,
                          user_data=queue.user_data_of(body))
    with context.db.write() as conn:
        jobs_repository.transition(conn, job_id, _ALL_STATES, {"output_key": key})
    return job_id


_ALL_STATES = (jobs_repository.PENDING, jobs_repository.RUNNING, jobs_repository.SUCCESS,
               jobs_repository.FAILURE, jobs_repository.PAUSED, jobs_repository.RETRY,
               jobs_repository.PAUSING, jobs_repository.CANCELLING)


def _content(instances: int, uncompressed: int, size: int,
             transcode: str | None) -> dict[str, Any]:
    """Orthanc's ``ArchiveJob::GetPublicContent`` (sizes as strings since 1.9.4)."""
    content: dict[str, Any] = {
        "Description": "REST API", "InstancesCount": instances,
        "UncompressedSizeMB": uncompressed // MEGA_BYTES, "ArchiveSizeMB": size // MEGA_BYTES,
        "ArchiveSize": str(size), "UncompressedSize": str(uncompressed)}
    if transcode:
        content["Transcode"] = transcode
    return content


def _run(context: ServerContext, payload: dict[str, Any], progress: ProgressCallback,
         cancel_check: CancelCheck, *, media: bool) -> dict[str, Any]:
    transcode = payload.get("Transcode")
    plan = archive.archive_plan(context, list(payload["Resources"]), media=media,
                                extended=bool(payload.get("Extended")),
                                utf8=bool(payload.get("Utf8", True)))
    entries = plan.entries
    uncompressed = sum(int(row.file_size or 0) for _, row in entries)
    total = max(1, len(entries))
    written = 0

    def chunks() -> Any:
        nonlocal written
        for chunk in archive.stream_zip(context, plan, transcode=transcode,
                                        quality=payload.get("LossyQuality"),
                                        after_entry=after_entry):
            written += len(chunk)
            yield chunk

    def after_entry(count: int) -> None:
        if cancel_check():
            raise JobInterrupted()
        progress(count / total, _content(len(entries), uncompressed, written, transcode))

    size = context.blobs.put(payload["OutputKey"], chunks())
    _evict_older_outputs(context, keep=max(int(context.settings.media_archive_size), 1) - 1)
    return _content(len(entries), uncompressed, size, transcode)


def _evict_older_outputs(context: ServerContext, keep: int) -> None:
    """Orthanc's ``MediaArchiveSize``: the outputs of finished archive jobs beyond the
    *keep* most recent ones are deleted (the running job's output comes on top)."""
    with context.db.write() as conn:
        evicted = [(row.id, jobs_repository.clear_output(conn, row.id))
                   for row in jobs_repository.job_outputs(conn, (ARCHIVE_JOB, MEDIA_JOB))[keep:]]
    for _job_id, key in evicted:
        if key is not None:
            _delete_blob(context, key)


def _delete_blob(context: ServerContext, key: str) -> None:
    try:
        context.blobs.delete(key)
    except FileNotFoundError:
        pass


def delete_job_output(context: ServerContext, job_id: str, key: str = OUTPUT) -> None:
    """``DELETE /jobs/{id}/archive``: the ZIP of a finished job is removed (404 when the
    job has no such output)."""
    row = queue.job_row(context, job_id)
    if key != OUTPUT or row.type not in (ARCHIVE_JOB, MEDIA_JOB) \
            or row.state != jobs_repository.SUCCESS:
        raise InexistentItem(f"Job has no such output: {key}")
    with context.db.write() as conn:
        blob_key = jobs_repository.clear_output(conn, job_id)
    if blob_key is None:
        raise InexistentItem(f"Job has no such output: {key}")
    _delete_blob(context, blob_key)


def run_archive(context: ServerContext, payload: dict[str, Any], progress: ProgressCallback,
                cancel_check: CancelCheck) -> dict[str, Any]:
    return _run(context, payload, progress, cancel_check, media=False)


def run_media(context: ServerContext, payload: dict[str, Any], progress: ProgressCallback,
              cancel_check: CancelCheck) -> dict[str, Any]:
    return _run(context, payload, progress, cancel_check, media=True)


def job_output(context: ServerContext, job_id: str, key: str = OUTPUT) -> tuple[str, str]:
    """The blob key and file name of a finished archive job's ZIP; 404 otherwise
    (Orthanc: "Job has no such output", also while the job runs)."""
    import orjson

    row = queue.job_row(context, job_id)
    if key != OUTPUT or row.type not in (ARCHIVE_JOB, MEDIA_JOB) \
            or row.state != jobs_repository.SUCCESS:
        raise InexistentItem(f"Job has no such output: {key}")
    payload = orjson.loads(row.payload) if row.payload else {}
    blob_key = row.output_key
    if not blob_key:
        raise InexistentItem(f"Job has no such output: {key}")
    return blob_key, payload.get("Filename") or "archive.zip"
