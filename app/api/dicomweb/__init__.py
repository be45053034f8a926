"""DICOMweb: QIDO-RS, WADO-RS, STOW-RS (one router, mounted at /dicom-web and /rs) and
WADO-URI (``wado_uri_router``, at Orthanc's ``/wado``)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from app.api.dicomweb import qido, servers, stow, wado, wado_uri
from app.api.dicomweb.common import DicomWebRoute, preflight
from app.api.routing import add_routes

router = APIRouter(route_class=DicomWebRoute)
for _part in (stow.router, qido.router, wado.router):
    add_routes(router, _part)


@router.options("/{path:path}", name="dicomweb_preflight", include_in_schema=False)
def dicomweb_preflight(request: Request, path: str) -> Response:
    """CORS preflight (Fetch standard): 204 with the allowed methods and headers."""
    return preflight(request)


# WADO-URI lives at /wado (Orthanc's WadoRoot), outside the DICOMweb root.
wado_uri_router = wado_uri.router
# The DICOMweb client (/dicom-web/servers/...), under Orthanc's DICOMweb root only.
servers_router = servers.router

__all__ = ["router", "servers_router", "wado_uri_router"]
