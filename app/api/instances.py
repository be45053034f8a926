"""``POST /instances`` and the routes that read one instance."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from app.api.blob_responses import blob_answer
from app.api.deps import (
    body_chunks,
    dicom_format,
    get_context,
    ignore_length,
    rest_origin,
    spool_body,
)
from app.api.params import (
    IGNORE_LENGTH,
    RESOURCE_TAGS_FORMAT,
    TAGS_FORMAT,
    WHOLE,
    query_parameters,
)
from app.api.responses import JsonResponse, content_disposition, json_answer
from app.api.schemas import RAW_DICOM_BODY, InstanceStored
from app.context import ServerContext
from app.dicom import transcode as transcoding
from app.dicom.dicomweb_json import to_xml
from app.dicom.levels import Level
from app.errors import BadFileFormat
from app.protocols.multipart import parse_media_type, spool_multipart
from app.services import form_upload, ingest
from app.services import instances as instance_service

router = APIRouter(tags=["Instances"])


@router.post("/instances", operation_id="store_instance", response_model=None,
             openapi_extra=RAW_DICOM_BODY,
             responses={200: {"model": InstanceStored | list[InstanceStored],
                              "description": "The stored instance, or one entry per DICOM file of a ZIP"}})
async def store_instance(request: Request) -> JsonResponse:
    """Store a DICOM file (the raw body), or every DICOM file of a ZIP archive; or the
    files of an HTML form (``multipart/form-data``, one file per part, as Orthanc
    Explorer's upload sends them), answered as the list of the stored instances."""
    context = get_context(request)
    origin = rest_origin(request)
    media_type, parameters = parse_media_type(request.headers.get("content-type", ""))
    if media_type == "multipart/form-data":
        return await _store_form(request, context, parameters.get("boundary", ""), origin)
    spool, size = await spool_body(request, context)
    try:
        if size == 0:
            raise BadFileFormat("Cannot parse an invalid DICOM file (size: 0 bytes)")
        head = spool.read(4)
        spool.seek(0)
        if ingest.is_zip(head):
            results = await run_in_threadpool(ingest.ingest_zip, context, spool, origin)
            return json_answer([r.orthanc_json() for r in results])
        data = spool.read()
    finally:
        spool.close()
    result = await run_in_threadpool(ingest.ingest_instance, context, data, origin)
    return json_answer(result.orthanc_json())


async def _store_form(request: Request, context: ServerContext, boundary: str,
                      origin: dict[str, str]) -> JsonResponse:
    chunk = form_upload.chunk_headers(dict(request.headers))
    with await spool_multipart(body_chunks(request, context), boundary.strip(),
                               memory_threshold=context.settings.ingest_spool_threshold,
                               limit=context.settings.max_upload_size,
                               allow_unclosed=True) as body:
        results = await run_in_threadpool(form_upload.ingest_form, context, body, origin, chunk)
    return json_answer([r.orthanc_json() for r in results])


def _tags_mode(request: Request) -> str:
    return dicom_format(request, "full")


@router.get("/instances/{id}/file", operation_id="get_instance_file",
            response_class=Response,
            responses={200: {"content": {"application/dicom": {"schema": {"type": "string", "format": "binary"}}},
                             "description": "The DICOM file as stored"},
                       206: {"description": "The bytes of the one range of a Range header"},
                       416: {"description": "The range starts past the end of the file"}})
def get_instance_file(id: str, request: Request) -> Response:
    """Download the DICOM file as it was received (or one byte range of it: ``Range``);
    ``Accept: application/dicom+json`` (or ``+xml``) answers the instance in DICOMweb JSON
    (XML) instead, as Orthanc 1.5.4+."""
    context = get_context(request)
    accept = request.headers.get("accept", "").split(";")[0].strip().lower()
    if accept in ("application/dicom+json", "application/json+dicom"):
        return JsonResponse(instance_service.instance_dicomweb(context, id),
                            media_type="application/dicom+json")
    if accept == "application/dicom+xml":
        return Response(to_xml(instance_service.instance_dicomweb(context, id)),
                        media_type="application/dicom+xml")
    row = instance_service.instance_row(context, id)
    filename = request.query_params.get("filename")
    headers = {"Content-Disposition": content_disposition(filename) if filename
               else f'filename="{row.blob_key}.dcm"'}
    target = request.query_params.get("transcode")
    if target is not None:  # Orthanc 1.12.2 (?lossy-quality= 1.12.7): the file re-encoded
        syntax = transcoding.check_target(target)
        value = request.query_params.get("lossy-quality")
        quality = transcoding.lossy_quality({} if value is None else {"lossy-quality": value},
                                            "lossy-quality")
        data = instance_service.read_file(context, row)
        if row.transfer_syntax != syntax:
            data = transcoding.transcode_file(data, syntax, quality=quality,
                                              stored=row.transfer_syntax)
        return Response(data, media_type="application/dicom", headers=headers)
    return blob_answer(request, instance_service.stored_file(context, row),
                       "application/dicom", headers,
                       lambda: instance_service.missing_file(row))


@router.get("/instances/{id}/tags", operation_id="get_instance_tags",
            response_model=dict[str, Any], openapi_extra=query_parameters(*TAGS_FORMAT, WHOLE),
            responses={200: {"description": "Orthanc's tags JSON (full, ?short or ?simplify)"}})
def get_instance_tags(id: str, request: Request) -> JsonResponse:
    """The DICOM tags of the instance, in Orthanc's format."""
    return json_answer(instance_service.tags_json(get_context(request), id, _tags_mode(request),
                                                  ignore_length(request),
                                                  whole="whole" in request.query_params))


@router.get("/instances/{id}/simplified-tags", operation_id="get_instance_simplified_tags",
            response_model=dict[str, Any], openapi_extra=query_parameters(IGNORE_LENGTH, WHOLE),
            responses={200: {"description": "Tags by keyword"}})
def get_instance_simplified_tags(id: str, request: Request) -> JsonResponse:
    return json_answer(instance_service.tags_json(get_context(request), id, "simplify",
                                                  ignore_length(request),
                                                  whole="whole" in request.query_params))


@router.get("/instances/{id}/header", operation_id="get_instance_header",
            response_model=dict[str, Any], openapi_extra=query_parameters(*RESOURCE_TAGS_FORMAT),
            responses={200: {"description": "The meta header (group 0002) in Orthanc's format"}})
def get_instance_header(id: str, request: Request) -> JsonResponse:
    return json_answer(instance_service.header_json(get_context(request), id, _tags_mode(request)))


@router.get("/instances/{id}/content", operation_id="list_instance_content",
            response_model=list[str])
def list_instance_content(id: str, request: Request) -> JsonResponse:
    """The top-level tags of the instance as ``gggg-eeee``."""
    return json_answer(instance_service.content(get_context(request), id, []))


@router.get("/instances/{id}/content/{path:path}", operation_id="get_instance_content",
            response_model=None,
            responses={200: {"model": list[str],
                             "description": "The tags (gggg-eeee) of a dataset, the item indices "
                                            "of a sequence, or the raw value of a leaf",
                             "content": {"application/octet-stream": {"schema": {
                                 "type": "string", "format": "binary"}}}}})
def get_instance_content(id: str, path: str, request: Request) -> Response:
    """Walk into the dataset: ``/content/0008,1140/0/0008,1150``; leaves answer raw bytes."""
    steps = [s for s in path.split("/") if s]
    answer = instance_service.content(get_context(request), id, steps)
    if isinstance(answer, bytes):
        return Response(answer, media_type="application/octet-stream")
    return json_answer(answer)


@router.get("/instances/{id}/module", operation_id="get_instance_module",
            response_model=dict[str, Any], openapi_extra=query_parameters(*TAGS_FORMAT),
            responses={200: {"description": "The tags of the SOP Common module"}})
def get_instance_module(id: str, request: Request) -> JsonResponse:
    return json_answer(instance_service.module_json(
        get_context(request), Level.INSTANCE, id, "instance", _tags_mode(request),
        ignore_length(request)))
