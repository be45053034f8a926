"""Orthanc's image answers computed from a decoded frame (:mod:`app.dicom.decode`).

Each function reproduces one step of Orthanc's ``DicomImageDecoder`` /
``ImageProcessing`` with the same arithmetic (single precision, the same rounding and
clamping), so that the answers are identical to Orthanc's, byte for byte once encoded:

* :func:`extract`: the ``preview`` (dynamic range stretched to [0, 255]), ``uint8``,
  ``uint16`` and ``int16`` (values clamped to the type) extraction modes;
* :func:`rendered`: ``/rendered`` (rescale, VOI window, resize, optional smoothing);
* :func:`numpy_values`, :func:`numpy_file`, :func:`matlab`: ``/numpy`` and ``/matlab``.

The older helpers (:func:`decode_frame`, :func:`window`, :func:`fit_viewport`) stay for
the DICOMweb rendering, which follows the DICOMweb standard rather than Orthanc's routes.
"""

from __future__ import annotations

import io
import math
import zipfile
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset

from app.dicom.decode import (  # noqa: F401 — re-exported for the other modules
    COLOR_FORMATS,
    DecodedImage,
    FrameOutOfRange,
    NotDecodable,
    PixelFormat,
    UnsupportedImage,
    frame_count,
)
from app.dicom.png import encode_png
from app.errors import NotImplementedYet, ParameterOutOfRange

PNG, JPEG, PAM = "image/png", "image/jpeg", "image/x-portable-arbitrarymap"
MODES = ("preview", "uint8", "uint16", "int16")


# --- Orthanc's arithmetic ------------------------------------------------------------------


def _iround(values: np.ndarray | np.floating[Any]) -> np.ndarray:
    """boost::math::iround for non-negative values: halves away from zero, exactly (of an
    array, or of one float32: then a 0-d array)."""
    floor = np.floor(values)
    rounded: np.ndarray = floor + (values - floor >= np.float32(0.5))
    return rounded


def _shift_scale(values: np.ndarray, a: np.float32, b: np.float32, low: float, high: float,
                 use_round: bool) -> np.ndarray:
    """``ShiftScaleIntegerInternal``: a * x + b in single precision, saturated to
    [low, high], rounded (or floored) inside."""
    v = a * values.astype(np.float32) + b
    inside = np.floor(v) if not use_round else _iround(v)
    return np.where(v >= high, high, np.where(v <= low, low, inside))


