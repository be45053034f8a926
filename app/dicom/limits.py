"""Bounds on every decompression: a small input must never become a huge output.

Three kinds of amplification reach the server from a client:

* a dataset in *Deflated Explicit VR Little Endian* (PS3.5 A.5), whose deflate stream may
  inflate to gigabytes (pydicom inflates the whole stream in memory before parsing);
* an HTTP body sent with ``Content-Encoding: gzip`` or ``deflate`` (and a ZIP archive,
  bounded in :mod:`app.services.ingest`);
* compressed pixel data (JPEG, JPEG-LS, JPEG 2000, RLE) whose decoding allocates what the
  dataset (Rows, Columns, SamplesPerPixel, BitsAllocated, NumberOfFrames) or the
  codestream's own header (JPEG SOF, JPEG 2000 SIZ) declares.

Each is checked here before any large allocation, streaming where it must inflate to
measure, so that an over-limit input is refused in time proportional to the limit and in
constant memory. The limits are configuration options (``MaxInflatedSize``,
``MaxDecodedImageSize`` in the ``"Pharos"`` section); :func:`configure` installs them at
start for the process (the DICOM functions here are pure and have no settings at hand).
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from app.errors import BadFileFormat, DecompressionLimit

DEFLATED = "1.2.840.10008.1.2.1.99"
_DEFLATED_BYTES = DEFLATED.encode()
_STEP = 1 << 20  # bytes produced per inflate call: memory stays at this, not the total


@dataclass(frozen=True)
class Limits:
    inflated: int = 512 * 1024**2  # bytes a deflated dataset may inflate to
    decoded_image: int = 1024**3  # bytes decoded pixel data may take (one call)


_LIMITS = Limits()


def configure(inflated: int, decoded_image: int) -> None:
    """Install the limits of this process (called once at start from the settings)."""
    global _LIMITS
    _LIMITS = Limits(int(inflated), int(decoded_image))


def current() -> Limits:
    return _LIMITS


# --- deflate ---------------------------------------------------------------------------------

def inflated_size(compressed: bytes | memoryview, limit: int, *, wbits: int = -15) -> int:
    """Size of what *compressed* inflates to, measured without keeping it; raises
    DecompressionLimit as soon as it passes *limit*. A corrupt stream counts what it
    produced before the error (the parser then fails on it as it would)."""
    inflater = zlib.decompressobj(wbits)
    total = 0
    view = memoryview(compressed)
    try:
        for start in range(0, len(view), _STEP):
            pending: bytes | memoryview = view[start:start + _STEP]
            while pending:
                total += len(inflater.decompress(pending, _STEP))
                if total > limit:
                    raise DecompressionLimit(
                        f"The deflated data inflates beyond the limit of {limit} bytes "
                        "(MaxInflatedSize): refused as a possible decompression bomb")
                pending = inflater.unconsumed_tail
            if inflater.eof:
                break
    except zlib.error:
        return total
    return total


def check_deflated_dataset(data: bytes | bytearray | memoryview) -> None:
    """Refuse a Part 10 file in the deflated transfer syntax whose dataset inflates beyond
    ``MaxInflatedSize`` (before pydicom inflates it all in memory)."""
    head = bytes(data[:4096])
    if _DEFLATED_BYTES not in head:
        return
    start = _dataset_offset(data)
    if start is None:
        return
    inflated_size(memoryview(data)[start:], _LIMITS.inflated)


def _dataset_offset(data: bytes | bytearray | memoryview) -> int | None:
    """Offset of the dataset after the file meta information, when the file says it is
    deflated; None otherwise (or when the meta information cannot be read)."""
    from pydicom.filereader import _read_file_meta_info, read_preamble
    stream = io.BytesIO(bytes(data[:1 << 16]) if len(data) > 1 << 16 else bytes(data))
    try:
        read_preamble(stream, force=True)
        meta = _read_file_meta_info(stream)
    except Exception:  # noqa: BLE001 — not a file we can judge: the parser will say why
        return None
    if str(meta.get("TransferSyntaxUID", "")).strip("\0 ") != DEFLATED:
        return None
    return stream.tell()


class BoundedInflater:
    """Incremental gzip/zlib/raw-deflate decoding of a stream (HTTP ``Content-Encoding``)
    whose output may not pass *limit* bytes in total; each chunk fed yields at most
    ``_STEP`` bytes at a time, so memory stays flat whatever the ratio."""

    def __init__(self, coding: str, limit: int) -> None:
        # 47 = 32 + 15: a gzip or zlib header, detected; -15: raw deflate, which some
        # clients send for "deflate" (RFC 9110 8.4.1.2 says zlib; both are accepted).
        self._coding = coding
        self._inflater = zlib.decompressobj(47)
        self._raw_fallback = coding == "deflate"
        self.limit = limit
        self.total = 0

    def feed(self, chunk: bytes) -> Iterator[bytes]:
        pending: bytes | memoryview = chunk
        while pending:
            try:
                out = self._inflater.decompress(pending, _STEP)
            except zlib.error as error:
                if self._raw_fallback and self.total == 0:
                    self._raw_fallback = False
                    self._inflater = zlib.decompressobj(-15)
                    continue
                raise BadFileFormat(f"The {self._coding}-encoded body is corrupt: {error}") \
                    from error
            self._raw_fallback = False
            self.total += len(out)
            if self.total > self.limit:
                raise DecompressionLimit(
                    f"The {self._coding}-encoded body inflates beyond the limit of "
                    f"{self.limit} bytes")
            if out:
                yield out
            pending = self._inflater.unconsumed_tail
            if self._inflater.eof:
                return

    def finish(self) -> None:
        if not self._inflater.eof:
            raise BadFileFormat(f"The {self._coding}-encoded body is truncated")


# --- pixel data --------------------------------------------------------------------------------

def check_pixel_decode(ds: object, index: int | None = None) -> None:
    """Refuse to decode pixel data (all frames, or frame *index*) whose decoded size, as
    the dataset or the codestream headers declare it, passes ``MaxDecodedImageSize``."""
    limit = _LIMITS.decoded_image
    try:
        rows = int(getattr(ds, "Rows", 0) or 0)
        columns = int(getattr(ds, "Columns", 0) or 0)
        samples = int(getattr(ds, "SamplesPerPixel", 1) or 1)
        bits = int(getattr(ds, "BitsAllocated", 8) or 8)
        frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    except (TypeError, ValueError):
        return  # malformed values: the decoder refuses them itself
    photometric = str(getattr(ds, "PhotometricInterpretation", "") or "").strip()
    if photometric == "PALETTE COLOR":
        samples, bits = 3, max(bits, 16)  # the palette is applied: RGB of the LUT depth
    per_frame = rows * columns * max(samples, 1) * max((bits + 7) // 8, 1)
    count = 1 if index is not None else max(frames, 1)
    if per_frame * count > limit:
        raise DecompressionLimit(
            f"The pixel data would decode to {per_frame * count} bytes, beyond the limit "
            f"of {limit} bytes (MaxDecodedImageSize)")
    for fragment in _first_fragments(ds, index):
        declared = codestream_size(fragment)
        # Frames are decoded one at a time: what one codestream declares is the
        # decoder's own allocation, whatever the dataset says.
        if declared is not None and declared > limit:
            raise DecompressionLimit(
                f"A compressed frame declares {declared} decoded bytes, beyond the limit "
                f"of {limit} bytes (MaxDecodedImageSize)")


def _first_fragments(ds: object, index: int | None) -> Iterator[bytes]:
    """The first bytes of each encapsulated frame to decode (empty for native data)."""
    meta = getattr(ds, "file_meta", None)
    syntax = str(getattr(meta, "TransferSyntaxUID", "") or "")
    from pydicom.uid import UID
    if not syntax or not UID(syntax).is_encapsulated:
        return
    value = ds.get("PixelData") if hasattr(ds, "get") else None
    if not isinstance(value, bytes | bytearray) or len(value) < 16:
        return
    from pydicom.encaps import generate_fragments
    try:
        fragments = generate_fragments(value)
        next(fragments)  # the Basic Offset Table
        for position, fragment in enumerate(fragments):
            if index is None or position == index:
                yield bytes(fragment[:4096])
            if index is not None and position >= index:
                return
    except Exception:  # noqa: BLE001 — a broken encapsulation: the decoder says why
        return


def codestream_size(head: bytes) -> int | None:
    """Decoded bytes a JPEG (SOF) or JPEG 2000 (SIZ) codestream header declares, or None
    when *head* is neither (or too short to tell)."""
    if head[:2] == b"\xff\xd8":
        return _jpeg_size(head)
    if head[:4] == b"\xff\x4f\xff\x51":
        return _j2k_size(head)
    if head[4:8] == b"jP  " or head[:12] == b"\x00\x00\x00\x0cjP  \r\n\x87\n":
        offset = head.find(b"\xff\x4f\xff\x51")
        return _j2k_size(head[offset:]) if offset >= 0 else None
    return None


def _jpeg_size(head: bytes) -> int | None:
    position = 2
    while position + 4 <= len(head):
        if head[position] != 0xFF:
            return None
        marker = head[position + 1]
        if marker == 0xFF:
            position += 1
            continue
        length = struct.unpack_from(">H", head, position + 2)[0]
        # SOF0..SOF15 except DHT (C4), JPG (C8), DAC (CC); SOF55 (F7) is JPEG-LS.
        if (0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC)) or marker == 0xF7:
            if position + 10 > len(head):
                return None
            precision, height, width, components = (
                int(value) for value in struct.unpack_from(">BHHB", head, position + 4))
            return height * width * components * max((precision + 7) // 8, 1)
        position += 2 + length
    return None


def _j2k_size(head: bytes) -> int | None:
    # SIZ: marker, Lsiz, Rsiz, Xsiz, Ysiz, XOsiz, YOsiz, XTsiz, YTsiz, XTOsiz, YTOsiz, Csiz,
    # then Ssiz (bit depth - 1, sign bit) per component (ITU-T T.800 A.5.1).
    if len(head) < 4 + 2 + 2 + 32 + 2:
        return None
    xsiz, ysiz, xosiz, yosiz = (int(value) for value in struct.unpack_from(">IIII", head, 8))
    components = int(struct.unpack_from(">H", head, 40)[0])
    depth = 1
    if len(head) >= 43:
        depth = ((head[42] & 0x7F) + 1 + 7) // 8
    # OpenJPEG decodes every component into 32-bit samples.
    return max(xsiz - xosiz, 0) * max(ysiz - yosiz, 0) * components * max(depth, 4)
