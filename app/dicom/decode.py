"""Decoding one frame as Orthanc's built-in decoder does (``DicomImageDecoder``).

Orthanc's image routes answer from an image in one of a few pixel formats (8/16/32-bit
grey, signed 16-bit grey, RGB24, RGB48); what decodes, into which format and with which
values is decided by the image attributes exactly as in Orthanc, so that ``/preview``,
``/image-uint16``, ``/matlab``, ``/numpy`` give the same values (and, encoded, the same
bytes) as Orthanc:

* native pixel data (implicit/explicit little endian, big endian, deflated): the stored
  values shifted right by ``HighBit + 1 - BitsStored``; planar colour, 1-bit (DICOM SEG)
  and other layouts through the per-sample accessor, which masks ``BitsStored`` bits and
  extends the sign (PS3.5 8.1.1);
* ``PALETTE COLOR`` with the two palettes Orthanc knows (256 x 16-bit entries for 8-bit
  pixels, 65536 for 16-bit pixels) into RGB24 / RGB48;
* the private Philips/Elscint ``PMSCT_RLE1`` compression (pixel data in (07a1,100a));
* encapsulated JPEG (all processes), JPEG-LS and RLE, one frame at a time, through
  maintained codecs: libjpeg-turbo (Pillow) for 8-bit lossy JPEG, whose YCbCr to RGB
  conversion is the same as the IJG library in DCMTK; GDCM for 12-bit lossy JPEG;
  CharLS/libjpeg (pylibjpeg) for lossless JPEG and JPEG-LS; pylibjpeg-rle for RLE.

Anything else (JPEG 2000, uncompressed YBR, unusual palettes...) is what Orthanc cannot
decode without a plugin: :class:`NotDecodable` (415 in the image routes) unless
``extended`` asks for pydicom's generic decoding, which Pharos' ``ExtendedImageDecoding``
option turns on.
"""

from __future__ import annotations

import io
import os
import tempfile
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from app.dicom.limits import check_pixel_decode
from app.errors import BadFileFormat, ParameterOutOfRange

# Transfer syntaxes whose pixel data is native (PS3.5 A.1-A.5).
IMPLICIT_LITTLE = "1.2.840.10008.1.2"
EXPLICIT_LITTLE = "1.2.840.10008.1.2.1"
DEFLATED = "1.2.840.10008.1.2.1.99"
EXPLICIT_BIG = "1.2.840.10008.1.2.2"
NATIVE = frozenset({IMPLICIT_LITTLE, EXPLICIT_LITTLE, DEFLATED, EXPLICIT_BIG})
JPEG_LOSSY = frozenset({"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51",
                        "1.2.840.10008.1.2.4.53", "1.2.840.10008.1.2.4.55"})
JPEG_LOSSLESS = frozenset({"1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70"})
JPEG_LS = frozenset({"1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"})
RLE = "1.2.840.10008.1.2.5"
VIDEO = frozenset({"1.2.840.10008.1.2.4.100", "1.2.840.10008.1.2.4.101",
                   "1.2.840.10008.1.2.4.102", "1.2.840.10008.1.2.4.103",
                   "1.2.840.10008.1.2.4.104", "1.2.840.10008.1.2.4.105",
                   "1.2.840.10008.1.2.4.106", "1.2.840.10008.1.2.4.107",
                   "1.2.840.10008.1.2.4.108"})

# The private compression of Philips (Elscint) CT scanners.
PMSCT_TYPE_TAG = 0x07A11011  # "Tamar Compression Type", "PMSCT_RLE1"
PMSCT_CONTENT_TAG = 0x07A1100A


class UnsupportedImage(BadFileFormat):
    """Pixel data Pharos cannot decode: 415 (Orthanc's image routes answer so)."""

    http_status = 415


class NotDecodable(UnsupportedImage):
    """What Orthanc's built-in decoder refuses (its ``NotImplemented``)."""


class FrameOutOfRange(ParameterOutOfRange):
    """A frame number past the last frame."""


class PixelFormat(StrEnum):
    """Orthanc's ``PixelFormat`` values for decoded frames."""

    GRAY8 = "Grayscale8"
    GRAY16 = "Grayscale16"
    SIGNED_GRAY16 = "SignedGrayscale16"
    GRAY32 = "Grayscale32"
    RGB24 = "RGB24"
    RGB48 = "RGB48"
    FLOAT32 = "Float32"


