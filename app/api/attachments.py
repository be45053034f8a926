"""``/{level}/{id}/attachments/{name}[/{operation}]``: the attachments of every level,
the user attachments and the ``dicom`` file of an instance (see
:mod:`app.services.attachments`; this router is mounted before :mod:`app.api.resources`).

``data`` answers the content (uncompressed when stored compressed, byte ranges of the
content with ``Range``); ``compressed-data`` answers the blob as stored.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import PlainTextResponse, Response

from app.api.blob_responses import blob_answer
from app.api.deps import get_context, read_body
from app.api.responses import JsonResponse, content_disposition, json_answer
from app.api.schemas import AttachmentInfo, EmptyAnswer
from app.dicom.levels import LEVELS, Level
from app.errors import UnknownResource
from app.services import attachments as service

router = APIRouter()

_BINARY = {"schema": {"type": "string", "format": "binary"}}
_BINARY_BODY = {"requestBody": {"content": {"application/octet-stream": _BINARY}}}
_TEXT = {"text/plain": {"schema": {"type": "string"}}}
_ETAG = {"ETag": {"description": "The attachment's revision and MD5 (for If-None-Match, "
                                 "If-Match)", "schema": {"type": "string"}}}
_NOT_MODIFIED = {304: {"description": "Not modified (If-None-Match matches the ETag)",
                       "headers": _ETAG}}

# GET .../attachments/{name}/{operation}: one documented route per operation (so each has
# its answer type), all served by the same function; other names still reach it through
# an undocumented {operation} route (Orthanc's 404 for an unknown operation).
_READ_OPERATIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "data": ("The content, with its MIME type (the DICOM file of an instance's dicom)",
             {"application/octet-stream": _BINARY}),
    "compressed-data": ("The content as stored (zlib when compressed)",
                        {"application/octet-stream": _BINARY}),
    "info": ("Sizes, MD5s, content type and UUID", {}),
    "size": ("The uncompressed size in bytes", _TEXT),
    "md5": ("The MD5 of the uncompressed content", _TEXT),
    "compressed-size": ("The stored size in bytes", _TEXT),
    "compressed-md5": ("The MD5 of the stored content", _TEXT),
    "is-compressed": ("1 when stored compressed, else 0", _TEXT),
    "uuid": ("The storage UUID", _TEXT),
}


def _not_modified(request: Request, info: service.AttachmentInfo) -> Response | None:
    wanted = service.parse_revision_header(request.headers.get("if-none-match"),
                                           "If-None-Match")
    if wanted is not None and wanted == (info.revision, info.uncompressed_md5):
        return Response(status_code=304, headers={"ETag": service.etag(info)})
    return None


def _with_etag(response: Response, info: service.AttachmentInfo) -> Response:
    response.headers["ETag"] = service.etag(info)
    return response


def _routes(level: Level) -> None:
    plural, singular = level.plural, level.value.lower()
    tag = plural.capitalize()
    base = f"/{plural}/{{id}}/attachments/{{name}}"

    def operations(id: str, name: str, request: Request) -> Response:
        info = service.get_info(get_context(request), level, id, name)
        return _not_modified(request, info) or _with_etag(json_answer(service.OPERATIONS), info)

    def _named(request: Request, operation: str, answer: Response) -> Response:
        """``?filename=`` on the content (Orthanc 1.12.7): ``Content-Disposition``."""
        filename = request.query_params.get("filename")
        if filename and operation in ("data", "compressed-data"):
            answer.headers["Content-Disposition"] = content_disposition(filename)
        return answer

    def operation(id: str, name: str, operation: str, request: Request) -> Response:
        context = get_context(request)
        info = service.get_info(context, level, id, name)
        if operation not in service.OPERATIONS or operation in (
                "compress", "uncompress", "verify-md5"):
            raise UnknownResource(f"Unknown attachment operation {operation!r}")
        not_modified = _not_modified(request, info)
        if not_modified is not None:
            return not_modified
        answer: Response
        if operation == "data":  # the content, uncompressed: ranges of the content apply
            answer = blob_answer(request, service.content_file(context, info),
                                 service.mime_of(context, info.content_type), {},
                                 lambda: service.missing_content(info))
        elif operation == "compressed-data":  # the blob as stored
            answer = blob_answer(request, service.stored_blob(context, info),
                                 "application/octet-stream", {},
                                 lambda: service.missing_content(info))
        elif operation == "info":
            answer = json_answer(service.info_json(info))
        else:
            texts = {"size": str(info.uncompressed_size), "md5": info.uncompressed_md5,
                     "compressed-size": str(info.compressed_size),
                     "compressed-md5": info.compressed_md5, "uuid": info.uuid,
                     "is-compressed": "1" if info.compression else "0"}
            answer = PlainTextResponse(texts[operation])
        return _named(request, operation, _with_etag(answer, info))

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
        await run_in_threadpool(service.verify_md5, get_context(request), level, id, name)
        return json_answer({})

    def read(name_of_operation: str) -> Any:
        def endpoint(id: str, name: str, request: Request) -> Response:
            return operation(id, name, name_of_operation, request)
        return endpoint

    def add(path: str, endpoint: Any, method: str, operation_id: str, summary: str,
            **extra: Any) -> None:
        extra.setdefault("response_model", None)
        router.add_api_route(path, endpoint, methods=[method], operation_id=operation_id,
                             tags=[tag], summary=summary, **extra)

    # Operation ids: {verb}_{level}_attachment[_{operation}]; the list of attachments,
    # list_{level}_attachments, is in app/api/resources.py.
    add(base, operations, "GET", f"list_{singular}_attachment_operations",
        "Operations available on an attachment (ETag; 304 on If-None-Match)",
        response_model=list[str], responses=_NOT_MODIFIED)
    for name_of_operation, (summary, content) in _READ_OPERATIONS.items():
        answer: dict[str, Any] = {"description": summary, "headers": _ETAG}
        if content:
            answer["content"] = content
        add(f"{base}/{name_of_operation}", read(name_of_operation), "GET",
            f"get_{singular}_attachment_{name_of_operation.replace('-', '_')}",
            f"{summary} (ETag; 304 on If-None-Match)",
            response_model=AttachmentInfo if name_of_operation == "info" else None,
            response_class=JsonResponse if name_of_operation == "info" else Response,
            responses={200: answer, **_NOT_MODIFIED})
    router.add_api_route(f"{base}/{{operation}}", operation, methods=["GET"],
                         include_in_schema=False)
    add(base, put, "PUT", f"set_{singular}_attachment",
        "Store a user attachment (1024..65535 or a UserContentType name; If-Match)",
        response_model=EmptyAnswer, openapi_extra=_BINARY_BODY)
    add(base, delete, "DELETE", f"delete_{singular}_attachment",
        "Delete a user attachment (If-Match, mandatory with CheckRevisions)",
        response_class=PlainTextResponse, responses={200: {"content": _TEXT}})
    add(f"{base}/compress", compression(True), "POST", f"compress_{singular}_attachment",
        "Store the attachment zlib-compressed (Orthanc's format)", response_model=EmptyAnswer)
    add(f"{base}/uncompress", compression(False), "POST",
        f"uncompress_{singular}_attachment", "Store the attachment uncompressed",
        response_model=EmptyAnswer)
    add(f"{base}/verify-md5", verify, "POST", f"verify_{singular}_attachment_md5",
        "Re-read the attachment and check its MD5s (500 when corrupted)",
        response_model=EmptyAnswer)


for _level in LEVELS:
    _routes(_level)
