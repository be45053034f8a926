"""WADO-URI (PS3.18 9, formerly PS3.18 6.2): ``GET /wado?requestType=WADO&objectUID=...``.

As Orthanc's DICOMweb plugin answers it (``WadoUri.cpp``), which WADO-URI clients of
Orthanc rely on:

* ``requestType=WADO`` and ``objectUID`` are required; ``studyUID`` and ``seriesUID`` are
  optional (PS3.18 requires them) and, when given, must be those of the instance (404
  otherwise);
* ``contentType`` is ``image/jpeg`` by default (PS3.18 9.1.2.1.7), ``image/jpg`` is taken
  for it, ``image/png``, or ``application/dicom``; a comma-separated list is tried in
  order; anything else is a 400;
* an image is the instance's ``/rendered`` image of the REST API (same pixels, same JPEG
  quality as ``GET /instances/{id}/rendered``), with the standard's ``frameNumber``,
  ``rows``, ``columns``, ``windowCenter``, ``windowWidth`` and ``imageQuality`` applied;
* ``application/dicom`` is the file in ``transferSyntax``, Explicit VR Little Endian when
  absent (PS3.18 9.1.2.1, transferSyntax; Orthanc's plugin sends the file as stored:
  ``transferSyntax=*`` asks for that).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from app.api.deps import get_context
from app.api.dicomweb.common import DicomWebRoute
from app.api.dicomweb.negotiation import EXPLICIT_VR_LITTLE_ENDIAN, NotAcceptable, pick_syntax
from app.context import ServerContext
from app.errors import BadRequest, ParameterOutOfRange
from app.services import dicomweb as service
from app.services import images
from app.validation import parse_float

router = APIRouter(route_class=DicomWebRoute, tags=["WADO-URI"])

JPEG_NAMES = ("image/jpeg", "image/jpg")


def _number(request: Request, name: str, minimum: float = -1e9,
            maximum: float = 1e9) -> float | None:
    """A finite number within bounds (app.validation), None when absent."""
    value = request.query_params.get(name)
    if value is None or not value.strip():
        return None
    return parse_float(value, f"WADO-URI {name}", minimum=minimum, maximum=maximum,
                       error=BadRequest)


def _content_types(request: Request) -> list[str]:
    requested = [t.split(";")[0].strip().lower()
                 for t in request.query_params.get("contentType", "").split(",") if t.strip()]
    return requested or ["image/jpeg"]


@router.get("", name="wado_uri")  # mounted at WadoRoot (/wado)
async def wado(request: Request, context: ServerContext = Depends(get_context)) -> Response:
    params = request.query_params
    if params.get("requestType", "") != "WADO":
        raise BadRequest("WADO-URI: requestType must be WADO (PS3.18 9.1.2.1.1)")
    sop = params.get("objectUID", "").strip()
    if not sop:
        raise BadRequest("WADO-URI: the objectUID parameter is required")
    item = await run_in_threadpool(
        service.locate_sop, context, sop, study=params.get("studyUID", "").strip() or None,
        series=params.get("seriesUID", "").strip() or None)
    for content_type in _content_types(request):
        if content_type == "application/dicom":
            return _dicom(request, context, item)
        if content_type in (*JPEG_NAMES, "image/png", "image/*", "*/*"):
            media_type = "image/png" if content_type == "image/png" else "image/jpeg"
            return await _image(request, context, item.row.public_id, media_type)
    raise BadRequest(f"WADO-URI: unsupported contentType {params.get('contentType')!r}; use "
                     "image/jpeg, image/png or application/dicom")


def _dicom(request: Request, context: ServerContext, item: service.LocatedInstance) -> Response:
    wanted = request.query_params.get("transferSyntax", "").strip() or EXPLICIT_VR_LITTLE_ENDIAN
    syntax = pick_syntax(item.row.transfer_syntax, [wanted])
    if syntax is None:
        raise NotAcceptable(f"The instance is stored as {item.row.transfer_syntax} and cannot "
                            f"be sent as {wanted}")
    return StreamingResponse(service.instance_bytes(context, item.row, syntax),
                             media_type="application/dicom")


async def _image(request: Request, context: ServerContext, public_id: str,
                 media_type: str) -> Response:
    """The REST API's ``/rendered`` of the frame, as Orthanc's plugin asks its core."""
    frame = _number(request, "frameNumber")
    if frame is not None and frame < 1:
        raise ParameterOutOfRange("WADO-URI: frameNumber counts from 1")
    rows, columns = _number(request, "rows", 0, 65535), _number(request, "columns", 0, 65535)
    quality = _number(request, "imageQuality")
    center, width = _number(request, "windowCenter"), _number(request, "windowWidth")
    if width is not None and width <= 0:
        raise BadRequest("WADO-URI: windowWidth must be positive")
    if quality is not None and not 1 <= quality <= 100:
        raise BadRequest("WADO-URI: imageQuality must be between 1 and 100")
    body = await run_in_threadpool(
        images.image, context, public_id, int(frame) - 1 if frame else 0, "rendered",
        media_type, quality=int(quality) if quality else 90, center=center, width=width,
        viewport=(int(columns) if columns else None, int(rows) if rows else None))
    return Response(body, media_type=media_type)