DTYPES: dict[PixelFormat, np.dtype] = {
    PixelFormat.GRAY8: np.dtype(np.uint8), PixelFormat.GRAY16: np.dtype(np.uint16),
    PixelFormat.SIGNED_GRAY16: np.dtype(np.int16), PixelFormat.GRAY32: np.dtype(np.uint32),
    PixelFormat.RGB24: np.dtype(np.uint8), PixelFormat.RGB48: np.dtype(np.uint16),
    PixelFormat.FLOAT32: np.dtype(np.float32)}
COLOR_FORMATS = frozenset({PixelFormat.RGB24, PixelFormat.RGB48})


@dataclass
class DecodedImage:
    """One decoded frame: (rows, columns) or (rows, columns, 3) values of ``format``."""

    pixels: np.ndarray
    format: PixelFormat

    @property
    def is_color(self) -> bool:
        return self.format in COLOR_FORMATS

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])


def _first_int(ds: Dataset, keyword: str) -> int | None:
    """An integer attribute (its first value when multi-valued, as Orthanc reads "800\\0"),
    None when absent or empty."""
    value = ds.get(keyword)
    if isinstance(value, MultiValue | list | tuple):
        value = value[0] if len(value) else None
    if value is None or value == "":
        return None
    try:
        return int(str(value).strip().split("\\")[0])
    except ValueError as error:
        raise NotDecodable(f"Bad value of {keyword}: {value!r}") from error


@dataclass(frozen=True)
class ImageInfo:
    """The image attributes as Orthanc reads them (``DicomImageInformation``)."""

    width: int
    height: int
    samples: int
    bits_allocated: int
    bits_stored: int
    high_bit: int
    signed: bool
    planar: bool
    frames: int
    photometric: str

    @classmethod
    def of(cls, ds: Dataset) -> ImageInfo:
        photometric = str(ds.get("PhotometricInterpretation", "") or "").strip().upper()
        width, height = _first_int(ds, "Columns"), _first_int(ds, "Rows")
        bits_allocated = _first_int(ds, "BitsAllocated")
        if width is None or height is None or bits_allocated is None:
            raise NotDecodable("Rows, Columns and BitsAllocated are needed to decode an image")
        samples = _first_int(ds, "SamplesPerPixel") or 1
        bits_stored = _first_int(ds, "BitsStored") or bits_allocated
        if bits_stored > bits_allocated:
            raise NotDecodable("BitsStored is greater than BitsAllocated")
        high_bit = _first_int(ds, "HighBit")
        high_bit = bits_stored - 1 if high_bit is None else high_bit
        signed = (_first_int(ds, "PixelRepresentation") or 0) != 0
        planar = (_first_int(ds, "PlanarConfiguration") or 0) if samples > 1 else 0
        frames = 1 if "NumberOfFrames" not in ds else _first_int(ds, "NumberOfFrames")
        if bits_allocated not in (1, 8, 16, 24, 32):
            raise NotDecodable(f"Image not supported: {bits_allocated} bits allocated")
        if not frames:
            raise NotDecodable("Image not supported (no frames)")
        if planar not in (0, 1):
            raise NotDecodable(f"Image not supported: planar configuration is {planar}")
        if samples == 0:
            raise NotDecodable("Image not supported: samples per pixel is 0")
        if bits_stored == 1 and (bits_allocated != 1 or width % 8 != 0):
            raise NotDecodable("Bad layout for a black-and-white image")
        if high_bit + 1 < bits_stored or high_bit >= bits_allocated:
            raise NotDecodable("HighBit is inconsistent with BitsStored and BitsAllocated")
        return cls(width, height, samples, bits_allocated, bits_stored, high_bit, signed,
                   planar == 1, frames, photometric)

    @property
    def bytes_per_value(self) -> int:
        return self.bits_allocated // 8

    @property
    def shift(self) -> int:
        return self.high_bit + 1 - self.bits_stored

    @property
    def frame_size(self) -> int:
        """Bytes of one native frame (1-bit frames are packed)."""
        if self.bits_stored == 1:
            return self.height * self.width // 8
        return self.height * self.width * self.bytes_per_value * self.samples

    def pixel_format(self, ignore_photometric: bool) -> PixelFormat | None:
        """Orthanc's ``ExtractPixelFormat``: None when Orthanc has no format for it."""
        one, three = self.samples == 1, self.samples == 3
        if self.photometric == "PALETTE COLOR" and one and not self.signed:
            if self.bits_stored == 8:
                return PixelFormat.RGB24
            if self.bits_stored == 16:
                return PixelFormat.RGB48
        if ignore_photometric or self.photometric in ("MONOCHROME1", "MONOCHROME2"):
            if one and self.bits_stored == 8 and not self.signed:
                return PixelFormat.GRAY8
            if one and self.bits_allocated == 16:
                return PixelFormat.SIGNED_GRAY16 if self.signed else PixelFormat.GRAY16
            if one and self.bits_allocated == 32 and not self.signed:
                return PixelFormat.GRAY32
            if one and self.bits_stored == 1 and not self.signed:
                return PixelFormat.GRAY8
        if three and not self.signed and (ignore_photometric or self.photometric == "RGB"):
            if self.bits_stored == 8:
                return PixelFormat.RGB24
            if self.bits_stored == 16:
                return PixelFormat.RGB48
        return None


