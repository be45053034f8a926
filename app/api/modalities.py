"""``/modalities`` (registry, echo, store, move, get, query) and ``/queries`` (C-FIND answers
kept for browsing and retrieving), as in Orthanc's ``OrthancRestModalities.cpp``."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import PlainTextResponse, Response

from app.api import directory
from app.api.deps import flag, get_context, read_body
from app.api.params import EXPAND, TAGS_FORMAT, query_parameters
from app.api.responses import JsonResponse, json_answer
from app.api.schemas import (
    JSON_BODY_ANY,
    CreatedQuery,
    EmptyAnswer,
    JobAnswer,
    ModalityConfiguration,
    ModalityQueryRequest,
    RetrieveResult,
    StoreResult,
    StoreStraightResult,
    json_body_of,
)
from app.dicom import orthanc_json
from app.dicom.levels import Level
from app.errors import BadFileFormat, BadJson
from app.services import modalities, query_retrieve, remotes, storage_commitment
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
    found = remotes.modalities(get_context(request))
    if flag(request, "expand"):
        return json_answer({name: remotes.modality_json(m) for name, m in found.items()})
    return json_answer(list(found))


@router.get("/modalities/{name}", operation_id="get_modality", response_model=list[str])
def get_modality(name: str, request: Request) -> JsonResponse:
    remotes.get_modality(get_context(request), name)
    return json_answer(directory.listing(request) or [])  # the routes below it


@router.get("/modalities/{name}/configuration", operation_id="get_modality_configuration",
            response_model=ModalityConfiguration)
def get_modality_configuration(name: str, request: Request) -> JsonResponse:
    return json_answer(remotes.modality_json(remotes.get_modality(get_context(request), name)))


@router.put("/modalities/{name}", operation_id="put_modality", response_model=None,
            response_class=PlainTextResponse, responses=_EMPTY_TEXT,
            openapi_extra=JSON_BODY_ANY)
async def put_modality(name: str, request: Request) -> Response:
    """Add or replace a modality: ``[AET, host, port(, manufacturer)]`` or the long form."""
    body = await text_or_json(request)
    await run_in_threadpool(remotes.put_modality, get_context(request), name, body)
    return PlainTextResponse("")


@router.delete("/modalities/{name}", operation_id="delete_modality", response_model=None,
               response_class=PlainTextResponse, responses=_EMPTY_TEXT)
def delete_modality(name: str, request: Request) -> Response:
    remotes.delete_modality(get_context(request), name)
    return PlainTextResponse("")


# --- DIMSE operations -------------------------------------------------------------------

@router.post("/modalities/{name}/echo", operation_id="echo_modality",
             response_model=EmptyAnswer,
             openapi_extra=_TEXT_OR_JSON)
async def echo(name: str, request: Request) -> JsonResponse:
    """C-ECHO; an empty body, or ``{"Timeout": seconds, "CheckFind": bool}`` (CheckFind
    also sends a C-FIND for a random study, proving the remote knows this AET)."""
    body = await _json_or_empty(request)
    options = body if isinstance(body, dict) else {}
    await run_in_threadpool(modalities.echo, get_context(request), name, options)
    return json_answer({})


@router.post("/tools/dicom-echo", tags=["System"], operation_id="dicom_echo",
             response_model=EmptyAnswer, openapi_extra=JSON_BODY_ANY)
async def dicom_echo(request: Request) -> JsonResponse:
    """C-ECHO a modality given in the body (``[AET, host, port]`` or
    ``{"AET", "Host", "Port", "Timeout", "CheckFind", ...}``), registered or not."""
    body = await _json_or_empty(request)
    await run_in_threadpool(modalities.echo_tool, get_context(request), body)
    return json_answer({})


async def _json_or_empty(request: Request) -> Any:
    """Orthanc's echo bodies: empty, or JSON (anything else is a bad request)."""
    raw = await read_body(request, get_context(request))
    if not raw.strip():
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise BadFileFormat("Cannot parse the JSON body") from error


@router.post("/modalities/{name}/store", operation_id="store_to_modality",
             response_model=StoreResult | JobAnswer,
             openapi_extra=_TEXT_OR_JSON)
async def store(name: str, request: Request) -> JsonResponse:
    """C-STORE resources of any level in one association: an ID, a list of IDs, or
    ``{Resources, Synchronous, LocalAet, MoveOriginatorAet, MoveOriginatorID, Timeout,
    StorageCommitment, Priority}``."""
    body = await text_or_json(request)
    return json_answer(await run_in_threadpool(modalities.store, get_context(request), name, body))