def _saturate(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    limits = np.iinfo(dtype)
    saturated: np.ndarray = np.clip(values, limits.min, limits.max).astype(dtype)
    return saturated


# --- extraction modes (preview, uint8, uint16, int16) --------------------------------------


def _preview(image: DecodedImage) -> np.ndarray:
    """``PreviewDecodedImage``: colour as is (RGB48: high bytes), grey stretched."""
    if image.format == PixelFormat.RGB24:
        return image.pixels
    if image.format == PixelFormat.RGB48:
        return (image.pixels >> 8).astype(np.uint8)
    if image.format not in (PixelFormat.GRAY8, PixelFormat.GRAY16, PixelFormat.SIGNED_GRAY16):
        if image.format == PixelFormat.FLOAT32:  # decoded with ExtendedImageDecoding only
            return _stretch_any(image.pixels)
        raise NotDecodable(f"No preview for {image.format} images (as in Orthanc)")
    low, high = int(image.pixels.min()), int(image.pixels.max())
    if low == high:
        return np.zeros(image.pixels.shape, np.uint8)
    scaling = np.float32(255.0) / np.float32(high - low)
    offset = np.float32(-low) * scaling
    limits = np.iinfo(image.pixels.dtype)
    values = _shift_scale(image.pixels, scaling, offset, limits.min, limits.max, True)
    return _saturate(values, np.dtype(np.uint8))


def _stretch_any(values: np.ndarray) -> np.ndarray:
    """Preview of float values (decoded only with ExtendedImageDecoding): the same linear
    stretch, in double precision."""
    low, high = float(np.nanmin(values)), float(np.nanmax(values))
    if not math.isfinite(low) or not math.isfinite(high) or high == low:
        return np.zeros(values.shape, np.uint8)
    scaled = (values.astype(np.float64) - low) * (255.0 / (high - low))
    return np.clip(np.floor(scaled + 0.5), 0, 255).astype(np.uint8)


def extract(image: DecodedImage, mode: str, invert: bool) -> np.ndarray:
    """``ApplyExtractionMode``: *mode* in preview/uint8/uint16/int16, then inverted
    (MONOCHROME1, preview only) as Orthanc does."""
    if mode == "preview":
        pixels = _preview(image)
    else:
        targets: dict[str, np.dtype[Any]] = {
            "uint8": np.dtype(np.uint8), "uint16": np.dtype(np.uint16),
            "int16": np.dtype(np.int16)}
        target = targets.get(mode)
        if target is None:
            raise ParameterOutOfRange(f"Unknown extraction mode {mode}")
        if image.is_color:
            raise NotDecodable(f"image-{mode} is only available for greyscale images")
        if image.format in (PixelFormat.GRAY32, PixelFormat.FLOAT32):
            raise NotDecodable(f"Cannot convert {image.format} pixels to {mode}")
        pixels = image.pixels if image.pixels.dtype == target \
            else _saturate(image.pixels.astype(np.int64), target)
    if invert:
        if pixels.dtype != np.uint8 or pixels.ndim != 2:
            raise NotDecodable("Only 8-bit greyscale images can be inverted")
        pixels = 255 - pixels
    return pixels


# --- /rendered -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RenderOptions:
    """Arguments of ``/rendered`` (Orthanc's names: window-center, window-width, width,
    height, smooth); None: from the file, or the image size."""

    center: float | None = None
    width: float | None = None
    target_width: int = 0
    target_height: int = 0
    smooth: bool = False


def _per_frame_item(ds: Dataset, frame: int, sequence: str) -> Dataset | None:
    """Item 0 of *sequence* in the frame's item of PerFrameFunctionalGroupsSequence."""
    groups = ds.get("PerFrameFunctionalGroupsSequence")
    try:
        return groups[frame].get(sequence)[0] if groups is not None else None
    except (IndexError, TypeError, AttributeError):
        return None


def _first_double(value: object) -> float | None:
    """``SerializationToolbox::ParseFirstDouble``: the first of backslash-separated values."""
    if value is None:
        return None
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        value = value[0] if len(value) else None  # type: ignore[arg-type, index]
        if value is None:
            return None
    try:
        result = float(str(value).split("\\")[0].strip())
    except ValueError:
        return None
    return result if math.isfinite(result) else None


def _double(value: object) -> float | None:
    """``ParseDouble``: one number, nothing else."""
    if value is None or isinstance(value, list | tuple) \
            or type(value).__name__ == "MultiValue":
        return None
    try:
        result = float(str(value).strip())
    except ValueError:
        return None
    return result if math.isfinite(result) else None


def default_windowing(ds: Dataset, frame: int) -> tuple[float, float]:
    """``ParsedDicomFile::GetDefaultWindowing``: the file's window (top level, else the
    frame's FrameVOILUTSequence), else the full range of BitsStored."""
    for holder in (ds, _per_frame_item(ds, frame, "FrameVOILUTSequence")):
        if holder is None:
            continue
        center = _first_double(holder.get("WindowCenter"))
        width = _first_double(holder.get("WindowWidth"))
        if center is not None and width is not None:
            return center, width
    try:
        bits = int(ds.get("BitsStored") or 0)
    except (TypeError, ValueError):
        bits = 0
    width = float(1 << (bits if 0 < bits < 63 else 8))
    return width / 2.0, width


def rescale(ds: Dataset, frame: int) -> tuple[float, float]:
    """``ParsedDicomFile::GetRescale``: (intercept, slope) of the file, else of the
    frame's PixelValueTransformationSequence, else (0, 1); never for RT doses."""
    if str(ds.get("SOPClassUID", "")) == "1.2.840.10008.5.1.4.1.1.481.2":
        return 0.0, 1.0
    for holder in (ds, _per_frame_item(ds, frame, "PixelValueTransformationSequence")):
        if holder is None:
            continue
        intercept = _double(holder.get("RescaleIntercept"))
        slope = _double(holder.get("RescaleSlope"))
        if intercept is not None and slope is not None:
            return intercept, slope
    return 0.0, 1.0


def _smooth(pixels: np.ndarray) -> np.ndarray:
    """``SmoothGaussian5x5`` (kernel 1 4 6 4 1, borders repeated, truncated)."""
    kernel = [np.float32(k) for k in (1, 4, 6, 4, 1)]
    normalization = np.float32(1.0) / np.float32(256.0)
    source = pixels.astype(np.float32)
    if source.ndim == 2:
        source = source[..., np.newaxis]
    height, width = source.shape[:2]
    padded = np.concatenate([np.repeat(source[:, :1], 2, axis=1), source,
                             np.repeat(source[:, -1:], 2, axis=1)], axis=1)
    horizontal: np.ndarray = np.zeros_like(source)
    for k in range(5):
        horizontal = horizontal + padded[:, k:k + width] * kernel[k]
    padded = np.concatenate([np.repeat(horizontal[:1], 2, axis=0), horizontal,
                             np.repeat(horizontal[-1:], 2, axis=0)], axis=0)
    vertical: np.ndarray = np.zeros_like(source)
    for k in range(5):
        vertical = vertical + padded[k:k + height] * kernel[k]
    vertical = vertical * normalization
    result = np.where(vertical <= 0, 0, np.where(vertical >= 255, 255, vertical))
    result = result.astype(np.uint8)
    return result[..., 0] if pixels.ndim == 2 else result


def _resize(pixels: np.ndarray, width: int, height: int) -> np.ndarray:
    """``ImageProcessing::Resize``: nearest neighbour, centres mapped in single precision."""
    source_height, source_width = pixels.shape[:2]
    if (width, height) == (source_width, source_height):
        return pixels
    if width == 0 or height == 0:
        return np.zeros((height, width) + pixels.shape[2:], pixels.dtype)
    scale_x = np.float32(source_width) / np.float32(width)
    scale_y = np.float32(source_height) / np.float32(height)
    xs = np.floor((np.arange(width, dtype=np.float32) + np.float32(0.5)) * scale_x)
    ys = np.floor((np.arange(height, dtype=np.float32) + np.float32(0.5)) * scale_y)
    xs = np.clip(xs.astype(np.int64), 0, source_width - 1)
    ys = np.clip(ys.astype(np.int64), 0, source_height - 1)
    resized: np.ndarray = pixels[ys][:, xs]
    return resized


def _target_size(image: DecodedImage, options: RenderOptions) -> tuple[int, int]:
    width, height = image.width, image.height
    if width == 0 or height == 0:
        return width, height
    ratio = np.float32(1)
    if options.target_width and options.target_height:
        ratio = min(np.float32(options.target_width) / np.float32(width),
                    np.float32(options.target_height) / np.float32(height))
    elif options.target_width:
        ratio = np.float32(options.target_width) / np.float32(width)
    elif options.target_height:
        ratio = np.float32(options.target_height) / np.float32(height)
    return (int(_iround(np.float32(ratio * np.float32(width)))),
            int(_iround(np.float32(ratio * np.float32(height)))))


def rendered(ds: Dataset, image: DecodedImage, frame: int,
             options: RenderOptions) -> tuple[np.ndarray, str]:
    """``RenderedFrameHandler``: the 8-bit image and the extraction mode it is encoded in
    (colour: "preview", grey: "uint8"), MONOCHROME1 already inverted."""
    target_width, target_height = _target_size(image, options)
    resize = (target_width, target_height) != (image.width, image.height)
    shrink = target_width < image.width or target_height < image.height
    if image.is_color:
        if not resize:
            return _preview(image), "preview"
        if image.format != PixelFormat.RGB24:
            raise NotDecodable("Cannot resize RGB48 images")
        pixels = _smooth(image.pixels) if options.smooth and shrink else image.pixels
        return _resize(pixels, target_width, target_height), "preview"
    if image.format not in (PixelFormat.GRAY8, PixelFormat.GRAY16, PixelFormat.SIGNED_GRAY16,
                            PixelFormat.GRAY32, PixelFormat.FLOAT32):
        raise NotDecodable(f"Cannot render {image.format} images")
    intercept, slope = rescale(ds, frame)
    center, width = default_windowing(ds, frame)
    center = options.center if options.center is not None else center
    width = options.width if options.width is not None else width
    width = max(width, 1.0)
    if abs(slope) <= 0.0001:
        slope = 0.0001
    scaling = 255.0 * slope / width
    offset = (intercept - center + width / 2.0) / slope
    a = np.float32(scaling)
    b = np.float32(offset) * a
    pixels = _shift_scale(image.pixels, a, b, 0.0, 255.0, False).astype(np.uint8)
    if resize:
        if options.smooth and shrink:
            pixels = _smooth(pixels)
        pixels = _resize(pixels, target_width, target_height)
    if str(ds.get("PhotometricInterpretation", "")).strip() == "MONOCHROME1":
        pixels = 255 - pixels
    return pixels, "uint8"


# --- /numpy, /matlab -----------------------------------------------------------------------


def numpy_values(ds: Dataset, image: DecodedImage, frame: int, rescaled: bool) -> np.ndarray:
    """One frame as Orthanc's ``NumpyVisitor`` writes it: (rows, columns, channels);
    grey values rescaled to float32 when *rescaled*."""
    if rescaled and image.format != PixelFormat.RGB24:
        if image.format == PixelFormat.RGB48:
            raise NotDecodable("Cannot rescale RGB48 pixels")
        intercept, slope = rescale(ds, frame)
        values = image.pixels.astype(np.float32)
        if not (abs(intercept) <= 10 * np.finfo(np.float32).eps
                and abs(np.float32(slope) - np.float32(1)) <= 10 * np.finfo(np.float32).eps):
            values = np.float32(slope) * values + np.float32(intercept)
    else:
        if image.format in (PixelFormat.GRAY32, PixelFormat.RGB48):
            raise NotDecodable(f"numpy cannot hold {image.format} pixels")
        values = image.pixels
    return values if values.ndim == 3 else values[..., np.newaxis]


def numpy_file(frames: list[np.ndarray] | np.ndarray, *, depth: bool, compress: bool) -> bytes:
    """A .npy (or, compressed, a .npz holding ``arr_0``) with Orthanc's header: shape
    (frames, rows, columns, channels) when *depth*, else (rows, columns, channels)."""
    arrays = frames if isinstance(frames, list) else [frames]
    first = arrays[0]
    for other in arrays[1:]:
        if other.shape != first.shape:
            raise ParameterOutOfRange("The size of the frames varies across the instance(s)")
        if other.dtype != first.dtype:
            raise ParameterOutOfRange("The pixel format of the frames varies across the "
                                      "instance(s)")
    height, width, channels = first.shape
    descr = f"<{first.dtype.kind}{first.dtype.itemsize}"  # Orthanc writes "<u1" too
    shape = (f"{len(arrays)}, " if depth else "") + f"{height},{width},{channels}"
    info = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': ({shape}), }}"
    minimum = 8 + 2 + len(info) + 1
    length = 64
    while length < minimum:
        length += 64
    padding = length - minimum
    header = (b"\x93NUMPY\x01\x00" + (len(info) + padding + 1).to_bytes(2, "little")
              + info.encode() + b" " * padding + b"\n")
    body = header + b"".join(np.ascontiguousarray(a, a.dtype.newbyteorder("<")).tobytes()
                             for a in arrays)
    if not compress:
        return body
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED,
                         allowZip64=len(body) >= 1 << 30) as archive:
        archive.writestr("arr_0", body)
    return buffer.getvalue()