def transfer_syntax(ds: Dataset) -> str:
    meta = getattr(ds, "file_meta", None)
    return str(meta.get("TransferSyntaxUID", IMPLICIT_LITTLE)) if meta is not None \
        else IMPLICIT_LITTLE


def frame_count(ds: Dataset) -> int:
    """Orthanc's ``DicomFrameIndex::GetFramesCount``: NumberOfFrames, 1 when absent and
    for videos (one frame: the whole video)."""
    if transfer_syntax(ds) in VIDEO:
        return 1
    if "NumberOfFrames" not in ds:
        return 1
    try:
        count = _first_int(ds, "NumberOfFrames")
    except NotDecodable as error:
        raise BadFileFormat(str(error)) from error
    if count is None:
        return 1
    if count < 0:
        raise BadFileFormat("Negative NumberOfFrames")
    return count


def has_pixels(ds: Dataset) -> bool:
    return any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")) \
        or is_pmsct_rle1(ds)


# --- Philips PMSCT_RLE1 --------------------------------------------------------------------


def is_pmsct_rle1(ds: Dataset) -> bool:
    element = ds.get(PMSCT_TYPE_TAG)
    content = ds.get(PMSCT_CONTENT_TAG)
    if element is None or content is None or not content.value:
        return False
    value = element.value
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return str(value).strip("\0 ") == "PMSCT_RLE1"


def decode_pmsct_rle1(data: bytes, limit: int) -> bytes:
    """Philips' private scheme (as documented by GDCM's ``rle2img``): a byte run-length
    pass (0xa5, count, value: value repeated count + 1 times), then a delta pass (0x5a,
    low, high: an absolute 16-bit value; any other byte: a signed delta from the previous
    value). Output: 16-bit little-endian values, at most *limit* bytes."""
    runs = bytearray()
    position, size = 0, len(data)
    while position < size and len(runs) < limit:
        marker = data.find(b"\xa5", position)
        end = size if marker < 0 else marker
        runs += data[position:end]
        if marker < 0 or marker + 2 >= size:
            break
        runs += bytes((data[marker + 2],)) * (data[marker + 1] + 1)
        position = marker + 3
    values: list[np.ndarray] = []
    produced, previous = 0, 0
    position, size = 0, len(runs)
    target = limit // 2
    while position < size and produced < target:
        marker = runs.find(b"\x5a", position)
        end = size if marker < 0 else marker
        if end > position:
            deltas = np.frombuffer(bytes(runs[position:end]), np.int8).astype(np.int64)
            chunk = (previous + np.cumsum(deltas)) & 0xFFFF
            values.append(chunk)
            produced += len(chunk)
            previous = int(chunk[-1])
        if marker < 0 or marker + 2 >= size:
            break
        previous = runs[marker + 1] | (runs[marker + 2] << 8)
        values.append(np.array([previous], np.int64))
        produced += 1
        position = marker + 3
    if not values:
        return b""
    return np.concatenate(values)[:target].astype("<u2").tobytes()


# --- native pixel data ---------------------------------------------------------------------


