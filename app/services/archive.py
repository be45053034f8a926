"""ZIP archives (``/archive``) and DICOM media (``/media``, with a DICOMDIR), streamed.

Entries are written as they are read from the blob store, through ``zipfile`` on a
non-seekable sink (data descriptors, ZIP64 when needed), so memory stays flat whatever
the study size. Files are STORED, not deflated: DICOM pixel data barely compresses and
deflating is what makes Orthanc's archives slow.
"""

from __future__ import annotations

import re
import tempfile
import time
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Row, select

from app.dicom.levels import Level
from app.dicom.parse import read_dataset
from app.errors import UnknownResource
from app.index import repository
from app.index.repository import INSTANCES, PATIENTS, SERIES, STUDIES
from app.services.context import ServerContext
from app.services.delete import find_level

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
               extra: Sequence[tuple[str, bytes]] = ()) -> Iterator[bytes]:
    """Yield a ZIP of the blobs of *entries* (name, instance row) plus in-memory *extra*."""
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:  # type: ignore[arg-type]
        for name, data in extra:
            archive.writestr(name, data)
            yield sink.drain()
        for name, row in entries:
            info = zipfile.ZipInfo(name, date_time=time.localtime()[:6])
            info.compress_type = zipfile.ZIP_STORED
            with context.blobs.open(row.blob_key) as source, \
                    archive.open(info, "w", force_zip64=row.file_size > 0x7FFFFFFF) as target:
                while chunk := source.read(CHUNK):
                    target.write(chunk)
                    if sink.position and len(sink.parts) > 4:
                        yield sink.drain()
            yield sink.drain()
    yield sink.drain()


def media_layout(context: ServerContext, public_ids: Sequence[str]) -> tuple[list[tuple[str, Row]], bytes]:
    """File-set layout and its DICOMDIR (PS3.10 / PS3.3 F), built with pydicom's FileSet
    from the headers only (no pixel data held in memory)."""
    from pydicom.fileset import FileSet

    instances = [row for row, _ in _instances_of(context, public_ids)]
    fileset = FileSet()
    by_uid: dict[str, Row] = {}
    for row in instances:
        with context.blobs.open(row.blob_key) as stream:
            dataset = read_dataset(stream.read(), stop_before_pixels=True)
        by_uid[row.sop_uid] = row
        _fill_record_keys(dataset, row)
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
