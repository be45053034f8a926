"""Build DICOM instances from DICOM JSON metadata plus bulk data (STOW-RS, PS3.18 10.5.1.2).

A STOW-RS request of type ``application/dicom+json`` carries datasets as DICOM JSON whose
bulk elements point (``BulkDataURI``) at other parts of the same request by their
Content-Location. ``build_instance`` resolves those references and turns them into a
Part 10 file:

* pixel data given as ``image/jpeg`` (or JPEG-LS, JPEG 2000), ``video/mpeg`` or
  ``video/mp4`` becomes encapsulated pixel data in the matching transfer syntax
  (PS3.5 A.4), with the image attributes the metadata lacks read from the JPEG header;
* an ``application/pdf`` (or other document) part referenced from
  EncapsulatedDocument (0042,0011) becomes an Encapsulated PDF (PS3.3 A.45);
* uncompressed bulk data (``application/octet-stream``) is used as it is.

Missing UIDs are generated (as dcm4chee does), and a missing SOP Class is inferred from
the content. Pure: no DB, no files.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pydicom
from PIL import Image, UnidentifiedImageError
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

from app.errors import BadRequest

PIXEL_DATA = "7FE00010"
ENCAPSULATED_DOCUMENT = "00420011"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
VL_PHOTOGRAPHIC = "1.2.840.10008.5.1.4.1.1.77.1.4"
VIDEO_PHOTOGRAPHIC = "1.2.840.10008.5.1.4.1.1.77.1.4.1"
ENCAPSULATED_PDF = "1.2.840.10008.5.1.4.1.1.104.1"

# Media type of a bulk part -> transfer syntax of the pixel data (PS3.18 Table 8.7.3-5).
PIXEL_SYNTAXES: dict[str, str] = {
    "image/jpeg": "1.2.840.10008.1.2.4.50",
    "image/jls": "1.2.840.10008.1.2.4.80",
    "image/jp2": "1.2.840.10008.1.2.4.90",
    "image/jpx": "1.2.840.10008.1.2.4.92",
    "video/mpeg": "1.2.840.10008.1.2.4.100",
    "video/mp4": "1.2.840.10008.1.2.4.102",
    "video/h265": "1.2.840.10008.1.2.4.107",
}
DOCUMENT_TYPES = {"application/pdf", "text/xml", "application/xml", "model/stl",
                  "model/obj", "model/mtl", "application/octet-stream"}


class BulkDataMissing(BadRequest):
    """A BulkDataURI that names no part of the request."""


@dataclass
class BulkPart:
    """One bulk-data part of the request: its media type (+ transfer-syntax) and content."""

    media_type: str
    data: bytes
    transfer_syntax: str | None = None


BulkResolver = Callable[[str], BulkPart | None]


def build_instance(document: dict[str, Any], resolve: BulkResolver, *,
                   study_uid: str | None = None) -> bytes:
    """A Part 10 file from one DICOM JSON dataset and the bulk parts it references."""
    if not isinstance(document, dict):
        raise BadRequest("Each dataset of a DICOM JSON part must be a JSON object")
    document = dict(document)
    pixel = _take_bulk(document, PIXEL_DATA, resolve)
    encapsulated = _take_bulk(document, ENCAPSULATED_DOCUMENT, resolve)
    used: dict[str, BulkPart] = {}

    def handler(tag: str, vr: str, uri: str) -> bytes:
        part = resolve(uri)
        if part is None:
            raise BulkDataMissing(f"BulkDataURI {uri!r} of ({tag}) names no part of the "
                                  "request (by Content-Location)")
        used[tag] = part
        return part.data

    try:
        ds = Dataset.from_json(document, bulk_data_uri_handler=handler)
    except BadRequest:
        raise
    except Exception as error:  # noqa: BLE001 — malformed DICOM JSON
        raise BadRequest(f"Invalid DICOM JSON dataset: {error}") from error
    syntax: str = ExplicitVRLittleEndian
    if pixel is not None:
        syntax = _set_pixel_data(ds, pixel)
    if encapsulated is not None:
        _set_document(ds, encapsulated)
    _fill_identifiers(ds, study_uid, pixel, encapsulated)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = UID(syntax)
    ds.file_meta = meta
    buffer = io.BytesIO()
    try:
        pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    except Exception as error:  # noqa: BLE001 — values pydicom cannot encode
        raise BadRequest(f"Cannot encode the DICOM dataset: {error}") from error
    return buffer.getvalue()


def _take_bulk(document: dict[str, Any], key: str, resolve: BulkResolver) -> BulkPart | None:
    """Remove an element given by BulkDataURI from the document and return its part."""
    element = document.get(key)
    if not isinstance(element, dict) or "BulkDataURI" not in element:
        return None
    uri = element["BulkDataURI"]
    part = resolve(uri)
    if part is None:
        raise BulkDataMissing(f"BulkDataURI {uri!r} of ({key}) names no part of the request "
                              "(by Content-Location)")
    del document[key]
    return part


def _set_pixel_data(ds: Dataset, part: BulkPart) -> str:
    media = part.media_type
    if media in ("application/octet-stream", ""):
        ds.PixelData = part.data
        if "BitsAllocated" in ds and int(ds.BitsAllocated) > 8:
            ds["PixelData"].VR = "OW"
        else:
            ds["PixelData"].VR = "OB"
        return part.transfer_syntax if part.transfer_syntax not in (None, "*") \
            else ExplicitVRLittleEndian
    syntax = part.transfer_syntax if part.transfer_syntax not in (None, "*") \
        else PIXEL_SYNTAXES.get(media)
    if syntax is None:
        raise BadRequest(f"Unsupported media type {media!r} for pixel data")
    if media.startswith("image/"):
        _image_attributes(ds, part.data, media)
        fragments = [part.data]
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        if frames > 1:
            raise BadRequest("A multi-frame image needs one bulk part per frame (not supported "
                             "in one part)")
    else:
        _video_attributes(ds)
        fragments = [part.data]
    ds.PixelData = encapsulate(fragments, has_bot=False)
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    return syntax


def _image_attributes(ds: Dataset, data: bytes, media: str) -> None:
    """Rows, Columns, samples and bits from the image header when the metadata lacks them."""
    try:
        image = Image.open(io.BytesIO(data))
        width, height, mode = image.width, image.height, image.mode
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as error:
        if {"Rows", "Columns", "SamplesPerPixel", "BitsAllocated"} <= set(ds.dir()):
            return
        raise BadRequest(f"The {media} bulk data cannot be read as an image: {error}") \
            from error
    color = mode not in ("L", "I", "I;16", "1", "P")
    defaults: dict[str, Any] = {
        "Rows": height, "Columns": width, "SamplesPerPixel": 3 if color else 1,
        "PhotometricInterpretation": ("YBR_FULL_422" if media == "image/jpeg" else "RGB")
        if color else "MONOCHROME2",
        "BitsAllocated": 16 if mode in ("I", "I;16") else 8,
        "BitsStored": 16 if mode in ("I", "I;16") else 8,
        "HighBit": 15 if mode in ("I", "I;16") else 7,
        "PixelRepresentation": 0,
    }
    if color:
        defaults["PlanarConfiguration"] = 0
    for keyword, value in defaults.items():
        if keyword not in ds:
            setattr(ds, keyword, value)
    if "LossyImageCompression" not in ds and media == "image/jpeg":
        ds.LossyImageCompression = "01"


def _video_attributes(ds: Dataset) -> None:
    """PS3.5 8.2.5: MPEG pixel data; geometry comes from the metadata (defaults: HD)."""
    defaults: dict[str, Any] = {
        "SamplesPerPixel": 3, "PhotometricInterpretation": "YBR_PARTIAL_420",
        "PlanarConfiguration": 0, "BitsAllocated": 8, "BitsStored": 8, "HighBit": 7,
        "PixelRepresentation": 0, "NumberOfFrames": 1, "FrameIncrementPointer": 0x00181063,
        "FrameTime": 40, "Rows": 1080, "Columns": 1920,
    }
    for keyword, value in defaults.items():
        if keyword not in ds:
            setattr(ds, keyword, value)


def _set_document(ds: Dataset, part: BulkPart) -> None:
    data = part.data if len(part.data) % 2 == 0 else part.data + b"\x00"
    ds.EncapsulatedDocument = data
    ds["EncapsulatedDocument"].VR = "OB"
    if "MIMETypeOfEncapsulatedDocument" not in ds:
        ds.MIMETypeOfEncapsulatedDocument = part.media_type or "application/pdf"
    if "EncapsulatedDocumentLength" not in ds:
        ds.EncapsulatedDocumentLength = len(part.data)


def _fill_identifiers(ds: Dataset, study_uid: str | None, pixel: BulkPart | None,
                      document: BulkPart | None) -> None:
    if "SOPClassUID" not in ds or not ds.SOPClassUID:
        if document is not None:
            ds.SOPClassUID = ENCAPSULATED_PDF
        elif pixel is not None and pixel.media_type.startswith("video/"):
            ds.SOPClassUID = VIDEO_PHOTOGRAPHIC
        else:
            ds.SOPClassUID = SECONDARY_CAPTURE
    if "StudyInstanceUID" not in ds or not ds.StudyInstanceUID:
        ds.StudyInstanceUID = study_uid or generate_uid()
    for keyword in ("SeriesInstanceUID", "SOPInstanceUID"):
        if keyword not in ds or not ds.get(keyword):
            setattr(ds, keyword, generate_uid())
    if "Modality" not in ds:
        ds.Modality = "DOC" if document is not None else "OT"
    if "PatientID" not in ds:
        ds.PatientID = ""
