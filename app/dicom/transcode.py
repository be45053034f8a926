"""Transcoding, one module for every door: DICOMweb (frames and instances in the asked
syntax, PS3.18 8.7.3.5) and Orthanc's ``Transcode`` (modify, archives, media, C-STORE).

Decoding is the one of :mod:`app.dicom.decode`, with the codecs that give DCMTK's values
(a lossy JPEG's YCbCr comes out as RGB through libjpeg, as Orthanc's DCMTK transcoder
gives it). Encoding, as DCMTK encodes (``tests/unit/test_transcode.py`` compares with
``dcmcjpeg``):

* native: Implicit/Explicit VR Little Endian, Explicit Big Endian, Deflated;
* JPEG Baseline (1.2.840.10008.1.2.4.50) and Extended (.51) of 8-bit images through
  libjpeg-turbo (Pillow) with the standard Huffman tables at the lossy quality
  (``DicomLossyTranscodingQuality``, 90), colour as YCbCr 4:2:2, a fill byte before EOI
  making each fragment even: DCMTK's bytes. 12-bit lossy JPEG is refused (no encoder
  here writes it readably);
* JPEG Lossless (.57, selection value 6, DCMTK's default) and SV1 (.70) of 2 to 16-bit
  images through :mod:`app.dicom.jpeg_lossless`: DCMTK's bytes;
* RLE and JPEG 2000 through pydicom's encoders (GDCM for images too small for OpenJPEG),
  JPEG-LS through GDCM.

Lossy targets record LossyImageCompression (PS3.3 C.7.6.1.1.5) and, for Orthanc's
``Transcode``, get a new SOP Instance UID (a lossy image is another image); a DICOMweb
retrieval keeps the UID of the instance asked for.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pydicom
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate, generate_frames
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from app.dicom import decode, jpeg_lossless
from app.dicom.decode import UnsupportedImage
from app.dicom.limits import check_pixel_decode
from app.errors import BadRequest, ParameterOutOfRange
from app.validation import is_digits

IMPLICIT, EXPLICIT = "1.2.840.10008.1.2", "1.2.840.10008.1.2.1"
DEFLATED, BIG_ENDIAN = "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.2"
UNCOMPRESSED = frozenset({IMPLICIT, EXPLICIT, DEFLATED, BIG_ENDIAN})
NATIVE_SYNTAXES = UNCOMPRESSED
NATIVE_OUTPUT = frozenset({ExplicitVRLittleEndian, ImplicitVRLittleEndian})
JPEG_BASELINE, JPEG_EXTENDED = "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51"
JPEG_LOSSLESS, JPEG_LOSSLESS_SV1 = "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70"
JPEG_LS, JPEG_LS_NEAR = "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"
J2K_LOSSLESS, J2K = "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91"
RLE = "1.2.840.10008.1.2.5"
JPEG_LOSSY = frozenset({JPEG_BASELINE, JPEG_EXTENDED})
# The selection values DCMTK (Orthanc's transcoder) uses by default.
SELECTION_VALUES = {JPEG_LOSSLESS: 6, JPEG_LOSSLESS_SV1: 1}
# The compressed syntaxes Pharos writes: Orthanc's (DCMTK's) targets, plus JPEG 2000.
COMPRESSED_TARGETS = frozenset({JPEG_BASELINE, JPEG_EXTENDED, JPEG_LOSSLESS, JPEG_LOSSLESS_SV1,
                                JPEG_LS, JPEG_LS_NEAR, J2K_LOSSLESS, J2K, RLE})
LOSSY = frozenset({JPEG_BASELINE, JPEG_EXTENDED, JPEG_LS_NEAR, J2K})
DEFAULT_LOSSY_QUALITY = 90  # Orthanc's default DicomLossyTranscodingQuality
_configured_quality = DEFAULT_LOSSY_QUALITY
J2K_COMPRESSION_RATIO = 10.0


class CannotTranscode(UnsupportedImage):
    """The pixel data cannot be written in the asked transfer syntax (a 12-bit image in
    lossy JPEG...): 400, what was asked cannot be."""

    http_status = 400


CannotEncode = CannotTranscode


def configure(quality: int) -> None:
    """The lossy quality used when a request names none (``DicomLossyTranscodingQuality``)."""
    global _configured_quality
    _configured_quality = max(1, min(int(quality), 100))


def lossy_quality(request: object, key: str = "LossyQuality") -> int:
    """``LossyQuality`` of a request body (Orthanc 1.12.7), else the configured quality."""
    if not isinstance(request, dict) or key not in request:
        return _configured_quality
    value = request[key]
    if isinstance(value, str) and is_digits(value.strip()):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100:
        raise BadRequest(f'"{key}" must be an integer between 1 and 100')
    return value


def check_target(syntax: object) -> str:
    """The transfer syntax UID to transcode to (Orthanc's ``GetTransferSyntax``): 400 when
    it is not a transfer syntax Pharos can write."""
    if not isinstance(syntax, str) or not syntax.strip():
        raise BadRequest("Transcode must be a transfer syntax UID")
    uid = UID(syntax.strip())
    if not uid.is_transfer_syntax:
        raise ParameterOutOfRange(f"Unknown transfer syntax: {uid}")
    if uid not in UNCOMPRESSED and uid not in COMPRESSED_TARGETS:
        raise BadRequest(f"Cannot transcode to {uid.name} ({uid}); supported targets: "
                         + ", ".join(sorted(UNCOMPRESSED | COMPRESSED_TARGETS)))
    return str(uid)


def can_encode(syntax: str) -> bool:
    """Whether DICOMweb may offer *syntax* (frames and instances are then written in it)."""
    return syntax in NATIVE_OUTPUT or syntax in COMPRESSED_TARGETS


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
            return pydicom.pixels.utils.pixel_array(ds, index=index)
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


def _sample_dtype(ds: Dataset, order: str = "<") -> str:
    bits = int(ds.get("BitsAllocated", 8) or 8)
    signed = int(ds.get("PixelRepresentation", 0) or 0) == 1
    kind = "i" if signed else "u"
    if bits == 8:
        return kind + "1"
    if bits in (16, 32):
        return f"{order}{kind}{bits // 8}"
    raise CannotTranscode(f"Cannot write {bits}-bit samples")


def _serialized(samples: np.ndarray, ds: Dataset, order: str = "<") -> bytes:
    return np.ascontiguousarray(samples).astype(_sample_dtype(ds, order), copy=False).tobytes()


def native_frames(ds: Dataset, numbers: Sequence[int] | None = None) -> list[bytes]:
    """Frames *numbers* (from 1; all by default) as uncompressed little-endian bytes (what
    application/octet-stream means by default, PS3.18 8.7.3.5.2). Native little-endian
    frames are the stored bytes; others are decoded, one frame at a time."""
    syntax = str(ds.file_meta.TransferSyntaxUID)
    count = decode.frame_count(ds)
    numbers = list(numbers) if numbers is not None else list(range(1, count + 1))
    if syntax in NATIVE_SYNTAXES and syntax != BIG_ENDIAN:
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
    return [_serialized(frame_samples(ds, n - 1), ds) for n in numbers]


# --- encoding one frame ---------------------------------------------------------------------

def encode_frame(samples: np.ndarray, ds: Dataset, photometric: str, target: str,
                 quality: int | None = None) -> bytes:
    """One frame's samples (decoded, *photometric*) in the compressed *target* syntax."""
    quality = _configured_quality if quality is None else quality
    if target in JPEG_LOSSY:
        return _jpeg_lossy(samples, ds, photometric, target, quality)
    if target in SELECTION_VALUES:
        # DCMTK codes with the allocated bits (a 12-bit CT: precision 16).
        precision = int(ds.get("BitsAllocated", 8) or 8) if samples.ndim == 2 else 8
        if samples.dtype.kind == "i":
            samples = samples.view(samples.dtype.str.replace("i", "u"))
        try:
            return jpeg_lossless.encode(samples, precision, SELECTION_VALUES[target])
        except ValueError as error:
            raise CannotTranscode(str(error)) from error
    if target in (RLE, J2K_LOSSLESS, J2K, JPEG_LS, JPEG_LS_NEAR):
        return _through_a_dataset(samples, ds, photometric, target, quality)
    raise CannotTranscode(f"Pharos cannot encode pixel data in {target}")


def encoded_photometric(photometric: str, samples: int, target: str) -> str:
    """The photometric interpretation of frames encoded in *target*."""
    if target in JPEG_LOSSY and samples == 3:
        return "YBR_FULL_422"
    return photometric


def _jpeg_lossy(samples: np.ndarray, ds: Dataset, photometric: str, target: str,
                quality: int) -> bytes:
    if int(ds.get("BitsStored", 8) or 8) > 8 or samples.dtype.itemsize > 1 and \
            samples.max(initial=0) > 255:
        raise CannotTranscode("Lossy JPEG of more than 8 bits cannot be written")
    pixels = samples.astype(np.uint8)
    if pixels.ndim == 3 and photometric != "RGB":
        if not photometric.startswith("YBR"):
            raise CannotTranscode(f"Lossy JPEG cannot hold {photometric} pixels")
        from pydicom.pixels.processing import convert_color_space
        pixels = convert_color_space(pixels, photometric, "RGB")
    if pixels.ndim == 3 and pixels.shape[2] != 3:
        raise CannotTranscode("Lossy JPEG holds grey or RGB pixels")
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(
        buffer, format="JPEG", quality=max(1, min(int(quality), 100)),
        subsampling="4:2:2" if pixels.ndim == 3 else 0)
    stream = buffer.getvalue()
    if target == JPEG_EXTENDED:  # the same 8-bit coding, signalled as process 2 & 4
        stream = stream.replace(b"\xff\xc0", b"\xff\xc1", 1)
    return jpeg_lossless.end_of_image(stream[:-2])


def _through_a_dataset(samples: np.ndarray, ds: Dataset, photometric: str, target: str,
                       quality: int) -> bytes:
    """RLE, JPEG 2000 and JPEG-LS of one frame, through a one-frame dataset."""
    one = Dataset()
    one.file_meta = pydicom.dataset.FileMetaDataset()
    one.file_meta.TransferSyntaxUID = UID(EXPLICIT)
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
    if samples.dtype.kind == "u" and one.BitsStored < one.BitsAllocated:
        samples = samples & ((1 << one.BitsStored) - 1)  # bits above BitsStored are not pixels
    one.PixelData = np.ascontiguousarray(samples).tobytes()
    one["PixelData"].VR = "OW" if one.BitsAllocated > 8 else "OB"
    one.SOPClassUID, one.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.7", "1.2.3"
    _compress(one, target, quality)
    return next(generate_frames(one.PixelData, number_of_frames=1))


def frames(ds: Dataset, numbers: Sequence[int], target: str) -> list[bytes]:
    """Frames *numbers* (from 1) in *target*: the stored fragments when *target* is the
    stored compressed syntax, little-endian samples for a native one, else encoded."""
    stored = str(ds.file_meta.TransferSyntaxUID)
    count = decode.frame_count(ds)
    if target == stored and stored not in NATIVE_SYNTAXES:
        encoded = list(generate_frames(ds.PixelData, number_of_frames=count))
        return [encoded[n - 1] for n in numbers]
    if target in NATIVE_OUTPUT or target == BIG_ENDIAN:
        return native_frames(ds, numbers)
    photometric = decoded_photometric(ds)
    return [encode_frame(frame_samples(ds, n - 1), ds, photometric, target) for n in numbers]


# --- whole datasets and files ---------------------------------------------------------------

def transcode_dataset(ds: Dataset, syntax: str, *, quality: int | None = None,
                      new_uid_when_lossy: bool = True) -> None:
    """Re-encode *ds* in place in *syntax*, as Orthanc's DCMTK transcoder does: lossy targets
    record LossyImageCompression (PS3.3 C.7.6.1.1.5) and, with *new_uid_when_lossy*, get a
    new SOP Instance UID (a lossy image is another image)."""
    from pydicom.uid import generate_uid
    source = str(ds.file_meta.get("TransferSyntaxUID", EXPLICIT))
    target = str(UID(syntax))
    if source == target:
        return
    quality = _configured_quality if quality is None else quality
    if "PixelData" in ds:
        check_pixel_decode(ds)
        try:
            if source in UNCOMPRESSED and target in UNCOMPRESSED:
                _native_order(ds, source, target)
            else:
                _replace_pixel_data(ds, target, quality)
        except (UnsupportedImage, CannotTranscode):
            raise
        except Exception as error:  # noqa: BLE001 — a codec failing on these pixels
            raise CannotTranscode(f"Cannot transcode to {UID(target).name}: {error}") \
                from error
        if target in LOSSY and new_uid_when_lossy:
            ds.SOPInstanceUID = generate_uid()
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = UID(target)


def transcode_file(data: bytes, syntax: str, *, quality: int | None = None,
                   new_uid_when_lossy: bool = True, stored: str | None = None) -> bytes:
    """A Part 10 file re-encoded in *syntax*; the same bytes when it already is. *stored*
    is the syntax of a file without Part 10 header (kept as received)."""
    ds = pydicom.dcmread(io.BytesIO(data), force=True)
    if "TransferSyntaxUID" not in ds.file_meta:
        ds.file_meta.TransferSyntaxUID = UID(stored or IMPLICIT)
    if str(ds.file_meta.TransferSyntaxUID) == syntax and ds.preamble is not None:
        return data
    transcode_dataset(ds, syntax, quality=quality, new_uid_when_lossy=new_uid_when_lossy)
    return write_file(ds)


def to_explicit_little_endian(data: bytes, target: str = ExplicitVRLittleEndian,
                              stored: str | None = None) -> bytes:
    """A Part 10 file re-encoded in Explicit (or Implicit) VR Little Endian."""
    return transcode_file(data, target, new_uid_when_lossy=False, stored=stored)


def write_file(ds: Dataset) -> bytes:
    """A Part 10 file (preamble, DICM, meta) in the transfer syntax of ``ds.file_meta``."""
    syntax = str(ds.file_meta.TransferSyntaxUID)
    if getattr(ds, "preamble", None) is None:
        ds.preamble = b"\x00" * 128
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, implicit_vr=syntax == IMPLICIT,
                     little_endian=syntax != BIG_ENDIAN, force_encoding=True)
    return buffer.getvalue()


