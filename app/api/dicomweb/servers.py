"""``/dicom-web/servers``: the DICOMweb client of Orthanc's DICOMweb plugin.

Register remote DICOMweb servers (``PUT``/``DELETE``, ``DicomWeb.Servers``), then query
them and move images both ways through this server: ``/get`` (any GET relayed), ``/qido``
(simplified answers), ``/stow`` (send local resources), ``/retrieve`` and ``/wado``
(WADO-RS into this server), ``/delete``. Use cases in :mod:`app.services.dicomweb_remote`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from app.api.deps import flag, get_context, json_body
from app.api.dicomweb.common import prefetched
from app.api.responses import JsonResponse, json_answer
from app.api.schemas import JSON_BODY_ANY
from app.services import dicomweb_remote as remote
from app.services import dicomweb_servers as registry
from app.services.dicomweb_plugin import dicomweb_root

router = APIRouter(tags=["DICOM web servers"])

SERVER = "/servers/{name}"


@router.get("/info", operation_id="dicomweb_client_information",
            response_model=dict[str, str])
def client_information(request: Request) -> JsonResponse:
    """Where the DICOMweb root and Orthanc's REST API are, relative to this route (the
    plugin's ``GetClientInformation``, read by its web client)."""
    root = dicomweb_root(get_context(request).settings) + "/"
    depth = len([part for part in root.split("/") if part])
    return json_answer({"DicomWebRoot": root, "OrthancApiRoot": "./" + "../" * depth})


@router.get("/servers", operation_id="list_dicomweb_servers",
            response_model=list[str] | dict[str, dict[str, Any]])
def list_servers(request: Request) -> JsonResponse:
    """The names of the remote DICOMweb servers, or ``?expand``: their public settings."""
    found = registry.servers(get_context(request))
    if flag(request, "expand"):
        return json_answer({name: server.public_json() for name, server in found.items()})
    return json_answer(list(found))


@router.get(SERVER, operation_id="get_dicomweb_server", response_model=list[str])
def server_operations(name: str, request: Request) -> JsonResponse:
    """What can be done with the server: get, retrieve, stow, wado, qido (delete)."""
    return json_answer(registry.operations(registry.get_server(get_context(request), name)))


@router.put(SERVER, operation_id="put_dicomweb_server", response_model=dict[str, Any],
            openapi_extra=JSON_BODY_ANY)
async def put_server(name: str, request: Request) -> JsonResponse:
    """Add or replace: ``[url(, user, password)]`` or ``{"Url", "Username", "Password",
    "HttpHeaders", "Timeout", ..., user properties}``."""
    context = get_context(request)
    body = await json_body(request, context)
    await run_in_threadpool(registry.put_server, context, name, body)
    return json_answer({})


@router.delete(SERVER, operation_id="delete_dicomweb_server", response_model=dict[str, Any])
def delete_server(name: str, request: Request) -> JsonResponse:
    registry.delete_server(get_context(request), name)
    return json_answer({})


async def _body(request: Request) -> Any:
    return await json_body(request, get_context(request))


@router.post(SERVER + "/get", operation_id="dicomweb_server_get", response_class=Response,
             openapi_extra=JSON_BODY_ANY,
             responses={200: {"description": "The remote server's answer, as it answered"}})
async def get(name: str, request: Request) -> Response:
    """``{"Uri", "HttpHeaders", "Arguments"}``: a GET on the server (QIDO-RS, WADO-RS...)."""
    answer = await run_in_threadpool(remote.get, get_context(request), name,
                                     await _body(request))
    return StreamingResponse(prefetched(answer.chunks()), media_type=answer.media_type,
                             headers=answer.headers)


@router.post(SERVER + "/qido", operation_id="dicomweb_server_qido",
             response_model=list[dict[str, Any]], openapi_extra=JSON_BODY_ANY)
async def qido(name: str, request: Request) -> JsonResponse:
    """``{"Uri", "HttpHeaders", "Arguments"}``: QIDO-RS, answers in Orthanc's simplified form."""
    return json_answer(await run_in_threadpool(remote.qido, get_context(request), name,
                                               await _body(request)))


@router.post(SERVER + "/delete", operation_id="dicomweb_server_delete",
             response_model=dict[str, Any], openapi_extra=JSON_BODY_ANY)
async def delete(name: str, request: Request) -> JsonResponse:
    """``{"Level", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"}`` (``HasDelete``)."""
    await run_in_threadpool(remote.delete, get_context(request), name, await _body(request))
    return json_answer({})


@router.post(SERVER + "/stow", operation_id="dicomweb_server_stow",
             response_model=dict[str, Any], openapi_extra=JSON_BODY_ANY)
async def stow(name: str, request: Request) -> JsonResponse:
    """``{"Resources": [Orthanc IDs], "HttpHeaders", "Synchronous", "Priority"}``: STOW-RS
    of local resources; the job's content, or ``{"ID", "Path"}`` when asynchronous."""
    return json_answer(await run_in_threadpool(remote.stow, get_context(request), name,
                                               await _body(request)))


@router.post(SERVER + "/retrieve", operation_id="dicomweb_server_retrieve",
             response_model=dict[str, Any], openapi_extra=JSON_BODY_ANY)
async def retrieve(name: str, request: Request) -> JsonResponse:
    """``{"Resources": [{"Study", "Series", "Instance"}], "GetArguments", "HttpHeaders",
    "Synchronous"}``: WADO-RS of remote studies, series or instances into this server."""
    return json_answer(await run_in_threadpool(remote.retrieve, get_context(request), name,
                                               await _body(request)))


@router.post(SERVER + "/wado", operation_id="dicomweb_server_wado",
             response_model=dict[str, Any], openapi_extra=JSON_BODY_ANY)
async def wado(name: str, request: Request) -> JsonResponse:
    """``{"Uri", "HttpHeaders", "Arguments", "Synchronous"}``: a WADO-RS URI retrieved into
    this server (asynchronous by default)."""
    return json_answer(await run_in_threadpool(remote.wado, get_context(request), name,
                                               await _body(request)))
