"""A lossless JPEG encoder (ITU-T T.81 Annex H, process 14): DICOM's JPEG Lossless
(1.2.840.10008.1.2.4.57, any predictor) and JPEG Lossless SV1 (1.2.840.10008.1.2.4.70).

No maintained Python codec writes lossless JPEG, so Pharos writes it, in numpy:

* prediction by the selection value (T.81 Table H.1), the first line predicted from the
  left neighbour, the first column from the sample above, the first sample from
  ``2**(P-1)``; differences modulo 2**16 (H.1.2.1);
* one Huffman table per scan built from the scan's statistics by the procedure of T.81
  Annex K.2 with the IJG library's tie-breaking (the library DCMTK, thus Orthanc, encodes
  with), so that the bytes written are the ones DCMTK writes for the same pixels;
* the markers DCMTK writes: JFIF APP0 for grey images (none for colour, whose
  components are numbered 0, 1, 2 and share one table), SOF3, DHT, SOS; byte stuffing;
  the last byte padded with 1 bits; a fill byte (0xFF) before EOI when needed to make
  the fragment even (PS3.5 A.4). DCMTK codes a 12-bit image stored in 16 bits with a
  precision of 16: callers give the precision.

Grey (1 sample) and colour (3 samples, interleaved, one table) frames of 2 to 16 bits.
"""

from __future__ import annotations

import struct
from typing import cast

import numpy as np

_JFIF = b"\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"


def _predict(samples: np.ndarray, selection: int, precision: int) -> np.ndarray:
    """T.81 H.1.2.1 predictions of one component (rows, columns) as int64."""
    x = samples.astype(np.int64)
    rows, columns = x.shape
    prediction = np.empty_like(x)
    a = np.zeros_like(x)  # left
    b = np.zeros_like(x)  # above
    c = np.zeros_like(x)  # above left
    a[:, 1:] = x[:, :-1]
    b[1:, :] = x[:-1, :]
    c[1:, 1:] = x[:-1, :-1]
    if selection == 1:
        prediction = a
    elif selection == 2:
        prediction = b
    elif selection == 3:
        prediction = c
    elif selection == 4:
        prediction = a + b - c
    elif selection == 5:
        prediction = a + ((b - c) >> 1)
    elif selection == 6:
        prediction = b + ((a - c) >> 1)
    elif selection == 7:
        prediction = (a + b) >> 1
    else:
        raise ValueError(f"Bad lossless JPEG selection value {selection}")
    prediction = prediction.copy()
    prediction[0, 1:] = x[0, :-1]  # first line: the left neighbour
    if rows > 1:
        prediction[1:, 0] = x[:-1, 0]  # first column: the sample above
    prediction[0, 0] = 1 << (precision - 1)
    return prediction


def _differences(samples: np.ndarray, selection: int, precision: int) -> np.ndarray:
    """Differences modulo 2**16 read as -32768..32767 (T.81 H.1.2.1)."""
    diff = (samples.astype(np.int64) - _predict(samples, selection, precision)) & 0xFFFF
    return cast(np.ndarray, np.where(diff >= 0x8000, diff - 0x10000, diff))


def _categories(diff: np.ndarray) -> np.ndarray:
    """SSSS: the number of bits of |diff| (16 for -32768, T.81 Table H.2)."""
    magnitude = np.abs(diff)
    ssss = np.zeros(diff.shape, np.int64)
    nonzero = magnitude > 0
    ssss[nonzero] = np.floor(np.log2(magnitude[nonzero])).astype(np.int64) + 1
    return np.minimum(ssss, 16)