def matlab(image: DecodedImage) -> str:
    """``ImageAccessor::ToMatlabString``: an Octave/Matlab expression for ``eval()``."""
    if image.format == PixelFormat.RGB24:
        height, width = image.height, image.width
        rows = (" ".join(str(int(v)) for v in row.reshape(-1)) + " "
                for row in image.pixels)
        return ("double(permute(reshape([ " + "".join(rows)
                + f"], [ 3 {height} {width} ]), [ 3 2 1 ]))")
    if image.format == PixelFormat.RGB48:
        raise NotDecodable("Matlab export is not available for RGB48 images")
    lines = [" ".join(format(float(v), ".17g") for v in row) + " " for row in image.pixels]
    return "double([ " + "; ".join(lines) + "])"


# --- encoding ------------------------------------------------------------------------------


def encode(image: np.ndarray, media_type: str, quality: int = 90) -> bytes:
    """PNG (as libpng writes it for Orthanc), JPEG (8-bit, libjpeg-turbo at *quality*)
    or PAM (Orthanc's ``image/x-portable-arbitrarymap``)."""
    if media_type == PNG:
        return encode_png(image)
    if media_type == JPEG:
        if image.dtype != np.uint8:
            raise NotImplementedYet("JPEG needs 8-bit values")
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="JPEG", quality=max(1, min(quality, 100)))
        return buffer.getvalue()
    if media_type == PAM:
        return encode_pam(image)
    raise ParameterOutOfRange(f"Unsupported image type {media_type}")


def encode_pam(image: np.ndarray) -> bytes:
    """Netpbm PAM, samples big endian (Orthanc's ``PamWriter``)."""
    depth = 1 if image.ndim == 2 else image.shape[2]
    height, width = image.shape[:2]
    if image.dtype == np.uint8:
        maxval, data = 255, image.tobytes()
    else:
        maxval = 65535
        data = np.ascontiguousarray(image.view(np.uint16) if image.dtype == np.int16 else image,
                                    ">u2").tobytes()
    tupltype = {1: "GRAYSCALE", 3: "RGB", 4: "RGB_ALPHA"}.get(depth, "GRAYSCALE")
    header = (f"P7\nWIDTH {width}\nHEIGHT {height}\nDEPTH {depth}\nMAXVAL {maxval}\n"
              f"TUPLTYPE {tupltype}\nENDHDR\n").encode()
    return header + data
