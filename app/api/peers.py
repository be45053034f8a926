"""``/peers``: Orthanc peers over HTTP (registry, store, store-straight, system)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import PlainTextResponse, Response

from app.api import directory
from app.api.deps import flag, get_context, read_body
from app.api.modalities import _DICOM_BODY, _EMPTY_TEXT, _TEXT_OR_JSON, text_or_json
from app.api.params import EXPAND, query_parameters
from app.api.responses import JsonResponse, json_answer
from app.api.schemas import (
    JSON_BODY_ANY,
    JobAnswer,
    PeerConfiguration,
    PeerStoreResult,
)
from app.services import peers, remotes

router = APIRouter(tags=["Networking"])


@router.get("/peers", operation_id="list_peers",
            response_model=list[str] | dict[str, PeerConfiguration],
            openapi_extra=query_parameters(EXPAND("Answer {name: configuration} instead of the names")))
def list_peers(request: Request) -> JsonResponse:
    """The symbolic names of the peers, or their configurations with ``?expand``."""
    found = remotes.peers(get_context(request))
    if flag(request, "expand"):
        return json_answer({name: remotes.peer_json(p) for name, p in found.items()})
    return json_answer(list(found))


@router.get("/peers/{name}", operation_id="get_peer", response_model=list[str])
def get_peer(name: str, request: Request) -> JsonResponse:
    remotes.get_peer(get_context(request), name)
    return json_answer(directory.listing(request) or [])  # the routes below it


@router.get("/peers/{name}/configuration", operation_id="get_peer_configuration",
            response_model=PeerConfiguration)
def get_peer_configuration(name: str, request: Request) -> JsonResponse:
    return json_answer(remotes.peer_json(remotes.get_peer(get_context(request), name)))


@router.put("/peers/{name}", operation_id="put_peer", response_model=None,
            response_class=PlainTextResponse, responses=_EMPTY_TEXT,
            openapi_extra=JSON_BODY_ANY)
async def put_peer(name: str, request: Request) -> Response:
    """Add or replace a peer: ``[URL(, user, password)]`` or ``{"Url", "Username", ...}``."""
    body = await text_or_json(request)
    await run_in_threadpool(remotes.put_peer, get_context(request), name, body)
    return PlainTextResponse("")


@router.delete("/peers/{name}", operation_id="delete_peer", response_model=None,
               response_class=PlainTextResponse, responses=_EMPTY_TEXT)
def delete_peer(name: str, request: Request) -> Response:
    remotes.delete_peer(get_context(request), name)
    return PlainTextResponse("")


@router.get("/peers/{name}/system", operation_id="get_peer_system",
            response_model=dict[str, Any])
def get_peer_system(name: str, request: Request) -> JsonResponse:
    """The peer's own ``/system``."""
    return json_answer(peers.peer_system(get_context(request), name))


@router.post("/peers/{name}/store", operation_id="store_to_peer",
             response_model=PeerStoreResult | JobAnswer,
             openapi_extra=_TEXT_OR_JSON)
async def store(name: str, request: Request) -> JsonResponse:
    """Send resources of any level: an ID, a list of IDs, or ``{Resources, Synchronous}``."""
    body = await text_or_json(request)
    return json_answer(await run_in_threadpool(peers.peer_store, get_context(request),
                                               name, body))


@router.post("/peers/{name}/store-straight", operation_id="store_straight_to_peer",
             response_model=dict[str, Any], openapi_extra=_DICOM_BODY,
             responses={200: {"description": "The peer's answer to its POST /instances "
                                             "(InstanceStored when the peer is an Orthanc)"}})
async def store_straight(name: str, request: Request) -> JsonResponse:
    """Send the DICOM file of the body to the peer; answer the peer's answer."""
    data = await read_body(request, get_context(request))
    return json_answer(await run_in_threadpool(peers.peer_store_straight,
                                               get_context(request), name, data))
