"""Build DICOM instances the way ``/tools/create-dicom`` does (pure: no DB, no files).

``new_dataset`` starts like Orthanc's ``ParsedDicomFile(true)`` (Secondary Capture, fresh
identifiers), ``inject_tags`` applies the request's ``Tags`` with Orthanc's override rules,
and ``embed_content`` turns a data URI (PNG, JPEG, PDF, STL/OBJ/MTL) into pixel data or
an encapsulated document.
"""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

from app.dicom.modify import _tag, decode_data_uri, set_value
from app.errors import BadRequest, ParameterOutOfRange

SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
ENCAPSULATED_PDF = "1.2.840.10008.5.1.4.1.1.104.1"
# Encapsulated 3D manufacturing models (PS3.3 A.85), embedded since Orthanc 1.12.1.
MODEL_SOP_CLASSES = {"model/stl": "1.2.840.10008.5.1.4.1.1.104.3",
                     "model/obj": "1.2.840.10008.5.1.4.1.1.104.4",
                     "model/mtl": "1.2.840.10008.5.1.4.1.1.104.5"}
PIXEL_DATA = 0x7FE00010
SPECIFIC_CHARACTER_SET = 0x00080005
# Tags a request may set even though they already exist (InjectTags in Orthanc).
_OVERRIDABLE = frozenset({0x00100020, 0x00080022, 0x00080032, 0x00080023, 0x00080033,
                          0x00080012, 0x00080013, 0x00080021, 0x00080031, 0x00080020,
                          0x00080030})
_CHARSETS = {"ISO_IR 6", "ISO_IR 100", "ISO_IR 101", "ISO_IR 109", "ISO_IR 110", "ISO_IR 144",
             "ISO_IR 127", "ISO_IR 126", "ISO_IR 138", "ISO_IR 148", "ISO_IR 13", "ISO_IR 166",
             "ISO_IR 192", "GB18030", "GBK", "ISO 2022 IR 6", "ISO 2022 IR 100",
             "ISO 2022 IR 13", "ISO 2022 IR 87", "ISO 2022 IR 149", "ISO 2022 IR 58", ""}


def new_dataset(charset: str = "ISO_IR 100") -> Dataset:
    """An empty instance with new identifiers (Orthanc's ``ParsedDicomFile(true)``); the
    SOP class comes from the content, else :func:`default_sop_class`."""
    if charset not in _CHARSETS:
        raise ParameterOutOfRange(f"Unknown specific character set: {charset}")
    ds = Dataset()
    if charset:
        ds.SpecificCharacterSet = charset
    ds.SOPInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.PatientID = str(uuid.uuid4())
    meta = FileMetaDataset()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    return ds


def stamp_dates(ds: Dataset, parent_level: str | None) -> None:
    """Acquisition/content/creation dates now (UTC); series and study dates when the new
    instance starts a new series or study."""
    now = datetime.now(UTC)
    date, time = now.strftime("%Y%m%d"), now.strftime("%H%M%S") + ".000000"  # as Orthanc
    for prefix in ("Acquisition", "Content", "InstanceCreation"):
        setattr(ds, f"{prefix}Date", date)
        setattr(ds, f"{prefix}Time", time)
    if parent_level in (None, "Patient", "Study"):
        ds.SeriesDate, ds.SeriesTime = date, time
    if parent_level in (None, "Patient"):
        ds.StudyDate, ds.StudyTime = date, time


def inject_tags(ds: Dataset, tags: Any, private_creator: str, force: bool) -> None:
    if not isinstance(tags, dict):
        raise BadRequest("Tags field is not an object")
    for name, value in tags.items():
        tag = _tag(name)
        if tag == SPECIFIC_CHARACTER_SET:
            continue
        if tag == PIXEL_DATA:
            raise BadRequest("Use \"Content\" to inject an image into a new DICOM instance")
        if not force and tag not in _OVERRIDABLE and tag in ds:
            raise BadRequest(f"Trying to override a value inserted by Orthanc: {name} "
                             "(use \"Force\")")
        set_value(ds, tag, value, private_creator)


def embed_content(ds: Dataset, content: Any, encapsulate: bool = False) -> None:
    """Pixel data from a PNG/JPEG data URI, or an Encapsulated PDF; with *encapsulate*
    (``"Encapsulate"``, Orthanc 1.12.7) a JPEG is kept as it is, as the one fragment of
    encapsulated pixel data."""
    if not isinstance(content, str):
        raise BadRequest("Content must be given with the data URI scheme")
    mime = content[5:content.find(";")].lower() if content.startswith("data:") else ""
    payload = decode_data_uri(content)
    if payload is None:
        raise BadRequest("Content must be given with the data URI scheme "
                         "(data:image/png;base64,...)")
    if mime == "application/pdf":
        embed_pdf(ds, payload)
    elif mime in MODEL_SOP_CLASSES:
        encapsulate_document(ds, mime, payload)
        _set_if_absent(ds, "SOPClassUID", MODEL_SOP_CLASSES[mime])
        _set_if_absent(ds, "Modality", "M3D")
    elif mime == "image/jpeg" and encapsulate:
        embed_jpeg(ds, payload)
    elif mime in ("image/png", "image/jpeg"):
        embed_image(ds, payload)
    else:
        raise BadRequest(f"Unsupported content type {mime!r}: expected image/png, "
                         "image/jpeg, application/pdf, model/stl, model/obj or model/mtl")


