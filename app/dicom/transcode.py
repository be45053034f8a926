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
from app.validation import is_digits

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


# --- Orthanc's "Transcode" (modify, archives, media) ---------------------------------------

IMPLICIT, EXPLICIT = "1.2.840.10008.1.2", "1.2.840.10008.1.2.1"
DEFLATED, BIG_ENDIAN = "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.2"
UNCOMPRESSED = frozenset({IMPLICIT, EXPLICIT, DEFLATED, BIG_ENDIAN})
JPEG_BASELINE, JPEG_EXTENDED = "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51"
JPEG_LOSSLESS, JPEG_LOSSLESS_SV1 = "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70"
JPEG_LS, JPEG_LS_NEAR = "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"
J2K_LOSSLESS, J2K = "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91"
RLE = "1.2.840.10008.1.2.5"
# The compressed syntaxes Pharos writes: Orthanc's (DCMTK's) targets, plus JPEG 2000.
COMPRESSED_TARGETS = frozenset({JPEG_BASELINE, JPEG_EXTENDED, JPEG_LOSSLESS, JPEG_LOSSLESS_SV1,
                                JPEG_LS, JPEG_LS_NEAR, J2K_LOSSLESS, J2K, RLE})
LOSSY = frozenset({JPEG_BASELINE, JPEG_EXTENDED, JPEG_LS_NEAR, J2K})
DEFAULT_LOSSY_QUALITY = 90  # Orthanc's default DicomLossyTranscodingQuality
_configured_quality = DEFAULT_LOSSY_QUALITY
J2K_COMPRESSION_RATIO = 10.0


class CannotTranscode(UnsupportedImage):
    """The pixel data cannot be written in the asked transfer syntax."""

    http_status = 400


def configure(quality: int) -> None:
    """The lossy quality used when a request names none (``DicomLossyTranscodingQuality``)."""
    global _configured_quality
    _configured_quality = max(1, min(int(quality), 100))


def lossy_quality(request: object, key: str = "LossyQuality") -> int:
    """``LossyQuality`` of a request body (Orthanc 1.12.7), else the configured quality."""
    from app.errors import BadRequest
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
    from pydicom.uid import UID

    from app.errors import BadRequest, ParameterOutOfRange
    if not isinstance(syntax, str) or not syntax.strip():
        raise BadRequest("Transcode must be a transfer syntax UID")
    uid = UID(syntax.strip())
    if not uid.is_transfer_syntax:
        raise ParameterOutOfRange(f"Unknown transfer syntax: {uid}")
    if uid not in UNCOMPRESSED and uid not in COMPRESSED_TARGETS:
        raise BadRequest(f"Cannot transcode to {uid.name} ({uid}); supported targets: "
                         + ", ".join(sorted(UNCOMPRESSED | COMPRESSED_TARGETS)))
    return str(uid)


def transcode_dataset(ds: Dataset, syntax: str, *, quality: int | None = None,
                      new_uid_when_lossy: bool = True) -> None:
    """Re-encode *ds* in place in *syntax*, as Orthanc's DCMTK transcoder does: lossy targets
    record LossyImageCompression (PS3.3 C.7.6.1.1.5) and, with *new_uid_when_lossy*, get a
    new SOP Instance UID (a lossy image is another image)."""
    from pydicom.uid import UID, generate_uid

    from app.dicom.limits import check_pixel_decode
    source = UID(str(ds.file_meta.get("TransferSyntaxUID", EXPLICIT)))
    target = UID(syntax)
    if source == target:
        return
    quality = _configured_quality if quality is None else quality
    if "PixelData" in ds:
        check_pixel_decode(ds)
        try:
            _to_native(ds, source)
            if target == BIG_ENDIAN:
                _big_endian_pixels(ds)
            elif target in COMPRESSED_TARGETS:
                _compress(ds, str(target), quality)
        except (UnsupportedImage, CannotTranscode):
            raise
        except Exception as error:  # noqa: BLE001 — a codec failing on these pixels
            raise CannotTranscode(f"Cannot transcode to {target.name}: {error}") from error
        if target in LOSSY and new_uid_when_lossy:
            ds.SOPInstanceUID = generate_uid()
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = target


def transcode_file(data: bytes, syntax: str, *, quality: int | None = None,
                   new_uid_when_lossy: bool = True) -> bytes:
    """A Part 10 file re-encoded in *syntax*; the same bytes when it already is."""
    ds = pydicom.dcmread(io.BytesIO(data))
    if str(ds.file_meta.get("TransferSyntaxUID", "")) == syntax:
        return data
    transcode_dataset(ds, syntax, quality=quality, new_uid_when_lossy=new_uid_when_lossy)
    return write_file(ds)


def write_file(ds: Dataset) -> bytes:
    """A Part 10 file in the transfer syntax of ``ds.file_meta``."""
    syntax = str(ds.file_meta.TransferSyntaxUID)
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, implicit_vr=syntax == IMPLICIT,
                     little_endian=syntax != BIG_ENDIAN, force_encoding=True)
    return buffer.getvalue()


def _to_native(ds: Dataset, source: str) -> None:
    """Native little-endian pixels (compressed decoded, YBR made RGB; big endian swapped)."""
    from pydicom.uid import UID
    if UID(source).is_compressed:
        ds.decompress(generate_instance_uid=False)
    elif source == BIG_ENDIAN:
        array = ds.pixel_array
        ds.PixelData = array.astype(array.dtype.newbyteorder("<")).tobytes()
        ds["PixelData"].VR = "OW" if int(ds.get("BitsAllocated", 8)) > 8 else "OB"
        if "PlanarConfiguration" in ds:
            ds.PlanarConfiguration = 0  # pixel_array interleaves the samples
    ds.file_meta.TransferSyntaxUID = EXPLICIT


