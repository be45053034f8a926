"""Orthanc's editing routes: ``/{level}/{id}/modify``, ``/{level}/{id}/anonymize`` and
``/tools/create-dicom``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from app.api.deps import get_context, json_body, rest_origin
from app.api.responses import JsonResponse, json_answer
from app.api.schemas import (
    JSON_BODY_ANY,
    AnonymizeRequest,
    CreatedResource,
    JobAnswer,
    ModificationResult,
    ModifyRequest,
    json_body_of,
)
from app.dicom.levels import Level
from app.errors import BadFileFormat
from app.services import create_dicom
from app.services import modify as modify_service

router = APIRouter()

_DICOM_ANSWER = {200: {"content": {"application/dicom": {"schema": {"type": "string",
                                                                   "format": "binary"}}},
                       "description": "The modified DICOM instance (not stored)"}}
_JOB_ANSWER = {200: {"model": ModificationResult | JobAnswer,
                     "description": "The job content ({ID, Path, PatientID, Type, Description, "
                                    "InstancesCount, FailedInstancesCount, IsAnonymization}) "
                                    "or {ID, Path} of the job when Asynchronous"}}


def _instance_route(anonymize: bool) -> Any:
    async def route(id: str, request: Request) -> Response:
        context = get_context(request)
        body = await json_body(request, context)
        if body is None:
            body = {}
        if not anonymize and not isinstance(body, dict):
            raise BadFileFormat("The body of /modify must be a JSON object")
        data = await run_in_threadpool(modify_service.modify_instance, context, id, body,
                                       anonymize=anonymize)
        return Response(data, media_type="application/dicom")
    return route


def _resource_route(level: Level, anonymize: bool) -> Any:
    async def route(id: str, request: Request) -> JsonResponse:
        context = get_context(request)
        body = await json_body(request, context)
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise BadFileFormat("The body must be a JSON object")
        payload = await run_in_threadpool(
            modify_service.prepare_payload, context, level, id, body, anonymize=anonymize,
            origin=rest_origin(request))
        if _asynchronous(body):
            job_id = await run_in_threadpool(modify_service.submit_job, context, payload,
                                             _priority(body), body)
            return json_answer({"ID": job_id, "Path": f"/jobs/{job_id}"})
        content = await run_in_threadpool(modify_service.run_modification, context, payload)
        return json_answer(content)
    return route


def _asynchronous(body: dict[str, Any]) -> bool:
    value = body.get("Asynchronous", False)
    synchronous = body.get("Synchronous", True)
    if not isinstance(value, bool) or not isinstance(synchronous, bool):
        raise BadFileFormat('"Asynchronous" and "Synchronous" must be Boolean values')
    return value or not synchronous


def _priority(body: dict[str, Any]) -> int:
    value = body.get("Priority", 0)
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadFileFormat('"Priority" must be an integer')
    return value


for _anonymize in (False, True):
    _verb = "anonymize" if _anonymize else "modify"
    _body = json_body_of(AnonymizeRequest if _anonymize else ModifyRequest)
    router.add_api_route(
        f"/instances/{{id}}/{_verb}", _instance_route(_anonymize), methods=["POST"],
        operation_id=f"{_verb}_instance", tags=["Instances"], response_model=None,
        response_class=Response, responses=_DICOM_ANSWER, openapi_extra=_body,
        summary=f"{_verb.capitalize()} an instance: the new file is answered, not stored")
    for _level in (Level.PATIENT, Level.STUDY, Level.SERIES):
        router.add_api_route(
            f"/{_level.plural}/{{id}}/{_verb}", _resource_route(_level, _anonymize),
            methods=["POST"], operation_id=f"{_verb}_{_level.value.lower()}",
            tags=[_level.plural.capitalize()], response_model=None, responses=_JOB_ANSWER,
            openapi_extra=_body,
            summary=f"{_verb.capitalize()} every instance of the {_level.value.lower()} "
                    "into a new one")


@router.post("/tools/create-dicom", tags=["System"], operation_id="create_dicom",
             response_model=CreatedResource, openapi_extra=JSON_BODY_ANY,
             responses={200: {"description": "{ID, Path} of the new instance (or series)"}})
async def tools_create_dicom(request: Request) -> JsonResponse:
    """Create and store an instance from ``Tags`` (+ ``Content``: PNG/JPEG/PDF data URI,
    ``Parent``, ``PrivateCreator``, ``Force``, ``InterpretBinaryTags``)."""
    context = get_context(request)
    body = await json_body(request, context)
    answer = await run_in_threadpool(create_dicom.create_dicom, context, body,
                                     rest_origin(request))
    return json_answer(answer)