def optimal_table(frequencies: np.ndarray) -> tuple[list[int], list[int]]:
    """(BITS, HUFFVAL) of T.81 Annex K.2 for symbol *frequencies* (257 entries, the last
    one reserved), ties broken towards the larger symbol as the IJG library does."""
    freq = [int(f) for f in frequencies[:256]] + [1]
    codesize = [0] * 257
    others = [-1] * 257
    while True:
        c1 = c2 = -1
        best = None
        for i, f in enumerate(freq):
            if f and (best is None or f <= best):
                best, c1 = f, i
        best = None
        for i, f in enumerate(freq):
            if f and i != c1 and (best is None or f <= best):
                best, c2 = f, i
        if c2 < 0:
            break
        freq[c1] += freq[c2]
        freq[c2] = 0
        codesize[c1] += 1
        while others[c1] >= 0:
            c1 = others[c1]
            codesize[c1] += 1
        others[c1] = c2
        codesize[c2] += 1
        while others[c2] >= 0:
            c2 = others[c2]
            codesize[c2] += 1
    bits = [0] * 33
    for size in codesize:
        if size:
            bits[size] += 1
    for i in range(32, 16, -1):  # K.3: no code longer than 16 bits
        while bits[i] > 0:
            j = i - 2
            while bits[j] == 0:
                j -= 1
            bits[i] -= 2
            bits[i - 1] += 1
            bits[j + 1] += 2
            bits[j] -= 1
    i = 16
    while bits[i] == 0:
        i -= 1
    bits[i] -= 1  # the reserved symbol goes away
    values = [symbol for size in range(1, 33) for symbol in range(256)
              if codesize[symbol] == size]
    return bits[1:17], values


def _codes(bits: list[int], values: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """EHUFCO/EHUFSI by symbol (T.81 C.2)."""
    code_of = np.zeros(256, np.int64)
    size_of = np.zeros(256, np.int64)
    code = 0
    index = 0
    for length in range(1, 17):
        for _ in range(bits[length - 1]):
            code_of[values[index]] = code
            size_of[values[index]] = length
            code += 1
            index += 1
        code <<= 1
    return code_of, size_of


def _pack(words: np.ndarray, lengths: np.ndarray) -> bytes:
    """The bit strings (most significant bit first), 1-padded, with 0xFF stuffed."""
    total = int(lengths.sum())
    if total == 0:
        return b""
    ends = np.cumsum(lengths)
    starts = ends - lengths
    bitmap = np.ones((total + 7) // 8 * 8, np.uint8)  # padding bits are 1
    for k in range(int(lengths.max())):
        has = lengths > k
        bitmap[starts[has] + k] = (words[has] >> (lengths[has] - 1 - k)) & 1
    return np.packbits(bitmap).tobytes().replace(b"\xff", b"\xff\x00")


def encode(pixels: np.ndarray, precision: int, selection: int = 1) -> bytes:
    """One frame, (rows, columns) grey or (rows, columns, 3) colour samples, as a lossless
    JPEG bitstream of *precision* bits with predictor *selection* (1 to 7)."""
    if not 2 <= precision <= 16:
        raise ValueError(f"Lossless JPEG needs 2 to 16 bits, not {precision}")
    planes = [pixels] if pixels.ndim == 2 else [pixels[..., i] for i in range(pixels.shape[2])]
    if len(planes) not in (1, 3):
        raise ValueError("Lossless JPEG of 1 or 3 samples per pixel only")
    mask = (1 << precision) - 1
    rows, columns = planes[0].shape
    diffs = np.stack([_differences(p.astype(np.int64) & mask, selection, precision)
                      for p in planes], axis=-1).reshape(-1)  # interleaved, raster order
    ssss = _categories(diffs)
    bits, values = optimal_table(np.bincount(ssss, minlength=257))
    code_of, size_of = _codes(bits, values)
    extra = np.where(diffs < 0, diffs - 1, diffs) & ((1 << ssss) - 1)
    extra_bits = np.where(ssss == 16, 0, ssss)
    words = (code_of[ssss] << extra_bits) | np.where(ssss == 16, 0, extra)
    scan = _pack(words, size_of[ssss] + extra_bits)
    count = len(planes)
    identifiers = [1] if count == 1 else [0, 1, 2]
    sof = struct.pack(">BHHB", precision, rows, columns, count) + b"".join(
        bytes([identifier, 0x11, 0]) for identifier in identifiers)
    dht = bytes([0]) + bytes(bits) + bytes(values)
    sos = bytes([count]) + b"".join(bytes([identifier, 0]) for identifier in identifiers) \
        + bytes([selection, 0, 0])
    stream = (b"\xff\xd8" + (_JFIF if count == 1 else b"")
              + _segment(0xC3, sof) + _segment(0xC4, dht) + _segment(0xDA, sos) + scan)
    return end_of_image(stream)


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def end_of_image(stream: bytes) -> bytes:
    """EOI, after a fill byte 0xFF when needed to make the fragment's length even (T.81
    B.1.1.2 allows fill bytes before a marker; DCMTK writes them so)."""
    return stream + (b"\xff\xd9" if len(stream) % 2 == 0 else b"\xff\xff\xd9")
