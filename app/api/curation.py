"""Curation routes: writable user metadata, patient protection, study merge and split."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import PlainTextResponse

from app.api.deps import get_context, read_body
from app.api.responses import JsonResponse, json_answer
from app.api.schemas import EmptyAnswer
from app.dicom.levels import LEVELS, Level
from app.errors import BadRequest
from app.services import metadata

router = APIRouter()
_TEXT_BODY = {"requestBody": {"content": {"text/plain": {"schema": {"type": "string"}}}}}
_EMPTY_TEXT = {200: {"description": "Empty (the new revision and the MD5 of the value are in "
                                    "the ETag header)",
                     "content": {"text/plain": {"schema": {"type": "string"}}}}}


def _metadata_routes(level: Level) -> None:
    plural, singular = level.plural, level.value.lower()

    async def put_metadata(id: str, name: str, request: Request) -> PlainTextResponse:
        context = get_context(request)
        value = (await read_body(request, context)).decode("utf-8", "replace")
        revision = await run_in_threadpool(metadata.set_metadata, context, level, id, name,
                                           value, request.headers.get("if-match"))
        return PlainTextResponse("", headers={"ETag": metadata.etag(revision, value)})

    async def delete_metadata(id: str, name: str, request: Request) -> PlainTextResponse:
        context = get_context(request)
        await run_in_threadpool(metadata.delete_metadata, context, level, id, name,
                                request.headers.get("if-match"))
        return PlainTextResponse("")

    router.add_api_route(f"/{plural}/{{id}}/metadata/{{name}}", put_metadata, methods=["PUT"],
                         operation_id=f"set_{singular}_metadata", tags=[plural.capitalize()],
                         response_model=None, response_class=PlainTextResponse,
                         responses=_EMPTY_TEXT, openapi_extra=_TEXT_BODY,
                         summary="Set a user metadata (If-Match when CheckRevisions)")
    router.add_api_route(f"/{plural}/{{id}}/metadata/{{name}}", delete_metadata,
                         methods=["DELETE"], operation_id=f"delete_{singular}_metadata",
                         tags=[plural.capitalize()], response_model=None,
                         response_class=PlainTextResponse,
                         responses={200: {"description": "Empty", "content": {
                             "text/plain": {"schema": {"type": "string"}}}}},
                         summary="Delete a user metadata (If-Match when CheckRevisions)")


for _level in LEVELS:
    _metadata_routes(_level)


@router.get("/patients/{id}/protected", tags=["Patients"], operation_id="get_patient_protected",
            response_class=PlainTextResponse, response_model=None)
def get_protected(id: str, request: Request) -> PlainTextResponse:
    """``1`` when the patient is protected against recycling, ``0`` otherwise."""
    return PlainTextResponse("1" if metadata.is_protected(get_context(request), id) else "0")


@router.put("/patients/{id}/protected", tags=["Patients"], operation_id="set_patient_protected",
            response_class=PlainTextResponse, response_model=None, openapi_extra=_TEXT_BODY)
async def put_protected(id: str, request: Request) -> PlainTextResponse:
    """Body ``1`` protects the patient against recycling, ``0`` unprotects it."""
    context = get_context(request)
    text = (await read_body(request, context)).decode("utf-8", "replace").strip()
    if text not in ("0", "1"):
        raise BadRequest('The body must be "0" or "1"')
    await run_in_threadpool(metadata.set_protected, context, id, text == "1")
    return PlainTextResponse("")


@router.delete("/patients/{id}/protected", tags=["Patients"],
               operation_id="unprotect_patient", response_model=EmptyAnswer)
def delete_protected(id: str, request: Request) -> JsonResponse:
    metadata.set_protected(get_context(request), id, False)
    answer: dict[str, Any] = {}
    return json_answer(answer)
