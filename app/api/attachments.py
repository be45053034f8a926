"""``/{level}/{id}/attachments/{name}[/{operation}]``: user attachments of every level.

This router is mounted before :mod:`app.api.resources`: for the built-in ``dicom``
attachment of an instance it hands over to the read-only routes there.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import PlainTextResponse, Response

from app.api import resources
from app.api.deps import get_context, read_body
from app.api.responses import json_answer
from app.dicom.levels import LEVELS, Level
from app.errors import UnknownResource
from app.services import attachments as service

router = APIRouter()

_BINARY_BODY = {"requestBody": {"content": {"application/octet-stream": {
    "schema": {"type": "string", "format": "binary"}}}}}
_ANY_ANSWER = {200: {"content": {"text/plain": {}, "application/octet-stream": {},
                                 "application/json": {}}}}


def _is_dicom(request: Request, level: Level, name: str) -> bool:
    """The built-in DICOM file of an instance, served by :mod:`app.api.resources`."""
    if level != Level.INSTANCE:
        return False
    return service.content_type_of(get_context(request), name) == 1


def _not_modified(request: Request, info: service.AttachmentInfo) -> Response | None:
    wanted = service.parse_revision_header(request.headers.get("if-none-match"),
                                           "If-None-Match")
    if wanted is not None and wanted == (info.revision, info.uncompressed_md5):
        return Response(status_code=304, headers={"ETag": info.etag})
    return None


def _with_etag(response: Response, info: service.AttachmentInfo) -> Response:
    response.headers["ETag"] = info.etag
    return response


def _routes(level: Level) -> None:
    plural, singular = level.plural, level.value.lower()
    tag = plural.capitalize()
    base = f"/{plural}/{{id}}/attachments/{{name}}"

    def operations(id: str, name: str, request: Request) -> Response:
        if _is_dicom(request, level, name):
            return resources.attachment_operations(id, name, request)
        info = service.get_info(get_context(request), level, id, name)
        return _not_modified(request, info) or _with_etag(json_answer(service.OPERATIONS), info)

    def operation(id: str, name: str, operation: str, request: Request) -> Response:
        if _is_dicom(request, level, name):
            return resources.attachment_operation(id, name, operation, request)
        context = get_context(request)
        info = service.get_info(context, level, id, name)
        if operation not in service.OPERATIONS or operation in (
                "compress", "uncompress", "verify-md5"):
            raise UnknownResource(f"Unknown attachment operation {operation!r}")
        not_modified = _not_modified(request, info)
        if not_modified is not None:
            return not_modified
        answer: Response
        if operation == "data":
            answer = Response(service.read_content(context, info),
                              media_type=service.mime_of(context, info.content_type))
        elif operation == "compressed-data":
            answer = Response(service.read_stored(context, info),
                              media_type="application/octet-stream")
        elif operation == "info":
            answer = json_answer(info.orthanc_json())
        else:
            texts = {"size": str(info.uncompressed_size), "md5": info.uncompressed_md5,
                     "compressed-size": str(info.compressed_size),
                     "compressed-md5": info.compressed_md5, "uuid": info.uuid,
                     "is-compressed": "1" if info.compression else "0"}
            answer = PlainTextResponse(texts[operation])
        return _with_etag(answer, info)

    async def put(id: str, name: str, request: Request) -> Response:
        context = get_context(request)
        content = await read_body(request, context)
        info = await run_in_threadpool(service.put_attachment, context, level, id, name,
                                       content, request.headers.get("if-match"))
        return _with_etag(json_answer({}), info)

    async def delete(id: str, name: str, request: Request) -> Response:
        await run_in_threadpool(service.delete_attachment, get_context(request), level, id,
                                name, request.headers.get("if-match"))
        return PlainTextResponse("")

    def compression(compressed: bool) -> Any:
        async def change(id: str, name: str, request: Request) -> Response:
            await run_in_threadpool(service.set_compression, get_context(request), level, id,
                                    name, compressed)
            return json_answer({})
        return change

    async def verify(id: str, name: str, request: Request) -> Response:
        if _is_dicom(request, level, name):
            return await run_in_threadpool(resources.verify_md5, id, name, request)
        await run_in_threadpool(service.verify_md5, get_context(request), level, id, name)
        return json_answer({})

    def add(path: str, endpoint: Any, method: str, operation_id: str, summary: str,
            **extra: Any) -> None:
        router.add_api_route(path, endpoint, methods=[method], operation_id=operation_id,
                             tags=[tag], summary=summary, response_model=None, **extra)

    add(base, operations, "GET", f"list_{singular}_attachment_ops",
        "Operations available on an attachment", responses={200: {"model": list[str]}})
    add(f"{base}/{{operation}}", operation, "GET", f"get_{singular}_attachment",
        "data, compressed-data, info, size, md5, compressed-size, compressed-md5, "
        "is-compressed, uuid of an attachment (ETag; 304 on If-None-Match)",
        responses=_ANY_ANSWER)
    add(base, put, "PUT", f"put_{singular}_attachment",
        "Store a user attachment (1024..65535 or a UserContentType name; If-Match)",
        openapi_extra=_BINARY_BODY)
    add(base, delete, "DELETE", f"delete_{singular}_attachment",
        "Delete a user attachment (If-Match, mandatory with CheckRevisions)")
    add(f"{base}/compress", compression(True), "POST", f"compress_{singular}_attachment",
        "Store the attachment zlib-compressed (Orthanc's format)")
    add(f"{base}/uncompress", compression(False), "POST",
        f"uncompress_{singular}_attachment", "Store the attachment uncompressed")
    add(f"{base}/verify-md5", verify, "POST", f"verify_{singular}_attachment",
        "Re-read the attachment and check its MD5s (500 when corrupted)")


for _level in LEVELS:
    _routes(_level)
