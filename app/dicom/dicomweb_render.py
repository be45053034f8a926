"""Rendered images of DICOMweb (PS3.18 8.3.5, 10.4.1.1.4): a frame windowed to 8 bits.

As Orthanc's DICOMweb plugin renders them (``WadoRsRetrieveRendered.cpp``), which its
clients and release tests compare pixel by pixel:

* ``window=center,width,function`` with the VOI LUT functions of PS3.3 C.11.2.1.2-3
  (``linear``, ``linear-exact``, ``sigmoid``), applied to the modality values: the
  rescale of the file, else of the frame's Pixel Value Transformation (multi-frame
  functional groups);
* without ``window``: the window of the file, else of the frame's Frame VOI LUT
  (``linear``, PS3.18 8.3.5.1.4: the instance's own VOI LUT), else the whole dynamics;
* ``viewport=vw,vh[,sx,sy,sw,sh]``: the source region (negative sw/sh flip it), scaled
  to fit ``vw x vh`` keeping the aspect ratio (nearest neighbour), centred on a black
  ``vw x vh`` canvas;
* arithmetic in single precision, values rounded as Orthanc's ``FloatToPixel``
  (``+0.5``, then truncated), MONOCHROME1 inverted, colour images unwindowed.

Pixels are decoded by :func:`app.dicom.decode.decode_frame` (Orthanc's decoder rules,
plus pydicom's codecs for what Orthanc cannot decode).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from pydicom.dataset import Dataset

from app.dicom import decode
from app.dicom.decode import DecodedImage, PixelFormat
from app.errors import ParameterOutOfRange
from app.validation import parse_float, parse_int


class WindowFunction(StrEnum):
    """PS3.3 C.11.2.1.2-3 VOI LUT functions, plus the whole dynamics of the frame."""

    LINEAR = "linear"
    LINEAR_EXACT = "linear-exact"
    SIGMOID = "sigmoid"
    WHOLE = "whole"


@dataclass(frozen=True)
class Viewport:
    """``viewport=vw,vh[,sx,sy,sw,sh]`` (PS3.18 8.3.5.1.3); None: not given."""

    width: int | None = None
    height: int | None = None
    x: int = 0
    y: int = 0
    region_width: int | None = None
    region_height: int | None = None
    flip_x: bool = False
    flip_y: bool = False


@dataclass(frozen=True)
class Rendering:
    """The rendering parameters of one request."""

    center: float | None = None
    width: float | None = None
    function: WindowFunction = WindowFunction.LINEAR
    viewport: Viewport = Viewport()


def parse_window(text: str) -> tuple[float, float, WindowFunction]:
    """``center,width[,function]``: two floats and linear, linear-exact or sigmoid."""
    pieces = [p.strip() for p in text.split(",")]
    if len(pieces) not in (2, 3):
        raise ParameterOutOfRange("window must be center,width,function (PS3.18 8.3.5.1.4)")
    try:
        center, width = float(pieces[0]), float(pieces[1])
    except ValueError as error:
        raise ParameterOutOfRange(f"The center and width of window must be numbers: {text}") \
            from error
    if not (math.isfinite(center) and math.isfinite(width)) or width <= 0:
        raise ParameterOutOfRange(f"Bad window {text!r}: the width must be positive")
    name = pieces[2] if len(pieces) == 3 else "linear"
    if name not in ("linear", "linear-exact", "sigmoid"):
        raise ParameterOutOfRange("The window function must be linear, linear-exact or "
                                  f"sigmoid, not {name!r}")
    return center, width, WindowFunction(name)


def parse_viewport(text: str) -> Viewport:
    """2 or 6 comma-separated values; vw, vh non-negative integers, the region's
    coordinates and sizes integers (a negative size flips), empty values absent."""
    pieces = [p.strip() for p in text.split(",")]
    if len(pieces) not in (2, 6):
        raise ParameterOutOfRange("viewport must have 2 or 6 values (PS3.18 8.3.5.1.3)")
    values: list[int | None] = []
    for index, piece in enumerate(pieces):
        if not piece:
            values.append(None)
            continue
        # Sizes up to DICOM's 65535 columns; region values finite (round(inf) raises).
        number = parse_int(piece, "viewport", minimum=-65535, maximum=65535) if index < 2 \
            else round(parse_float(piece, "viewport", minimum=-2.0**31, maximum=2.0**31))
        if index < 2 and number < 0:
            raise ParameterOutOfRange(f"Negative viewport size {piece!r}")
        values.append(number)
    values += [None] * (6 - len(values))
    width, height, x, y, region_width, region_height = values
    return Viewport(width, height, abs(x or 0), abs(y or 0),
                    abs(region_width) if region_width is not None else None,
                    abs(region_height) if region_height is not None else None,
                    region_width is not None and region_width < 0,
                    region_height is not None and region_height < 0)


def _float(value: object) -> float | None:
    try:
        result = float(str(value).strip())
    except (TypeError, ValueError):
        return None
    return result if math.isfinite(result) else None


def _first_float(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        return _float(value[0]) if len(value) else None  # type: ignore[arg-type, index]
    return _float(str(value).split("\\")[0])


def _frame_item(ds: Dataset, frame: int, sequence: str) -> Dataset | None:
    """The single item of *sequence* in the frame's Per-Frame Functional Group."""
    try:
        items = ds.PerFrameFunctionalGroupsSequence[frame].get(sequence)
        return items[0] if items is not None and len(items) == 1 else None
    except (AttributeError, IndexError, TypeError):
        return None


