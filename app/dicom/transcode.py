"""Transcoding for DICOMweb (PS3.18 8.7.3.5): frames and whole files in another syntax.

Decoding is the one of :mod:`app.dicom.decode` (codecs chosen to give DCMTK's values: a
lossy JPEG's YCbCr comes out as RGB, as Orthanc's DCMTK transcoder gives it). Encoding:

* native: Explicit and Implicit VR Little Endian (frames: little-endian samples);
* JPEG Baseline (1.2.840.10008.1.2.4.50) and Extended (.51) of 8-bit images through
  libjpeg-turbo (Pillow) at quality 90 with the standard Huffman tables, colour as YCbCr
  4:2:2: the bytes DCMTK's encoder (Orthanc's ``DicomLossyTranscodingQuality`` 90)
  writes, a fill byte making each fragment even;
* JPEG Lossless (.57, selection value 6 as DCMTK's default) and Lossless SV1 (.70) of 2
  to 16-bit images through :mod:`app.dicom.jpeg_lossless`, byte for byte DCMTK's;
* RLE Lossless and JPEG 2000 (lossless and lossy) through pydicom's encoders;
* anything else (JPEG-LS needs CharLS's Python binding, absent here): not encodable,
  which the DICOMweb negotiation turns into a 400.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import pydicom
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate, generate_frames
from pydicom.uid import (
    JPEG2000,
    UID,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    RLELossless,
)

from app.dicom import decode, jpeg_lossless
from app.dicom.decode import UnsupportedImage
from app.dicom.limits import check_pixel_decode
from app.errors import BadRequest

EXPLICIT_BIG_ENDIAN = "1.2.840.10008.1.2.2"
NATIVE_SYNTAXES = frozenset({ExplicitVRLittleEndian, ImplicitVRLittleEndian,
                             "1.2.840.10008.1.2.1.99", EXPLICIT_BIG_ENDIAN})
NATIVE_OUTPUT = frozenset({ExplicitVRLittleEndian, ImplicitVRLittleEndian})
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
JPEG_EXTENDED = "1.2.840.10008.1.2.4.51"
JPEG_LOSSY = frozenset({JPEG_BASELINE, JPEG_EXTENDED})
# The selection values DCMTK (Orthanc's transcoder) uses by default.
JPEG_LOSSLESS = {"1.2.840.10008.1.2.4.57": 6, "1.2.840.10008.1.2.4.70": 1}
PYDICOM_ENCODED = frozenset({RLELossless, JPEG2000Lossless, JPEG2000})
ENCODABLE = NATIVE_OUTPUT | JPEG_LOSSY | set(JPEG_LOSSLESS) | PYDICOM_ENCODED
JPEG_QUALITY = 90  # Orthanc's DicomLossyTranscodingQuality default


class CannotEncode(BadRequest):
    """These pixels cannot be written in the asked syntax (a 12-bit image in lossy JPEG,
    an image too small for OpenJPEG...): 400, the client asked for what cannot be."""


def can_encode(syntax: str) -> bool:
    return syntax in ENCODABLE


# --- decoding -------------------------------------------------------------------------------

def _complete(ds: Dataset) -> None:
    for keyword, default in (("PixelRepresentation", 0), ("SamplesPerPixel", 1)):
        if keyword not in ds:  # Type 1 but absent from some real files (DCMTK assumes these)
            setattr(ds, keyword, default)


def frame_samples(ds: Dataset, index: int) -> np.ndarray:
    """Frame *index* (from 0): (rows, columns) or (rows, columns, samples), interleaved."""
    _complete(ds)
    syntax = str(ds.file_meta.TransferSyntaxUID)
    try:
        if syntax in NATIVE_SYNTAXES:
            check_pixel_decode(ds, index)
            return pydicom.pixels.pixel_array(ds, index=index)
        return decode.codec_samples(ds, index)
    except UnsupportedImage:
        raise
    except Exception as error:  # noqa: BLE001 — a codec missing or failing
        raise UnsupportedImage(f"Cannot decode pixel data stored as {syntax}: {error}") \
            from error


def decoded_photometric(ds: Dataset) -> str:
    """The photometric interpretation of decoded samples: lossy JPEG's YCbCr is RGB."""
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip()
    syntax = str(ds.file_meta.TransferSyntaxUID)
    if syntax in decode.JPEG_LOSSY and photometric.startswith("YBR") and \
            int(ds.get("BitsStored", 8) or 8) <= 8:
        return "RGB"
    return photometric


