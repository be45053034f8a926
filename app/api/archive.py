"""``/{level}/{id}/archive``, ``/{level}/{id}/media``, ``/tools/create-archive|media``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

from app.api.deps import get_context, json_body
from app.api.schemas import JSON_BODY_ANY
from app.dicom.levels import Level
from app.services import archive
from app.services.browse import get_row_or_404

router = APIRouter()

_ZIP = {200: {"content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
              "description": "A ZIP streamed as it is built"}}


def _zip_response(stream, filename: str) -> StreamingResponse:  # noqa: ANN001
    return StreamingResponse(stream, media_type="application/zip",
                             headers={"Content-Disposition": f'filename="{filename}"'})


async def _archive(request: Request, public_ids: list[str], media: bool,
                   default_name: str) -> StreamingResponse:
    context = get_context(request)
    filename = request.query_params.get("filename") or default_name
    if media:
        entries, dicomdir = await run_in_threadpool(archive.media_layout, context, public_ids)
        return _zip_response(archive.stream_zip(context, entries, [("DICOMDIR", dicomdir)]),
                             filename)
    entries = await run_in_threadpool(archive.archive_layout, context, public_ids)
    return _zip_response(archive.stream_zip(context, entries), filename)


def _register(level: Level) -> None:
    plural, singular = level.plural, level.value.lower()

    async def get_archive(id: str, request: Request) -> StreamingResponse:
        with get_context(request).db.read() as conn:
            get_row_or_404(conn, level, id)
        return await _archive(request, [id], False, f"{id}.zip")

    async def get_media(id: str, request: Request) -> StreamingResponse:
        with get_context(request).db.read() as conn:
            get_row_or_404(conn, level, id)
        return await _archive(request, [id], True, f"{id}.zip")

    for suffix, endpoint in (("archive", get_archive), ("media", get_media)):
        router.add_api_route(f"/{plural}/{{id}}/{suffix}", endpoint, methods=["GET"],
                             operation_id=f"get_{singular}_{suffix}", tags=[plural.capitalize()],
                             response_class=StreamingResponse, responses=_ZIP,
                             summary=f"A ZIP of the {singular}" + (" with a DICOMDIR" if suffix == "media" else ""))


for _level in (Level.PATIENT, Level.STUDY, Level.SERIES):
    _register(_level)


@router.post("/tools/create-archive", tags=["System"], operation_id="create_archive",
             response_class=StreamingResponse, responses=_ZIP, openapi_extra=JSON_BODY_ANY)
async def create_archive(request: Request) -> StreamingResponse:
    """A ZIP of several resources: a list of IDs or ``{"Resources": [...]}``."""
    context = get_context(request)
    ids = archive.resources_of(await json_body(request, context))
    return await _archive(request, ids, False, "Archive.zip")


@router.post("/tools/create-media", tags=["System"], operation_id="create_media",
             response_class=StreamingResponse, responses=_ZIP, openapi_extra=JSON_BODY_ANY)
async def create_media(request: Request) -> StreamingResponse:
    """A DICOM media ZIP (with a DICOMDIR) of several resources."""
    context = get_context(request)
    ids = archive.resources_of(await json_body(request, context))
    return await _archive(request, ids, True, "Archive.zip")
