"""PNG files byte-identical to the ones Orthanc writes (libpng 1.6 with its defaults).

Orthanc's ``PngWriter`` calls libpng without changing any setting, and clients (Orthanc's
own test suite among them) compare the MD5 of ``/preview`` answers. Reproducing libpng's
choices makes Pharos' PNGs identical byte for byte (PNG spec, ISO 15948):

* every row of an 8/16-bit image is filtered by the filter type (None, Sub, Up, Average,
  Paeth) whose output has the smallest sum of absolute values, each byte read as a signed
  number; ties keep the first type in that order (libpng's ``png_write_find_filter``);
* zlib level 6 with the ``Z_FILTERED`` strategy, memory level 8, and a window narrowed
  for small images as libpng's ``png_deflate_claim`` does;
* the compressed stream cut into IDAT chunks of 8192 bytes (``PNG_ZBUF_SIZE``), the
  zlib header of small images rewritten as libpng's ``optimize_cmf`` does.

The filter selection is vectorised over the whole image with numpy: the five candidate
rows are computed for every row at once (Sub, Average and Paeth depend on the raw rows
only, not on the filtered output).
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_IDAT_SIZE = 8192  # libpng's PNG_ZBUF_SIZE
_COLOR_TYPES = {1: 0, 3: 2, 4: 6}  # samples per pixel -> PNG colour type (grey, RGB, RGBA)


def _chunk(tag: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + tag + data
            + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))


def _paeth(left: np.ndarray, up: np.ndarray, up_left: np.ndarray) -> np.ndarray:
    """PNG spec 9.4: the neighbour closest to left + up - up_left (ties: left, up)."""
    a, b, c = (x.astype(np.int16) for x in (left, up, up_left))
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    return np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, up_left))


def _candidates(rows: np.ndarray, bpp: int) -> np.ndarray:
    """The five filtered versions of every row: shape (5, height, row_bytes), uint8."""
    height, width = rows.shape
    zeros_column = np.zeros((height, bpp), np.uint8)
    left = np.concatenate([zeros_column, rows[:, :-bpp]], axis=1) if width > bpp \
        else np.zeros_like(rows)
    up = np.concatenate([np.zeros((1, width), np.uint8), rows[:-1]], axis=0)
    up_left = np.concatenate([zeros_column, up[:, :-bpp]], axis=1) if width > bpp \
        else np.zeros_like(rows)
    out = np.empty((5, height, width), np.uint8)
    out[0] = rows
    np.subtract(rows, left, out=out[1])
    np.subtract(rows, up, out=out[2])
    average = ((left.astype(np.uint16) + up.astype(np.uint16)) >> 1).astype(np.uint8)
    np.subtract(rows, average, out=out[3])
    np.subtract(rows, _paeth(left, up, up_left), out=out[4])
    return out


def _filter_rows(rows: np.ndarray, bpp: int) -> np.ndarray:
    """Rows prefixed with their filter type byte, chosen as libpng 1.6 chooses them."""
    candidates = _candidates(rows, bpp)
    # libpng's cost: each byte v counts min(v, 256 - v) (its absolute value as a signed byte)
    cost = np.minimum(candidates, (256 - candidates.astype(np.uint16)).astype(np.uint16))
    sums = cost.sum(axis=2, dtype=np.uint64)  # (5, height)
    choice = np.argmin(sums, axis=0)  # the first minimum: None < Sub < Up < Average < Paeth
    height = rows.shape[0]
    filtered = np.empty((height, rows.shape[1] + 1), np.uint8)
    filtered[:, 0] = choice
    filtered[:, 1:] = candidates[choice, np.arange(height)]
    return filtered


def _window_bits(data_size: int) -> int:
    """libpng's ``png_deflate_claim``: the smallest window that holds a small image."""
    bits = 15
    if data_size <= 16384:
        half = 1 << (bits - 1)
        while data_size + 262 <= half:
            half >>= 1
            bits -= 1
    return max(bits, 9)  # zlib refuses 8 for deflate; libpng raises it to 9 likewise


def _optimize_cmf(stream: bytes, data_size: int) -> bytes:
    """libpng's ``optimize_cmf``: the zlib header of a small image announces the smallest
    window holding the uncompressed data (still a valid zlib stream, RFC 1950)."""
    cmf = stream[0]
    if data_size > 16384 or (cmf & 0x0F) != 8 or (cmf & 0xF0) > 0x70:
        return stream
    cinfo = cmf >> 4
    half = 1 << (cinfo + 7)
    if data_size > half:
        return stream
    while True:
        half >>= 1
        cinfo -= 1
        if not (cinfo > 0 and data_size <= half):
            break
    cmf = (cmf & 0x0F) | (cinfo << 4)
    flags = stream[1] & 0xE0
    flags += 0x1F - ((cmf << 8) + flags) % 0x1F
    return bytes((cmf, flags)) + stream[2:]


def encode_png(image: np.ndarray) -> bytes:
    """PNG of a 2-D (grey) or 3-D (RGB/RGBA) array of uint8 or uint16 (big-endian samples).

    ``int16`` values are written as their two's-complement bits, as Orthanc does for
    ``image-int16`` (PNG has no signed samples)."""
    if image.dtype == np.int16:
        image = image.view(np.uint16)
    if image.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"PNG cannot hold {image.dtype} samples")
    samples = 1 if image.ndim == 2 else image.shape[2]
    if samples not in _COLOR_TYPES:
        raise ValueError(f"PNG cannot hold {samples} samples per pixel")
    height, width = image.shape[:2]
    depth = 16 if image.dtype == np.uint16 else 8
    bpp = samples * depth // 8
    rows = np.ascontiguousarray(image, dtype=">u2" if depth == 16 else np.uint8)
    rows = rows.reshape(height, width * samples).view(np.uint8).reshape(height, width * bpp)
    header = struct.pack(">IIBBBBB", width, height, depth, _COLOR_TYPES[samples], 0, 0, 0)
    parts = [_SIGNATURE, _chunk(b"IHDR", header)]
    if height and width:
        filtered = _filter_rows(rows, bpp)
        compressor = zlib.compressobj(6, zlib.DEFLATED, _window_bits(filtered.size), 8,
                                      zlib.Z_FILTERED)
        stream = _optimize_cmf(compressor.compress(filtered.data) + compressor.flush(),
                               filtered.size)
        parts.extend(_chunk(b"IDAT", stream[i:i + _IDAT_SIZE])
                     for i in range(0, len(stream), _IDAT_SIZE))
    parts.append(_chunk(b"IEND", b""))
    if depth == 16 and height:
        # Orthanc writes 16-bit images with png_write_png(), which ends the file, then
        # calls png_write_end() again: its 16-bit PNGs end with two IEND chunks. Decoders
        # stop at the first one; the second keeps the files identical to Orthanc's.
        parts.append(_chunk(b"IEND", b""))
    return b"".join(parts)
