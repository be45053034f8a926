"""Decoded images of instances and series, as Orthanc's REST routes answer them.

``/preview``, ``/image-uint8|16``, ``/image-int16``, ``/rendered``, ``/matlab``,
``/numpy``, ``/frames/{n}/raw`` and ``/series/{id}/numpy`` / ``ordered-slices``. What
Orthanc's built-in decoder cannot decode is refused (415) unless the ``Pharos`` option
``ExtendedImageDecoding`` is on (see :mod:`app.dicom.decode`).
"""

from __future__ import annotations

import gzip
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from pydicom.dataset import Dataset

from app.context import ServerContext
from app.dicom import decode, render
from app.dicom.levels import Level
from app.dicom.parse import read_dataset
from app.errors import BadFileFormat, CannotOrderSlices, ParameterOutOfRange
from app.index import repository
from app.services.browse import get_row_or_404
from app.services.instances import dataset_of, read_file


def _extended(context: ServerContext) -> bool:
    return bool(getattr(context.settings, "extended_image_decoding", False))


def decoded_frame(context: ServerContext, public_id: str,
                  frame: int) -> tuple[Dataset, decode.DecodedImage]:
    ds = dataset_of(context, public_id)
    return ds, decode.decode_frame(ds, frame, extended=_extended(context))


def _invert(ds: Dataset) -> bool:
    return str(ds.get("PhotometricInterpretation", "")).strip() == "MONOCHROME1"


def image(context: ServerContext, public_id: str, frame: int, mode: str, media_type: str,
          *, quality: int = 90, center: float | None = None, width: float | None = None,
          viewport: tuple[int | None, int | None] = (None, None)) -> bytes:
    """One frame in Orthanc's preview/uint8/uint16/int16 mode, as PNG, JPEG or PAM; mode
    ``rendered`` is ``/rendered`` with this window and this (columns, rows) size."""
    if mode == "rendered":
        options = render.RenderOptions(center=center, width=width,
                                       target_width=viewport[0] or 0,
                                       target_height=viewport[1] or 0)
        return rendered(context, public_id, frame, options, media_type, quality=quality)
    if media_type == render.JPEG and mode not in ("preview", "uint8"):
        raise ParameterOutOfRange("JPEG can only hold 8-bit images")
    ds, decoded = decoded_frame(context, public_id, frame)
    invert = mode == "preview" and _invert(ds)
    return render.encode(render.extract(decoded, mode, invert), media_type, quality)


def rendered(context: ServerContext, public_id: str, frame: int,
             options: render.RenderOptions, media_type: str, *, quality: int = 90) -> bytes:
    ds, decoded = decoded_frame(context, public_id, frame)
    pixels, _mode = render.rendered(ds, decoded, frame, options)
    return render.encode(pixels, media_type, quality)


def frame_indexes(context: ServerContext, public_id: str) -> list[int]:
    """Orthanc's ``/frames``: 0..NumberOfFrames-1 (one frame when the tag is absent)."""
    ds = dataset_of(context, public_id, stop_before_pixels=True)
    return list(range(decode.frame_count(ds)))


def matlab(context: ServerContext, public_id: str, frame: int) -> str:
    _ds, decoded = decoded_frame(context, public_id, frame)
    return render.matlab(decoded)


# --- raw frames (no decoding) --------------------------------------------------------------

_RAW_MIME = {"1.2.840.10008.1.2.4.50": "image/jpeg", "1.2.840.10008.1.2.4.90": "image/jp2",
             "1.2.840.10008.1.2.4.91": "image/jp2"}


def raw_frame(context: ServerContext, public_id: str, frame: int,
              compressed: bool = False) -> tuple[bytes, str]:
    """The stored bytes of one frame (Orthanc's ``/frames/{n}/raw``): the fragments of an
    encapsulated frame, the native values (little endian) otherwise; gzipped with
    *compressed* (``raw.gz``)."""
    ds = dataset_of(context, public_id)
    count = decode.frame_count(ds)
    if not 0 <= frame < count:
        raise ParameterOutOfRange(f"Frame {frame} is out of range (this instance has {count})")
    syntax = decode.transfer_syntax(ds)
    element = ds["PixelData"] if "PixelData" in ds else None
    if element is not None and element.is_undefined_length and syntax not in decode.NATIVE:
        data = decode.encapsulated_frame(ds, frame)
    elif element is not None or decode.is_pmsct_rle1(ds):
        try:
            info = decode.ImageInfo.of(ds)
        except decode.NotDecodable as error:
            raise BadFileFormat(str(error)) from error
        native = decode._native_bytes(ds, info)  # noqa: SLF001 — same module family
        if len(native) < info.frame_size * count:
            raise BadFileFormat("The pixel data is shorter than the image attributes announce")
        data = native[frame * info.frame_size:(frame + 1) * info.frame_size]
    else:
        raise BadFileFormat("This instance has no pixel data")
    if compressed:
        return gzip.compress(data), "application/gzip"
    return data, _RAW_MIME.get(syntax, "application/octet-stream")


# --- numpy ---------------------------------------------------------------------------------


def numpy_frame(context: ServerContext, public_id: str, frame: int, rescale: bool,
                compress: bool) -> bytes:
    ds, decoded = decoded_frame(context, public_id, frame)
    values = render.numpy_values(ds, decoded, frame, rescale)
    return render.numpy_file(values, depth=False, compress=compress)