def _native_order(ds: Dataset, source: str, target: str) -> None:
    """Native to native: values of more than 8 bits swapped between little and big endian."""
    if int(ds.get("BitsAllocated", 8) or 8) <= 8:
        ds["PixelData"].VR = "OB"
        return
    if (source == BIG_ENDIAN) != (target == BIG_ENDIAN):
        _complete(ds)
        array = ds.pixel_array
        order: Literal[">", "<"] = ">" if target == BIG_ENDIAN else "<"
        ds.PixelData = array.astype(array.dtype.newbyteorder(order)).tobytes()
        ds["PixelData"].VR = "OW"
        if "PlanarConfiguration" in ds:
            ds.PlanarConfiguration = 0  # pixel_array interleaves the samples


def _replace_pixel_data(ds: Dataset, target: str, quality: int) -> None:
    """Decoded (DCMTK's values), then written native or encoded frame by frame."""
    count = decode.frame_count(ds)
    photometric = decoded_photometric(ds)
    samples = [frame_samples(ds, index) for index in range(count)]
    channels = 1 if samples[0].ndim == 2 else samples[0].shape[2]
    raw_size = sum(frame.nbytes for frame in samples)
    if target in UNCOMPRESSED:
        order = ">" if target == BIG_ENDIAN else "<"
        ds.PixelData = b"".join(_serialized(frame, ds, order) for frame in samples)
        ds["PixelData"].VR = "OW" if int(ds.get("BitsAllocated", 8) or 8) > 8 else "OB"
        ds["PixelData"].is_undefined_length = False
        ds.PhotometricInterpretation = photometric
    else:
        fragments = [encode_frame(frame, ds, photometric, target, quality)
                     for frame in samples]
        _set_encapsulated(ds, fragments)
        ds.PhotometricInterpretation = encoded_photometric(photometric, channels, target)
        ratio = raw_size / max(1, sum(len(f) for f in fragments))
        if target in JPEG_LOSSY:
            _mark_lossy(ds, "ISO_10918_1", ratio)
        elif target == J2K:
            _mark_lossy(ds, "ISO_15444_1", J2K_COMPRESSION_RATIO)
        elif target == JPEG_LS_NEAR:
            _mark_lossy(ds, "ISO_14495_1", ratio)
    if channels > 1:
        ds.PlanarConfiguration = 0


