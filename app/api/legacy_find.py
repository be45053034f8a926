"""Orthanc's deprecated C-FIND SCU routes: ``/modalities/{name}/find-patient``,
``find-study``, ``find-series``, ``find-instance`` and the hierarchical ``find`` (still in
Orthanc 1.12; ``/modalities/{name}/query`` replaces them). See app.services.legacy_find."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from app.api.deps import get_context, json_body
from app.api.responses import JsonResponse, json_answer
from app.api.schemas import JSON_BODY_ANY
from app.dicom.levels import Level
from app.services import legacy_find

router = APIRouter(tags=["Networking"])


def _level_route(level: Level) -> Callable[[str, Request], Awaitable[JsonResponse]]:
    async def find(name: str, request: Request) -> JsonResponse:
        context = get_context(request)
        body = await json_body(request, context)
        return json_answer(await run_in_threadpool(
            legacy_find.find_level, context, name, level, body))
    return find


for _level in (Level.PATIENT, Level.STUDY, Level.SERIES, Level.INSTANCE):
    _name = _level.value.lower()
    router.add_api_route(
        f"/modalities/{{name}}/find-{_name}", _level_route(_level), methods=["POST"],
        operation_id=f"find_{_name}_on_modality", response_model=list[dict[str, Any]],
        summary=f"C-FIND SCU for {_level.plural} (deprecated: use /query)", deprecated=True,
        openapi_extra=JSON_BODY_ANY)


@router.post("/modalities/{name}/find", operation_id="find_hierarchy_on_modality",
             response_model=list[dict[str, Any]], deprecated=True,
             openapi_extra=JSON_BODY_ANY)
async def find_hierarchy(name: str, request: Request) -> JsonResponse:
    """Hierarchical C-FIND SCU: matching patients with their studies and series."""
    context = get_context(request)
    body = await json_body(request, context)
    return json_answer(await run_in_threadpool(legacy_find.find_hierarchy, context, name, body))
