"""``/modalities`` (registry, echo, store, move, get, query) and ``/queries`` (C-FIND answers
kept for browsing and retrieving), as in Orthanc's ``OrthancRestModalities.cpp``."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import PlainTextResponse, Response

from app.api.deps import flag, get_context, read_body
from app.api.params import EXPAND, TAGS_FORMAT, query_parameters
from app.api.responses import JsonResponse, json_answer
from app.api.schemas import (
    JSON_BODY_ANY,
    CreatedQuery,
    EmptyAnswer,
    JobAnswer,
    ModalityConfiguration,
    RetrieveResult,
    StoreResult,
    StoreStraightResult,
)
from app.dicom import orthanc_json
from app.errors import BadJson
from app.services import network
from app.validation import check_json_depth

router = APIRouter(tags=["Networking"])

_TEXT_OR_JSON = {"requestBody": {"required": False, "content": {
    "application/json": {"schema": {}}, "text/plain": {"schema": {"type": "string"}}}}}
_DICOM_BODY = {"requestBody": {"required": True, "content": {
    "application/dicom": {"schema": {"type": "string", "format": "binary"}}}}}
# PUT and DELETE of a modality or a peer answer an empty text/plain body (Orthanc's).
_EMPTY_TEXT = {200: {"description": "Empty", "content": {
    "text/plain": {"schema": {"type": "string"}}}}}
_EXPAND_ANSWERS = EXPAND("Answer the answers (their tags) instead of their indices")


async def text_or_json(request: Request) -> Any:
    """A body that is JSON, or else plain text (an Orthanc ID, an AET), or None if empty."""
    raw = await read_body(request, get_context(request))
    if not raw.strip():
        return None
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode("utf-8", errors="replace").strip()
    return check_json_depth(document, error=BadJson)


def _format(request: Request, full: dict[str, Any]) -> dict[str, Any]:
    if flag(request, "simplify"):
        return orthanc_json.to_simplified(full)
    if flag(request, "short"):
        return orthanc_json.to_short(full)
    return full


# --- registry ---------------------------------------------------------------------------

@router.get("/modalities", operation_id="list_modalities",
            response_model=list[str] | dict[str, ModalityConfiguration],
            openapi_extra=query_parameters(EXPAND("Answer {name: configuration} instead of the names")))
def list_modalities(request: Request) -> JsonResponse:
    """The symbolic names of the modalities, or their configurations with ``?expand``."""
    found = network.modalities(get_context(request))
    if flag(request, "expand"):
        return json_answer({name: network.modality_json(m) for name, m in found.items()})
    return json_answer(list(found))


@router.get("/modalities/{name}", operation_id="get_modality", response_model=list[str])
def get_modality(name: str, request: Request) -> JsonResponse:
    network.get_modality(get_context(request), name)
    return json_answer(["configuration", "echo", "get", "move", "query", "store",
                        "store-straight"])


@router.get("/modalities/{name}/configuration", operation_id="get_modality_configuration",
            response_model=ModalityConfiguration)
def get_modality_configuration(name: str, request: Request) -> JsonResponse:
    return json_answer(network.modality_json(network.get_modality(get_context(request), name)))


@router.put("/modalities/{name}", operation_id="put_modality", response_model=None,
            response_class=PlainTextResponse, responses=_EMPTY_TEXT,
            openapi_extra=JSON_BODY_ANY)
async def put_modality(name: str, request: Request) -> Response:
    """Add or replace a modality: ``[AET, host, port(, manufacturer)]`` or the long form."""
    body = await text_or_json(request)
    await run_in_threadpool(network.put_modality, get_context(request), name, body)
    return PlainTextResponse("")


@router.delete("/modalities/{name}", operation_id="delete_modality", response_model=None,
               response_class=PlainTextResponse, responses=_EMPTY_TEXT)
def delete_modality(name: str, request: Request) -> Response:
    network.delete_modality(get_context(request), name)
    return PlainTextResponse("")


# --- DIMSE operations -------------------------------------------------------------------

@router.post("/modalities/{name}/echo", operation_id="echo_modality",
             response_model=EmptyAnswer,
             openapi_extra=_TEXT_OR_JSON)
async def echo(name: str, request: Request) -> JsonResponse:
    """C-ECHO (``{"Timeout": seconds}`` optional)."""
    body = await text_or_json(request)
    options = body if isinstance(body, dict) else {}
    await run_in_threadpool(network.echo, get_context(request), name, options)
    return json_answer({})


@router.post("/modalities/{name}/store", operation_id="store_to_modality",
             response_model=StoreResult | JobAnswer,
             openapi_extra=_TEXT_OR_JSON)
async def store(name: str, request: Request) -> JsonResponse:
    """C-STORE resources of any level in one association: an ID, a list of IDs, or
    ``{Resources, Synchronous, LocalAet, MoveOriginatorAet, MoveOriginatorID, Timeout,
    StorageCommitment, Priority}``."""
    body = await text_or_json(request)
    return json_answer(await run_in_threadpool(network.store, get_context(request), name, body))


@router.post("/modalities/{name}/store-straight", operation_id="store_straight_to_modality",
             response_model=StoreStraightResult, openapi_extra=_DICOM_BODY)
async def store_straight(name: str, request: Request) -> JsonResponse:
    """C-STORE the DICOM file of the body, without storing it here."""
    data = await read_body(request, get_context(request))
    return json_answer(await run_in_threadpool(network.store_straight, get_context(request),
                                               name, data))


@router.post("/modalities/{name}/move", operation_id="move_from_modality",
             response_model=JobAnswer | EmptyAnswer,
             responses={200: {"description": "{} (synchronous, as Orthanc 1.10), or the job"}},
             openapi_extra=JSON_BODY_ANY)
async def move(name: str, request: Request) -> JsonResponse:
    """C-MOVE ``{Level, Resources: [{tag: value}], TargetAet, Timeout, Synchronous}``."""
    body = await text_or_json(request)
    return json_answer(await run_in_threadpool(network.move, get_context(request), name, body))


@router.post("/modalities/{name}/get", operation_id="get_from_modality",
             response_model=RetrieveResult | JobAnswer,
             openapi_extra=JSON_BODY_ANY)
async def get(name: str, request: Request) -> JsonResponse:
    """C-GET ``{Level, Resources: [{tag: value}], Timeout, Synchronous}`` into this archive."""
    body = await text_or_json(request)
    return json_answer(await run_in_threadpool(network.get, get_context(request), name, body))


@router.post("/modalities/{name}/query", operation_id="query_modality",
             response_model=CreatedQuery,
             openapi_extra=JSON_BODY_ANY)
async def query(name: str, request: Request) -> JsonResponse:
    """C-FIND ``{Level, Query: {tag: value}, Normalize, LocalAet, Timeout}``; answers
    ``{"ID", "Path"}`` of the ``/queries/{id}`` keeping the answers."""
    body = await text_or_json(request)
    return json_answer(await run_in_threadpool(network.query, get_context(request), name, body))


# --- /queries ---------------------------------------------------------------------------

@router.get("/queries", operation_id="list_queries", response_model=list[str])
def list_queries(request: Request) -> JsonResponse:
    return json_answer(network.list_queries(get_context(request)))


@router.get("/queries/{id}", operation_id="get_query", response_model=list[str])
def get_query(id: str, request: Request) -> JsonResponse:
    network.query_row(get_context(request), id)
    return json_answer(["answers", "level", "modality", "query", "retrieve"])


@router.delete("/queries/{id}", operation_id="delete_query", response_model=EmptyAnswer)
def delete_query(id: str, request: Request) -> JsonResponse:
    network.delete_query(get_context(request), id)
    return json_answer({})


@router.get("/queries/{id}/level", operation_id="get_query_level", response_class=PlainTextResponse)
def get_query_level(id: str, request: Request) -> PlainTextResponse:
    return PlainTextResponse(network.query_row(get_context(request), id).level)


@router.get("/queries/{id}/modality", operation_id="get_query_modality",
            response_class=PlainTextResponse)
def get_query_modality(id: str, request: Request) -> PlainTextResponse:
    return PlainTextResponse(network.query_row(get_context(request), id).modality)


@router.get("/queries/{id}/query", operation_id="get_query_query",
            response_model=dict[str, Any], openapi_extra=query_parameters(*TAGS_FORMAT))
def get_query_query(id: str, request: Request) -> JsonResponse:
    """The keys asked (``?simplify``, ``?short``)."""
    row = network.query_row(get_context(request), id)
    return json_answer(_format(request, orjson.loads(row.query)))


@router.get("/queries/{id}/answers", operation_id="list_query_answers",
            response_model=list[str] | list[dict[str, Any]],
            openapi_extra=query_parameters(_EXPAND_ANSWERS, *TAGS_FORMAT))
def list_query_answers(id: str, request: Request) -> JsonResponse:
    """The answer indices, or the answers with ``?expand`` (``?simplify``, ``?short``)."""
    answers = network.query_answers(network.query_row(get_context(request), id))
    if flag(request, "expand"):
        return json_answer([_format(request, a) for a in answers])
    return json_answer([str(i) for i in range(len(answers))])


@router.get("/queries/{id}/answers/{index}", operation_id="get_query_answer",
            response_model=list[str])
def get_query_answer(id: str, index: str, request: Request) -> JsonResponse:
    network.query_answer(network.query_row(get_context(request), id), index)
    return json_answer(["content", "retrieve"])


@router.get("/queries/{id}/answers/{index}/content", operation_id="get_query_answer_content",
            response_model=dict[str, Any], openapi_extra=query_parameters(*TAGS_FORMAT))
def get_query_answer_content(id: str, index: str, request: Request) -> JsonResponse:
    row = network.query_row(get_context(request), id)
    return json_answer(_format(request, network.query_answer(row, index)))


@router.post("/queries/{id}/answers/{index}/retrieve", operation_id="retrieve_query_answer",
             response_model=RetrieveResult | JobAnswer, openapi_extra=_TEXT_OR_JSON)
async def retrieve_answer(id: str, index: str, request: Request) -> JsonResponse:
    """C-MOVE one answer to the target AET (the body, or ``{"TargetAet", ...}``)."""
    context = get_context(request)
    body = await text_or_json(request)
    row = await run_in_threadpool(network.query_row, context, id)
    network.query_answer(row, index)
    return json_answer(await run_in_threadpool(network.retrieve, context, row, [int(index)],
                                               body))


@router.post("/queries/{id}/retrieve", operation_id="retrieve_query",
             response_model=RetrieveResult | JobAnswer, openapi_extra=_TEXT_OR_JSON)
async def retrieve_all(id: str, request: Request) -> JsonResponse:
    """C-MOVE every answer to the target AET (the body, or ``{"TargetAet", ...}``)."""
    context = get_context(request)
    body = await text_or_json(request)
    row = await run_in_threadpool(network.query_row, context, id)
    indices = list(range(len(network.query_answers(row))))
    return json_answer(await run_in_threadpool(network.retrieve, context, row, indices, body))
