"""Pixels: decode frames and render them as Orthanc does (preview, uint8/16, int16, rendered).

Decoding goes through pydicom with maintained codecs (pylibjpeg-libjpeg for JPEG and
JPEG-LS, pylibjpeg-openjpeg for JPEG 2000, pylibjpeg-rle / pydicom for RLE). Values are
the stored pixel values (``BitsStored`` respected, signed per ``PixelRepresentation``);
colour images come out as RGB (YBR converted, palettes applied).
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.pixels import apply_color_lut, apply_modality_lut, pixel_array

from app.dicom.limits import check_pixel_decode
from app.errors import BadFileFormat, NotImplementedYet, ParameterOutOfRange


class UnsupportedImage(BadFileFormat):
    """Pixel data Pharos cannot decode: 415 with a clear message."""

    http_status = 415


@dataclass
class Frame:
    pixels: np.ndarray  # (rows, columns) or (rows, columns, 3)
    photometric: str

    @property
    def is_color(self) -> bool:
        return self.pixels.ndim == 3


def frame_count(ds: Dataset) -> int:
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        return 0
    try:
        return max(int(ds.get("NumberOfFrames", 1) or 1), 1)
    except (TypeError, ValueError):
        return 1


def _decode(ds: Dataset, index: int | None) -> np.ndarray:
    """pydicom's decoding (all frames, or only frame *index*) with the palette applied."""
    if frame_count(ds) == 0:
        raise UnsupportedImage("This instance has no pixel data")
    # Type 1 attributes absent from some real files: assume what DCMTK assumes.
    if "PixelRepresentation" not in ds:
        ds.PixelRepresentation = 0
    if "SamplesPerPixel" not in ds:
        ds.SamplesPerPixel = 1
    check_pixel_decode(ds, index)
    try:
        array = ds.pixel_array if index is None else pixel_array(ds, index=index)
    except NotImplementedError as error:
        raise UnsupportedImage(f"Cannot decode this transfer syntax: {error}") from error
    except Exception as error:  # noqa: BLE001 — corrupted pixel data
        raise BadFileFormat(f"Cannot decode the pixel data: {error}") from error
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip()
    if photometric == "PALETTE COLOR":
        try:
            array = apply_color_lut(array, ds)
        except Exception as error:  # noqa: BLE001
            raise UnsupportedImage(f"Cannot apply the palette: {error}") from error
    return array


def _channels(ds: Dataset) -> int:
    """Samples per decoded pixel (a palette gives RGB)."""
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip()
    return 3 if photometric == "PALETTE COLOR" else int(ds.get("SamplesPerPixel", 1) or 1)


def decode_all(ds: Dataset) -> np.ndarray:
    """Every frame as an array of shape (frames, rows, columns[, samples])."""
    array = _decode(ds, None)
    if frame_count(ds) == 1:
        array = array[np.newaxis, ...]
    expected_ndim = 4 if _channels(ds) > 1 else 3
    if array.ndim != expected_ndim:
        raise BadFileFormat(f"Unexpected pixel array shape {array.shape}")
    return array


def decode_frame(ds: Dataset, index: int) -> Frame:
    count = frame_count(ds)
    if count == 0:
        raise UnsupportedImage("This instance has no pixel data")
    if not 0 <= index < count:
        raise ParameterOutOfRange(f"Frame {index} is out of range (0..{count - 1})")
    if count == 1:
        array = decode_all(ds)[0]
    else:
        # Only the asked frame: a viewer paging through a 500-frame cine must not
        # decode every frame for each one it shows.
        array = _decode(ds, index)
        expected_ndim = 3 if _channels(ds) > 1 else 2
        if array.ndim != expected_ndim:
            raise BadFileFormat(f"Unexpected pixel array shape {array.shape}")
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip()
    return Frame(array, photometric)


_LUT_MAX_RANGE = 1 << 17


def _stretch(values: np.ndarray) -> np.ndarray:
    """Orthanc's preview: the dynamic range [min, max] mapped linearly onto [0, 255].

    Integer pixels of a range up to 2^17 go through a lookup table built with the very
    same float64 arithmetic (bit-identical to the direct formula, ~5x faster for 16-bit
    images); wider or float values are scaled directly."""
    low, high = values.min(), values.max()
    if high == low:
        return np.zeros(values.shape, np.uint8)
    span = float(high) - float(low)
    if values.dtype.kind in "iu" and span < _LUT_MAX_RANGE:
        low = int(low)
        table = np.arange(int(span) + 1, dtype=np.float64) * (255.0 / span)
        table = np.clip(np.rint(table), 0, 255).astype(np.uint8)
        offsets = values if low == 0 and values.dtype.kind == "u" \
            else values.astype(np.int64) - low
        return table[offsets]
    scaled = (values.astype(np.float64) - float(low)) * (255.0 / span)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def preview(frame: Frame) -> np.ndarray:
    """8-bit image as ``/preview`` shows it (MONOCHROME1 inverted)."""
    if frame.is_color:
        pixels = frame.pixels
        if pixels.dtype != np.uint8:  # RGB48 (16-bit palettes): keep the high byte, as Orthanc
            pixels = (pixels.astype(np.uint32) >> 8).astype(np.uint8)
        return pixels
    image = _stretch(frame.pixels)
    if frame.photometric == "MONOCHROME1":
        image = 255 - image
    return image