def _little_endian(samples: np.ndarray, ds: Dataset) -> bytes:
    bits = int(ds.get("BitsAllocated", 8) or 8)
    signed = int(ds.get("PixelRepresentation", 0) or 0) == 1
    dtype = {8: "i1" if signed else "u1", 16: "<i2" if signed else "<u2",
             32: "<i4" if signed else "<u4"}.get(bits)
    if dtype is None:
        raise UnsupportedImage(f"Cannot write {bits}-bit samples")
    return np.ascontiguousarray(samples).astype(dtype, copy=False).tobytes()


def native_frames(ds: Dataset, numbers: Sequence[int] | None = None) -> list[bytes]:
    """Frames *numbers* (from 1; all by default) as uncompressed little-endian bytes (what
    application/octet-stream means by default, PS3.18 8.7.3.5.2). Native little-endian
    frames are the stored bytes; others are decoded, one frame at a time."""
    syntax = str(ds.file_meta.TransferSyntaxUID)
    count = decode.frame_count(ds)
    numbers = list(numbers) if numbers is not None else list(range(1, count + 1))
    if syntax in NATIVE_SYNTAXES and syntax != EXPLICIT_BIG_ENDIAN:
        raw = ds.PixelData
        bits = int(ds.BitsAllocated)
        per_frame_bits = int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel", 1)) \
            * bits
        if bits == 1 or per_frame_bits % 8:
            # Bit-packed frames do not start on byte boundaries: unpack then repack each.
            flat = np.unpackbits(np.frombuffer(raw, np.uint8), bitorder="little")
            size = per_frame_bits
            return [np.packbits(flat[(n - 1) * size:n * size], bitorder="little").tobytes()
                    for n in numbers]
        size = per_frame_bits // 8
        return [bytes(raw[(n - 1) * size:n * size]) for n in numbers]
    return [_little_endian(frame_samples(ds, n - 1), ds) for n in numbers]


# --- encoding -------------------------------------------------------------------------------

def encode_frame(samples: np.ndarray, ds: Dataset, photometric: str, target: str) -> bytes:
    """One frame's samples (decoded, *photometric*) in the compressed *target* syntax."""
    if target in JPEG_LOSSY:
        return _jpeg_lossy(samples, ds, photometric, target)
    if target in JPEG_LOSSLESS:
        # DCMTK codes with the allocated bits (a 12-bit CT: precision 16).
        precision = int(ds.get("BitsAllocated", 8) or 8) if samples.ndim == 2 else 8
        if samples.dtype.kind == "i":
            samples = samples.view(samples.dtype.str.replace("i", "u"))
        try:
            return jpeg_lossless.encode(samples, precision, JPEG_LOSSLESS[target])
        except ValueError as error:
            raise CannotEncode(str(error)) from error
    if target in PYDICOM_ENCODED:
        return _pydicom_frame(samples, ds, photometric, target)
    raise CannotEncode(f"Pharos cannot encode pixel data in {target}")


def encoded_photometric(photometric: str, samples: int, target: str) -> str:
    """The photometric interpretation of frames encoded in *target*."""
    if target in JPEG_LOSSY and samples == 3:
        return "YBR_FULL_422"
    return photometric


def _jpeg_lossy(samples: np.ndarray, ds: Dataset, photometric: str, target: str) -> bytes:
    if int(ds.get("BitsStored", 8) or 8) > 8 or samples.dtype.itemsize > 1 and \
            samples.max(initial=0) > 255:
        raise CannotEncode("Lossy JPEG transcoding is available for 8-bit images only")
    pixels = samples.astype(np.uint8)
    if pixels.ndim == 3 and photometric != "RGB":
        if not photometric.startswith("YBR"):
            raise CannotEncode(f"Cannot JPEG-encode {photometric} pixels")
        from pydicom.pixels import convert_color_space
        pixels = convert_color_space(pixels, photometric, "RGB")
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=JPEG_QUALITY,
                                 subsampling=1 if pixels.ndim == 3 else -1)
    stream = buffer.getvalue()
    if target == JPEG_EXTENDED:  # the same 8-bit coding, signalled as process 2 & 4
        stream = stream.replace(b"\xff\xc0", b"\xff\xc1", 1)
    return jpeg_lossless.end_of_image(stream[:-2])