def _set_if_absent(ds: Dataset, keyword: str, value: str) -> None:
    if not ds.get(keyword):
        setattr(ds, keyword, value)


def encapsulate_document(ds: Dataset, mime: str, document: bytes) -> None:
    """Orthanc's ``EncapsulateDocument``: the MIME type and the document (OB, even length)."""
    ds.MIMETypeOfEncapsulatedDocument = mime
    ds.EncapsulatedDocument = document + (b"\0" if len(document) % 2 else b"")


def embed_pdf(ds: Dataset, pdf: bytes) -> None:
    """An Encapsulated PDF; the SOP class, modality and conversion type unless the request
    gave them (Orthanc >= 1.9.8 keeps a given Modality)."""
    if not pdf.startswith(b"%PDF-"):
        raise BadRequest("The content is not a PDF file")
    encapsulate_document(ds, "application/pdf", pdf)
    _set_if_absent(ds, "SOPClassUID", ENCAPSULATED_PDF)
    _set_if_absent(ds, "Modality", "OT")
    _set_if_absent(ds, "ConversionType", "WSD")


def default_sop_class(ds: Dataset) -> None:
    """Secondary Capture when nothing chose a SOP class.

    Orthanc leaves SOPClassUID out then (and writes DCMTK's placeholder in the meta
    header); an instance without SOP class is invalid (PS3.3 C.12.1), so Pharos names the
    generic one.
    """
    _set_if_absent(ds, "SOPClassUID", SECONDARY_CAPTURE)


# Start-of-frame markers of the JPEG processes DICOM encapsulates (PS3.5 A.4.1).
_JPEG_PROCESSES = {0xC0: "1.2.840.10008.1.2.4.50",   # baseline
                   0xC1: "1.2.840.10008.1.2.4.51",   # extended sequential
                   0xC3: "1.2.840.10008.1.2.4.57"}   # lossless


def _jpeg_frame(data: bytes) -> tuple[int, int, int, int, int]:
    """(start-of-frame marker, precision, rows, columns, components) of a JPEG file."""
    if not data.startswith(b"\xff\xd8"):
        raise BadRequest("The content is not a JPEG image")
    position = 2
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            break
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        length = int.from_bytes(data[position + 2:position + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if position + 10 > len(data):
                break
            return (marker, data[position + 4],
                    int.from_bytes(data[position + 5:position + 7], "big"),
                    int.from_bytes(data[position + 7:position + 9], "big"), data[position + 9])
        if marker == 0xDA or length < 2:  # scan data before any frame header
            break
        position += 2 + length
    raise BadRequest("The JPEG image has no frame header")


def embed_jpeg(ds: Dataset, data: bytes) -> None:
    """The JPEG file as the single fragment of encapsulated pixel data, in the transfer
    syntax of its process (baseline, extended or lossless); geometry from its frame
    header, colour as YBR_FULL_422 (the JFIF colour space)."""
    from pydicom.encaps import encapsulate
    marker, precision, rows, columns, components = _jpeg_frame(data)
    if marker not in _JPEG_PROCESSES:
        raise BadRequest(f"Cannot encapsulate this JPEG process (SOF marker {marker:#x}): "
                         "only baseline, extended and lossless JPEG have a transfer syntax")
    if components not in (1, 3) or not rows or not columns:
        raise BadRequest(f"Cannot encapsulate a JPEG image of {components} components")
    ds.SamplesPerPixel = components
    ds.PhotometricInterpretation = "MONOCHROME2" if components == 1 else "YBR_FULL_422"
    if components == 3:
        ds.PlanarConfiguration = 0
    ds.Rows, ds.Columns = rows, columns
    ds.BitsAllocated = 8 if precision <= 8 else 16
    ds.BitsStored = precision
    ds.HighBit = precision - 1
    ds.PixelRepresentation = 0
    ds.PixelData = encapsulate([data], has_bot=False)
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    ds.file_meta.TransferSyntaxUID = UID(_JPEG_PROCESSES[marker])


def embed_image(ds: Dataset, data: bytes) -> None:
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise BadRequest(f"The content is not a valid PNG or JPEG image: {error}") from error
    except Image.DecompressionBombError as error:  # a few bytes declaring gigapixels
        raise BadRequest(f"The image is too large to embed: {error}") from error
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        pixels = np.asarray(image).astype(np.uint16)
        samples, bits = 1, 16
    elif image.mode in ("1", "L", "P", "LA") and image.mode != "P":
        pixels = np.asarray(image.convert("L"), dtype=np.uint8)
        samples, bits = 1, 8
    else:
        pixels = np.asarray(image.convert("RGB"), dtype=np.uint8)
        samples, bits = 3, 8
    ds.SamplesPerPixel = samples
    ds.PhotometricInterpretation = "MONOCHROME2" if samples == 1 else "RGB"
    if samples == 3:
        ds.PlanarConfiguration = 0
    ds.Rows, ds.Columns = int(pixels.shape[0]), int(pixels.shape[1])
    ds.BitsAllocated = ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    raw = pixels.astype("<u2" if bits == 16 else np.uint8).tobytes()
    ds.PixelData = raw + (b"\0" if len(raw) % 2 else b"")
    ds["PixelData"].VR = "OW" if bits == 16 else "OB"
