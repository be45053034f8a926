"""``/{level}/{id}/archive``, ``/{level}/{id}/media``, ``/tools/create-archive|media``.

As in Orthanc: GET is synchronous (``?transcode=``, ``?filename=``, and for the
``/tools/create-*`` GET forms of 1.12.2 ``?resources=``); POST takes
``{"Synchronous", "Asynchronous", "Transcode", "Priority", "Filename", "Extended", "Utf8"}`` and
answers the ZIP (synchronous, the default) or ``{"ID", "Path"}`` of an ``Archive`` /
``Media`` job whose ZIP is then at ``GET /jobs/{id}/archive``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from app.api.deps import get_context, json_body
from app.api.params import FILENAME, TRANSCODE, QueryParameter, query_parameters
from app.api.responses import content_disposition, json_answer
from app.api.schemas import JSON_BODY_ANY, JobAnswer
from app.dicom import transcode as transcoding
from app.dicom.levels import Level
from app.errors import BadFileFormat, BadRequest, UnknownResource
from app.services import archive, resources
from app.services.archive_jobs import submit_archive_job

router = APIRouter()

LOSSY_QUALITY = QueryParameter("lossy-quality", {"type": "integer", "minimum": 1, "maximum": 100},
                               "JPEG quality of lossy transcoding (default "
                               "DicomLossyTranscodingQuality, 90)")
RESOURCES = QueryParameter("resources", {"type": "string"},
                           "The resources' IDs (any level), separated by commas")
EXTENDED = QueryParameter("extended", {"type": "boolean"},
                          "Extended DICOMDIR records (SeriesDescription); present: true")

_ZIP = {200: {"model": JobAnswer,
              "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
              "description": "A ZIP streamed as it is built (synchronous), or the {ID, Path} "
                             "of the job creating it (Asynchronous)"}}
_ZIP_GET = {200: {"content": {"application/zip": {"schema": {"type": "string",
                                                             "format": "binary"}}},
                  "description": "A ZIP streamed as it is built"}}


def _content_disposition(filename: str) -> str:
    return content_disposition(filename)


def _zip_response(stream: Iterator[bytes], filename: str) -> StreamingResponse:
    return StreamingResponse(stream, media_type="application/zip",
                             headers={"Content-Disposition": _content_disposition(filename)})


async def _synchronous(request: Request, public_ids: list[str], *, media: bool,
                       filename: str, transcode: str | None, extended: bool = False,
                       quality: int | None = None, utf8: bool = True) -> StreamingResponse:
    context = get_context(request)
    plan = await run_in_threadpool(archive.archive_plan, context, public_ids, media=media,
                                   extended=extended, utf8=utf8)
    return _zip_response(archive.stream_zip(context, plan, transcode=transcode,
                                            quality=quality), filename)


def _boolean(body: dict[str, Any], key: str) -> bool:
    value = body[key]
    if not isinstance(value, bool):
        raise BadFileFormat(f'"{key}" must be a Boolean value')
    return value


def _is_synchronous(body: Any) -> bool:
    """Orthanc's ``IsSynchronousJobRequest``: synchronous unless told otherwise."""
    if not isinstance(body, dict):
        return True
    if "Synchronous" in body:
        return _boolean(body, "Synchronous")
    if "Asynchronous" in body:
        return not _boolean(body, "Asynchronous")
    return True


def _utf8(body: Any) -> bool:
    """``"Utf8"`` (Orthanc 1.12.11): non-ASCII characters kept in the folder names (the
    default), or dropped."""
    if isinstance(body, dict) and "Utf8" in body:
        return _boolean(body, "Utf8")
    return True


