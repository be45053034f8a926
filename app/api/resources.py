"""The routes every level shares: list, get, delete, relatives, statistics, metadata..."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import PlainTextResponse, Response

from app import orthanc_api_at_least
from app.api.deps import dicom_format, flag, get_context, ignore_length, int_param, small_read
from app.api.params import (
    BROWSE_TAGS,
    EXPAND,
    FULL,
    LIMIT,
    NUMERIC,
    RESPONSE_CONTENT,
    SINCE,
    TAGS_FORMAT,
    query_parameters,
)
from app.api.responses import JsonResponse, json_answer
from app.api.schemas import (
    RESOURCE_MODEL,
    DeleteAnswer,
    PartialResource,
    ResourceStatistics,
)
from app.dicom.levels import LEVELS, Level
from app.errors import InexistentItem
from app.services import attachments as attachment_service
from app.services import browse, delete, find, resources
from app.services import instances as instance_service
from app.services import metadata as metadata_service

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
        since, limit = _since_limit(request)
        return json_answer(resources.list_resources(
            get_context(request), level, since=since, limit=limit,
            content=_list_content(request), requested=_requested_tags(request),
            fmt=dicom_format(request, "simplify")))

    _add(f"/{plural}", list_resources, operation_id=f"list_{plural}", tag=tag,
         summary=f"List the {plural} (IDs, or full JSON with ?expand; ?since and ?limit page)",
         responses={200: {"model": list[model] | list[str] | list[PartialResource]}},
         openapi_extra=query_parameters(EXPAND(f"Answer the {singular} resources instead of their IDs"),
                             RESPONSE_CONTENT,
                             SINCE(f"Skip this many {plural} (paging, with limit)"),
                             LIMIT(f"Answer at most this many {plural} (with since; 0: none "
                                   "before Orthanc 1.12.5, no limit from 1.12.5)"),
                             *BROWSE_TAGS))

    async def get_resource(id: str, request: Request) -> JsonResponse:
        requested, fmt = _requested_tags(request), dicom_format(request, "simplify")
        if requested:  # (computed tags may count many rows: on a thread)
            return json_answer(await run_in_threadpool(
                resources.resource, get_context(request), level, id, requested, fmt))
        return json_answer(await small_read(request, resources.resource, level, id, [], fmt))

    _add(f"/{plural}/{{id}}", get_resource, operation_id=f"get_{singular}", tag=tag,
         summary=f"One {singular}", responses={200: {"model": model}},
         openapi_extra=query_parameters(*BROWSE_TAGS))

    async def delete_resource(id: str, request: Request) -> JsonResponse:
        answer = await run_in_threadpool(delete.delete_resource, get_context(request), level, id)
        return json_answer(answer)

    _add(f"/{plural}/{{id}}", delete_resource, method="DELETE",
         operation_id=f"delete_{singular}", tag=tag,
         summary=f"Delete the {singular}, its descendants and the parents left empty",
         responses={200: {"model": DeleteAnswer}})

    def statistics(id: str, request: Request) -> JsonResponse:
        return json_answer(resources.statistics(get_context(request), level, id))

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
             openapi_extra=query_parameters(_RELATIVES_EXPAND, *BROWSE_TAGS))

    if level != Level.INSTANCE:
        def shared_tags(id: str, request: Request) -> JsonResponse:
            return json_answer(instance_service.shared_tags(
                get_context(request), level, id, dicom_format(request, "full"),
                ignore_length(request)))

        def instances_tags(id: str, request: Request) -> JsonResponse:
            return json_answer(instance_service.instances_tags(
                get_context(request), level, id, dicom_format(request, "full"),
                ignore_length(request)))

        _add(f"/{plural}/{{id}}/instances-tags", instances_tags,
             operation_id=f"get_{singular}_instances_tags", tag=tag,
             summary="The tags of every instance below, by instance ID",
             responses={200: {"model": dict[str, Any], "description": "Orthanc's tags JSON"}},
             openapi_extra=query_parameters(*TAGS_FORMAT))

        modules = [("module", level.value.lower())]
        if level == Level.STUDY:
            modules.append(("module-patient", "patient"))
        for route, module in modules:
            _add(f"/{plural}/{{id}}/{route}", _module(level, module),
                 operation_id=f"get_{singular}_{route.replace('-', '_')}", tag=tag,
                 summary=f"The tags of the {module} module (from one instance)",
                 responses={200: {"model": dict[str, Any], "description": "Orthanc's tags JSON"}},
                 openapi_extra=query_parameters(*TAGS_FORMAT))

        _add(f"/{plural}/{{id}}/shared-tags", shared_tags,
             operation_id=f"get_{singular}_shared_tags", tag=tag,
             summary="Tags with the same value in every instance",
             responses={200: {"model": dict[str, Any], "description": "Orthanc's tags JSON"}},
             openapi_extra=query_parameters(*TAGS_FORMAT))

    def list_metadata(id: str, request: Request) -> JsonResponse:
        values = _metadata(request, level, id)
        if flag(request, "numeric"):  # Orthanc 1.12: MetadataType numbers instead of names
            user = get_context(request).settings.user_metadata
            numbered = {browse.metadata_number(name, user): value
                        for name, value in values.items()}
            numbers = {number: value for number, value in numbered.items() if number is not None}
            return json_answer({str(n): v for n, v in numbers.items()}
                               if flag(request, "expand") else list(numbers))
        return json_answer(values if flag(request, "expand") else list(values))

    _add(f"/{plural}/{{id}}/metadata", list_metadata, operation_id=f"list_{singular}_metadata",
         tag=tag, summary="Metadata names (or name/value pairs with ?expand)",
         # ?numeric: MetadataType numbers (a list of integers, or {"7": value}).
         responses={200: {"model": list[str] | list[int] | dict[str, str]}},
         openapi_extra=query_parameters(EXPAND("Answer {name: value} instead of the names"),
                                        NUMERIC))

    def get_metadata(id: str, name: str, request: Request) -> Response:
        """The value, with its ETag ``"{revision}-{md5}"``; 304 when ``If-None-Match``
        names it (Orthanc 1.9.2)."""
        context = get_context(request)
        values = _metadata(request, level, id)
        name = browse.metadata_name(name, context.settings.user_metadata)
        if name not in values:
            raise InexistentItem(f"No metadata {name!r} on this {singular}")
        value = values[name]
        revision = metadata_service.stored_revision(context, level, id, name)
        headers = {"ETag": metadata_service.etag(revision, value)}
        wanted = attachment_service.parse_revision_header(
            request.headers.get("if-none-match"), "If-None-Match")
        if wanted == (revision, metadata_service.md5_of(value)):
            return Response(status_code=304, headers=headers)
        return PlainTextResponse(value, headers=headers)

    _add(f"/{plural}/{{id}}/metadata/{{name}}", get_metadata,
         operation_id=f"get_{singular}_metadata", tag=tag, summary="One metadata value",
         response_class=PlainTextResponse,
         responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                          "headers": {"ETag": {"description": "The revision and the MD5 of "
                                                              "the value",
                                               "schema": {"type": "string"}}}},
                    304: {"description": "Not modified (If-None-Match names the value)"}})

    def list_attachments(id: str, request: Request) -> JsonResponse:
        entries = resources.attachments(get_context(request), level, id)
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
    """``?requested-tags=A;B`` (Orthanc 1.12.4 spelling) or ``?requestedTags=A;B`` (1.11)."""
    params = request.query_params
    return find.parse_requested_tags(params.get("requested-tags", params.get("requestedTags")))


def _since_limit(request: Request) -> tuple[int, int | None]:
    """``?since`` and ``?limit`` of ``GET /{level}``; ``limit=0`` answers nothing up to
    Orthanc 1.12.4 and means no limit from 1.12.5 (as ``/tools/find``'s), after the
    version Pharos reports. Orthanc refuses one without the other (400); Pharos reads a
    missing since as 0 and a missing limit as none (see the README's differences)."""
    limit = request.query_params.get("limit")
    if limit is None:
        return int_param(request, "since"), None
    count = int_param(request, "limit")
    if count == 0 and orthanc_api_at_least(1, 12, 5):
        return int_param(request, "since"), None
    return int_param(request, "since"), count


def _list_content(request: Request) -> browse.Content | None:
    """``?response-content=`` (Orthanc 1.12.5, overrides expand), else ``?expand`` (its
    value read as a Boolean: ``expand=false`` lists IDs, Orthanc 1.12.2), else IDs."""
    text = request.query_params.get("response-content")
    if text is not None:
        return find.parse_response_content(text)
    return browse.expand_content() if flag(request, "expand") else None


def _relatives(level: Level, target: Level) -> Callable[..., JsonResponse]:
    def relatives(id: str, request: Request) -> JsonResponse:
        # Orthanc: children are expanded unless ?expand=false; the parent always is.
        expand = request.query_params.get("expand") is None or flag(request, "expand")
        return json_answer(resources.relatives(
            get_context(request), level, id, target, expand=expand,
            requested=_requested_tags(request), fmt=dicom_format(request, "simplify")))
    return relatives


def _module(level: Level, module: str) -> Callable[..., JsonResponse]:
    def module_tags(id: str, request: Request) -> JsonResponse:
        return json_answer(instance_service.module_json(
            get_context(request), level, id, module, dicom_format(request, "full"),
            ignore_length(request)))
    return module_tags


def _metadata(request: Request, level: Level, public_id: str) -> dict[str, str]:
    return resources.metadata(get_context(request), level, public_id)


for _level in LEVELS:
    _register(_level)