@router.post("/modalities/{name}/store-straight", operation_id="store_straight_to_modality",
             response_model=StoreStraightResult, openapi_extra=_DICOM_BODY)
async def store_straight(name: str, request: Request) -> JsonResponse:
    """C-STORE the DICOM file of the body, without storing it here."""
    data = await read_body(request, get_context(request))
    return json_answer(await run_in_threadpool(modalities.store_straight, get_context(request),
                                               name, data))


@router.post("/modalities/{name}/move", operation_id="move_from_modality",
             response_model=RetrieveResult | JobAnswer,
             openapi_extra=JSON_BODY_ANY)
async def move(name: str, request: Request) -> JsonResponse:
    """C-MOVE ``{Level, Resources: [{tag: value}], TargetAet, LocalAet, Timeout,
    Synchronous}``: the job's content when synchronous (as Orthanc 1.12), else the job."""
    body = await text_or_json(request)
    return json_answer(await run_in_threadpool(query_retrieve.move, get_context(request), name,
                                               body))


@router.post("/modalities/{name}/get", operation_id="get_from_modality",
             response_model=RetrieveResult | JobAnswer,
             openapi_extra=JSON_BODY_ANY)
async def get(name: str, request: Request) -> JsonResponse:
    """C-GET ``{Level, Resources: [{tag: value}], Timeout, Synchronous}`` into this archive."""
    body = await text_or_json(request)
    return json_answer(await run_in_threadpool(query_retrieve.get, get_context(request), name,
                                               body))


@router.post("/modalities/{name}/query", operation_id="query_modality",
             response_model=CreatedQuery,
             openapi_extra=json_body_of(ModalityQueryRequest))
async def query(name: str, request: Request) -> JsonResponse:
    """C-FIND ``{Level, Query: {tag: value}, Normalize, LocalAet, Timeout}``; answers
    ``{"ID", "Path"}`` of the ``/queries/{id}`` keeping the answers."""
    body = await text_or_json(request)
    return json_answer(await run_in_threadpool(query_retrieve.query, get_context(request),
                                               name, body))


# --- /queries ---------------------------------------------------------------------------

@router.get("/queries", operation_id="list_queries", response_model=list[str])
def list_queries(request: Request) -> JsonResponse:
    return json_answer(query_retrieve.list_queries(get_context(request)))


@router.get("/queries/{id}", operation_id="get_query", response_model=list[str])
def get_query(id: str, request: Request) -> JsonResponse:
    query_retrieve.query_row(get_context(request), id)
    return json_answer(directory.listing(request) or [])  # the routes below it


@router.delete("/queries/{id}", operation_id="delete_query", response_model=EmptyAnswer)
def delete_query(id: str, request: Request) -> JsonResponse:
    query_retrieve.delete_query(get_context(request), id)
    return json_answer({})


@router.get("/queries/{id}/level", operation_id="get_query_level", response_class=PlainTextResponse)
def get_query_level(id: str, request: Request) -> PlainTextResponse:
    return PlainTextResponse(query_retrieve.query_row(get_context(request), id).level)


@router.get("/queries/{id}/modality", operation_id="get_query_modality",
            response_class=PlainTextResponse)
def get_query_modality(id: str, request: Request) -> PlainTextResponse:
    return PlainTextResponse(query_retrieve.query_row(get_context(request), id).modality)


@router.get("/queries/{id}/query", operation_id="get_query_query",
            response_model=dict[str, Any], openapi_extra=query_parameters(*TAGS_FORMAT))
def get_query_query(id: str, request: Request) -> JsonResponse:
    """The keys asked (``?simplify``, ``?short``)."""
    row = query_retrieve.query_row(get_context(request), id)
    return json_answer(_format(request, orjson.loads(row.query)))


@router.get("/queries/{id}/answers", operation_id="list_query_answers",
            response_model=list[str] | list[dict[str, Any]],
            openapi_extra=query_parameters(_EXPAND_ANSWERS, *TAGS_FORMAT))
def list_query_answers(id: str, request: Request) -> JsonResponse:
    """The answer indices, or the answers with ``?expand`` (``?simplify``, ``?short``)."""
    answers = query_retrieve.query_answers(query_retrieve.query_row(get_context(request), id))
    if flag(request, "expand"):
        return json_answer([_format(request, a) for a in answers])
    return json_answer([str(i) for i in range(len(answers))])


@router.get("/queries/{id}/answers/{index}", operation_id="get_query_answer",
            response_model=list[str])
