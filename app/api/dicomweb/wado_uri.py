"""WADO-URI (PS3.18 9, formerly PS3.18 6.2): ``GET /wado?requestType=WADO&studyUID=...``.

``contentType`` is ``application/dicom`` (the file, as stored or uncompressed with
``transferSyntax``), ``image/jpeg`` (the default for images, PS3.18 9.1.2.1.7) or
``image/png``; ``frameNumber``, ``rows``, ``columns``, ``windowCenter``,
``windowWidth`` and ``imageQuality`` apply to images.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import StreamingResponse

from app.api.deps import get_context
from app.api.dicomweb.common import DicomWebRoute
from app.api.dicomweb.negotiation import NotAcceptable, pick_syntax
from app.errors import BadRequest
from app.services import dicomweb as service
from app.services.context import ServerContext
from app.services.dicomweb import RenderOptions, Target
from app.validation import parse_float

router = APIRouter(route_class=DicomWebRoute, tags=["WADO-URI"])

IMAGE_TYPES = ("image/jpeg", "image/png")


def _required(request: Request, name: str) -> str:
    value = request.query_params.get(name, "").strip()
    if not value:
        raise BadRequest(f"WADO-URI: the {name} parameter is required (PS3.18 9.1.2.1)")
    return value


def _optional_number(request: Request, name: str, minimum: float = -1e9,
                     maximum: float = 1e9) -> float | None:
    value = request.query_params.get(name)
    if value is None or not value.strip():
        return None
    return parse_float(value, name, minimum=minimum, maximum=maximum, error=BadRequest)


@router.get("/wado", name="wado_uri")
def wado(request: Request, context: ServerContext = Depends(get_context)) -> Response:
    if request.query_params.get("requestType", "") != "WADO":
        raise BadRequest("WADO-URI: requestType must be WADO")
    target = Target(_required(request, "studyUID"), _required(request, "seriesUID"),
                    _required(request, "objectUID"))
    requested = [t.split(";")[0].strip().lower()
                 for t in request.query_params.get("contentType", "").split(",") if t.strip()]
    requested = requested or ["image/jpeg"]
    item = service.locate(context, target)[0]
    for content_type in requested:
        if content_type == "application/dicom":
            wanted = request.query_params.get("transferSyntax") or "*"
            syntax = pick_syntax(item.row.transfer_syntax, [wanted])
            if syntax is None:
                raise NotAcceptable(f"The instance is stored as {item.row.transfer_syntax} "
                                    f"and cannot be sent as {wanted}")
            return StreamingResponse(service.instance_bytes(context, item.row, syntax),
                                     media_type="application/dicom")
        if content_type in IMAGE_TYPES or content_type in ("image/*", "*/*"):
            media_type = content_type if content_type in IMAGE_TYPES else "image/jpeg"
            return _image(request, context, item.row, media_type)
    raise NotAcceptable(f"WADO-URI: unsupported contentType {', '.join(requested)}; use "
                        "application/dicom, image/jpeg or image/png")


def _image(request: Request, context: ServerContext, row: object, media_type: str) -> Response:
    frame = _optional_number(request, "frameNumber", 1, 2**31 - 1)
    rows = _optional_number(request, "rows", 0, 65535)
    columns = _optional_number(request, "columns", 0, 65535)
    quality = _optional_number(request, "imageQuality", 1, 100)
    options = RenderOptions(
        media_type, int(quality) if quality else 90,
        _optional_number(request, "windowCenter"), _optional_number(request, "windowWidth"),
        (int(columns) if columns else None, int(rows) if rows else None))
    if options.width is not None and options.width <= 0:
        raise BadRequest("WADO-URI: windowWidth must be positive")
    image = service.rendered(context, row, int(frame) if frame else 1, options)  # type: ignore[arg-type]
    return Response(image, media_type=media_type)