def truncate(frame: Frame, mode: str) -> np.ndarray:
    """``image-uint8`` / ``image-uint16`` / ``image-int16``: values clipped to the type."""
    if frame.is_color:
        # Orthanc 1.10 answers 415 here too: truncation is for greyscale images only.
        raise UnsupportedImage(f"image-{mode} is only available for greyscale images")
    bounds = {"uint8": (0, 255, np.uint8), "uint16": (0, 65535, np.uint16),
              "int16": (-32768, 32767, np.int16)}
    if mode not in bounds:
        raise ParameterOutOfRange(f"Unknown extraction mode {mode}")
    low, high, dtype = bounds[mode]
    return np.clip(frame.pixels.astype(np.int64), low, high).astype(dtype)


def window(ds: Dataset, frame: Frame, center: float | None = None,
           width: float | None = None) -> np.ndarray:
    """8-bit rendering with a VOI window (given, from the file, or the full range)."""
    if frame.is_color:
        return preview(frame)
    values = apply_modality_lut(frame.pixels, ds).astype(np.float64) \
        if "RescaleSlope" in ds or "ModalityLUTSequence" in ds else frame.pixels.astype(np.float64)
    if center is None or width is None:
        center, width = _file_window(ds)
    if center is None or width is None or width <= 0:
        low, high = float(values.min()), float(values.max())
        center, width = (low + high) / 2, max(high - low, 1.0)
    # PS3.3 C.11.2.1.2.1 linear function (width 1 is a threshold at the center)
    if width <= 1:
        image = np.where(values < center - 0.5, 0, 255).astype(np.uint8)
    else:
        scaled = ((values - (center - 0.5)) / (width - 1) + 0.5) * 255.0
        image = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    if frame.photometric == "MONOCHROME1":
        image = 255 - image
    return image


def _file_window(ds: Dataset) -> tuple[float | None, float | None]:
    try:
        center, width = ds.get("WindowCenter"), ds.get("WindowWidth")
        if center is None or width is None:
            return None, None
        center = center[0] if hasattr(center, "__len__") and not isinstance(center, str) else center
        width = width[0] if hasattr(width, "__len__") and not isinstance(width, str) else width
        return float(center), float(width)
    except (TypeError, ValueError, IndexError):
        return None, None


def fit_viewport(image: np.ndarray, max_width: int | None, max_height: int | None) -> np.ndarray:
    """Scale down (keeping the aspect ratio) to fit in the viewport."""
    if not max_width and not max_height:
        return image
    height, width = image.shape[:2]
    scale = min((max_width or width) / width, (max_height or height) / height, 1.0)
    if scale >= 1.0:
        return image
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR))


def encode(image: np.ndarray, media_type: str, quality: int = 90) -> bytes:
    """PNG (8/16-bit grey, RGB), JPEG (8-bit) or PAM (any, Orthanc's x-portable-arbitrarymap)."""
    buffer = io.BytesIO()
    if media_type == "image/png":
        if image.dtype == np.int16:
            # PNG has no signed type: Orthanc writes the two's-complement bits as uint16.
            image = image.view(np.uint16)
        return encode_png(image)
    elif media_type == "image/jpeg":
        if image.dtype != np.uint8:
            raise NotImplementedYet("JPEG needs 8-bit values")
        Image.fromarray(image).save(buffer, format="JPEG", quality=max(1, min(quality, 100)))
    elif media_type == "image/x-portable-arbitrarymap":
        return encode_pam(image)
    else:
        raise ParameterOutOfRange(f"Unsupported image type {media_type}")
    return buffer.getvalue()


def encode_pam(image: np.ndarray) -> bytes:
    depth = 3 if image.ndim == 3 else 1
    height, width = image.shape[:2]
    if image.dtype == np.uint8:
        maxval, data = 255, image.tobytes()
        tupltype = "RGB" if depth == 3 else "GRAYSCALE"
    else:
        maxval = 65535
        data = image.astype(">u2" if image.dtype == np.uint16 else ">i2").tobytes()
        tupltype = "GRAYSCALE"
    header = (f"P7\nWIDTH {width}\nHEIGHT {height}\nDEPTH {depth}\nMAXVAL {maxval}\n"
              f"TUPLTYPE {tupltype}\nENDHDR\n").encode()
    return header + data


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + tag + data
            + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))


def encode_png(image: np.ndarray) -> bytes:
    """PNG (PNG spec, ISO 15948) of 8/16-bit grey or 8-bit RGB pixels.

    Every row uses the "Up" filter (type 2: each byte minus the byte above, modulo 256)
    and the deflate stream uses zlib's run-length strategy. On medical images this gives
    files ~15 % smaller than unfiltered rows at zlib level 3, two to three times faster;
    on noise it costs a third of the time (measured on a 512² MR and a 256² random CT)."""
    if image.dtype not in (np.uint8, np.uint16) or image.ndim not in (2, 3) \
            or (image.ndim == 3 and image.shape[2] != 3):
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG")
        return buffer.getvalue()
    height, width = image.shape[:2]
    depth = 16 if image.dtype == np.uint16 else 8
    color_type = 2 if image.ndim == 3 else 0
    rows = np.ascontiguousarray(image, dtype=">u2" if depth == 16 else np.uint8)
    rows = rows.reshape(height, -1).view(np.uint8)
    filtered = np.empty((height, rows.shape[1] + 1), np.uint8)
    filtered[:, 0] = 2  # Up
    filtered[0, 1:] = rows[0]  # the row above the first one counts as zeros
    np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])  # uint8: wraps modulo 256
    compressor = zlib.compressobj(6, zlib.DEFLATED, 15, 9, zlib.Z_RLE)
    stream = compressor.compress(filtered.data) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
            + _png_chunk(b"IDAT", stream) + _png_chunk(b"IEND", b""))