def _options(body: Any, default_extended: bool = False
             ) -> tuple[str | None, str | None, int, bool]:
    """Transcode, Filename, Priority, Extended of a POST body."""
    if not isinstance(body, dict):
        return None, None, 0, default_extended
    transcode = archive.check_transcode_target(body["Transcode"]) \
        if "Transcode" in body else None
    filename = body.get("Filename")
    if filename is not None and (not isinstance(filename, str) or not filename.strip()):
        raise BadRequest('"Filename" must be a non-empty string')
    priority = body.get("Priority", 0)
    if not isinstance(priority, int) or isinstance(priority, bool):
        raise BadFileFormat('"Priority" must be an integer')
    extended = _boolean(body, "Extended") if "Extended" in body else default_extended
    return transcode, filename, priority, extended


async def _post(request: Request, public_ids: list[str], body: Any, *, media: bool,
                default_name: str, default_extended: bool = False) -> Response:
    transcode, filename, priority, extended = _options(body, default_extended)
    quality = transcoding.lossy_quality(body) if transcode else None
    utf8 = _utf8(body)
    if _is_synchronous(body):
        return await _synchronous(request, public_ids, media=media, transcode=transcode,
                                  extended=extended, quality=quality,
                                  filename=filename or default_name, utf8=utf8)
    job_id = await run_in_threadpool(
        submit_archive_job, get_context(request), public_ids, media=media,
        transcode=transcode, filename=filename, priority=priority, extended=extended,
        quality=quality, body=body, utf8=utf8)
    return json_answer({"ID": job_id, "Path": f"/jobs/{job_id}"})


def _query_quality(request: Request) -> int | None:
    """``?lossy-quality=`` (Orthanc 1.12.7), else the configured quality."""
    value = request.query_params.get("lossy-quality")
    return transcoding.lossy_quality({} if value is None else {"lossy-quality": value},
                                     "lossy-quality")


def _query_transcode(request: Request) -> str | None:
    value = request.query_params.get("transcode")
    return None if value is None else archive.check_transcode_target(value)


def _register(level: Level) -> None:
    plural, singular = level.plural, level.value.lower()

    def exists(request: Request, public_id: str) -> None:
        resources.require(get_context(request), level, public_id)

    def register_get(suffix: str, media: bool) -> None:
        async def endpoint(id: str, request: Request) -> StreamingResponse:
            exists(request, id)
            return await _synchronous(request, [id], media=media,
                                      transcode=_query_transcode(request),
                                      filename=request.query_params.get("filename")
                                      or f"{id}.zip",
                                      extended=media and "extended" in request.query_params,
                                      quality=_query_quality(request))

        router.add_api_route(
            f"/{plural}/{{id}}/{suffix}", endpoint, methods=["GET"],
            operation_id=f"get_{singular}_{suffix}", tags=[plural.capitalize()],
            response_class=StreamingResponse, responses=_ZIP_GET,
            summary=f"A ZIP of the {singular}" + (" with a DICOMDIR" if media else ""),
            description="``?transcode=<transfer syntax UID>`` re-encodes each instance; "
                        "``?filename=`` names the download.",
            openapi_extra=query_parameters(
                TRANSCODE, LOSSY_QUALITY, *((EXTENDED,) if media else ()),
                FILENAME("The name of the ZIP (default {id}.zip)")))

    def register_post(suffix: str, media: bool) -> None:
        async def endpoint(id: str, request: Request) -> Response:
            exists(request, id)
            body = await json_body(request, get_context(request))
            if body is not None and not isinstance(body, dict):
                raise BadFileFormat("Expected a JSON object in the body")
            return await _post(request, [id], body, media=media, default_name=f"{id}.zip")

        router.add_api_route(
            f"/{plural}/{{id}}/{suffix}", endpoint, methods=["POST"],
            operation_id=f"create_{singular}_{suffix}", tags=[plural.capitalize()],
            response_class=Response, responses=_ZIP, openapi_extra=JSON_BODY_ANY,
            summary=f"A ZIP of the {singular}" + (" with a DICOMDIR" if media else "")
            + ", synchronous or as a job",
            description='Body ``{"Synchronous", "Asynchronous", "Transcode", "Priority", '
                        '"Filename"}``; asynchronous jobs leave their ZIP at '
                        "``GET /jobs/{id}/archive``.")

    for suffix, media in (("archive", False), ("media", True)):
        register_get(suffix, media)
        register_post(suffix, media)


