"""``/system``, ``/statistics``, ``/changes`` (and its live stream) and ``/exports``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import PlainTextResponse, StreamingResponse

from app import ORTHANC_API_LEVEL, ORTHANC_API_VERSION, __version__
from app.api.deps import get_context, int_param, json_body
from app.api.params import CHANGE_TYPE, LAST, LIMIT, SINCE, TO, query_parameters
from app.api.responses import JsonResponse, json_answer
from app.api.schemas import (
    JSON_BODY_ANY,
    Changes,
    EmptyAnswer,
    Exports,
    GlobalStatistics,
    SystemInfo,
)
from app.dicom.levels import LEVELS
from app.dicom.tags import main_tags_signature
from app.errors import BadRequest
from app.services import browse, change_stream, delete
from app.services import bulk_content as bulk_content_service
from app.timeutil import now_stamp

router = APIRouter()

# Orthanc 1.12.5+'s optional features of its index (1.12.8 and 1.12.10 added the last
# three): Pharos' index has the extended /tools/find and /changes; it keeps no key-value
# stores nor queues.
CAPABILITIES = {"HasExtendedChanges": True, "HasExtendedFind": True,
                "HasKeyValueStores": False, "HasQueues": False, "HasReserveQueueValue": False}


@router.get("/system", tags=["System"], operation_id="get_system", response_model=None,
            responses={200: {"model": SystemInfo}})
def get_system(request: Request) -> JsonResponse:
    """Orthanc's system information; ``Version`` is the Orthanc REST API level Pharos answers as."""
    settings = get_context(request).settings
    return json_answer({
        "ApiVersion": ORTHANC_API_LEVEL, "CheckRevisions": settings.check_revisions,
        "DatabaseBackendPlugin": None, "DatabaseVersion": 6,
        "DatabaseServerIdentifier": browse.database_server_identifier(settings),
        "DicomAet": settings.dicom_aet, "DicomPort": settings.dicom_port,
        "DicomDefaultRetrieveMethod": settings.dicom_default_retrieve_method,  # 1.12.6
        "IngestTranscoding": "",  # Pharos keeps files as received (1.11's option: none)
        "HasLabels": True, "HttpPort": settings.http_port, "IsHttpServerSecure": False,
        # Orthanc 1.11+: the main tags each level keeps (its MainDicomTagsSignature).
        "MainDicomTags": {level.value: main_tags_signature(level) for level in LEVELS},
        "MaximumPatientCount": settings.maximum_patient_count,
        "MaximumStorageMode": settings.maximum_storage_mode,
        "MaximumStorageSize": settings.maximum_storage_size,
        "Name": settings.name,
        # a Boolean as in Orthanc <= 1.12, "IfChanged" for the mode that has no Boolean
        "OverwriteInstances": {"Never": False, "Always": True}.get(
            settings.overwrite_mode, settings.overwrite_mode),
        "PatientLevelEnabled": True,  # Orthanc 1.12.11: the patient routes exist
        "PluginsEnabled": True,  # DICOMweb is described as a plugin (/plugins)
        "ReadOnly": settings.read_only,  # Orthanc 1.12.5
        "StorageAreaPlugin": None,
        "StorageCompression": settings.storage_compression, "UserMetadata": settings.user_metadata,
        "Capabilities": CAPABILITIES,
        "Version": ORTHANC_API_VERSION,
        "PharosVersion": __version__, "Product": "Pharos",
    })


@router.get("/statistics", tags=["System"], operation_id="get_statistics", response_model=None,
            responses={200: {"model": GlobalStatistics}})
def get_statistics(request: Request) -> JsonResponse:
    return json_answer(browse.statistics(get_context(request)))


@router.get("/changes", tags=["Tracking changes"], operation_id="list_changes",
            response_model=Changes,
            openapi_extra=query_parameters(SINCE("Answer the changes after this sequence number"),
                                LIMIT("Answer at most this many changes (default 100, at most "
                                      "10,000)"), TO, CHANGE_TYPE, LAST))
def list_changes(request: Request) -> JsonResponse:
    """The change log: ``?since=SEQ&limit=N`` pages (N at most 10,000), ``?last`` the latest;
    Orthanc 1.12.5's ``?type=A;B`` keeps some change types, ``?to=SEQ`` stops at a sequence
    number (alone: the last changes up to it, to walk the log backwards)."""
    limit = min(int_param(request, "limit", 100) or 100, 10_000)
    to = None if request.query_params.get("to") in (None, "-1") else int_param(request, "to")
    types = browse.change_types(request.query_params.get("type", "all"))
    return json_answer(browse.changes(get_context(request), int_param(request, "since"), limit,
                                      last="last" in request.query_params, to=to, types=types))


