"""Hostile DICOM inputs built by code: decompression bombs and a corpus of malformed files.

Used by the bomb tests (``tests/api/test_bombs.py``), the malformed-corpus test and the
fuzz campaign (``scripts/fuzz.py``). Nothing here is taken from another project: every
file starts from :func:`tests.helpers.make_dicom` or from bytes written here.
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from collections.abc import Callable, Iterator

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    generate_uid,
)

from tests.helpers import make_dicom


def _meta(sop_class: str, sop_uid: str, syntax: str) -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = syntax
    meta.ImplementationClassUID = "1.2.826.0.1.3680043.9.7433.1.1"
    buffer = io.BytesIO()
    buffer.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(buffer, meta, enforce_standard=True)
    return buffer.getvalue()


def _small_dataset(**extra: object) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"  # Secondary Capture
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientID = "BOMB"
    ds.PatientName = "BOMB^DEFLATE"
    ds.Modality = "OT"
    for key, value in extra.items():
        setattr(ds, key, value)
    return ds


def _explicit_le(ds: Dataset) -> bytes:
    from pydicom.filebase import DicomBytesIO
    buffer = DicomBytesIO()
    buffer.is_little_endian = True
    buffer.is_implicit_VR = False
    pydicom.filewriter.write_dataset(buffer, ds)
    return buffer.getvalue()


def deflate_bomb(inflated: int, *, study_uid: str | None = None) -> bytes:
    """A Part 10 file in Deflated Explicit VR Little Endian whose dataset inflates to
    about *inflated* bytes (a valid header, then an OB element of zeros): ~1/1000 of it
    on the wire."""
    ds = _small_dataset()
    if study_uid:
        ds.StudyInstanceUID = study_uid
    head = _explicit_le(ds)
    body = inflated - len(head) - 12
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    left = body & ~1
    out = [compressor.compress(head),
           compressor.compress(b"\xe0\x7f\x10\x00OB\0\0" + struct.pack("<I", left)),
           compressor.flush(zlib.Z_FULL_FLUSH)]
    # After a full flush the compressor forgets its history: one compressed MiB of
    # zeros, repeated, is a valid stream of many MiB of zeros (fast to build).
    chunk = 1 << 20
    block = compressor.compress(bytes(chunk)) + compressor.flush(zlib.Z_FULL_FLUSH)
    left -= chunk
    out.append(block * (left // chunk + 1))
    out.append(compressor.compress(bytes(left % chunk)) + compressor.flush())
    return _meta(ds.SOPClassUID, ds.SOPInstanceUID, DeflatedExplicitVRLittleEndian) + \
        b"".join(out)


def deflated_ok() -> bytes:
    """A small, valid deflated file (must still be accepted)."""
    ds = _small_dataset(PatientName="DEFLATE^OK")
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = compressor.compress(_explicit_le(ds)) + compressor.flush()
    return _meta(ds.SOPClassUID, ds.SOPInstanceUID, DeflatedExplicitVRLittleEndian) + body


def _encapsulated(ds: Dataset, syntax: str, frame: bytes) -> bytes:
    from pydicom.encaps import encapsulate
    ds.PixelData = encapsulate([frame])
    ds["PixelData"].VR = "OB"
    body = _explicit_le(ds)
    return _meta(ds.SOPClassUID, ds.SOPInstanceUID, syntax) + body


def _image_dataset(rows: int, columns: int, samples: int = 1, frames: int = 1) -> Dataset:
    ds = _small_dataset()
    ds.Rows, ds.Columns, ds.SamplesPerPixel = rows, columns, samples
    ds.PhotometricInterpretation = "MONOCHROME2" if samples == 1 else "RGB"
    if samples == 3:
        ds.PlanarConfiguration = 0
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    if frames > 1:
        ds.NumberOfFrames = frames
    return ds


def jpeg_header_bomb() -> bytes:
    """JPEG baseline pixel data whose SOF declares 60000 x 60000 x 3 (10 GB decoded)
    while the dataset says 16 x 16."""
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, 60000, 60000, 3) + \
        b"\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    frame = b"\xff\xd8" + sof + b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00" + bytes(64) + \
        b"\xff\xd9"
    return _encapsulated(_image_dataset(16, 16, 3), JPEGBaseline8Bit, frame)


def j2k_header_bomb() -> bytes:
    """JPEG 2000 pixel data whose SIZ declares 50000 x 50000 (10 GB in OpenJPEG's
    32-bit samples) while the dataset says 16 x 16."""
    siz = b"\xff\x51" + struct.pack(">HHIIIIIIIIH", 41, 0, 50000, 50000, 0, 0, 50000, 50000,
                                    0, 0, 1) + b"\x07\x01\x01"
    frame = b"\xff\x4f" + siz + b"\xff\x93" + bytes(64) + b"\xff\xd9"
    return _encapsulated(_image_dataset(16, 16), JPEG2000Lossless, frame)


def dimension_bomb() -> bytes:
    """An instance declaring 65535 x 65535 x 3 x 16-bit x 1000 frames over a few bytes of
    JPEG data: decoding all frames would need 25 TB."""
    ds = _image_dataset(65535, 65535, 3, frames=1000)
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    frame = b"\xff\xd8\xff\xd9"
    return _encapsulated(ds, JPEGBaseline8Bit, frame)


# --- malformed corpus ------------------------------------------------------------------------

Mutation = Callable[[bytes, random.Random], bytes]


def _truncate(data: bytes, rng: random.Random) -> bytes:
    return data[:rng.randrange(1, len(data) - 1)]


def _flip(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 16)):
        position = rng.randrange(132, len(out))
        out[position] ^= 1 << rng.randrange(8)
    return bytes(out)


def _random_bytes(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    start = rng.randrange(132, len(out) - 8)
    for i in range(start, min(len(out), start + rng.randint(4, 64))):
        out[i] = rng.randrange(256)
    return bytes(out)


def _element_offsets(data: bytes) -> list[int]:
    """Offsets of explicit-VR element headers after the meta header (a rough scan)."""
    offsets = []
    position = 132
    while position + 8 <= len(data):
        vr = data[position + 4:position + 6]
        if not vr.isalpha() or not vr.isupper():
            break
        offsets.append(position)
        if vr in (b"OB", b"OW", b"OF", b"SQ", b"UT", b"UN", b"UC", b"UR", b"OD", b"OL", b"OV"):
            length = struct.unpack_from("<I", data, position + 8)[0]
            if length == 0xFFFFFFFF:
                break
            position += 12 + length
        else:
            position += 8 + struct.unpack_from("<H", data, position + 6)[0]
    return offsets


def _huge_length(data: bytes, rng: random.Random) -> bytes:
    offsets = _element_offsets(data)
    out = bytearray(data)
    position = rng.choice(offsets[1:] or offsets)
    vr = bytes(out[position + 4:position + 6])
    if vr in (b"OB", b"OW", b"SQ", b"UT", b"UN"):
        struct.pack_into("<I", out, position + 8,
                         rng.choice([0xFFFFFFF0, 0x7FFFFFFF, len(data) * 4, 0xFFFFFFFE]))
    else:
        struct.pack_into("<H", out, position + 6, rng.choice([0xFFFF, 0xFFFE, 0x8001]))
    return bytes(out)


_VRS = [b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FL", b"FD", b"IS", b"LO", b"LT",
        b"OB", b"OW", b"PN", b"SH", b"SL", b"SQ", b"SS", b"ST", b"TM", b"UI", b"UL", b"UN",
        b"US", b"UT", b"ZZ", b"\x00\x00"]


def _wrong_vr(data: bytes, rng: random.Random) -> bytes:
    offsets = _element_offsets(data)
    out = bytearray(data)
    for position in rng.sample(offsets, min(len(offsets), rng.randint(1, 3))):
        out[position + 4:position + 6] = rng.choice(_VRS)
    return bytes(out)


def _stray_delimiter(data: bytes, rng: random.Random) -> bytes:
    return data + rng.choice([b"\xfe\xff\xdd\xe0\0\0\0\0", b"\xfe\xff\x0d\xe0\0\0\0\0",
                              b"\xfe\xff\x00\xe0\xff\xff\xff\xff"])


def _garbage_tail(data: bytes, rng: random.Random) -> bytes:
    return data + bytes(rng.randrange(256) for _ in range(rng.randint(1, 40)))


def _bad_meta(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    position = rng.randrange(128, min(len(out), 300))
    out[position:position + 4] = rng.choice([b"\xff\xff\xff\xff", b"\0\0\0\0", b"DICM"])
    return bytes(out)


def _nested_sequences(depth: int) -> bytes:
    """Undefined-length sequences nested *depth* deep (recursion in every parser)."""
    ds = _small_dataset()
    head = _explicit_le(ds)
    opening = b"\x08\x00\x15\x11SQ\0\0\xff\xff\xff\xff" + b"\xfe\xff\x00\xe0\xff\xff\xff\xff"
    closing = b"\xfe\xff\x0d\xe0\0\0\0\0" + b"\xfe\xff\xdd\xe0\0\0\0\0"
    return _meta(ds.SOPClassUID, ds.SOPInstanceUID, ExplicitVRLittleEndian) + head + \
        opening * depth + closing * depth


MUTATIONS: list[Mutation] = [_truncate, _flip, _random_bytes, _huge_length, _wrong_vr,
                             _stray_delimiter, _garbage_tail, _bad_meta]


def malformed_corpus(count: int = 320, seed: int = 13) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of *count* malformed files: every mutation applied to fresh valid
    files, plus fixed hostile shapes (bombs, deep nesting, empty, not DICOM at all).
    Some mutations leave a file that is still valid DICOM (a flipped bit in a pixel):
    the campaign accepts either a clean refusal or a clean store of those."""
    rng = random.Random(seed)
    fixed: list[tuple[str, bytes]] = [
        ("empty", b""), ("preamble-only", bytes(128) + b"DICM"),
        ("text", b"hello, this is not DICOM\n" * 10), ("zip-header", b"PK\x03\x04" + bytes(40)),
        ("deflate-bomb", deflate_bomb(1 << 30)), ("jpeg-header-bomb", jpeg_header_bomb()),
        ("j2k-header-bomb", j2k_header_bomb()), ("dimension-bomb", dimension_bomb()),
        ("nested-200", _nested_sequences(200)), ("nested-5000", _nested_sequences(5000)),
        ("deflate-garbage", _meta("1.2.840.10008.5.1.4.1.1.7", generate_uid(),
                                  DeflatedExplicitVRLittleEndian) + bytes(range(256)) * 4),
    ]
    yield from fixed
    produced = len(fixed)
    while produced < count:
        mutation = MUTATIONS[produced % len(MUTATIONS)]
        base = make_dicom(patient_id=f"FUZZ{produced}", size=rng.choice([4, 8, 16]),
                          InstitutionName="FUZZ HOSPITAL", ImageComments="x" * rng.randint(0, 80))
        yield f"{mutation.__name__.strip('_')}-{produced}", mutation(base, rng)
        produced += 1
