"""STOW-RS (PS3.18 10.5): POST /studies and /studies/{StudyInstanceUID}.

The body is parsed incrementally as it arrives and spooled (memory below
``IngestSpoolThreshold``, disk above); once the closing delimiter has been seen, the
parts are stored one by one through the one ingest path. A malformed body (400) or an
unsupported media type (415) stores nothing.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from app.api.deps import body_chunks, get_context, rest_origin
from app.api.dicomweb.common import DicomWebRoute, json_response, service_root
from app.api.dicomweb.negotiation import UnsupportedMediaType, accept_ranges, choose_json
from app.context import ServerContext
from app.dicom.dicomweb_json import to_xml
from app.protocols.multipart import MalformedMultipart, parse_media_type, spool_multipart
from app.services.dicomweb import Target, check_uids
from app.services.dicomweb_stow import StoreReport, store_dicom_parts, store_json_parts

router = APIRouter(route_class=DicomWebRoute, tags=["STOW-RS"])

SUPPORTED = ("application/dicom", "application/dicom+json", "application/json")


def _request_type(request: Request) -> tuple[str, str]:
    """(type of the parts, boundary) of a multipart/related request; 415 or 400 otherwise."""
    header = request.headers.get("content-type", "")
    media_type, params = parse_media_type(header)
    if media_type != "multipart/related":
        raise UnsupportedMediaType(
            f"STOW-RS takes multipart/related bodies (PS3.18 10.5.1.1), not {media_type!r}; "
            'use Content-Type: multipart/related; type="application/dicom"; boundary=...')
    related = (params.get("type") or "application/dicom").lower()
    if related not in SUPPORTED:
        raise UnsupportedMediaType(
            f"Unsupported multipart/related type {related!r}: Pharos stores "
            "application/dicom and application/dicom+json (with bulk data) parts")
    boundary = params.get("boundary")
    if not boundary:
        raise MalformedMultipart("The Content-Type has no boundary parameter")
    return related, boundary


async def _store(request: Request, context: ServerContext, study: str | None) -> Response:
    media_type = choose_json(accept_ranges(request), xml_part=True, xml_bare=True)
    if study is not None:
        check_uids(Target(study))
    related, boundary = _request_type(request)
    settings = context.settings
    root = service_root(request)
    origin = rest_origin(request)
    body = await spool_multipart(body_chunks(request, context), boundary,
                                 memory_threshold=settings.ingest_spool_threshold,
                                 limit=settings.max_upload_size)
    with body:
        store = store_dicom_parts if related == "application/dicom" else store_json_parts
        report: StoreReport = await run_in_threadpool(
            store, context, body, study=study, root=root, origin=origin)
    headers = {}
    warning = report.warning()
    if warning:
        headers["Warning"] = warning
    answer = report.response(study)
    if media_type == "application/dicom+xml":
        return Response(to_xml(answer).encode(), status_code=report.status,
                        media_type=media_type, headers=headers)
    return json_response(request, answer, media_type, report.status, headers)


@router.post("/studies", name="dicomweb_store")
async def store(request: Request, context: ServerContext = Depends(get_context)) -> Response:
    return await _store(request, context, None)


@router.post("/studies/{study}", name="dicomweb_store_study")
async def store_study(request: Request, study: str,
                      context: ServerContext = Depends(get_context)) -> Response:
    return await _store(request, context, study)
