"""Orthanc's study curation and bulk editing routes: ``/studies/{id}/merge``,
``/studies/{id}/split``, ``/tools/bulk-modify`` and ``/tools/bulk-anonymize``.

All four run as jobs (shown in ``/jobs``): synchronous by default, answering the job's
content; ``"Asynchronous": true`` (or ``"Synchronous": false``) answers ``{ID, Path}`` of the
job at once (Orthanc's ``SubmitCommandsJob``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from app.api.deps import get_context, json_body, rest_origin
from app.api.responses import JsonResponse, json_answer
from app.api.schemas import (
    JSON_BODY_ANY,
    BulkModificationResult,
    JobAnswer,
    MergeResult,
    SplitResult,
)
from app.errors import BadFileFormat
from app.services import bulk_modify, merge_split

router = APIRouter()

_JOB_ANSWER = "The job content, or {ID, Path} of the job when Asynchronous"


def _synchronous(body: Any) -> bool:
    if not isinstance(body, dict):
        return True
    asynchronous = body.get("Asynchronous", False)
    synchronous = body.get("Synchronous", True)
    if not isinstance(asynchronous, bool) or not isinstance(synchronous, bool):
        raise BadFileFormat('"Asynchronous" and "Synchronous" must be Boolean values')
    return synchronous and not asynchronous


def _priority(body: Any) -> int:
    value = body.get("Priority", 0) if isinstance(body, dict) else 0
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadFileFormat('"Priority" must be an integer')
    return value


def _user_data(body: Any) -> dict[str, Any]:
    """The job's ``UserData`` (Orthanc 1.12.9) as keyword arguments of the services."""
    if isinstance(body, dict) and "UserData" in body:
        return {"user_data": body["UserData"], "has_user_data": True}
    return {}


async def _study_job(request: Request, study_id: str, prepare: Callable[..., Any],
                     kind: str) -> JsonResponse:
    """Merge and split: prepare the job from the body, then run it (or queue it)."""
    context = get_context(request)
    body = await json_body(request, context)
    synchronous, priority = _synchronous(body), _priority(body)
    payload = await run_in_threadpool(prepare, context, study_id, body, rest_origin(request))
    answer = await run_in_threadpool(merge_split.submit, context, kind, payload,
                                     synchronous=synchronous, priority=priority,
                                     **_user_data(body))
    return json_answer(answer)


@router.post("/studies/{id}/merge", tags=["Studies"], operation_id="merge_study",
             response_model=MergeResult | JobAnswer, openapi_extra=JSON_BODY_ANY,
             responses={200: {"description": "{Description, FailedInstancesCount, "
                                             "InstancesCount, TargetStudy}. " + _JOB_ANSWER}})
async def merge_study(id: str, request: Request) -> JsonResponse:
    """Move studies, series and instances (``Resources``) into this study; they take its
    patient and study tags. ``KeepSource`` (default false) keeps the originals."""
    return await _study_job(request, id, merge_split.prepare_merge, merge_split.MERGE_JOB)


@router.post("/studies/{id}/split", tags=["Studies"], operation_id="split_study",
             response_model=SplitResult | JobAnswer, openapi_extra=JSON_BODY_ANY,
             responses={200: {"description": "{Description, FailedInstancesCount, "
                                             "InstancesCount, TargetStudy, TargetStudyUID}. "
                                             + _JOB_ANSWER}})
async def split_study(id: str, request: Request) -> JsonResponse:
    """Move ``Series`` and/or ``Instances`` of this study into a brand new study
    (``Replace``/``Remove`` patient and study module tags; ``KeepSource`` default false)."""
    return await _study_job(request, id, merge_split.prepare_split, merge_split.SPLIT_JOB)


def _bulk_route(anonymize: bool) -> Any:
    async def route(request: Request) -> JsonResponse:
        context = get_context(request)
        body = await json_body(request, context)
        synchronous, priority = _synchronous(body), _priority(body)
        payload = await run_in_threadpool(bulk_modify.prepare, context, body,
                                          anonymize=anonymize, origin=rest_origin(request))
        answer = await run_in_threadpool(bulk_modify.submit, context, payload,
                                         synchronous=synchronous, priority=priority,
                                         **_user_data(body))
        return json_answer(answer)
    return route


for _anonymize in (False, True):
    _verb = "anonymize" if _anonymize else "modify"
    router.add_api_route(
        f"/tools/bulk-{_verb}", _bulk_route(_anonymize), methods=["POST"],
        operation_id=f"bulk_{_verb}", tags=["System"],
        response_model=BulkModificationResult | JobAnswer,
        openapi_extra=JSON_BODY_ANY,
        responses={200: {"description": "{Description, FailedInstancesCount, InstancesCount, "
                                        "IsAnonymization, Resources: [{ID, Path, Type}]}. "
                                        + _JOB_ANSWER}},
        summary=f"{_verb.capitalize()} a set of resources (Resources of any level)")
