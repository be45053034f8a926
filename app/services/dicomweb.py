"""DICOMweb use cases: resolve UIDs, WADO-RS metadata and retrieval, frames, bulk data.

Everything is answered from the index (the DICOM JSON stored at ingest, main tags,
columns) except what needs the pixels or the bytes of the file: instance retrieval,
frames, bulk data and rendered images open the blob, one instance at a time.
UIDs are resolved through the one matching engine (``build_query`` + ``find_pks``).
QIDO-RS lives in :mod:`app.services.dicomweb_qido`, STOW-RS in
:mod:`app.services.dicomweb_stow`.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames
from pydicom.uid import UID

from app import orthanc_api_at_least
from app.context import ServerContext
from app.dicom import decode, dicomweb_render, render, transcode
from app.dicom.dicomweb_json import decimal_values, drop_retired, rewrite_bulk_uris
from app.dicom.dicomweb_render import Rendering
from app.dicom.frame_ranges import RANGED_SYNTAXES, FrameLayout, PrefixTooShort, frame_layout
from app.dicom.levels import Level
from app.errors import BadRequest, InexistentFile, ParameterOutOfRange, UnknownResource
from app.index import find as index_find
from app.index import repository
from app.index.db import Connection
from app.index.records import InstanceRecord, LeanInstance
from app.services.find import build_query
from app.services.instances import stored_file
from app.validation import is_digits

# UIDs never contain these; a path segment with them must not turn into a wildcard query.
_NOT_A_UID = re.compile(r"[*?\\,\s]")


@dataclass(frozen=True)
class Target:
    """The UIDs of a WADO-RS request path (study, optional series, optional instance)."""

    study: str
    series: str | None = None
    instance: str | None = None

    @property
    def level(self) -> Level:
        if self.instance is not None:
            return Level.INSTANCE
        return Level.SERIES if self.series is not None else Level.STUDY

    def describe(self) -> str:
        text = f"study {self.study}"
        if self.series is not None:
            text += f", series {self.series}"
        if self.instance is not None:
            text += f", instance {self.instance}"
        return text


@dataclass(frozen=True)
class LocatedInstance:
    """An instance row with the UIDs of its study and series (for URLs)."""

    study_uid: str
    series_uid: str
    row: LeanInstance

    @property
    def sop_uid(self) -> str:
        return self.row.sop_uid

    @property
    def dicom_json(self) -> bytes:
        """The stored DICOM JSON (located ``with_json``)."""
        assert self.row.dicom_json is not None
        return self.row.dicom_json

    def url(self, root: str) -> str:
        return instance_url(root, self.study_uid, self.series_uid, self.row.sop_uid)


def study_url(root: str, study: str) -> str:
    return f"{root}/studies/{study}"


def series_url(root: str, study: str, series: str) -> str:
    return f"{root}/studies/{study}/series/{series}"


def instance_url(root: str, study: str, series: str, instance: str) -> str:
    return f"{root}/studies/{study}/series/{series}/instances/{instance}"


def check_uids(target: Target) -> None:
    for uid in (target.study, target.series, target.instance):
        if uid is not None and (not uid or _NOT_A_UID.search(uid)):
            raise UnknownResource(f"No such resource: {target.describe()}")


def locate(context: ServerContext, target: Target, *,
           with_json: bool = False) -> list[LocatedInstance]:
    """The instances of a study, a series or one instance; 404 when there is none.

    Rows carry what retrieval needs (UIDs, blob key, size, syntax), and the stored DICOM
    JSON when *with_json* (metadata, bulk data, rendering): one lean query.
    """
    check_uids(target)
    keys = {"StudyInstanceUID": target.study}
    if target.series is not None:
        keys["SeriesInstanceUID"] = target.series
    with context.db.read() as conn:
        series_pks = index_find.find_pks(conn, build_query(Level.SERIES, keys))
        located = _instances_of_series(conn, series_pks, target, with_json)
    if not located:
        raise UnknownResource(f"No such resource: {target.describe()}")
    return located


def locate_sop(context: ServerContext, sop: str, *, study: str | None = None,
               series: str | None = None) -> LocatedInstance:
    """One instance by SOPInstanceUID, its study and series UIDs checked when given (WADO-URI
    names the study and series, but Orthanc's plugin only needs the instance); 404 when
    there is no such instance or it is not in that study or series."""
    for uid in (sop, study, series):
        if uid is not None and (not uid or _NOT_A_UID.search(uid)):
            raise UnknownResource(f"No such instance: {sop}")
    keys = {"SOPInstanceUID": sop}
    if study:
        keys["StudyInstanceUID"] = study
    if series:
        keys["SeriesInstanceUID"] = series
    with context.db.read() as conn:
        pks = index_find.find_pks(conn, build_query(Level.INSTANCE, keys))
        if len(pks) != 1:
            raise UnknownResource(f"No such instance: {sop}" + (
                f" in study {study}" if study else "") + (
                f" in series {series}" if series else ""))
        row = repository.lean_instance(conn, pks[0])
        series_row = repository.get_rows_by_pk(conn, Level.SERIES, [row.series_pk])[0]
        study_row = repository.get_rows_by_pk(conn, Level.STUDY, [series_row.study_pk])[0]
    return LocatedInstance(study_row.study_uid, series_row.series_uid, row)


def _instances_of_series(conn: Connection, series_pks: Sequence[int], target: Target,
                         with_json: bool) -> list[LocatedInstance]:
    if not series_pks:
        return []
    series_uids = {row.pk: row.series_uid
                   for row in repository.get_rows_by_pk(conn, Level.SERIES, series_pks)}
    rows = repository.lean_instances_of_series(conn, series_pks, target.instance, with_json)
    order = {pk: i for i, pk in enumerate(series_pks)}
    rows.sort(key=lambda r: (order[r.series_pk], r.index_in_series is None,
                             r.index_in_series or 0, r.pk))
    return [LocatedInstance(target.study, series_uids[row.series_pk], row) for row in rows]


# --- metadata (PS3.18 10.4.1.1.2) ----------------------------------------------------------

def metadata(context: ServerContext, target: Target, root: str) -> bytes:
    """The DICOM JSON of every instance of the target, as stored at ingest, with absolute
    BulkDataURIs; one array, encoded without ever parsing the stored documents."""
    located = locate(context, target, with_json=True)
    text = orthanc_api_at_least(1, 12, 6)  # DS values as strings (Orthanc 1.12.6+)
    documents = [rewrite_bulk_uris(decimal_values(drop_retired(item.dicom_json), text),
                                   item.url(root))
                 for item in located]
    return b"[" + b",".join(documents) + b"]"


# --- retrieval of instances (PS3.18 10.4.1.1.1) ---------------------------------------------

def open_blob(context: ServerContext, row: LeanInstance | InstanceRecord) -> IO[bytes]:
    try:
        return stored_file(context, row).open()
    except FileNotFoundError as error:
        raise InexistentFile(f"The file of instance {row.sop_uid} is missing from the "
                             "storage") from error


def read_blob(context: ServerContext, row: LeanInstance) -> bytes:
    try:
        return stored_file(context, row).read()
    except FileNotFoundError as error:
        raise _missing(row) from error


def instance_bytes(context: ServerContext, row: LeanInstance, syntax: str) -> Iterator[bytes]:
    """The file as stored (streamed), or transcoded when *syntax* differs."""
    if syntax == row.transfer_syntax:
        with open_blob(context, row) as stream:
            while chunk := stream.read(4 << 20):
                yield chunk
        return
    yield transcode.transcode_file(read_blob(context, row), syntax, new_uid_when_lossy=False,
                                   stored=row.transfer_syntax)


# --- frames and bulk data (PS3.18 10.4.1.1.3, 10.4.1.1.5) ------------------------------------

def load_dataset(context: ServerContext, row: LeanInstance) -> Dataset:
    data = read_blob(context, row)
    try:
        # force: files without the Part 10 header (stored as received, as Orthanc does)
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
    except Exception as error:  # noqa: BLE001 — a stored file pydicom cannot read
        raise decode.UnsupportedImage(f"Cannot read the stored file: {error}") from error
    if "TransferSyntaxUID" not in ds.file_meta:
        ds.file_meta.TransferSyntaxUID = UID(row.transfer_syntax)
    return ds


def frame_count(ds: Dataset) -> int:
    return decode.frame_count(ds)


# Files above this size have their frames read by byte ranges when they are uncompressed.
RANGED_FRAMES_MIN_SIZE = 1 << 20
_HEADER_PREFIXES = (64 << 10, 1 << 20, 16 << 20)  # bytes read to find the pixel data


def frames_by_range(context: ServerContext, row: LeanInstance, numbers: Sequence[int]) -> list[bytes] | None:
    """Frames *numbers* of a large uncompressed file, reading only its header and those
    frames (ranged reads: a study on S3 is never downloaded for one frame). None when the
    file is small, compressed or not made of plain frame slices: then decode it whole.

    The frames are the bytes ``frames(load_dataset(...), numbers, ...)`` gives for such
    a file: uncompressed little-endian slices of the pixel data.
    """
    if row.transfer_syntax not in RANGED_SYNTAXES or row.file_size < RANGED_FRAMES_MIN_SIZE \
            or row.compression:  # a compressed blob has no byte ranges to read cheaply
        return None
    layout = _ranged_layout(context, row)
    if layout is None:
        return None
    for number in numbers:
        if not 1 <= number <= layout.count:
            raise ParameterOutOfRange(f"Frame {number} does not exist: the instance has "
                                      f"{layout.count} frame(s), numbered from 1")
    file = stored_file(context, row)
    try:
        return [file.read_range(*layout.span(n)) for n in numbers]
    except FileNotFoundError as error:
        raise _missing(row) from error


def _ranged_layout(context: ServerContext, row: LeanInstance) -> FrameLayout | None:
    for size in _HEADER_PREFIXES:
        try:
            prefix = stored_file(context, row).read_range(0, min(size, row.file_size))
        except FileNotFoundError as error:
            raise _missing(row) from error
        try:
            return frame_layout(prefix, row.file_size)
        except PrefixTooShort:
            if len(prefix) >= row.file_size:
                return None
    return None  # a header larger than 16 MiB: read the file whole


def _missing(row: LeanInstance) -> InexistentFile:
    return InexistentFile(f"The file of instance {row.sop_uid} is missing from the storage")


def frames(ds: Dataset, numbers: Sequence[int], syntax: str) -> list[bytes]:
    """Frames *numbers* (1-based) in *syntax*: the stored compressed frames when it is the
    stored syntax, uncompressed little-endian frames for a native one, else transcoded."""
    count = frame_count(ds)
    if count == 0:
        raise UnknownResource("This instance has no pixel data: it has no frames")
    for number in numbers:
        if not 1 <= number <= count:
            raise ParameterOutOfRange(f"Frame {number} does not exist: the instance has "
                                      f"{count} frame(s), numbered from 1")
    return transcode.frames(ds, numbers, syntax)


BulkPath = tuple[tuple[int, int], ...]  # ((sequence tag, item index from 0), ...)


def parse_bulk_path(path: str) -> tuple[BulkPath, int]:
    """``7fe00010``, ``0010,0010`` or ``60031010/1/60031011`` (Orthanc's BulkDataURIs:
    a sequence tag and an item number from 1 before each nested tag) -> (items, tag)."""
    pieces = [p for p in path.strip("/").split("/") if p]
    if not pieces or len(pieces) % 2 == 0:
        raise BadRequest(f"Invalid bulk data path {path!r}: expected a tag such as 7fe00010, "
                         "or sequence/item/tag")
    tags = [_parse_tag(p, path) for p in pieces[0::2]]
    items: list[tuple[int, int]] = []
    for sequence_tag, number in zip(tags, pieces[1::2], strict=False):
        if not is_digits(number) or int(number) < 1:
            raise BadRequest(f"Invalid item number {number!r} in bulk data path {path!r}")
        items.append((sequence_tag, int(number) - 1))
    return tuple(items), tags[-1]


def _parse_tag(text: str, path: str) -> int:
    key = text.replace(",", "")
    if len(key) != 8 or any(c not in "0123456789abcdefABCDEF" for c in key):
        raise BadRequest(f"Invalid tag {text!r} in bulk data path {path!r}")
    return int(key, 16)


def bulk_value(ds: Dataset, items: BulkPath, tag: int) -> bytes:
    """The value of any element of the instance, as encoded in the file (the bytes of a
    binary element, the padded text of a string): what Orthanc's plugin answers."""
    current = ds
    for sequence_tag, index in items:
        if sequence_tag not in current or current[sequence_tag].VR != "SQ" or \
                index >= len(current[sequence_tag].value):
            raise UnknownResource(f"No item {index + 1} of sequence ({sequence_tag:08X}) "
                                  "in this instance")
        current = current[sequence_tag].value[index]
    if tag not in current and not items:
        # Metadata stored by earlier releases named nested bulk data by its tag alone.
        current = _holder_of(ds, tag) or current
    if tag not in current:
        raise UnknownResource(f"No element ({tag:08X}) in this instance")
    raw = current.get_item(tag)
    if isinstance(raw, RawDataElement):
        return bytes(raw.value or b"")
    if raw.VR == "SQ":
        raise BadRequest(f"The element ({tag:08X}) is a sequence, not bulk data")
    if isinstance(raw.value, bytes | bytearray):
        return bytes(raw.value)
    return _encoded_value(raw, current)


def _holder_of(ds: Dataset, tag: int) -> Dataset | None:
    """The first dataset (depth first, through sequences) holding *tag*."""
    if tag in ds:
        return ds
    for element in ds:
        if element.VR == "SQ":
            for item in element.value:
                found = _holder_of(item, tag)
                if found is not None:
                    return found
    return None


def _encoded_value(element: Any, ds: Dataset) -> bytes:
    """The value of an element pydicom has already converted, encoded little endian."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_data_element

    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, True
    write_data_element(buffer, element, ds.get("SpecificCharacterSet"))
    return buffer.getvalue()[8:]  # after the tag and the length of implicit VR


# --- rendered (PS3.18 10.4.1.1.4 / 8.3.5.1) -------------------------------------------------

@dataclass(frozen=True)
class RenderOptions:
    """How to answer ``/rendered`` or ``/thumbnail``: the image type and JPEG quality,
    the windowing and viewport, and whether it is a thumbnail (at most 128 pixels)."""

    media_type: str = "image/jpeg"
    quality: int = 90
    rendering: Rendering = Rendering()
    thumbnail: bool = False


THUMBNAIL_SIZE = 128
ENCAPSULATED_PDF = "1.2.840.10008.5.1.4.1.1.104.1"
VIDEO_MEDIA_TYPES = {"1.2.840.10008.1.2.4.100": "video/mpeg",
                     "1.2.840.10008.1.2.4.101": "video/mpeg",
                     "1.2.840.10008.1.2.4.107": "video/H265",
                     "1.2.840.10008.1.2.4.108": "video/H265"}


def rendered(context: ServerContext, row: LeanInstance, frame: int,
             options: RenderOptions) -> tuple[bytes, str]:
    """One frame (from 1) rendered as JPEG or PNG: (bytes, media type). As Orthanc's
    plugin (1.19, 1.23): a video renders as its stream (MPEG-2, MPEG-4, HEVC) and an
    encapsulated PDF as the document; their thumbnails are a drawn icon."""
    ds = load_dataset(context, row)
    syntax = str(ds.file_meta.get("TransferSyntaxUID", ""))
    if syntax in VIDEO_MEDIA_TYPES or syntax.startswith("1.2.840.10008.1.2.4.10"):
        if options.thumbnail:
            return icon(options.media_type, "video"), options.media_type
        stream = b"".join(generate_frames(ds.PixelData, number_of_frames=1))
        return stream, VIDEO_MEDIA_TYPES.get(syntax, "video/mp4")
    if str(ds.get("SOPClassUID", "")) == ENCAPSULATED_PDF and "EncapsulatedDocument" in ds:
        if options.thumbnail:
            return icon(options.media_type, "document"), options.media_type
        document = bytes(ds.EncapsulatedDocument)
        return (document[:-1] if document.endswith(b"\0") else document), "application/pdf"
    count = frame_count(ds)
    if count == 0:
        raise decode.UnsupportedImage("This instance has no pixel data to render")
    if not 1 <= frame <= count:
        raise ParameterOutOfRange(f"Frame {frame} does not exist: the instance has {count} "
                                  "frame(s)")
    pixels = dicomweb_render.render(ds, frame - 1, options.rendering)
    if options.thumbnail and options.rendering.viewport.width is None:
        pixels = dicomweb_render.shrink_to(pixels, THUMBNAIL_SIZE)
    return render.encode(pixels, options.media_type, options.quality), options.media_type


def icon(media_type: str, kind: str) -> bytes:
    """A 128-pixel grey icon: a play triangle (video) or a folded page (document)."""
    size = THUMBNAIL_SIZE
    y, x = np.mgrid[0:size, 0:size]
    if kind == "video":
        shape = (x >= 44) & (x <= 92) & (np.abs(y - 64) <= (x - 44) * 0.6)
    else:
        shape = (x >= 36) & (x <= 92) & (y >= 24) & (y <= 104) & ~((x - 72) > (y - 24))
    pixels = np.where(shape, 200, 48).astype(np.uint8)
    return render.encode(pixels, media_type, 90)


def representative(located: Sequence[LocatedInstance]) -> LocatedInstance:
    """The instance a study or series is rendered by: the first one (in instance order)
    of the first series that has images, as Orthanc's plugin (1.20) renders it."""
    with_pixels = [item for item in located
                   if b'"7FE00010"' in item.dicom_json]
    candidates = with_pixels or list(located)
    first_series = candidates[0].series_uid
    series = [item for item in candidates if item.series_uid == first_series]
    return series[0]
