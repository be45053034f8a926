"""ZIP archives (``/archive``) and DICOM media (``/media``, with a DICOMDIR), streamed.

Entries are written as they are read from the blob store, through ``zipfile`` on a
non-seekable sink (data descriptors, ZIP64 when needed), so memory stays flat whatever
the study size. Files are STORED, not deflated: DICOM pixel data barely compresses and
deflating is what makes Orthanc's archives slow.

With ``transcode`` (Orthanc's ``?transcode=`` / ``"Transcode"``), each instance is decoded
and re-encoded on its own as it is written (memory bounded by one instance). Like
Orthanc's ``ArchiveJob``, an instance that cannot be transcoded is written as stored.
"""

from __future__ import annotations

import io
import logging
import re
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Row, select

from app.dicom.levels import Level
from app.dicom.limits import check_pixel_decode
from app.dicom.parse import read_dataset
from app.errors import UnknownResource
from app.index import repository
from app.index.repository import INSTANCES, PATIENTS, SERIES, STUDIES
from app.services.context import ServerContext
from app.services.delete import find_level

log = logging.getLogger(__name__)

CHUNK = 1 << 20
_UNSAFE = re.compile(r"[^A-Za-z0-9 _.\-]")


def _clean(text: str) -> str:
    """Orthanc keeps letters, digits, spaces and a few signs in folder names."""
    return re.sub(r"\s+", " ", _UNSAFE.sub("", text)).strip()


def _label(*parts: str | None) -> str:
    return _clean(" ".join(p for p in parts if p)) or "Unknown"


def _instances_of(context: ServerContext, public_ids: Sequence[str]) -> list[Row]:
    """Instance rows below the resources (any level), each once, in hierarchy order."""
    rows: dict[int, Row] = {}
    with context.db.read() as conn:
        for public_id in public_ids:
            level = find_level(context, public_id)
            if level is None:
                raise UnknownResource(f"Unknown resource {public_id}")
            row = repository.get_row(conn, level, public_id)
            for instance in repository.instances_below(conn, level, row.pk):
                rows.setdefault(instance.pk, instance)
        if not rows:
            return []
        statement = (select(INSTANCES.c.pk, PATIENTS.c.main_tags.label("patient"),
                            STUDIES.c.main_tags.label("study"), SERIES.c.main_tags.label("series"),
                            SERIES.c.pk.label("series_pk"))
                     .join(SERIES, INSTANCES.c.series_pk == SERIES.c.pk)
                     .join(STUDIES, SERIES.c.study_pk == STUDIES.c.pk)
                     .join(PATIENTS, STUDIES.c.patient_pk == PATIENTS.c.pk)
                     .where(INSTANCES.c.pk.in_(list(rows))))
        context_rows = {r.pk: r for r in conn.execute(statement)}
    ordered = sorted(rows.values(), key=lambda r: (context_rows[r.pk].series_pk,
                                                   r.index_in_series or 0, r.pk))
    return [(row, context_rows[row.pk]) for row in ordered]  # type: ignore[misc]


def archive_layout(context: ServerContext, public_ids: Sequence[str]) -> list[tuple[str, Row]]:
    """Orthanc's folders: ``PatientID PatientName/Accession StudyDescription/Modality
    SeriesDescription/MR000000.dcm``."""
    entries: list[tuple[str, Row]] = []
    counters: dict[str, int] = {}
    for row, tags in _instances_of(context, public_ids):
        patient = orjson.loads(tags.patient)
        study = orjson.loads(tags.study)
        series = orjson.loads(tags.series)
        modality = series.get("Modality", "")
        folder = "/".join((
            _label(patient.get("PatientID"), patient.get("PatientName")),
            _label(study.get("AccessionNumber"), study.get("StudyDescription")),
            _label(modality, series.get("SeriesDescription"))))
        index = counters.get(folder, 0)
        counters[folder] = index + 1
        prefix = _clean(modality)[:2] or "IM"
        entries.append((f"{folder}/{prefix}{index:06d}.dcm", row))
    return entries


