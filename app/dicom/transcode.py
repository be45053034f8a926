"""Minimal transcoding for DICOMweb: any stored syntax -> Explicit VR Little Endian.

WADO-RS serves stored files as they are unless the client asks for an uncompressed
syntax (PS3.18 8.7.3.5); then the pixel data is decoded with pydicom's pixel backends
(pylibjpeg-libjpeg, -openjpeg, -rle) and the file is re-encoded uncompressed.
"""

from __future__ import annotations

import io

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from app.dicom.limits import check_pixel_decode
from app.dicom.render import UnsupportedImage

NATIVE_SYNTAXES = frozenset({ExplicitVRLittleEndian, ImplicitVRLittleEndian,
                             "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.2"})


def to_explicit_little_endian(data: bytes, target: str = ExplicitVRLittleEndian) -> bytes:
    """A Part 10 file re-encoded in *target* (Explicit or Implicit VR Little Endian)."""
    ds = pydicom.dcmread(io.BytesIO(data))
    _decompress(ds)
    ds.file_meta.TransferSyntaxUID = target
    buffer = io.BytesIO()
    ds.save_as(buffer, implicit_vr=target == ImplicitVRLittleEndian, little_endian=True,
               enforce_file_format=True)
    return buffer.getvalue()


def _decompress(ds: Dataset) -> None:
    syntax = ds.file_meta.TransferSyntaxUID
    if syntax in NATIVE_SYNTAXES or "PixelData" not in ds:
        return
    check_pixel_decode(ds)
    try:
        ds.decompress()
    except Exception as error:  # noqa: BLE001 — a codec missing or failing
        raise UnsupportedImage(f"Cannot decompress pixel data stored as {syntax}: {error}") \
            from error


def native_frames(ds: Dataset) -> list[bytes]:
    """Every frame as uncompressed little-endian bytes (what application/octet-stream
    means by default, PS3.18 8.7.3.5.2), decoding compressed pixel data when needed."""
    syntax = ds.file_meta.TransferSyntaxUID
    count = int(ds.get("NumberOfFrames", 1) or 1)
    if syntax in NATIVE_SYNTAXES and syntax != "1.2.840.10008.1.2.2":
        raw = ds.PixelData
        bits = int(ds.BitsAllocated)
        per_frame_bits = int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel", 1)) * bits
        if bits == 1 or per_frame_bits % 8:
            # Bit-packed frames do not start on byte boundaries: unpack then repack each.
            flat = np.unpackbits(np.frombuffer(raw, np.uint8), bitorder="little")
            size = per_frame_bits
            return [np.packbits(flat[i * size:(i + 1) * size], bitorder="little").tobytes()
                    for i in range(count)]
        size = per_frame_bits // 8
        return [bytes(raw[i * size:(i + 1) * size]) for i in range(count)]
    for keyword, default in (("PixelRepresentation", 0), ("SamplesPerPixel", 1)):
        if keyword not in ds:  # Type 1 but absent from some real files (DCMTK assumes these)
            setattr(ds, keyword, default)
    check_pixel_decode(ds)
    try:
        array = ds.pixel_array
    except Exception as error:  # noqa: BLE001
        raise UnsupportedImage(f"Cannot decode pixel data stored as {syntax}: {error}") \
            from error
    if count == 1:
        array = array[np.newaxis, ...]
    little = array.astype(array.dtype.newbyteorder("<"), copy=False)
    return [np.ascontiguousarray(frame).tobytes() for frame in little]
