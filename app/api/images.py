"""Decoded images, Orthanc's routes: ``/preview``, ``/image-uint8|16``, ``/image-int16``,
``/rendered``, ``/matlab``, ``/numpy``, ``/frames/{n}/raw[.gz]``, ``/series/{id}/numpy``
and ``/series/{id}/ordered-slices``.

Errors of the image routes answer as Orthanc's do: a frame out of range, an unknown
instance, a bad argument or an Accept header matching no image type give 404; an image
that cannot be decoded or encoded gives 415.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from app.api.deps import get_context
from app.api.params import (
    ACCEPT,
    COMPRESS,
    IMAGE,
    QUALITY,
    RESCALE,
    QueryParameter,
    query_parameters,
)
from app.api.responses import JsonResponse, json_answer
from app.dicom import render
from app.errors import (
    BadFileFormat,
    BadRequest,
    InexistentItem,
    ParameterOutOfRange,
    PharosError,
    UnknownResource,
)
from app.services import images
from app.validation import is_digits, parse_int

router = APIRouter(tags=["Instances"])

_BINARY = {"schema": {"type": "string", "format": "binary"}}
_IMAGE_RESPONSES = {200: {"content": {render.PNG: _BINARY, render.JPEG: _BINARY,
                                      render.PAM: _BINARY},
                          "description": "The decoded frame"}}
MAX_VIEWPORT = 65535  # pixels: the largest Rows/Columns DICOM can hold
_MODES = {"preview": "preview", "image-uint8": "uint8", "image-uint16": "uint16",
          "image-int16": "int16", "rendered": "rendered"}
_TYPES = (render.PNG, render.JPEG, render.PAM)  # registration order: PNG wins ties
SMOOTH = QueryParameter("smooth", {"type": "boolean"},
                        "Smooth (5x5 Gaussian) before scaling an image down (rendered)")


def negotiate(accept: str | None) -> str | None:
    """Orthanc's ``HttpContentNegociation``: the image type of the best media range (more
    specific first, then higher quality; PNG when no Accept header), None when none
    matches."""
    if accept is None or not accept.strip():
        return render.PNG
    best: tuple[int, float] | None = None
    chosen = None
    for media_range in accept.split(","):
        tokens = [t.strip() for t in media_range.split(";")]
        if "/" not in tokens[0]:
            continue
        kind, subtype = (p.strip().lower() for p in tokens[0].split("/", 1))
        quality = 1.0
        for parameter in tokens[1:]:
            key, _, value = parameter.partition("=")
            if key.strip() == "q":
                try:
                    quality = float(value.strip().strip('"'))
                except ValueError:
                    quality = -1.0
                if not 0.0 <= quality <= 1.0:
                    raise BadRequest(f"Quality parameter out of range in the Accept header: {value}")
        level = 0 if (kind, subtype) == ("*", "*") else 1 if subtype == "*" else 2
        for candidate in _TYPES:
            candidate_kind, candidate_subtype = candidate.split("/")
            if (kind == "*" or kind == candidate_kind) \
                    and (subtype == "*" or subtype == candidate_subtype):
                if best is None or (level, quality) > best:
                    best, chosen = (level, quality), candidate
    return chosen


def _media_type(request: Request) -> str | None:
    """``?accept=`` (for HTML <img> tags that cannot set headers) or the Accept header."""
    override = request.query_params.get("accept")
    return negotiate(override if override else request.headers.get("accept"))


def _quality(request: Request) -> int:
    value = request.query_params.get("quality", "90")
    try:
        quality = int(value)
    except ValueError:
        quality = 0
    if not 1 <= quality <= 100:
        raise BadRequest("Bad quality for a JPEG encoding (must be a number between 0 and "
                         f"100): {value}")
    return quality


def _double(request: Request, name: str) -> float | None:
    value = request.query_params.get(name)
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise ParameterOutOfRange(f"Bad value for argument: {name}")
    return number


def _size(request: Request, name: str) -> int:
    value = request.query_params.get(name)
    if value is None:
        return 0
    if value.strip().startswith("-"):
        raise ParameterOutOfRange(f"Argument cannot be negative: {name}")
    # No image is wider than DICOM's 65535 columns: larger sizes are bad values, not
    # a request to allocate them.
    return parse_int(value, name, maximum=MAX_VIEWPORT)


def boolean_argument(request: Request, name: str, default: bool) -> bool:
    """Orthanc's ``GetBooleanArgument``: absent: *default*; empty: true; true/1, false/0."""
    value = request.query_params.get(name)
    if value is None:
        return default
    if value == "":
        return True
    stripped = value.strip().lower()
    if stripped in ("1", "true"):
        return True
    if stripped in ("0", "false"):
        return False
    raise ParameterOutOfRange(f'Expected a Boolean for GET argument "{name}", found: {value}')