def _native_bytes(ds: Dataset, info: ImageInfo) -> bytes:
    """The native pixel data in little-endian order (what DCMTK holds in memory)."""
    if "PixelData" in ds:
        raw = ds.PixelData
        if transfer_syntax(ds) == EXPLICIT_BIG:
            vr = ds["PixelData"].VR
            width = 2 if vr == "OW" and info.bits_allocated <= 16 else info.bytes_per_value
            if width > 1:
                usable = len(raw) - len(raw) % width
                raw = np.frombuffer(raw, f">u{width}", usable // width).astype(
                    f"<u{width}").tobytes()
        return bytes(raw) if not isinstance(raw, bytes) else raw
    if is_pmsct_rle1(ds):
        limit = info.frame_size * info.frames
        return decode_pmsct_rle1(bytes(ds[PMSCT_CONTENT_TAG].value), limit)
    raise BadFileFormat("This instance has no pixel data")


def _fast_path(raw: bytes, info: ImageInfo, frame: int, fmt: PixelFormat) -> np.ndarray | None:
    """Values read directly (Orthanc's fast path), when the layout allows it."""
    dtype = DTYPES[fmt]
    channels = 3 if fmt in COLOR_FORMATS else 1
    if info.planar or info.bits_stored == 1 or dtype.itemsize != info.bytes_per_value \
            or channels != info.samples:
        return None
    count = info.width * info.height * channels
    size = count * dtype.itemsize
    if (frame + 1) * size > len(raw):
        return None
    values = np.frombuffer(raw, dtype.newbyteorder("<"), count, frame * size)
    if info.shift:
        if fmt not in (PixelFormat.GRAY8, PixelFormat.GRAY16):
            return None  # Orthanc shifts unsigned grey only; the others take the slow path
        values = values >> info.shift
    values = _only_stored_bits(values, info, dtype)
    shape = (info.height, info.width) if channels == 1 else (info.height, info.width, 3)
    return values.astype(dtype, copy=True).reshape(shape)


def _only_stored_bits(values: np.ndarray, info: ImageInfo, dtype: np.dtype) -> np.ndarray:
    """PS3.5 8.1.1: a value is its BitsStored bits (two's complement when signed). Orthanc's
    fast path keeps the bits above them (old overlays, signs not extended); Pharos follows
    the standard, which changes nothing for the usual files."""
    bits = info.bits_stored
    if bits >= 8 * dtype.itemsize:
        return values
    if info.signed:
        unsigned = values.view(dtype.newbyteorder("<").str.replace("i", "u")).astype(np.int64)
        unsigned &= (1 << bits) - 1
        return np.where(unsigned >= 1 << (bits - 1), unsigned - (1 << bits), unsigned)
    return values & ((1 << bits) - 1)


def _accessor_values(raw: bytes, info: ImageInfo, frame: int) -> np.ndarray:
    """Orthanc's ``DicomIntegerPixelAccessor``: every sample as an int64, BitsStored bits
    masked and the sign extended; shape (rows, columns, samples)."""
    if info.bits_allocated > 32 or info.bits_stored >= 32:
        raise NotDecodable("Samples of 32 bits cannot go through the generic accessor")
    if info.frames * info.frame_size > len(raw):
        raise BadFileFormat("The pixel data is shorter than the image attributes announce")
    start = frame * info.frame_size
    chunk = np.frombuffer(raw, np.uint8, info.frame_size, start)
    if info.bits_stored == 1:
        bits = np.unpackbits(chunk, bitorder="little").reshape(info.height, info.width)
        return (bits.astype(np.int64) * 255)[..., np.newaxis]
    width = info.bytes_per_value
    grouped = chunk.reshape(-1, width).astype(np.uint32)
    values = np.zeros(grouped.shape[0], np.uint32)
    for byte in range(width):
        values |= grouped[:, byte] << np.uint32(8 * byte)
    values >>= np.uint32(info.shift)
    if info.signed:
        mask = (1 << (info.bits_stored - 1)) - 1
        sign = 1 << (info.bits_stored - 1)
        masked = (values & mask).astype(np.int64)
        result = np.where(values & sign, masked - mask - 1, masked)
    else:
        result = (values & ((1 << info.bits_stored) - 1)).astype(np.int64)
    if info.planar:
        return result.reshape(info.samples, info.height, info.width).transpose(1, 2, 0)
    return result.reshape(info.height, info.width, info.samples)