for _level in (Level.PATIENT, Level.STUDY, Level.SERIES):
    _register(_level)


async def _batch(request: Request, media: bool, extended: bool = False) -> Response:
    body = await json_body(request, get_context(request))
    ids = archive.resources_of(body)
    return await _post(request, ids, body, media=media, default_name="Archive.zip",
                       default_extended=extended)


async def _batch_get(request: Request, media: bool, extended: bool = False
                     ) -> StreamingResponse:
    """Orthanc 1.12.2's GET forms: ``?resources=id1,id2&transcode=&lossy-quality=&filename=``,
    always synchronous."""
    raw = request.query_params.get("resources", "")
    ids = [part.strip() for part in raw.split(",") if part.strip()]
    if not ids:
        raise BadRequest('"resources" must list resource IDs, separated by commas')
    context = get_context(request)
    for public_id in ids:
        if await run_in_threadpool(archive.level_of, context, public_id) is None:
            raise UnknownResource(f"Unknown resource {public_id}")
    return await _synchronous(request, ids, media=media, transcode=_query_transcode(request),
                              filename=request.query_params.get("filename") or "Archive.zip",
                              extended=extended or (media and "extended" in request.query_params),
                              quality=_query_quality(request))


_BATCH_GET = query_parameters(
    RESOURCES, TRANSCODE, LOSSY_QUALITY, FILENAME("The name of the ZIP (default Archive.zip)"))


@router.get("/tools/create-archive", tags=["System"], operation_id="get_create_archive",
            response_class=StreamingResponse, responses=_ZIP_GET, openapi_extra=_BATCH_GET)
async def get_create_archive(request: Request) -> StreamingResponse:
    """A ZIP of several resources (``?resources=`` IDs separated by commas), synchronous."""
    return await _batch_get(request, media=False)


@router.get("/tools/create-media", tags=["System"], operation_id="get_create_media",
            response_class=StreamingResponse, responses=_ZIP_GET, openapi_extra=_BATCH_GET)
async def get_create_media(request: Request) -> StreamingResponse:
    """A DICOM media ZIP of several resources (``?resources=``), synchronous."""
    return await _batch_get(request, media=True)


@router.get("/tools/create-media-extended", tags=["System"],
            operation_id="get_create_media_extended", response_class=StreamingResponse,
            responses=_ZIP_GET, openapi_extra=_BATCH_GET)
async def get_create_media_extended(request: Request) -> StreamingResponse:
    """As ``GET /tools/create-media``, the DICOMDIR extended."""
    return await _batch_get(request, media=True, extended=True)


@router.post("/tools/create-archive", tags=["System"], operation_id="create_archive",
             response_class=Response, responses=_ZIP, openapi_extra=JSON_BODY_ANY)
async def create_archive(request: Request) -> Response:
    """A ZIP of several resources: a list of IDs or ``{"Resources": [...], "Synchronous",
    "Asynchronous", "Transcode", "Priority", "Filename"}``."""
    return await _batch(request, media=False)


@router.post("/tools/create-media", tags=["System"], operation_id="create_media",
             response_class=Response, responses=_ZIP, openapi_extra=JSON_BODY_ANY)
async def create_media(request: Request) -> Response:
    """A DICOM media ZIP (with a DICOMDIR) of several resources (same body as
    ``/tools/create-archive``)."""
    return await _batch(request, media=True)


@router.post("/tools/create-media-extended", tags=["System"],
             operation_id="create_media_extended", response_class=Response, responses=_ZIP,
             openapi_extra=JSON_BODY_ANY)
async def create_media_extended(request: Request) -> Response:
    """As ``/tools/create-media``, the DICOMDIR extended (SeriesDescription) by default."""
    return await _batch(request, media=True, extended=True)