def _instance_frames(context: ServerContext, ds: Dataset, rescale: bool,
                     count: int | None = None) -> list[np.ndarray]:
    frames = decode.frame_count(ds) if count is None else count
    extended = _extended(context)
    return [render.numpy_values(ds, decode.decode_frame(ds, i, extended=extended), i, rescale)
            for i in range(frames)]


def instance_numpy(context: ServerContext, public_id: str, rescale: bool,
                   compress: bool) -> bytes:
    """All the frames of an instance: (frames, rows, columns, channels)."""
    ds = dataset_of(context, public_id)
    if decode.frame_count(ds) == 0:
        raise BadFileFormat("Empty DICOM instance")
    frames = _instance_frames(context, ds, rescale)
    return render.numpy_file(frames, depth=True, compress=compress)


def series_numpy(context: ServerContext, public_id: str, rescale: bool,
                 compress: bool) -> bytes:
    """The frames of a series' instances in Orthanc's slice order."""
    ordering = slice_ordering(context, public_id)
    frames: list[np.ndarray] = []
    for slice_ in ordering.instances:
        ds = read_dataset(read_file(context, slice_.row))
        frames.extend(_instance_frames(context, ds, rescale, slice_.frames))
    if not frames:
        raise BadFileFormat("This series has no frame")
    return render.numpy_file(frames, depth=True, compress=compress)


# --- slice ordering (Orthanc's SliceOrdering) ----------------------------------------------


@dataclass
class _Slice:
    row: Any
    public_id: str
    frames: int
    position: tuple[float, float, float] | None
    normal: tuple[float, float, float] | None
    index: int | None


@dataclass
class SliceOrdering:
    instances: list[_Slice]
    is_volume: bool

    def to_json(self) -> dict[str, Any]:
        """``/series/{id}/ordered-slices``."""
        return {
            "Type": "Volume" if self.is_volume else "Sequence",
            "Dicom": [f"/instances/{s.public_id}/file" for s in self.instances],
            "Slices": [f"/instances/{s.public_id}/frames/{j}"
                       for s in self.instances for j in range(s.frames)],
            "SlicesShort": [[s.public_id, 0, s.frames] for s in self.instances],
        }


def _vector(text: str | None, size: int) -> tuple[float, ...] | None:
    if not text:
        return None
    tokens = text.split("\\")
    if len(tokens) != size:
        return None
    try:
        values = tuple(float(np.float32(t.strip())) for t in tokens)
    except ValueError:
        return None
    return values if all(math.isfinite(v) for v in values) else None


def _normal(orientation: str | None) -> tuple[float, float, float] | None:
    c = _vector(orientation, 6)
    if c is None:
        return None
    f = np.float32
    return (float(f(c[1]) * f(c[5]) - f(c[2]) * f(c[4])),
            float(f(c[2]) * f(c[3]) - f(c[0]) * f(c[5])),
            float(f(c[0]) * f(c[4]) - f(c[1]) * f(c[3])))


_EPSILON = 10.0 * float(np.finfo(np.float32).eps)


def _parallel(u: tuple[float, ...], v: tuple[float, ...]) -> bool:
    norm_u, norm_v = math.sqrt(sum(x * x for x in u)), math.sqrt(sum(x * x for x in v))
    if abs(norm_u * norm_v) < _EPSILON:
        return False
    cosine = sum(a * b for a, b in zip(u, v, strict=True)) / (norm_u * norm_v)
    return abs(cosine - 1.0) < _EPSILON or abs(abs(cosine) - 1.0) < _EPSILON


def slice_ordering(context: ServerContext, public_id: str) -> SliceOrdering:
    """Orthanc's ``SliceOrdering``: by position along the series' normal when every slice
    has a distinct position (a volume), else by IndexInSeries (a sequence)."""
    with context.db.read() as conn:
        series = get_row_or_404(conn, Level.SERIES, public_id)
        rows = repository.instances_below(conn, Level.SERIES, series.pk)
    series_tags = orjson.loads(series.main_tags) if series.main_tags else {}
    normal = _normal(series_tags.get("ImageOrientationPatient"))
    slices = []
    for row in rows:
        tags = orjson.loads(row.main_tags) if row.main_tags else {}
        try:
            frames = int(str(tags.get("NumberOfFrames", "1")).strip() or 1)
        except ValueError:
            frames = 1
        position = _vector(tags.get("ImagePositionPatient"), 3)
        slices.append(_Slice(row, row.public_id, frames, position,  # type: ignore[arg-type]
                             _normal(tags.get("ImageOrientationPatient")),
                             row.index_in_series))
    ordered = _by_position(slices, normal)
    if ordered is not None:
        return SliceOrdering(ordered, len(slices) > 1)
    if len(slices) <= 1 or all(s.index is not None for s in slices):
        return SliceOrdering(sorted(slices, key=lambda s: s.index or 0), False)
    raise CannotOrderSlices(f"Unable to order the slices of series {public_id}")


def _by_position(slices: list[_Slice], normal: tuple[float, float, float] | None
                 ) -> list[_Slice] | None:
    if len(slices) <= 1:
        return slices
    if normal is None:
        return None
    for s in slices:
        if s.position is None or (s.normal is not None and not _parallel(s.normal, normal)):
            return None
    f = np.float32

    def projection(s: _Slice) -> float:
        assert s.position is not None
        return float(f(normal[0]) * f(s.position[0]) + f(normal[1]) * f(s.position[1])
                     + f(normal[2]) * f(s.position[2]))

    ordered = sorted(slices, key=projection)
    for previous, current in zip(ordered, ordered[1:], strict=False):
        if abs(projection(current) - projection(previous)) <= _EPSILON:
            return None
    return ordered