def _render_options(request: Request) -> render.RenderOptions:
    smooth = request.query_params.get("smooth")
    if smooth is not None and smooth.strip() not in ("0", "1", "true", "false"):
        raise BadFileFormat("Boolean value expected")
    return render.RenderOptions(
        center=_double(request, "window-center"), width=_double(request, "window-width"),
        target_width=_size(request, "width"), target_height=_size(request, "height"),
        smooth=smooth is not None and smooth.strip() in ("1", "true"))


def _frame_number(text: str) -> int:
    """A frame number as Orthanc parses it (an unsigned integer), else 404 (no answer)."""
    if not is_digits(text):
        raise InexistentItem(f"Bad frame number: {text[:40]}")
    return int(text)


async def _image_answer(request: Request, produce: Callable[[], tuple[bytes, str]]) -> Response:
    """Run *produce* the way Orthanc's ``IDecodedFrameHandler::Apply`` does: out-of-range
    frames, unknown instances and bad arguments answer 404, other failures 415."""
    try:
        body, media_type = await run_in_threadpool(produce)
    except (ParameterOutOfRange, UnknownResource, InexistentItem) as error:
        raise InexistentItem(error.details or str(error)) from error
    except render.UnsupportedImage:
        raise
    except PharosError as error:
        raise render.UnsupportedImage(error.details or str(error)) from error
    return Response(body, media_type=media_type)


async def _render(request: Request, public_id: str, frame_text: str, route: str) -> Response:
    mode = _MODES[route]
    context = get_context(request)

    def produce() -> tuple[bytes, str]:
        frame = _frame_number(frame_text)
        quality = _quality(request)
        media_type = _media_type(request)
        if mode == "rendered":
            options = _render_options(request)
            if media_type is None:
                raise InexistentItem("No image type matches the Accept header")
            return images.rendered(context, public_id, frame, options, media_type,
                                   quality=quality), media_type
        if media_type is None:
            raise InexistentItem("No image type matches the Accept header")
        return images.image(context, public_id, frame, mode, media_type,
                            quality=quality), media_type

    return await _image_answer(request, produce)


_RENDERED = (SMOOTH,)


def _register(route: str) -> None:
    operation = route.replace("-", "_")
    extra = query_parameters(*(IMAGE + _RENDERED if route == "rendered" else (ACCEPT, QUALITY)))

    async def whole(id: str, request: Request) -> Response:
        return await _render(request, id, "0", route)

    async def one_frame(id: str, frame: str, request: Request) -> Response:
        return await _render(request, id, frame, route)

    router.add_api_route(f"/instances/{{id}}/{route}", whole, methods=["GET"],
                         operation_id=f"get_instance_{operation}", response_class=Response,
                         responses=_IMAGE_RESPONSES, summary=f"First frame ({route})",
                         openapi_extra=extra)
    router.add_api_route(f"/instances/{{id}}/frames/{{frame}}/{route}", one_frame,
                         methods=["GET"], operation_id=f"get_instance_frame_{operation}",
                         response_class=Response, responses=_IMAGE_RESPONSES,
                         summary=f"One frame ({route}); frames count from 0",
                         openapi_extra=extra)


for _route in _MODES:
    _register(_route)


@router.get("/instances/{id}/frames", operation_id="list_instance_frames",
            response_model=list[int])
async def list_frames(id: str, request: Request) -> JsonResponse:
    return json_answer(await run_in_threadpool(images.frame_indexes, get_context(request), id))


_FRAME_CHILDREN = sorted(["image-int16", "image-uint16", "image-uint8", "matlab", "numpy",
                          "preview", "raw", "raw.gz", "rendered"])


@router.get("/instances/{id}/frames/{frame}", operation_id="list_instance_frame_routes",
            response_model=list[str])
async def list_frame_routes(id: str, frame: str) -> JsonResponse:
    """What can be asked of one frame (Orthanc lists the child routes, whatever the
    frame number)."""
    return json_answer(_FRAME_CHILDREN)


def _raw_route(compressed: bool) -> Callable[..., Any]:
    async def endpoint(id: str, frame: str, request: Request) -> Response:
        number = _frame_number(frame)
        body, media_type = await run_in_threadpool(images.raw_frame, get_context(request), id,
                                                   number, compressed)
        return Response(body, media_type=media_type)
    return endpoint


