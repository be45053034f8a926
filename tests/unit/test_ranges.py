"""Byte ranges of HTTP requests and frame offsets of uncompressed files (pure functions)."""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from pydicom.uid import ImplicitVRLittleEndian, RLELossless

from app.api.blob_responses import Unsatisfiable, byte_range
from app.dicom.frame_ranges import PrefixTooShort, frame_layout
from tests.helpers import make_dicom


def test_byte_range_forms() -> None:
    assert byte_range(None, 100) is None
    assert byte_range("bytes=0-9", 100) == (0, 9)
    assert byte_range("bytes=90-", 100) == (90, 99)
    assert byte_range("bytes=-10", 100) == (90, 99)
    assert byte_range("bytes=-500", 100) == (0, 99)
    assert byte_range("bytes=50-5000", 100) == (50, 99)
    for ignored in ("bytes=0-1,4-5", "items=0-1", "bytes=9-3", "bytes=-", "garbage"):
        assert byte_range(ignored, 100) is None
    for unsatisfiable in ("bytes=100-", "bytes=150-160", "bytes=-0"):
        with pytest.raises(Unsatisfiable):
            byte_range(unsatisfiable, 100)
    with pytest.raises(Unsatisfiable):
        byte_range("bytes=0-", 0)


def _frames_file(frames: int = 5, rows: int = 32, **extra: object) -> tuple[bytes, np.ndarray]:
    pixels = np.arange(frames * rows * rows, dtype="<u2").reshape(frames, rows, rows)
    return make_dicom(size=rows, pixels=pixels.tobytes(), NumberOfFrames=frames,
                      **extra), pixels


def test_frame_layout_of_an_uncompressed_multiframe() -> None:
    data, pixels = _frames_file()
    layout = frame_layout(data, len(data))
    assert layout is not None and layout.count == 5
    for number in (1, 3, 5):
        offset, length = layout.span(number)
        assert data[offset:offset + length] == pixels[number - 1].tobytes()
    # A prefix reaching into the pixel data is enough; one ending before it is not.
    assert frame_layout(data[:layout.offset + 10], len(data)) == layout
    with pytest.raises(PrefixTooShort):
        frame_layout(data[:200], len(data))


def test_frame_layout_implicit_vr_little_endian() -> None:
    data, pixels = _frames_file()
    ds = pydicom.dcmread(io.BytesIO(data))
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    buffer = io.BytesIO()
    ds.save_as(buffer, implicit_vr=True, little_endian=True)
    implicit = buffer.getvalue()
    layout = frame_layout(implicit, len(implicit))
    assert layout is not None
    offset, length = layout.span(2)
    assert implicit[offset:offset + length] == pixels[1].tobytes()


def test_frame_layout_refuses_what_is_not_plain_slices() -> None:
    data, _ = _frames_file()
    ds = pydicom.dcmread(io.BytesIO(data))
    ds.compress(RLELossless)
    buffer = io.BytesIO()
    ds.save_as(buffer)
    assert frame_layout(buffer.getvalue(), len(buffer.getvalue())) is None  # compressed
    no_pixels = pydicom.dcmread(io.BytesIO(data))
    del no_pixels.PixelData
    buffer = io.BytesIO()
    no_pixels.save_as(buffer)
    assert frame_layout(buffer.getvalue(), len(buffer.getvalue())) is None
    truncated, _ = _frames_file()
    assert frame_layout(truncated[:-100], len(truncated) - 100) is None  # inconsistent
