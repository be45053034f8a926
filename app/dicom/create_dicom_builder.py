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
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

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


def embed_content(ds: Dataset, content: Any) -> None:
    """Pixel data from a PNG/JPEG data URI, or an Encapsulated PDF."""
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


def embed_image(ds: Dataset, data: bytes) -> None:
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise BadRequest(f"The content is not a valid PNG or JPEG image: {error}") from error
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