def _pydicom_frame(samples: np.ndarray, ds: Dataset, photometric: str, target: str) -> bytes:
    one = Dataset()
    one.Rows, one.Columns = samples.shape[:2]
    one.SamplesPerPixel = 1 if samples.ndim == 2 else samples.shape[2]
    one.PhotometricInterpretation = photometric
    if one.SamplesPerPixel > 1:
        one.PlanarConfiguration = 0
    one.BitsAllocated = samples.dtype.itemsize * 8
    one.BitsStored = min(int(ds.get("BitsStored", one.BitsAllocated) or one.BitsAllocated),
                         one.BitsAllocated)
    one.HighBit = one.BitsStored - 1
    one.PixelRepresentation = 1 if samples.dtype.kind == "i" else 0
    one.NumberOfFrames = 1
    if samples.dtype.kind == "u" and one.BitsStored < one.BitsAllocated:
        samples = samples & ((1 << one.BitsStored) - 1)  # bits above BitsStored are not pixels
    options = {"j2k_cr": [10]} if target == JPEG2000 else {}  # lossy: ratio 10
    try:
        one.compress(UID(target), np.ascontiguousarray(samples), **options)
    except Exception as error:  # noqa: BLE001 — the encoder refuses these pixels
        raise CannotEncode(f"Cannot encode these pixels in {target}: {error}") from error
    return next(generate_frames(one.PixelData, number_of_frames=1))


def frames(ds: Dataset, numbers: Sequence[int], target: str) -> list[bytes]:
    """Frames *numbers* (from 1) in *target*: the stored fragments when *target* is the
    stored compressed syntax, little-endian samples for a native one, else encoded."""
    stored = str(ds.file_meta.TransferSyntaxUID)
    count = decode.frame_count(ds)
    if target == stored and stored not in NATIVE_SYNTAXES:
        encoded = list(generate_frames(ds.PixelData, number_of_frames=count))
        return [encoded[n - 1] for n in numbers]
    if target in NATIVE_OUTPUT or target == EXPLICIT_BIG_ENDIAN:
        return native_frames(ds, numbers)
    photometric = decoded_photometric(ds)
    return [encode_frame(frame_samples(ds, n - 1), ds, photometric, target) for n in numbers]


# --- whole files ----------------------------------------------------------------------------

def transcode(data: bytes, target: str, stored: str | None = None) -> bytes:
    """A Part 10 file in *target* (native or compressed), other attributes kept. *stored*
    is the syntax of a file without Part 10 header (stored as received)."""
    ds = pydicom.dcmread(io.BytesIO(data), force=True)
    if "TransferSyntaxUID" not in ds.file_meta:
        ds.file_meta.TransferSyntaxUID = stored or ImplicitVRLittleEndian
    stored = str(ds.file_meta.TransferSyntaxUID)
    if "PixelData" in ds and target != stored:
        if target in NATIVE_OUTPUT and stored in NATIVE_SYNTAXES:
            _native_to_little_endian(ds)
        else:
            _replace_pixel_data(ds, target)
    ds.file_meta.TransferSyntaxUID = target
    if stored == EXPLICIT_BIG_ENDIAN:
        # Every element decoded from big endian (the pixels were swapped above), so that
        # writing little endian encodes them anew.
        for _ in ds.iterall():
            pass
        ds.set_original_encoding(False, True, ds.get("SpecificCharacterSet"))
    buffer = io.BytesIO()
    ds.save_as(buffer, implicit_vr=target == ImplicitVRLittleEndian, little_endian=True,
               enforce_file_format=True)
    return buffer.getvalue()


def to_explicit_little_endian(data: bytes, target: str = ExplicitVRLittleEndian) -> bytes:
    """A Part 10 file re-encoded in Explicit (or Implicit) VR Little Endian."""
    return transcode(data, target)


def _native_to_little_endian(ds: Dataset) -> None:
    if str(ds.file_meta.TransferSyntaxUID) == EXPLICIT_BIG_ENDIAN and \
            int(ds.get("BitsAllocated", 8) or 8) > 8:
        _complete(ds)
        ds.PixelData = b"".join(native_frames(ds))
        ds["PixelData"].VR = "OW"


def _replace_pixel_data(ds: Dataset, target: str) -> None:
    check_pixel_decode(ds)
    count = decode.frame_count(ds)
    photometric = decoded_photometric(ds)
    samples = [frame_samples(ds, index) for index in range(count)]
    channels = 1 if samples[0].ndim == 2 else samples[0].shape[2]
    if target in NATIVE_OUTPUT:
        ds.PixelData = b"".join(_little_endian(frame, ds) for frame in samples)
        ds["PixelData"].VR = "OW" if int(ds.get("BitsAllocated", 8) or 8) > 8 else "OB"
        ds["PixelData"].is_undefined_length = False
        ds.PhotometricInterpretation = photometric
    else:
        fragments = [encode_frame(frame, ds, photometric, target) for frame in samples]
        ds.PixelData = encapsulate(fragments, has_bot=True)
        ds["PixelData"].VR = "OB"
        ds["PixelData"].is_undefined_length = True
        ds.PhotometricInterpretation = encoded_photometric(photometric, channels, target)
        if target in JPEG_LOSSY:
            ds.LossyImageCompression = "01"
            ds.LossyImageCompressionMethod = "ISO_10918_1"
    if channels > 1:
        ds.PlanarConfiguration = 0