def _set_encapsulated(ds: Dataset, fragments: list[bytes]) -> None:
    ds.PixelData = encapsulate(fragments, has_bot=True)
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True


def _compress(ds: Dataset, target: str, quality: int) -> None:
    """RLE, JPEG 2000 or JPEG-LS of a native one-frame dataset, in place."""
    if target == RLE:
        ds.compress(RLE, generate_instance_uid=False)
    elif target in (J2K_LOSSLESS, J2K):
        _jpeg2000(ds, target, quality)
    else:  # JPEG-LS: GDCM
        _gdcm_compress(ds, target, quality)


def _jpeg2000(ds: Dataset, target: str, quality: int) -> None:
    """JPEG 2000 with OpenJPEG (pylibjpeg-openjpeg); GDCM for images too small for its
    default number of resolutions."""
    try:
        if target == J2K:
            ds.compress(target, j2k_cr=[J2K_COMPRESSION_RATIO], encoding_plugin="pylibjpeg",
                        generate_instance_uid=False)
        else:
            ds.compress(target, encoding_plugin="pylibjpeg", generate_instance_uid=False)
    except RuntimeError:
        _gdcm_compress(ds, target, quality)


def _gdcm_compress(ds: Dataset, target: str, quality: int) -> None:
    """The pixel data encoded by GDCM (JPEG-LS, small JPEG 2000); the other attributes
    stay Pharos' own."""
    import os
    import tempfile

    try:
        import gdcm
    except ImportError as error:
        raise CannotTranscode(f"No encoder for {target} here (GDCM is not installed)") \
            from error
    syntaxes = {JPEG_LS: gdcm.TransferSyntax.JPEGLSLossless,
                JPEG_LS_NEAR: gdcm.TransferSyntax.JPEGLSNearLossless,
                J2K_LOSSLESS: gdcm.TransferSyntax.JPEG2000Lossless,
                J2K: gdcm.TransferSyntax.JPEG2000}
    handle, source = tempfile.mkstemp(suffix=".dcm")
    os.close(handle)
    target_path = source + ".out"
    try:
        pydicom.dcmwrite(source, ds, enforce_file_format=True)
        reader = gdcm.ImageReader()
        reader.SetFileName(source)
        if not reader.Read():
            raise CannotTranscode("GDCM cannot read these pixels")
        change = gdcm.ImageChangeTransferSyntax()
        change.SetTransferSyntax(gdcm.TransferSyntax(syntaxes[target]))
        change.SetInput(reader.GetImage())
        if not change.Change():
            raise CannotTranscode(f"GDCM cannot encode these pixels as {target}")
        writer = gdcm.ImageWriter()
        writer.SetFile(reader.GetFile())
        writer.SetImage(change.GetOutput())
        writer.SetFileName(target_path)
        if not writer.Write():
            raise CannotTranscode("GDCM cannot write the transcoded file")
        encoded = pydicom.dcmread(target_path)
    finally:
        for path in (source, target_path):
            if os.path.exists(path):
                os.unlink(path)
    ds.PixelData = encoded.PixelData
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    for keyword in ("PhotometricInterpretation", "PlanarConfiguration"):
        if keyword in encoded:
            setattr(ds, keyword, encoded.get(keyword))
    ds.file_meta.TransferSyntaxUID = UID(target)


def _mark_lossy(ds: Dataset, method: str, ratio: float) -> None:
    """PS3.3 C.7.6.1.1.5: a lossy compression is recorded in the instance."""
    ds.LossyImageCompression = "01"
    ds.LossyImageCompressionRatio = [f"{ratio:.4g}"[:16]]
    ds.LossyImageCompressionMethod = [method]