def get_query_answer(id: str, index: str, request: Request) -> JsonResponse:
    query_retrieve.query_answer(query_retrieve.query_row(get_context(request), id), index)
    return json_answer(directory.listing(request) or [])  # the routes below it


@router.get("/queries/{id}/answers/{index}/content", operation_id="get_query_answer_content",
            response_model=dict[str, Any], openapi_extra=query_parameters(*TAGS_FORMAT))
def get_query_answer_content(id: str, index: str, request: Request) -> JsonResponse:
    row = query_retrieve.query_row(get_context(request), id)
    return json_answer(_format(request, query_retrieve.query_answer(row, index)))


@router.post("/queries/{id}/answers/{index}/retrieve", operation_id="retrieve_query_answer",
             response_model=RetrieveResult | JobAnswer, openapi_extra=_TEXT_OR_JSON)
async def retrieve_answer(id: str, index: str, request: Request) -> JsonResponse:
    """C-MOVE one answer to the target AET (the body, or ``{"TargetAet", ...}``)."""
    context = get_context(request)
    body = await text_or_json(request)
    row = await run_in_threadpool(query_retrieve.query_row, context, id)
    query_retrieve.query_answer(row, index)
    return json_answer(await run_in_threadpool(query_retrieve.retrieve, context, row, [int(index)],
                                               body))


@router.post("/queries/{id}/retrieve", operation_id="retrieve_query",
             response_model=RetrieveResult | JobAnswer, openapi_extra=_TEXT_OR_JSON)
async def retrieve_all(id: str, request: Request) -> JsonResponse:
    """C-MOVE every answer to the target AET (the body, or ``{"TargetAet", ...}``)."""
    context = get_context(request)
    body = await text_or_json(request)
    row = await run_in_threadpool(query_retrieve.query_row, context, id)
    indices = list(range(len(query_retrieve.query_answers(row))))
    return json_answer(await run_in_threadpool(query_retrieve.retrieve, context, row, indices, body))


def _register_children(child: Level) -> None:
    async def query_children(id: str, index: str, request: Request) -> JsonResponse:
        body = await text_or_json(request)
        return json_answer(await run_in_threadpool(
            query_retrieve.query_children, get_context(request), id, index, child, body))

    plural = {Level.STUDY: "studies", Level.SERIES: "series",
              Level.INSTANCE: "instances"}[child]
    router.add_api_route(
        f"/queries/{{id}}/answers/{{index}}/query-{plural}", query_children,
        methods=["POST"], operation_id=f"query_answer_{plural}", response_model=CreatedQuery,
        openapi_extra=JSON_BODY_ANY, tags=["Networking"],
        summary=f"Query the child {plural} of an answer",
        description=f"A C-FIND at the {child.value} level on the same modality with the "
                    "same options, for the children of one answer (its unique keys are "
                    "copied): ``{Query: {tag: value}, Timeout}``.")


for _child in (Level.STUDY, Level.SERIES, Level.INSTANCE):
    _register_children(_child)


# --- storage commitment -------------------------------------------------------------------

@router.post("/modalities/{name}/storage-commitment", operation_id="storage_commitment_scu",
             response_model=CreatedQuery, openapi_extra=JSON_BODY_ANY)
async def storage_commitment_scu(name: str, request: Request) -> JsonResponse:
    """Ask the modality to commit to instances (N-ACTION): ``{"DicomInstances":
    [[SOPClassUID, SOPInstanceUID] or {"SOPClassUID", "SOPInstanceUID"}], "Resources":
    [Orthanc IDs], "Timeout"}``; answers the transaction, ``/storage-commitment/{uid}``."""
    body = await text_or_json(request)
    return json_answer(await run_in_threadpool(storage_commitment.request,
                                               get_context(request), name, body))


@router.get("/storage-commitment/{id}", operation_id="get_storage_commitment_report",
            response_model=dict[str, Any])
def get_storage_commitment_report(id: str, request: Request) -> JsonResponse:
    """``Status`` (Pending, Success, Failure), ``RemoteAET``, and once complete
    ``Success`` and ``Failures`` (with ``FailureReason``, PS3.4 J.3.3)."""
    return json_answer(storage_commitment.report_json(get_context(request), id))


@router.post("/storage-commitment/{id}/remove", operation_id="remove_after_storage_commitment",
             response_model=EmptyAnswer)
async def remove_after_storage_commitment(id: str, request: Request) -> JsonResponse:
    """Delete the instances a successful transaction committed to."""
    await run_in_threadpool(storage_commitment.remove, get_context(request), id)
    return json_answer({})