_RAW = {200: {"content": {"application/octet-stream": _BINARY, "image/jpeg": _BINARY,
                          "image/jp2": _BINARY, "application/gzip": _BINARY},
              "description": "The frame as stored, without decoding"}}
router.add_api_route("/instances/{id}/frames/{frame}/raw", _raw_route(False), methods=["GET"],
                     operation_id="get_instance_frame_raw", response_class=Response,
                     responses=_RAW, summary="One frame as stored (no decoding)")
router.add_api_route("/instances/{id}/frames/{frame}/raw.gz", _raw_route(True),
                     methods=["GET"], operation_id="get_instance_frame_raw_gz",
                     response_class=Response, responses=_RAW,
                     summary="One frame as stored, gzipped")


_TEXT = {200: {"content": {"text/plain": {"schema": {"type": "string"}}},
               "description": "An Octave/Matlab expression for eval()"}}


async def _matlab(request: Request, public_id: str, frame: str) -> Response:
    number = _frame_number(frame)
    text = await run_in_threadpool(images.matlab, get_context(request), public_id, number)
    return Response(text.encode(), headers={"Content-Type": "text/plain"})


@router.get("/instances/{id}/matlab", operation_id="get_instance_matlab",
            response_class=Response, responses=_TEXT)
async def instance_matlab(id: str, request: Request) -> Response:
    """The first frame as a Matlab/Octave matrix."""
    return await _matlab(request, id, "0")


@router.get("/instances/{id}/frames/{frame}/matlab", operation_id="get_instance_frame_matlab",
            response_class=Response, responses=_TEXT)
async def frame_matlab(id: str, frame: str, request: Request) -> Response:
    """One frame as a Matlab/Octave matrix."""
    return await _matlab(request, id, frame)


_NUMPY = {200: {"content": {"application/octet-stream": _BINARY},
                "description": ".npy (or .npz with ?compress)"}}
_NUMPY_EXTRA = query_parameters(RESCALE, COMPRESS)


def _numpy_flags(request: Request) -> tuple[bool, bool]:
    return boolean_argument(request, "rescale", True), boolean_argument(request, "compress", False)


@router.get("/instances/{id}/frames/{frame}/numpy", operation_id="get_instance_frame_numpy",
            response_class=Response, responses=_NUMPY, openapi_extra=_NUMPY_EXTRA)
async def frame_numpy(id: str, frame: str, request: Request) -> Response:
    """One frame: (rows, columns, channels); float32 rescaled grey unless ``rescale=0``."""
    if not is_digits(frame):
        raise ParameterOutOfRange('Expected an unsigned integer for the "frame" argument')
    rescale, compress = _numpy_flags(request)
    body = await run_in_threadpool(images.numpy_frame, get_context(request), id, int(frame),
                                   rescale, compress)
    return Response(body, media_type="application/octet-stream")


@router.get("/instances/{id}/numpy", operation_id="get_instance_numpy", response_class=Response,
            responses=_NUMPY, openapi_extra=_NUMPY_EXTRA)
async def instance_numpy(id: str, request: Request) -> Response:
    """Every frame: (frames, rows, columns, channels)."""
    rescale, compress = _numpy_flags(request)
    body = await run_in_threadpool(images.instance_numpy, get_context(request), id, rescale,
                                   compress)
    return Response(body, media_type="application/octet-stream")


@router.get("/series/{id}/numpy", operation_id="get_series_numpy", response_class=Response,
            tags=["Series"], responses=_NUMPY, openapi_extra=_NUMPY_EXTRA)
async def series_numpy(id: str, request: Request) -> Response:
    """Every frame of the series in slice order: (frames, rows, columns, channels)."""
    rescale, compress = _numpy_flags(request)
    body = await run_in_threadpool(images.series_numpy, get_context(request), id, rescale,
                                   compress)
    return Response(body, media_type="application/octet-stream")


class OrderedSlices(BaseModel):
    """Orthanc's ``/series/{id}/ordered-slices`` answer."""

    Type: str
    Dicom: list[str]
    Slices: list[str]
    SlicesShort: list[list[str | int]]


@router.get("/series/{id}/ordered-slices", operation_id="get_series_ordered_slices",
            tags=["Series"], response_model=OrderedSlices)
async def ordered_slices(id: str, request: Request) -> JsonResponse:
    """Orthanc's slice order: ``{"Type": "Volume"|"Sequence", "Dicom", "Slices",
    "SlicesShort"}``."""
    ordering = await run_in_threadpool(images.slice_ordering, get_context(request), id)
    return json_answer(ordering.to_json())