def _rescale(holder: Dataset | None) -> tuple[float, float] | None:
    if holder is None or "RescaleSlope" not in holder or "RescaleIntercept" not in holder:
        return None
    slope, intercept = _float(holder.RescaleSlope), _float(holder.RescaleIntercept)
    return (slope, intercept) if slope is not None and intercept is not None else None


def _window(holder: Dataset | None) -> tuple[float, float] | None:
    if holder is None:
        return None
    center = _first_float(holder.get("WindowCenter"))
    width = _first_float(holder.get("WindowWidth"))
    return (center, width) if center is not None and width is not None else None


def _modality(ds: Dataset, frame: int) -> tuple[np.float32, np.float32]:
    found = _rescale(ds) or _rescale(_frame_item(ds, frame, "PixelValueTransformationSequence"))
    slope, intercept = found or (1.0, 0.0)
    return np.float32(slope), np.float32(intercept)


def _apply_window(values: np.ndarray, center: float, width: float,
                  function: WindowFunction) -> np.ndarray:
    """The VOI LUT function on float32 modality values, to float32 in [0, 255]."""
    c, w = np.float32(center), np.float32(width)
    one, half, top = np.float32(1), np.float32(0.5), np.float32(255)
    if function == WindowFunction.WHOLE:
        low, high = values.min(), values.max()
        scale = top / (high - low) if high != low else np.float32(0)
        stretched: np.ndarray = (values - low) * scale
        return stretched
    if function == WindowFunction.SIGMOID:
        with np.errstate(over="ignore"):
            sigmoid: np.ndarray = top / (one + np.exp(np.float32(-4) * (values - c) / w))
            return sigmoid
    if function == WindowFunction.LINEAR_EXACT:
        low, high = c - w / np.float32(2), c + w / np.float32(2)
        scaling, offset = top / w, (-c * top) / w
    else:
        if w <= one:  # a width of 1 is a threshold at the center (PS3.3 C.11.2.1.2.1)
            return np.where(values <= c - half, np.float32(0), top)
        low, high = c - half - (w - one) / np.float32(2), c - half + (w - one) / np.float32(2)
        scaling, offset = top / (w - one), (top * (-c + half * w)) / (w - one)
    result = values * np.float32(scaling) + np.float32(offset)
    return np.where(values <= low, np.float32(0), np.where(values > high, top, result))


def _to_uint8(values: np.ndarray) -> np.ndarray:
    """Orthanc's ``FloatToPixel`` for 8-bit pixels: +0.5, saturated, truncated."""
    shifted = values.astype(np.float32) + np.float32(0.5)
    saturated: np.ndarray = np.clip(np.nan_to_num(shifted, nan=0.0), 0, 255).astype(np.uint8)
    return saturated