@router.get("/changes/stream", tags=["Tracking changes"], operation_id="stream_changes",
            response_class=StreamingResponse,
            responses={200: {"description": "Server-Sent Events: one event per change, `id` "
                             "its Seq, `data` its /changes entry",
                             "content": {"text/event-stream": {"schema": {"type": "string"}}}}},
            openapi_extra=query_parameters(
                SINCE("Send the changes after this sequence number first (default: only "
                      "the changes to come; the Last-Event-ID header wins)"), CHANGE_TYPE))
async def stream_changes(request: Request) -> StreamingResponse:
    """Pharos extension: the change log live, as Server-Sent Events (``EventSource`` in a
    browser, ``curl -N`` in a shell). Resumes after ``Last-Event-ID`` (sent by browsers
    when they reconnect) or ``?since=``; ``?type=A;B`` as ``/changes``."""
    context = get_context(request)
    types = browse.change_types(request.query_params.get("type", "all"))
    resume = request.headers.get("last-event-id", "").strip()
    if resume:
        if not resume.isdigit():
            raise BadRequest(f"Last-Event-ID must be a change sequence number: {resume[:40]!r}")
        since = int(resume)
    elif request.query_params.get("since") not in (None, ""):
        since = int_param(request, "since")
    else:
        since = await run_in_threadpool(change_stream.last_seq, context)
    return StreamingResponse(change_stream.events(context, since, types),
                             media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@router.delete("/changes", tags=["Tracking changes"], operation_id="clear_changes",
               response_model=EmptyAnswer)
def clear_changes(request: Request) -> JsonResponse:
    browse.clear_changes(get_context(request))
    return json_answer({})


@router.get("/exports", tags=["Tracking changes"], operation_id="list_exports",
            response_model=Exports,
            openapi_extra=query_parameters(SINCE("Answer the exports after this sequence number"),
                                LIMIT("Answer at most this many exports (default 100, at most "
                                      "10,000)"), LAST))
def list_exports(request: Request) -> JsonResponse:
    """The exports log: ``?since=SEQ&limit=N`` pages, ``?last`` the latest."""
    limit = min(int_param(request, "limit", 100) or 100, 10_000)
    return json_answer(browse.exports(get_context(request), int_param(request, "since"), limit,
                                      last="last" in request.query_params))


@router.delete("/exports", tags=["Tracking changes"], operation_id="clear_exports",
               response_model=EmptyAnswer)
def clear_exports(request: Request) -> JsonResponse:
    browse.clear_exports(get_context(request))
    return json_answer({})


@router.post("/tools/bulk-delete", tags=["System"], operation_id="bulk_delete",
             response_model=None, openapi_extra=JSON_BODY_ANY, response_class=PlainTextResponse,
             responses={200: {"description": "An empty body", "content": {
                 "text/plain": {"schema": {"type": "string", "maxLength": 0}}}}})
async def bulk_delete(request: Request) -> PlainTextResponse:
    """Delete many resources: ``{"Resources": [IDs of any level]}``, or (Orthanc 1.13)
    ``[{"Level", "ID"}]`` items, which spare looking the level up; unknown resources are
    skipped. Orthanc answers an empty text body."""
    context = get_context(request)
    body = await json_body(request, context)
    if not isinstance(body, dict):
        raise BadRequest("The body must contain a JSON object")
    resources = body.get("Resources")
    if not isinstance(resources, list):
        raise BadRequest("The body must contain a Resources array")
    await run_in_threadpool(delete.bulk_delete, context, delete.parse_bulk_resources(resources))
    return PlainTextResponse("")


@router.post("/tools/bulk-content", tags=["System"], operation_id="bulk_content",
             response_model=list[dict[str, Any]], openapi_extra=JSON_BODY_ANY)
async def bulk_content(request: Request) -> JsonResponse:
    """Describe many resources: ``{"Resources": [IDs], "Level", "Metadata", "Short"/"Full"}``."""
    context = get_context(request)
    body = await json_body(request, context)
    return json_answer(await run_in_threadpool(bulk_content_service.bulk_content, context, body))


@router.get("/tools/now", tags=["System"], operation_id="get_now", response_model=str)
def get_now(request: Request) -> JsonResponse:
    from datetime import UTC, datetime
    return json_answer(datetime.now(UTC).strftime("%Y%m%dT%H%M%S"))


@router.get("/tools/now-local", tags=["System"], operation_id="get_now_local",
            response_model=str)
def get_now_local(request: Request) -> JsonResponse:
    return json_answer(now_stamp())