def _clamp(values: np.ndarray, fmt: PixelFormat) -> np.ndarray:
    dtype = DTYPES[fmt]
    if dtype.kind == "f":
        return values.astype(dtype)
    limits = np.iinfo(dtype)
    clamped: np.ndarray = np.clip(values, limits.min, limits.max).astype(dtype)
    return clamped


def _shape(values: np.ndarray, fmt: PixelFormat) -> np.ndarray:
    if fmt in COLOR_FORMATS:
        return values if values.ndim == 3 else np.repeat(values[..., np.newaxis], 3, axis=2)
    return values[..., 0] if values.ndim == 3 else values


def _lookup_table(ds: Dataset, info: ImageInfo, indexes: bytes) -> DecodedImage:
    """Orthanc's ``DecodeLookupTable``: the two palettes it knows, else NotDecodable."""
    fmt = info.pixel_format(ignore_photometric=False)
    if info.planar or info.frames != 1 or fmt is None:
        raise NotDecodable("Unsupported palette image")
    descriptors = [ds.get(f"{c}PaletteColorLookupTableDescriptor") for c in
                   ("Red", "Green", "Blue")]
    tables = [ds.get(f"{c}PaletteColorLookupTableData") for c in ("Red", "Green", "Blue")]
    if any(d is None for d in descriptors) or any(t is None for t in tables):
        raise NotDecodable("Incomplete palette")
    descriptors = [[int(v) for v in d] for d in descriptors]
    if not descriptors[0] == descriptors[1] == descriptors[2]:
        raise NotDecodable("The three palettes differ in their descriptors")
    little = transfer_syntax(ds) != EXPLICIT_BIG
    luts = [np.frombuffer(t, "<u2" if little else ">u2", len(t) // 2) for t in tables]
    pixels = info.width * info.height
    if fmt == PixelFormat.RGB24:
        if descriptors[0] != [256, 0, 16] or any(len(lut) != 256 for lut in luts) \
                or len(indexes) < pixels:
            raise NotDecodable("Unsupported 8-bit palette")
        index = np.frombuffer(indexes, np.uint8, pixels)
        rgb = np.stack([(lut[index] >> 8).astype(np.uint8) for lut in luts], axis=-1)
    else:
        if descriptors[0] != [0, 0, 16] or any(len(lut) != 65536 for lut in luts) \
                or len(indexes) != 2 * pixels:
            raise NotDecodable("Unsupported 16-bit palette")
        index = np.frombuffer(indexes, "<u2", pixels)
        rgb = np.stack([lut[index].astype(np.uint16) for lut in luts], axis=-1)
    return DecodedImage(rgb.reshape(info.height, info.width, 3), fmt)


def _decode_native(ds: Dataset, info: ImageInfo, frame: int) -> DecodedImage:
    raw = _native_bytes(ds, info)
    if info.photometric == "PALETTE COLOR":
        return _lookup_table(ds, info, raw)
    fmt = info.pixel_format(ignore_photometric=False)
    if fmt is None:
        raise NotDecodable(f"Unsupported image: {info.bits_stored} bits stored, "
                           f"{info.samples} samples, {info.photometric or 'no'} photometric "
                           "interpretation")
    if info.frames * info.frame_size > len(raw):
        raise BadFileFormat("The pixel data is shorter than the image attributes announce")
    fast = _fast_path(raw, info, frame, fmt)
    if fast is not None:
        return DecodedImage(fast, fmt)
    if fmt in (PixelFormat.GRAY32, PixelFormat.RGB48):
        raise NotDecodable(f"Unsupported layout for {fmt} pixels")
    return DecodedImage(_shape(_clamp(_accessor_values(raw, info, frame), fmt), fmt), fmt)


# --- encapsulated pixel data ---------------------------------------------------------------


def encapsulated_frame(ds: Dataset, frame: int) -> bytes:
    """The bytes of one frame of encapsulated pixel data (its fragments joined)."""
    from pydicom.encaps import get_frame
    try:
        return get_frame(ds.PixelData, frame, number_of_frames=frame_count(ds))
    except Exception as error:  # noqa: BLE001 — malformed fragments or offset table
        raise BadFileFormat(f"Cannot find frame {frame} in the pixel data: {error}") from error


def _pillow_jpeg(data: bytes, info: ImageInfo) -> np.ndarray:
    """8-bit lossy JPEG through libjpeg-turbo: YCbCr converted to RGB by libjpeg (as the
    IJG library in DCMTK does when the photometric interpretation says YBR), any other
    colour image left as coded."""
    from PIL import Image
    image = Image.open(io.BytesIO(data))
    if info.samples == 3 and not info.photometric.startswith("YBR") \
            and image.mode == "RGB" and "adobe" not in image.info:
        image.draft("YCbCr", image.size)  # stored as RGB: no colour conversion
    image.load()
    array = np.asarray(image)
    return array


def _gdcm_frame(ds: Dataset, frame: int) -> np.ndarray:
    """GDCM (the library of Orthanc's GDCM plugin) for what other codecs do not decode,
    notably 12-bit lossy JPEG (ISO 10918-1 process 4); it reads a whole file."""
    import gdcm
    import pydicom
    with tempfile.NamedTemporaryFile(suffix=".dcm", delete=False) as handle:
        path = handle.name
    try:
        pydicom.dcmwrite(path, ds, enforce_file_format=False)
        reader = gdcm.ImageReader()
        reader.SetFileName(path)
        if not reader.Read():
            raise NotDecodable("GDCM cannot read this image")
        image = reader.GetImage()
        buffer = image.GetBuffer()
        if isinstance(buffer, str):
            buffer = buffer.encode("utf-8", "surrogateescape")
    finally:
        os.unlink(path)
    scalar = image.GetPixelFormat().GetScalarTypeAsString()
    dtype = {"UINT8": np.uint8, "INT8": np.int8, "UINT16": np.uint16, "INT16": np.int16,
             "UINT32": np.uint32, "INT32": np.int32}.get(scalar)
    if dtype is None:
        raise NotDecodable(f"GDCM decoded samples of an unexpected type {scalar}")
    samples = image.GetPixelFormat().GetSamplesPerPixel()
    rows, columns = image.GetDimension(1), image.GetDimension(0)
    per_frame = rows * columns * samples
    values = np.frombuffer(buffer, dtype, per_frame, frame * per_frame)
    return values.reshape((rows, columns) if samples == 1 else (rows, columns, samples))


def _pydicom_frame(ds: Dataset, frame: int, **options: Any) -> np.ndarray:
    from pydicom.pixels.utils import pixel_array
    try:
        return pixel_array(ds, index=frame, **options)
    except NotImplementedError as error:
        raise NotDecodable(f"No codec for {transfer_syntax(ds)}: {error}") from error
    except (RuntimeError, ValueError, TypeError, KeyError, AttributeError) as error:
        raise NotDecodable(f"Cannot decode the pixel data: {error}") from error


def ybr_full_to_rgb(pixels: np.ndarray) -> np.ndarray:
    """Orthanc's ``ConvertJpegYCbCrToRgb`` (PS3.3 C.7.6.3.1.2, JPEG's equations), in
    single precision and truncated as Orthanc computes it."""
    y, cb, cr = (pixels[..., i].astype(np.float32) for i in range(3))
    cb -= np.float32(128)
    cr -= np.float32(128)
    rgb = np.stack([y + np.float32(1.402) * cr,
                    y - np.float32(0.344136) * cb - np.float32(0.714136) * cr,
                    y + np.float32(1.772) * cb], axis=-1)
    clamped: np.ndarray = np.clip(rgb, 0, 255).astype(np.uint8)
    return clamped


def _codec_samples(ds: Dataset, info: ImageInfo, frame: int, syntax: str) -> np.ndarray:
    """One encapsulated frame decoded by the maintained codec closest to DCMTK's."""
    if syntax in JPEG_LOSSY:
        if info.bits_stored <= 8:
            from PIL.Image import DecompressionBombError
            try:
                return _pillow_jpeg(encapsulated_frame(ds, frame), info)
            except (OSError, ValueError, DecompressionBombError) as error:
                raise NotDecodable(f"Cannot decode the JPEG frame: {error}") from error
        try:
            return _gdcm_frame(ds, frame)
        except ImportError:
            return _pydicom_frame(ds, frame, as_rgb=False)
    return _pydicom_frame(ds, frame, as_rgb=False)


def codec_samples(ds: Dataset, frame: int) -> np.ndarray:
    """Frame *frame* (from 0) of encapsulated pixel data, decoded as DCMTK decompresses it
    (lossy JPEG's YCbCr as RGB, other samples as coded): what DICOMweb answers as
    uncompressed frames."""
    check_pixel_decode(ds, frame)
    return _codec_samples(ds, ImageInfo.of(ds), frame, transfer_syntax(ds))


def _decode_codec(ds: Dataset, info: ImageInfo, frame: int, syntax: str) -> DecodedImage:
    palette = info.photometric == "PALETTE COLOR" and info.samples == 1
    fmt = info.pixel_format(ignore_photometric=not palette)
    if fmt is None:
        raise NotDecodable(f"Unsupported compressed image: {info.bits_stored} bits stored, "
                           f"{info.samples} samples")
    samples = _codec_samples(ds, info, frame, syntax)
    if palette:
        little = samples.astype(np.uint8 if info.bits_stored <= 8 else "<u2")
        return _lookup_table(ds, info, little.tobytes())
    if samples.ndim == 3 and samples.shape[2] == 3 and syntax == RLE \
            and info.photometric == "YBR_FULL":
        samples = ybr_full_to_rgb(samples)
    return DecodedImage(_shape(_clamp(samples.astype(np.int64) if samples.dtype.kind != "f"
                                      else samples, fmt), fmt), fmt)


# --- generic decoding (ExtendedImageDecoding) ----------------------------------------------


def _decode_generic(ds: Dataset, frame: int) -> DecodedImage:
    """Whatever pydicom's codecs decode, colour converted to RGB, palettes applied."""
    from pydicom.pixels.processing import apply_color_lut
    for keyword, default in (("PixelRepresentation", 0), ("SamplesPerPixel", 1)):
        if keyword not in ds:  # Type 1, absent from some real files: DCMTK's assumptions
            setattr(ds, keyword, default)
    array = _pydicom_frame(ds, frame)
    photometric = str(ds.get("PhotometricInterpretation", "")).strip().upper()
    if photometric == "PALETTE COLOR":
        try:
            array = apply_color_lut(array, ds)
        except Exception as error:  # noqa: BLE001 — malformed palette
            raise NotDecodable(f"Cannot apply the palette: {error}") from error
    if array.ndim == 3 and array.shape[2] == 3:
        if array.dtype == np.uint8:
            return DecodedImage(array, PixelFormat.RGB24)
        return DecodedImage(np.clip(array, 0, 65535).astype(np.uint16), PixelFormat.RGB48)
    if array.ndim != 2:
        raise NotDecodable(f"Unsupported decoded shape {array.shape}")
    formats = {np.dtype(np.uint8): PixelFormat.GRAY8, np.dtype(np.uint16): PixelFormat.GRAY16,
               np.dtype(np.int16): PixelFormat.SIGNED_GRAY16,
               np.dtype(np.uint32): PixelFormat.GRAY32, np.dtype(np.int8): PixelFormat.SIGNED_GRAY16}
    fmt = formats.get(array.dtype, PixelFormat.FLOAT32)
    return DecodedImage(array.astype(DTYPES[fmt]), fmt)


# --- entry point ---------------------------------------------------------------------------


def decode_frame(ds: Dataset, frame: int, *, extended: bool = False) -> DecodedImage:
    """Frame *frame* (from 0) of *ds*, as Orthanc decodes it; with *extended*, what Orthanc
    cannot decode goes through pydicom's generic decoding instead of NotDecodable."""
    count = frame_count(ds)
    if not has_pixels(ds):
        raise BadFileFormat("This instance has no pixel data")
    if not 0 <= frame < count:
        raise FrameOutOfRange(f"Frame {frame} is out of range (this instance has {count})")
    syntax = transfer_syntax(ds)
    # MaxDecodedImageSize: GDCM decodes whole files, the other codecs one frame.
    check_pixel_decode(ds, None if syntax in JPEG_LOSSY else frame)
    try:
        info = ImageInfo.of(ds)
        if "PixelData" not in ds and not is_pmsct_rle1(ds):
            raise NotDecodable("Float pixel data is not decoded by Orthanc")
        if syntax in NATIVE:
            return _decode_native(ds, info, frame)
        if syntax in JPEG_LOSSY or syntax in JPEG_LOSSLESS or syntax in JPEG_LS or syntax == RLE:
            return _decode_codec(ds, info, frame, syntax)
        raise NotDecodable(f"The built-in decoder cannot decode transfer syntax {syntax}")
    except NotDecodable:
        if not extended:
            raise
        return _decode_generic(ds, frame)
