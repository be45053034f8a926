"""``/plugins``: the built-in DICOMweb described as Orthanc's DICOMweb plugin describes itself.

Tools written for Orthanc find DICOMweb by asking ``GET /plugins`` (is ``dicom-web``
listed?) and ``GET /plugins/dicom-web`` (which ``Version``: features are gated on it,
Orthanc's own test suite included). Pharos has DICOMweb built in, so it answers as an
Orthanc with the DICOMweb plugin loaded (Orthanc's ``OrthancRestSystem.cpp``:
``ListPlugins``, ``GetPlugin``, ``GetOrthancExplorerPlugins``).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from app.api.responses import JsonResponse, json_answer
from app.errors import UnknownResource
from app.services.dicomweb_plugin import PLUGINS, plugin_description

router = APIRouter(tags=["System"])


@router.get("/plugins", operation_id="list_plugins", response_model=list[str])
def list_plugins(request: Request) -> JsonResponse:
    """``explorer.js`` first (Orthanc always lists it), then the built-in plugins."""
    return json_answer(["explorer.js", *PLUGINS])


@router.get("/plugins/explorer.js", operation_id="get_explorer_plugins",
            response_class=Response,
            responses={200: {"content": {"application/javascript": {}},
                             "description": "JavaScript extensions of Orthanc Explorer"}})
def explorer_js(request: Request) -> Response:
    """The plugins' extensions of Orthanc Explorer: none (Pharos has no Orthanc Explorer)."""
    return Response(b"", media_type="application/javascript")


@router.get("/plugins/{plugin}", operation_id="get_plugin", response_model=dict[str, object])
def get_plugin(plugin: str, request: Request) -> JsonResponse:
    """``{"ID", "Version", "Description", "ExtendsOrthancExplorer"}`` of a plugin."""
    description = plugin_description(plugin)
    if description is None:
        raise UnknownResource(f"No plugin called {plugin!r}")
    return json_answer(description)


@router.post("/studies/{id}/update-dicomweb-cache", operation_id="update_dicomweb_cache",
             tags=["Studies"], response_model=dict[str, object])
def update_dicomweb_cache(id: str, request: Request) -> JsonResponse:
    """The DICOMweb plugin's cache refresh (1.15, called by Orthanc's Housekeeper): nothing
    to do, Pharos answers WADO-RS metadata from its index, always up to date; ``{}`` as
    the plugin answers, whatever the study."""
    return json_answer({})
