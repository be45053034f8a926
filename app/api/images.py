"""Decoded images: ``/preview``, ``/image-uint8|16``, ``/image-int16``, ``/rendered``,
``/frames``, ``/numpy`` (Orthanc's routes)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from app.api.deps import flag, float_param, get_context
from app.api.params import COMPRESS, IMAGE, RESCALE, query_parameters
from app.api.responses import JsonResponse, json_answer
from app.errors import ParameterOutOfRange
from app.services import images

router = APIRouter(tags=["Instances"])

_BINARY = {"schema": {"type": "string", "format": "binary"}}
_IMAGE_RESPONSES = {200: {"content": {"image/png": _BINARY, "image/jpeg": _BINARY,
                                      "image/x-portable-arbitrarymap": _BINARY},
                          "description": "The decoded frame"}}
MAX_VIEWPORT = 65535  # pixels: the largest Rows/Columns DICOM can hold
_MODES = {"preview": "preview", "image-uint8": "uint8", "image-uint16": "uint16",
          "image-int16": "int16", "rendered": "rendered"}


def _media_type(request: Request, default: str = "image/png") -> str:
    accept = request.query_params.get("accept") or request.headers.get("accept", "")
    for candidate in (part.split(";")[0].strip().lower() for part in accept.split(",")):
        if candidate in ("image/png", "image/jpeg", "image/x-portable-arbitrarymap"):
            return candidate
    return default


async def _render(request: Request, public_id: str, frame: int, route: str) -> Response:
    mode = _MODES[route]
    media_type = _media_type(request)
    if media_type == "image/jpeg" and mode in ("uint16", "int16"):
        # Orthanc's DicomImageDecoder::ExtractJpegImage: JPEG holds 8-bit samples only.
        raise ParameterOutOfRange(f"JPEG cannot hold the 16-bit values of /{route}: "
                                  "ask for image/png or image/x-portable-arbitrarymap")
    quality = int(float_param(request, "quality", minimum=1, maximum=100) or 90)
    width = float_param(request, "width", minimum=0, maximum=MAX_VIEWPORT)
    height = float_param(request, "height", minimum=0, maximum=MAX_VIEWPORT)
    body = await run_in_threadpool(
        images.image, get_context(request), public_id, frame, mode, media_type,
        quality=quality, center=float_param(request, "window-center", "WindowCenter"),
        width=float_param(request, "window-width", "WindowWidth"),
        viewport=(int(width) if width else None, int(height) if height else None))
    return Response(body, media_type=media_type)


def _register(route: str) -> None:
    operation = route.replace("-", "_")

    async def whole(id: str, request: Request) -> Response:
        return await _render(request, id, 0, route)

    async def one_frame(id: str, frame: int, request: Request) -> Response:
        return await _render(request, id, frame, route)

    router.add_api_route(f"/instances/{{id}}/{route}", whole, methods=["GET"],
                         operation_id=f"get_instance_{operation}", response_class=Response,
                         responses=_IMAGE_RESPONSES, summary=f"First frame ({route})",
                         openapi_extra=query_parameters(*IMAGE))
    router.add_api_route(f"/instances/{{id}}/frames/{{frame}}/{route}", one_frame,
                         methods=["GET"], operation_id=f"get_instance_frame_{operation}",
                         response_class=Response, responses=_IMAGE_RESPONSES,
                         summary=f"One frame ({route}); frames count from 0",
                         openapi_extra=query_parameters(*IMAGE))


for _route in _MODES:
    _register(_route)


@router.get("/instances/{id}/frames", operation_id="list_instance_frames",
            response_model=list[int])
async def list_frames(id: str, request: Request) -> JsonResponse:
    return json_answer(await run_in_threadpool(images.frame_indexes, get_context(request), id))


def _numpy_response(array, request: Request) -> Response:  # noqa: ANN001
    compress = flag(request, "compress")
    body = images.to_npy(array, compress)
    return Response(body, media_type="application/octet-stream")


@router.get("/instances/{id}/numpy", operation_id="get_instance_numpy", response_class=Response,
            openapi_extra=query_parameters(RESCALE, COMPRESS),
            responses={200: {"content": {"application/octet-stream": _BINARY},
                             "description": ".npy (frames, rows, columns, channels); .npz with ?compress"}})
async def instance_numpy(id: str, request: Request) -> Response:
    rescale = request.query_params.get("rescale", "1").lower() not in ("0", "false")
    array = await run_in_threadpool(images.instance_numpy, get_context(request), id, rescale)
    return _numpy_response(array, request)


@router.get("/series/{id}/numpy", operation_id="get_series_numpy", response_class=Response,
            tags=["Series"], openapi_extra=query_parameters(RESCALE, COMPRESS),
            responses={200: {"content": {"application/octet-stream": _BINARY},
                             "description": ".npy (slices, rows, columns, channels)"}})
async def series_numpy(id: str, request: Request) -> Response:
    rescale = request.query_params.get("rescale", "1").lower() not in ("0", "false")
    array = await run_in_threadpool(images.series_numpy, get_context(request), id, rescale)
    return _numpy_response(array, request)