class _Sink:
    """A write-only, non-seekable file that hands written bytes to the generator."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.position = 0

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position

    def flush(self) -> None:
        return None

    def drain(self) -> bytes:
        data = b"".join(self.parts)
        self.parts.clear()
        return data


def stream_zip(context: ServerContext, entries: Sequence[tuple[str, Any]],
               extra: Sequence[tuple[str, bytes]] = (), *, transcode: str | None = None,
               after_entry: Callable[[int], None] | None = None) -> Iterator[bytes]:
    """Yield a ZIP of the blobs of *entries* (name, instance row) plus in-memory *extra*,
    each instance transcoded to *transcode* when given; *after_entry(count)* is called
    after each instance (job progress, cancellation)."""
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:  # type: ignore[arg-type]
        for name, data in extra:
            archive.writestr(name, data)
            yield sink.drain()
        for count, (name, row) in enumerate(entries, 1):
            info = zipfile.ZipInfo(name, date_time=time.localtime()[:6])
            info.compress_type = zipfile.ZIP_STORED
            if transcode is not None:
                data = _transcoded(context, row, transcode)
                with archive.open(info, "w", force_zip64=len(data) > 0x7FFFFFFF) as target:
                    target.write(data)
                del data
            else:
                with context.blobs.open(row.blob_key) as source, \
                        archive.open(info, "w", force_zip64=row.file_size > 0x7FFFFFFF) as target:
                    while chunk := source.read(CHUNK):
                        target.write(chunk)
                        if len(sink.parts) > 4:
                            yield sink.drain()
            yield sink.drain()
            if after_entry is not None:
                after_entry(count)
    yield sink.drain()


def _transcoded(context: ServerContext, row: Any, syntax: str) -> bytes:
    """The instance in *syntax*; as stored when it cannot be transcoded (as Orthanc does)."""
    with context.blobs.open(row.blob_key) as source:
        data = source.read()
    if row.transfer_syntax == syntax:
        return data
    try:
        return transcode_file(data, syntax)
    except Exception as error:  # noqa: BLE001 — a codec failing on one instance
        log.warning("Cannot transcode instance %s to %s, archived as stored: %s",
                    row.public_id, syntax, error)
        return data


def archive_plan(context: ServerContext, public_ids: Sequence[str], *, media: bool,
                 transcode: str | None = None
                 ) -> tuple[list[tuple[str, Row]], list[tuple[str, bytes]]]:
    """The entries (and the DICOMDIR of a media) of the ZIP of *public_ids*."""
    if media:
        entries, dicomdir = media_layout(context, public_ids, transcode=transcode)
        return entries, [("DICOMDIR", dicomdir)]
    return archive_layout(context, public_ids), []


def media_layout(context: ServerContext, public_ids: Sequence[str], *,
                 transcode: str | None = None) -> tuple[list[tuple[str, Row]], bytes]:
    """File-set layout and its DICOMDIR (PS3.10 / PS3.3 F), built with pydicom's FileSet
    from the headers only (no pixel data held in memory)."""
    from pydicom.fileset import FileSet

    instances = [row for row, _ in _instances_of(context, public_ids)]
    fileset = FileSet()
    by_uid: dict[str, Row] = {}
    for row in instances:
        with context.blobs.open(row.blob_key) as stream:  # the header only, not the pixels
            dataset = read_dataset(stream, stop_before_pixels=True)
        by_uid[row.sop_uid] = row
        _fill_record_keys(dataset, row)
        if transcode is not None:  # the records name the syntax of the files in the ZIP
            dataset.file_meta.TransferSyntaxUID = transcode
        fileset.add(dataset)
    with tempfile.TemporaryDirectory(prefix="pharos-media-") as folder:
        fileset.write(folder, force_implicit=False)
        dicomdir = (Path(folder) / "DICOMDIR").read_bytes()
        entries = [("/".join(instance.FileID.split("\\")) if isinstance(instance.FileID, str)
                    else "/".join(instance.FileID), by_uid[instance.SOPInstanceUID])
                   for instance in fileset]
    return entries, dicomdir


# Type 1 keys of the DICOMDIR records (PS3.3 F.5), used only where the instance has
# none; Type 2 keys are written empty. The stored files are never changed.
_RECORD_TYPE1_DEFAULTS = {"PatientID": "UNKNOWN", "StudyDate": "19000101",
                          "StudyTime": "000000", "StudyID": "0", "Modality": "OT"}
_RECORD_TYPE2 = ("PatientName", "AccessionNumber", "StudyDescription")


def _fill_record_keys(dataset: Any, row: Row) -> None:
    """Complete a header (never the stored file) so that the DICOMDIR records can be built."""
    for keyword, value in _RECORD_TYPE1_DEFAULTS.items():
        if not str(dataset.get(keyword, "") or "").strip():
            setattr(dataset, keyword, value)
    for keyword in _RECORD_TYPE2:
        if keyword not in dataset:
            setattr(dataset, keyword, "")
    if dataset.get("SeriesNumber") in (None, ""):
        dataset.SeriesNumber = 1
    if dataset.get("InstanceNumber") in (None, ""):
        dataset.InstanceNumber = row.index_in_series or 1


def resources_of(body: Any) -> list[str]:
    from app.errors import BadRequest
    if isinstance(body, list):
        resources = body
    elif isinstance(body, dict) and isinstance(body.get("Resources"), list):
        resources = body["Resources"]
    else:
        raise BadRequest('Expected a list of resource IDs or {"Resources": [...]}')
    if not all(isinstance(r, str) for r in resources):
        raise BadRequest("Resources must be Orthanc identifiers (strings)")
    return resources


def level_of(context: ServerContext, public_id: str) -> Level | None:
    return find_level(context, public_id)


# --- transcoding (Orthanc's "Transcode") ---------------------------------------------------

_IMPLICIT, _EXPLICIT = "1.2.840.10008.1.2", "1.2.840.10008.1.2.1"
_DEFLATED, _BIG_ENDIAN = "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.2"
_UNCOMPRESSED = frozenset({_IMPLICIT, _EXPLICIT, _DEFLATED, _BIG_ENDIAN})
_JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
_J2K_LOSSLESS, _J2K = "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91"
_RLE = "1.2.840.10008.1.2.5"
# Compressed syntaxes Pharos can write, with the maintained encoder used for each.
ENCODERS = {_RLE: "pylibjpeg-rle (or pydicom)", _J2K_LOSSLESS: "pylibjpeg-openjpeg",
            _J2K: "pylibjpeg-openjpeg", _JPEG_BASELINE: "Pillow (libjpeg)"}
JPEG_QUALITY = 90  # Orthanc's default lossy quality
J2K_COMPRESSION_RATIO = 10.0


def check_transcode_target(syntax: object) -> str:
    """The target transfer syntax UID, or a 400 when it is unknown or cannot be written."""
    from pydicom.uid import UID

    from app.errors import BadRequest, ParameterOutOfRange
    if not isinstance(syntax, str) or not syntax.strip():
        raise BadRequest("Transcode must be a transfer syntax UID")
    uid = UID(syntax.strip())
    if not uid.is_transfer_syntax:
        raise ParameterOutOfRange(f"Unknown transfer syntax: {uid}")
    if uid not in _UNCOMPRESSED and uid not in ENCODERS:
        raise BadRequest(f"Cannot transcode to {uid.name} ({uid}): no maintained encoder is "
                         f"available; supported targets: "
                         + ", ".join(sorted(_UNCOMPRESSED | set(ENCODERS))))
    return str(uid)


def transcode_file(data: bytes, syntax: str) -> bytes:
    """A Part 10 file re-encoded in *syntax* (a target accepted by
    :func:`check_transcode_target`); the bytes as they are when already in it.

    The SOP Instance UID is kept, even for lossy targets (which record
    LossyImageCompression): the DICOMDIR of a media and the ZIP's consumers refer to the
    instances by their stored UIDs."""
    import pydicom
    from pydicom.uid import UID

    ds = pydicom.dcmread(io.BytesIO(data))
    source = UID(str(ds.file_meta.get("TransferSyntaxUID", _EXPLICIT)))
    if source == syntax:
        return data
    target = UID(syntax)
    if "PixelData" in ds:
        _to_native_little_endian(ds, source)
        if target == _BIG_ENDIAN:
            _swap_pixel_bytes(ds)
        elif target == _JPEG_BASELINE:
            _compress_jpeg_baseline(ds)
        elif target == _J2K:
            ds.compress(target, j2k_cr=[J2K_COMPRESSION_RATIO], encoding_plugin="pylibjpeg",
                        generate_instance_uid=False)
            _mark_lossy(ds, "ISO_15444_1", J2K_COMPRESSION_RATIO)
        elif target.is_compressed:
            ds.compress(target, generate_instance_uid=False)
    ds.file_meta.TransferSyntaxUID = target
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, implicit_vr=target == _IMPLICIT,
                     little_endian=target != _BIG_ENDIAN, force_encoding=True)
    return buffer.getvalue()


def _to_native_little_endian(ds: Any, source: Any) -> None:
    """Decode compressed pixel data (YBR becomes RGB) and byte-swap big endian values."""
    check_pixel_decode(ds)
    if source.is_compressed:
        ds.decompress(generate_instance_uid=False)
    elif source == _BIG_ENDIAN:  # even 8-bit values are swapped in pairs when OW
        array = ds.pixel_array
        ds.PixelData = array.astype(array.dtype.newbyteorder("<")).tobytes()
        ds["PixelData"].VR = "OW" if int(ds.get("BitsAllocated", 8)) > 8 else "OB"
        if "PlanarConfiguration" in ds:
            ds.PlanarConfiguration = 0  # pixel_array interleaves the samples
    ds.file_meta.TransferSyntaxUID = _EXPLICIT


def _swap_pixel_bytes(ds: Any) -> None:
    """Values of more than 8 bits in big endian order; 8-bit values as OB (never swapped)."""
    if int(ds.get("BitsAllocated", 8)) <= 8:
        ds["PixelData"].VR = "OB"
    else:
        check_pixel_decode(ds)
        array = ds.pixel_array
        ds.PixelData = array.astype(array.dtype.newbyteorder(">")).tobytes()
        ds["PixelData"].VR = "OW"


def _compress_jpeg_baseline(ds: Any) -> None:
    """8-bit greyscale or RGB to JPEG baseline (ISO 10918-1) with Pillow, like DCMTK's
    ``dcmcjpeg``: colour images as YBR_FULL_422, the lossy attributes set."""
    import numpy as np
    from PIL import Image
    from pydicom.encaps import encapsulate

    if int(ds.BitsAllocated) != 8 or int(ds.get("SamplesPerPixel", 1)) not in (1, 3):
        raise ValueError("JPEG baseline needs 8-bit greyscale or RGB pixels")
    photometric = str(ds.PhotometricInterpretation)
    if photometric not in ("MONOCHROME1", "MONOCHROME2", "RGB"):
        raise ValueError(f"JPEG baseline cannot hold {photometric} pixels")
    check_pixel_decode(ds)
    frames = ds.pixel_array
    if int(ds.get("NumberOfFrames", 1) or 1) == 1:
        frames = frames[np.newaxis, ...]
    color = photometric == "RGB"
    fragments = []
    for frame in frames:
        buffer = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(frame, dtype=np.uint8)).save(
            buffer, format="JPEG", quality=JPEG_QUALITY, subsampling="4:2:2" if color else 0)
        fragments.append(buffer.getvalue())
    raw_size = frames.nbytes
    ds.PixelData = encapsulate(fragments)
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    if color:
        ds.PhotometricInterpretation = "YBR_FULL_422"
        ds.PlanarConfiguration = 0
    _mark_lossy(ds, "ISO_10918_1", raw_size / max(1, sum(len(f) for f in fragments)))


def _mark_lossy(ds: Any, method: str, ratio: float) -> None:
    """PS3.3 C.7.6.1.1.5: a lossy compression is recorded in the instance."""
    ds.LossyImageCompression = "01"
    ds.LossyImageCompressionRatio = [f"{ratio:.4g}"[:16]]
    ds.LossyImageCompressionMethod = [method]
