"""Decoded images of instances and series: previews, truncated values, numpy arrays."""

from __future__ import annotations

import io

import numpy as np
from pydicom.dataset import Dataset

from app.dicom import render
from app.dicom.levels import Level
from app.dicom.parse import read_dataset
from app.index import repository
from app.services.browse import get_row_or_404
from app.services.context import ServerContext
from app.services.instances import dataset_of, read_file


def image(context: ServerContext, public_id: str, frame: int, mode: str, media_type: str,
          *, quality: int = 90, center: float | None = None, width: float | None = None,
          viewport: tuple[int | None, int | None] = (None, None)) -> bytes:
    """One frame as PNG/JPEG/PAM in Orthanc's ``preview``/``uint8``/``uint16``/``int16``
    modes, or ``rendered`` (windowed, fitted in a viewport)."""
    ds = dataset_of(context, public_id)
    decoded = render.decode_frame(ds, frame)
    if mode == "preview":
        pixels = render.preview(decoded)
    elif mode == "rendered":
        pixels = render.fit_viewport(render.window(ds, decoded, center, width), *viewport)
    else:
        pixels = render.truncate(decoded, mode)
    return render.encode(pixels, media_type, quality)


def frame_indexes(context: ServerContext, public_id: str) -> list[int]:
    ds = dataset_of(context, public_id, stop_before_pixels=False)
    return list(range(render.frame_count(ds)))


def _as_float(ds: Dataset, array: np.ndarray, rescale: bool) -> np.ndarray:
    if not rescale:
        return array
    slope = float(ds.get("RescaleSlope", 1) or 1)
    intercept = float(ds.get("RescaleIntercept", 0) or 0)
    return array.astype(np.float32) * np.float32(slope) + np.float32(intercept)


def _with_channels(array: np.ndarray) -> np.ndarray:
    """(frames, rows, cols[, samples]) -> (frames, rows, cols, channels)."""
    return array if array.ndim == 4 else array[..., np.newaxis]


def instance_numpy(context: ServerContext, public_id: str, rescale: bool = True) -> np.ndarray:
    ds = dataset_of(context, public_id)
    array = render.decode_all(ds)
    if array.ndim == 4:
        # Orthanc rescales greyscale values only; colour is RGB24 (16-bit palettes: high byte).
        if array.dtype != np.uint8:
            array = (array.astype(np.uint32) >> 8).astype(np.uint8)
        return array
    return _with_channels(_as_float(ds, array, rescale))


def series_numpy(context: ServerContext, public_id: str, rescale: bool = True) -> np.ndarray:
    """Slices of a series stacked along the normal (ImagePositionPatient), else by index."""
    with context.db.read() as conn:
        row = get_row_or_404(conn, Level.SERIES, public_id)
        instances = repository.instances_below(conn, Level.SERIES, row.pk)
    slices = []
    for instance in instances:
        ds = read_dataset(read_file(context, instance))
        slices.append((_slice_key(ds, instance.index_in_series),
                       _with_channels(_as_float(ds, render.decode_all(ds), rescale))))
    if not slices:
        return np.zeros((0, 0, 0, 1), np.float32)
    slices.sort(key=lambda item: item[0])
    return np.concatenate([s for _, s in slices], axis=0)


def _slice_key(ds: Dataset, index: int | None) -> tuple[float, int]:
    try:
        position = [float(v) for v in ds.ImagePositionPatient]
        orientation = [float(v) for v in ds.ImageOrientationPatient]
        normal = np.cross(orientation[:3], orientation[3:])
        return float(np.dot(normal, position)), index or 0
    except (AttributeError, TypeError, ValueError):
        return float(index or 0), index or 0


def to_npy(array: np.ndarray, compress: bool) -> bytes:
    buffer = io.BytesIO()
    if compress:
        np.savez_compressed(buffer, arr_0=array)
    else:
        np.save(buffer, array)
    return buffer.getvalue()


