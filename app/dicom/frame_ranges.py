"""Where the frames of an uncompressed file lie, from its first bytes only.

WADO-RS frame requests on a large uncompressed multi-frame file (a 2,000-frame XA, a
whole-slide level) need a few frames, not the file: the header tells where the pixel
data starts and how long a frame is, and the blob store reads just those byte ranges
(one ranged GET per frame on S3). Pure function over bytes: no I/O here.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from pydicom import dcmread
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

# Native little-endian syntaxes: frames are plain byte slices of the pixel data (big
# endian needs swapping, deflate needs inflating: those files are read whole).
RANGED_SYNTAXES = frozenset({ExplicitVRLittleEndian, ImplicitVRLittleEndian})
_PIXEL_DATA = 0x7FE00010
_UNDEFINED_LENGTH = 0xFFFFFFFF


@dataclass(frozen=True)
class FrameLayout:
    """Frame *n* (1-based) is ``[offset + (n - 1) * frame_size, ... + frame_size)``."""

    offset: int
    frame_size: int
    count: int

    def span(self, number: int) -> tuple[int, int]:
        return self.offset + (number - 1) * self.frame_size, self.frame_size


class PrefixTooShort(Exception):
    """The bytes given end before the pixel data element: read more of the file."""


def frame_layout(prefix: bytes, file_size: int) -> FrameLayout | None:
    """The frame layout of a Part 10 file whose first bytes are *prefix*, or None when
    its frames are not plain slices (compressed, big endian, bit-packed, no PixelData).

    Raises PrefixTooShort when the prefix does not reach the pixel data element.
    """
    try:
        # defer_size: the values of large elements are skipped (not read), so the pixel
        # data element is found even when the prefix ends inside its value.
        dataset = dcmread(io.BytesIO(prefix), defer_size=256)
    except Exception as error:  # noqa: BLE001 — pydicom ran out of bytes mid-header
        raise PrefixTooShort(str(error)) from error
    short = len(prefix) < file_size
    syntax = (getattr(dataset, "file_meta", None) or {}).get("TransferSyntaxUID")
    if syntax is None or _PIXEL_DATA not in dataset:
        if short:
            raise PrefixTooShort("the bytes read so far end before the pixel data")
        return None
    if str(syntax) not in RANGED_SYNTAXES:
        return None
    element = dataset.get_item(_PIXEL_DATA, keep_deferred=True)
    # A deferred element is read raw: its value's offset and length in the file.
    value_offset = getattr(element, "value_tell", None)
    length = getattr(element, "length", None)
    if value_offset is None or length in (None, _UNDEFINED_LENGTH):
        return None
    try:
        bits = int(dataset.BitsAllocated)
        frame_bits = int(dataset.Rows) * int(dataset.Columns) * \
            int(dataset.get("SamplesPerPixel", 1) or 1) * bits
        count = max(int(dataset.get("NumberOfFrames", 1) or 1), 1)
    except (AttributeError, TypeError, ValueError):
        return None
    if bits == 1 or frame_bits == 0 or frame_bits % 8:
        return None  # bit-packed frames do not start on byte boundaries
    frame_size = frame_bits // 8
    if length < count * frame_size or value_offset + count * frame_size > file_size:
        return None  # inconsistent header: let the whole-file path report it
    return FrameLayout(value_offset, frame_size, count)