def _big_endian_pixels(ds: Dataset) -> None:
    """Values of more than 8 bits in big endian order; 8-bit values as OB (never swapped)."""
    if int(ds.get("BitsAllocated", 8)) <= 8:
        ds["PixelData"].VR = "OB"
    else:
        array = ds.pixel_array
        ds.PixelData = array.astype(array.dtype.newbyteorder(">")).tobytes()
        ds["PixelData"].VR = "OW"


def _frames(ds: Dataset) -> np.ndarray:
    array = ds.pixel_array
    return array[np.newaxis, ...] if int(ds.get("NumberOfFrames", 1) or 1) == 1 else array


def _set_encapsulated(ds: Dataset, fragments: list[bytes]) -> None:
    from pydicom.encaps import encapsulate
    ds.PixelData = encapsulate(fragments)
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True


def _compress(ds: Dataset, target: str, quality: int) -> None:
    bits = int(ds.get("BitsStored", ds.get("BitsAllocated", 8)) or 8)
    if target in (JPEG_BASELINE, JPEG_EXTENDED) and int(ds.BitsAllocated) == 8:
        _jpeg_8bit(ds, target, quality)
    elif target == JPEG_BASELINE:
        raise CannotTranscode("JPEG baseline holds 8-bit samples only")
    elif target == RLE:
        ds.compress(RLE, generate_instance_uid=False)
    elif target in (J2K_LOSSLESS, J2K):
        _jpeg2000(ds, target)
    elif target == JPEG_EXTENDED:
        # GDCM writes a 16-bit lossy JPEG for 12-bit samples in 16-bit words, which no
        # decoder reads: refused rather than written broken.
        raise CannotTranscode(f"Lossy JPEG of {bits}-bit samples cannot be written yet")
    else:  # lossless JPEG, JPEG-LS: GDCM
        _gdcm_compress(ds, target, quality)


def _jpeg_8bit(ds: Dataset, target: str, quality: int) -> None:
    """8-bit greyscale or RGB as lossy JPEG (ISO 10918-1) with libjpeg-turbo, as DCMTK's
    ``dcmcjpeg`` does: colour as YBR_FULL_422, the lossy attributes set."""
    from PIL import Image
    photometric = str(ds.get("PhotometricInterpretation", "")).strip()
    if int(ds.get("SamplesPerPixel", 1)) not in (1, 3) \
            or photometric not in ("MONOCHROME1", "MONOCHROME2", "RGB"):
        raise CannotTranscode(f"Lossy JPEG cannot hold {photometric} pixels")
    frames = _frames(ds)
    color = photometric == "RGB"
    fragments = []
    for frame in frames:
        buffer = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(frame, dtype=np.uint8)).save(
            buffer, format="JPEG", quality=max(1, min(int(quality), 100)),
            subsampling="4:2:2" if color else 0)
        fragments.append(buffer.getvalue())
    _set_encapsulated(ds, fragments)
    if color:
        ds.PhotometricInterpretation = "YBR_FULL_422"
        ds.PlanarConfiguration = 0
    _mark_lossy(ds, "ISO_10918_1", frames.nbytes / max(1, sum(len(f) for f in fragments)))


def _jpeg2000(ds: Dataset, target: str) -> None:
    """JPEG 2000 with OpenJPEG (pylibjpeg-openjpeg); GDCM for images too small for its
    default number of resolutions."""
    try:
        if target == J2K:
            ds.compress(target, j2k_cr=[J2K_COMPRESSION_RATIO], encoding_plugin="pylibjpeg",
                        generate_instance_uid=False)
        else:
            ds.compress(target, encoding_plugin="pylibjpeg", generate_instance_uid=False)
    except RuntimeError:
        _gdcm_compress(ds, target, DEFAULT_LOSSY_QUALITY)
    if target == J2K:
        _mark_lossy(ds, "ISO_15444_1", J2K_COMPRESSION_RATIO)


def _gdcm_compress(ds: Dataset, target: str, quality: int) -> None:
    """The pixel data encoded by GDCM (JPEG lossless and 12-bit, JPEG-LS, JPEG 2000); the
    other attributes stay Pharos' own."""
    import os
    import tempfile

    import gdcm
    syntaxes = {JPEG_EXTENDED: gdcm.TransferSyntax.JPEGExtendedProcess2_4,
                JPEG_LOSSLESS: gdcm.TransferSyntax.JPEGLosslessProcess14,
                JPEG_LOSSLESS_SV1: gdcm.TransferSyntax.JPEGLosslessProcess14_1,
                JPEG_LS: gdcm.TransferSyntax.JPEGLSLossless,
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
        if target == JPEG_EXTENDED:
            codec = gdcm.JPEGCodec()
            codec.SetLossless(False)
            codec.SetQuality(max(1, min(int(quality), 100)))
            change.SetUserCodec(codec)
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
    raw_size = len(ds.PixelData)
    ds.PixelData = encoded.PixelData
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    for keyword in ("PhotometricInterpretation", "PlanarConfiguration"):
        if keyword in encoded:
            setattr(ds, keyword, encoded.get(keyword))
    if target == JPEG_EXTENDED:
        _mark_lossy(ds, "ISO_10918_1", raw_size / max(1, len(encoded.PixelData)))
    elif target == JPEG_LS_NEAR:
        _mark_lossy(ds, "ISO_14495_1", raw_size / max(1, len(encoded.PixelData)))


def _mark_lossy(ds: Dataset, method: str, ratio: float) -> None:
    """PS3.3 C.7.6.1.1.5: a lossy compression is recorded in the instance."""
    ds.LossyImageCompression = "01"
    ds.LossyImageCompressionRatio = [f"{ratio:.4g}"[:16]]
    ds.LossyImageCompressionMethod = [method]