def _region(pixels: np.ndarray, viewport: Viewport) -> np.ndarray:
    height, width = pixels.shape[:2]
    if viewport.x >= width or viewport.y >= height:
        return pixels[:0, :0]
    right = width if viewport.region_width is None else min(width, viewport.x +
                                                            viewport.region_width)
    bottom = height if viewport.region_height is None else min(height, viewport.y +
                                                               viewport.region_height)
    return pixels[viewport.y:bottom, viewport.x:right]


def _iround(value: float) -> int:
    value = float(np.float32(value))
    return int(math.floor(value + 0.5) if value >= 0 else math.ceil(value - 0.5))


def _resize(pixels: np.ndarray, width: int, height: int) -> np.ndarray:
    """Nearest neighbour, pixel centres mapped in single precision (Orthanc's Resize)."""
    source_height, source_width = pixels.shape[:2]
    if (width, height) == (source_width, source_height):
        return pixels
    scale_x = np.float32(source_width) / np.float32(width)
    scale_y = np.float32(source_height) / np.float32(height)
    xs = np.floor((np.arange(width, dtype=np.float32) + np.float32(0.5)) * scale_x)
    ys = np.floor((np.arange(height, dtype=np.float32) + np.float32(0.5)) * scale_y)
    xs = np.clip(xs.astype(np.int64), 0, source_width - 1)
    ys = np.clip(ys.astype(np.int64), 0, source_height - 1)
    resized: np.ndarray = pixels[ys][:, xs]
    return resized


def _fit(pixels: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scaled to fit ``width x height`` (aspect kept), centred on a black canvas."""
    canvas = np.zeros((height, width) + pixels.shape[2:], np.uint8)
    source_height, source_width = pixels.shape[:2]
    if not (source_width and source_height and width and height):
        return canvas
    ratio = min(np.float32(width) / np.float32(source_width),
                np.float32(height) / np.float32(source_height))
    fitted_width = min(_iround(source_width * ratio), width)
    fitted_height = min(_iround(source_height * ratio), height)
    if not (fitted_width and fitted_height):
        return canvas
    resized = _resize(pixels, fitted_width, fitted_height)
    x, y = (width - fitted_width) // 2, (height - fitted_height) // 2
    canvas[y:y + fitted_height, x:x + fitted_width] = resized
    return canvas


def shrink_to(pixels: np.ndarray, bound: int) -> np.ndarray:
    """Scaled down (never up) to fit in ``bound x bound``, aspect kept: thumbnails."""
    height, width = pixels.shape[:2]
    if max(height, width) <= bound:
        return pixels
    ratio = np.float32(bound) / np.float32(max(height, width))
    return _resize(pixels, max(1, _iround(width * ratio)), max(1, _iround(height * ratio)))


def render(ds: Dataset, frame: int, rendering: Rendering) -> np.ndarray:
    """Frame *frame* (from 0): (rows, columns) 8-bit grey or (rows, columns, 3) RGB."""
    image: DecodedImage = decode.decode_frame(ds, frame, extended=True)
    viewport = rendering.viewport
    region = _region(image.pixels, viewport)
    if image.is_color:
        pixels = region if image.format == PixelFormat.RGB24 else (region >> 8).astype(np.uint8)
    else:
        slope, intercept = _modality(ds, frame)
        values = region.astype(np.float32) * slope + intercept
        if rendering.center is not None and rendering.width is not None:
            center, width, function = rendering.center, rendering.width, rendering.function
        else:
            found = _window(ds) or _window(_frame_item(ds, frame, "FrameVOILUTSequence"))
            center, width = found or (0.0, 1.0)
            function = WindowFunction.LINEAR if found and found[1] > 0 \
                else WindowFunction.WHOLE
        pixels = _to_uint8(_apply_window(values, center, width, function)) if values.size \
            else region.astype(np.uint8)
    if viewport.flip_x:
        pixels = pixels[:, ::-1]
    if viewport.flip_y:
        pixels = pixels[::-1]
    if not image.is_color and \
            str(ds.get("PhotometricInterpretation", "")).strip() == "MONOCHROME1":
        pixels = 255 - pixels
    target_width = viewport.width if viewport.width is not None else image.width
    target_height = viewport.height if viewport.height is not None else image.height
    return _fit(np.ascontiguousarray(pixels), target_width, target_height)
