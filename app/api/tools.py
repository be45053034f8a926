"""``/tools/find``, ``/tools/lookup``, ``/tools/labels`` and the labels of resources."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import PlainTextResponse

from app.api.deps import get_context, json_body, read_body
from app.api.responses import JsonResponse, json_answer
from app.api.schemas import FindRequest, ResourceRef, json_body_of
from app.dicom.levels import LEVELS, Level
from app.errors import UnknownResource
from app.services import find

router = APIRouter()

_EMPTY_TEXT: dict[int | str, Any] = {200: {"description": "An empty body", "content": {
    "text/plain": {"schema": {"type": "string", "maxLength": 0}}}}}
_TEXT_BODY = {"requestBody": {"required": True, "content": {
    "text/plain": {"schema": {"type": "string"}}}}}


@router.post("/tools/find", tags=["System"], operation_id="tools_find",
             response_model=list[str] | list[dict[str, Any]],
             openapi_extra=json_body_of(FindRequest),
             responses={200: {"description": "IDs, or resources with Expand"}})
async def tools_find(request: Request) -> JsonResponse:
    """Orthanc's find: ``{"Level", "Query", "Expand", "Limit", "Since", "CaseSensitive",
    "RequestedTags", "Labels", "LabelsConstraint", "Full", "Short"}`` and Orthanc 1.12.5's
    ``"OrderBy"``, ``"ResponseContent"``, ``"MetadataQuery"``, ``"ParentPatient"``,
    ``"ParentStudy"``, ``"ParentSeries"``."""
    context = get_context(request)
    body = await json_body(request, context)
    return json_answer(await run_in_threadpool(find.tools_find, context, body))


@router.post("/tools/count-resources", tags=["System"], operation_id="count_resources",
             response_model=dict[str, int], openapi_extra=json_body_of(FindRequest))
async def count_resources(request: Request) -> JsonResponse:
    """Orthanc 1.12.5: ``{"Count": N}``, the number of resources ``/tools/find`` matches
    for the same ``Level``, ``Query``, ``Labels``, ``LabelsConstraint``, ``MetadataQuery``
    and ``ParentPatient``/``ParentStudy``/``ParentSeries`` (no Since, Limit nor cap)."""
    context = get_context(request)
    body = await json_body(request, context)
    return json_answer(await run_in_threadpool(find.count_resources, context, body))


@router.post("/tools/lookup", tags=["System"], operation_id="tools_lookup",
             response_model=list[ResourceRef], openapi_extra=_TEXT_BODY)
async def tools_lookup(request: Request) -> JsonResponse:
    """Resources whose PatientID, StudyInstanceUID, SeriesInstanceUID or SOPInstanceUID is
    the body."""
    context = get_context(request)
    text = (await read_body(request, context)).decode("utf-8", "replace")
    return json_answer(await run_in_threadpool(find.lookup, context, text))


@router.get("/tools/labels", tags=["System"], operation_id="list_all_labels",
            response_model=list[str])
def list_all_labels(request: Request) -> JsonResponse:
    return json_answer(find.all_labels(get_context(request)))


def _register(level: Level) -> None:
    plural, singular = level.plural, level.value.lower()
    tag = plural.capitalize()

    def get_labels(id: str, request: Request) -> JsonResponse:
        return json_answer(find.labels_of(get_context(request), level, id))

    # Orthanc answers label operations with an empty text/plain body.
    def has_label(id: str, label: str, request: Request) -> PlainTextResponse:
        if label not in find.labels_of(get_context(request), level, id):
            raise UnknownResource(f"The {singular} has no label {label!r}")
        return PlainTextResponse("")

    def put_label(id: str, label: str, request: Request) -> PlainTextResponse:
        find.add_label(get_context(request), level, id, label)
        return PlainTextResponse("")

    def delete_label(id: str, label: str, request: Request) -> PlainTextResponse:
        find.remove_label(get_context(request), level, id, label)
        return PlainTextResponse("")

    router.add_api_route(f"/{plural}/{{id}}/labels", get_labels, methods=["GET"],
                         operation_id=f"list_{singular}_labels", tags=[tag],
                         response_model=list[str])
    for endpoint, method, operation, summary in (
            (has_label, "GET", "has", "Empty if the resource has the label, else 404"),
            (put_label, "PUT", "add", "Add a label (1-64 characters of [A-Za-z0-9_-])"),
            (delete_label, "DELETE", "remove", "Remove a label (absent: no error)")):
        router.add_api_route(f"/{plural}/{{id}}/labels/{{label}}", endpoint, methods=[method],
                             operation_id=f"{operation}_{singular}_label", tags=[tag],
                             summary=summary, response_model=None,
                             response_class=PlainTextResponse, responses=_EMPTY_TEXT)


for _level in LEVELS:
    _register(_level)
