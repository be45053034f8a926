"""The routes every level shares: list, get, delete, relatives, statistics, metadata..."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import PlainTextResponse, Response

from app.api.deps import flag, get_context, int_param
from app.api.params import EXPAND, FULL, LIMIT, REQUESTED_TAGS, SINCE, TAGS_FORMAT, query_parameters
from app.api.responses import JsonResponse, json_answer
from app.api.schemas import (
    RESOURCE_MODEL,
    DeleteAnswer,
    ResourceStatistics,
)
from app.dicom.levels import LEVELS, Level
from app.errors import InexistentItem, UnknownResource
from app.index import repository
from app.services import attachments as attachment_service
from app.services import browse, delete, find
from app.services import instances as instance_service
from app.services.browse import get_row_or_404

router = APIRouter()


def _add(path: str, endpoint: Callable[..., Any], *, method: str = "GET", operation_id: str,
         tag: str, summary: str, responses: dict[int, Any] | None = None,
         response_class: type[Response] = JsonResponse,
         openapi_extra: dict[str, Any] | None = None) -> None:
    router.add_api_route(path, endpoint, methods=[method], operation_id=operation_id,
                         tags=[tag], summary=summary, response_model=None,
                         responses=responses or {}, response_class=response_class,
                         openapi_extra=openapi_extra)


def _register(level: Level) -> None:
    plural = level.plural
    tag = plural.capitalize()
    model = RESOURCE_MODEL[level.value]
    singular = level.value.lower()

    def list_resources(request: Request) -> JsonResponse:
        context = get_context(request)
        requested = _requested_tags(request)
        with context.db.read() as conn:
            answer = browse.list_resources(
                conn, level, expand=flag(request, "expand") and not requested,
                since=int_param(request, "since"), limit=int_param(request, "limit"))
            if requested and flag(request, "expand"):
                rows = repository.get_rows_by_pk(conn, level, [r.pk for r in repository.list_public_ids(
                    conn, level, since=int_param(request, "since"),
                    limit=int_param(request, "limit"))])
                answer = find.expanded(conn, level, rows, requested)
            return json_answer(answer)

    _add(f"/{plural}", list_resources, operation_id=f"list_{plural}", tag=tag,
         summary=f"List the {plural} (IDs, or full JSON with ?expand; ?since and ?limit page)",
         responses={200: {"model": list[model] | list[str]}},
         openapi_extra=query_parameters(EXPAND(f"Answer the {singular} resources instead of their IDs"),
                             SINCE(f"Skip this many {plural} (paging, with limit)"),
                             LIMIT, REQUESTED_TAGS))

    def get_resource(id: str, request: Request) -> JsonResponse:
        context = get_context(request)
        requested = _requested_tags(request)
        with context.db.read() as conn:
            if requested:
                row = get_row_or_404(conn, level, id)
                return json_answer(find.expanded(conn, level, [row], requested)[0])
            return json_answer(browse.resource_json(conn, level, id))

    _add(f"/{plural}/{{id}}", get_resource, operation_id=f"get_{singular}", tag=tag,
         summary=f"One {singular}", responses={200: {"model": model}},
         openapi_extra=query_parameters(REQUESTED_TAGS))

    async def delete_resource(id: str, request: Request) -> JsonResponse:
        answer = await run_in_threadpool(delete.delete_resource, get_context(request), level, id)
        return json_answer(answer)

    _add(f"/{plural}/{{id}}", delete_resource, method="DELETE",
         operation_id=f"delete_{singular}", tag=tag,
         summary=f"Delete the {singular}, its descendants and the parents left empty",
         responses={200: {"model": DeleteAnswer}})

    def statistics(id: str, request: Request) -> JsonResponse:
        context = get_context(request)
        with context.db.read() as conn:
            return json_answer(browse.resource_statistics(conn, level, id))

    _add(f"/{plural}/{{id}}/statistics", statistics, operation_id=f"get_{singular}_statistics",
         tag=tag, summary="Counts and sizes", responses={200: {"model": ResourceStatistics}})

    for target in LEVELS:
        if target == level:
            continue
        name = target.plural if target.depth > level.depth else target.value.lower()
        target_model = RESOURCE_MODEL[target.value]
        _add(f"/{plural}/{{id}}/{name}", _relatives(level, target),
             operation_id=f"get_{singular}_{name}", tag=tag,
             summary=f"The {name} of the {singular}",
             # Children: the resources, or their IDs with ?expand=false.
             responses={200: {"model": list[target_model] | list[str]
                              if target.depth > level.depth else target_model}},
             openapi_extra=query_parameters(_RELATIVES_EXPAND))

    if level != Level.INSTANCE:
        def shared_tags(id: str, request: Request) -> JsonResponse:
            mode = "simplify" if flag(request, "simplify") else (
                "short" if flag(request, "short") else "full")
            return json_answer(instance_service.shared_tags(get_context(request), level, id, mode))

        _add(f"/{plural}/{{id}}/shared-tags", shared_tags,
             operation_id=f"get_{singular}_shared_tags", tag=tag,
             summary="Tags with the same value in every instance",
             responses={200: {"model": dict[str, Any], "description": "Orthanc's tags JSON"}},
             openapi_extra=query_parameters(*TAGS_FORMAT))

    def list_metadata(id: str, request: Request) -> JsonResponse:
        values = _metadata(request, level, id)
        return json_answer(values if flag(request, "expand") else list(values))

    _add(f"/{plural}/{{id}}/metadata", list_metadata, operation_id=f"list_{singular}_metadata",
         tag=tag, summary="Metadata names (or name/value pairs with ?expand)",
         responses={200: {"model": list[str] | dict[str, str]}},
         openapi_extra=query_parameters(EXPAND("Answer {name: value} instead of the names")))

    def get_metadata(id: str, name: str, request: Request) -> PlainTextResponse:
        values = _metadata(request, level, id)
        if name not in values:
            raise InexistentItem(f"No metadata {name!r} on this {singular}")
        return PlainTextResponse(values[name])

    _add(f"/{plural}/{{id}}/metadata/{{name}}", get_metadata,
         operation_id=f"get_{singular}_metadata", tag=tag, summary="One metadata value",
         response_class=PlainTextResponse,
         responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}})

    def list_attachments(id: str, request: Request) -> JsonResponse:
        context = get_context(request)
        with context.db.read() as conn:
            row = get_row_or_404(conn, level, id)
            user = attachment_service.list_user_attachments(context, conn, level, row.pk)
        entries = ([("dicom", 1)] if level == Level.INSTANCE else []) + user
        if flag(request, "full"):
            return json_answer(dict(sorted(entries)))
        return json_answer([name for name, _ in entries])

    _add(f"/{plural}/{{id}}/attachments", list_attachments,
         operation_id=f"list_{singular}_attachments", tag=tag, summary="Attachment names",
         responses={200: {"model": list[str] | dict[str, int]}}, openapi_extra=query_parameters(FULL))


# The relatives of a resource are expanded unless ?expand=false (or 0, no).
_RELATIVES_EXPAND = replace(EXPAND, schema={"type": "boolean", "default": True},
                            description="Answer the resources (the default) or, when false, "
                                        "their IDs")


def _requested_tags(request: Request) -> list[str]:
    """``?requestedTags=A;B`` (Orthanc 1.11), also accepted comma-separated."""
    raw = request.query_params.get("requestedTags") or request.query_params.get("RequestedTags")
    if not raw:
        return []
    return [t for t in raw.replace(",", ";").split(";") if t.strip()] if ";" in raw else \
        [t for t in [raw.strip()] if t]


def _relatives(level: Level, target: Level) -> Callable[..., JsonResponse]:
    def relatives(id: str, request: Request) -> JsonResponse:
        context = get_context(request)
        expand = request.query_params.get("expand") is None or flag(request, "expand")
        with context.db.read() as conn:
            return json_answer(browse.related(conn, level, id, target, expand))
    return relatives


def _metadata(request: Request, level: Level, public_id: str) -> dict[str, str]:
    context = get_context(request)
    with context.db.read() as conn:
        row = get_row_or_404(conn, level, public_id)
        return browse.resource_metadata(conn, level, row)


for _level in LEVELS:
    _register(_level)


# --- the "dicom" attachment of an instance ---------------------------------------------------
# Not routes: app/api/attachments.py serves /{level}/{id}/attachments/{name}... for every
# attachment and hands the instance's built-in one over to these.

_ATTACHMENT_OPERATIONS = ["compress", "compressed-data", "compressed-md5", "compressed-size",
                          "data", "info", "is-compressed", "md5", "size", "uncompress", "uuid",
                          "verify-md5"]


def attachment_operations(id: str, name: str, request: Request) -> JsonResponse:
    _attachment_row(request, id, name)
    return json_answer(_ATTACHMENT_OPERATIONS)


def attachment_operation(id: str, name: str, operation: str, request: Request) -> Response:
    """``data``/``compressed-data`` (the file), ``size``, ``md5``, ``uuid``, ``is-compressed``..."""
    context = get_context(request)
    row = _attachment_row(request, id, name)
    if operation in ("data", "compressed-data"):
        return Response(instance_service.read_file(context, row),
                        media_type="application/octet-stream")
    values = {"size": str(row.file_size), "compressed-size": str(row.file_size),
              "md5": row.md5, "compressed-md5": row.md5, "uuid": row.blob_key,
              "is-compressed": "0"}
    if operation in values:
        return PlainTextResponse(values[operation])
    if operation == "info":
        return json_answer({"CompressedMD5": row.md5, "CompressedSize": row.file_size,
                            "ContentType": 1, "UncompressedMD5": row.md5,
                            "UncompressedSize": row.file_size, "Uuid": row.blob_key})
    raise UnknownResource(f"Unknown attachment operation {operation!r}")


def verify_md5(id: str, name: str, request: Request) -> JsonResponse:
    """Re-read the stored file and compare its MD5 with the index; 500 when corrupted."""
    import hashlib

    from app.errors import CorruptedFile
    context = get_context(request)
    row = _attachment_row(request, id, name)
    data = instance_service.read_file(context, row)
    if hashlib.md5(data, usedforsecurity=False).hexdigest() != row.md5:
        raise CorruptedFile(f"The file of instance {id} does not match its MD5")
    return json_answer({})


def _attachment_row(request: Request, public_id: str, name: str) -> Any:
    if name not in ("dicom", "1"):
        raise UnknownResource(f"Unknown attachment {name!r}")
    return instance_service.instance_row(get_context(request), public_id)
