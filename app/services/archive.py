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
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any, cast

import orjson

from app import orthanc_api_at_least
from app.context import ServerContext
from app.dicom import dicomdir
from app.dicom import transcode as transcoding
from app.dicom.levels import Level
from app.dicom.parse import read_dataset
from app.errors import BadRequest, UnknownResource
from app.index import repository
from app.index.records import InstanceRecord
from app.services.browse import get_row_or_404
from app.services.delete import find_level
from app.services.instances import stored_file

log = logging.getLogger(__name__)

CHUNK = 1 << 20
_UNSAFE = re.compile(r"[^A-Za-z0-9 _.\-]")


def _clean(text: str) -> str:
    """Orthanc keeps letters, digits, spaces and a few signs in folder names."""
    return re.sub(r"\s+", " ", _UNSAFE.sub("", text)).strip()


def _label(*parts: str | None) -> str:
    return _clean(" ".join(p for p in parts if p)) or "Unknown"


def _instances_of(context: ServerContext,
                  public_ids: Sequence[str]) -> list[tuple[InstanceRecord, _Tags]]:
    """Instance rows below the resources (any level), each once, in hierarchy order, with
    the main tags of their patient, study and series. The patient tags are the patient's
    for an instance asked through its patient, else the copy its study keeps (Orthanc
    1.12.2+: a study's archive shows the PatientName of that study, even when another
    study of the same PatientID has another)."""
    rows: dict[int, InstanceRecord] = {}
    through_patient: set[int] = set()
    with context.db.read() as conn:
        for public_id in public_ids:
            level = find_level(context, public_id)
            if level is None:
                raise UnknownResource(f"Unknown resource {public_id}")
            row = get_row_or_404(conn, level, public_id)
            for instance in repository.instances_below(conn, level, row.pk):
                rows.setdefault(instance.pk, instance)
                if level == Level.PATIENT:
                    through_patient.add(instance.pk)
        if not rows:
            return []
        context_rows = repository.hierarchy_tags(conn, list(rows))
        study_copies: dict[int, str] = {}
        if orthanc_api_at_least(1, 12, 2):
            study_pks = sorted({r.study_pk for pk, r in context_rows.items()
                                if pk not in through_patient})
            copies = repository.metadata_values(conn, Level.STUDY, study_pks,
                                                [repository.STUDY_PATIENT_TAGS])
            study_copies = {pk: values[repository.STUDY_PATIENT_TAGS]
                            for pk, values in copies.items()
                            if repository.STUDY_PATIENT_TAGS in values}
    ordered = sorted(rows.values(), key=lambda r: (context_rows[r.pk].series_pk,
                                                   r.index_in_series or 0, r.pk))
    answer = []
    for row in ordered:
        tags = context_rows[row.pk]
        copy = None if row.pk in through_patient else study_copies.get(tags.study_pk)
        answer.append((row, _Tags(copy or tags.patient, tags.study, tags.series)))
    return answer


@dataclass
class _Tags:
    patient: str | bytes
    study: str | bytes
    series: str | bytes


def archive_layout(context: ServerContext, public_ids: Sequence[str], *,
                   utf8: bool = True) -> list[tuple[str, InstanceRecord]]:
    """The folders of an archive, as the Orthanc version Pharos answers as names them.

    Orthanc 1.13: ``PatientID - PatientName/AccessionNumber - StudyDescription/SeriesNumber -
    Modality - SeriesDescription/MR000001.dcm`` (empty parts left out, ``Unknown Series``
    when all are empty), the file named after the modality's first two letters and the
    InstanceNumber (eight digits without a modality; the position in the series when the
    instance has no InstanceNumber or another file has it). Characters that no file
    system accepts in a name (``/\\:*?"<>|``, control characters) become spaces; other
    characters are kept, non-ASCII ones only with *utf8* (``"Utf8"``, true by default
    since Orthanc 1.12.11). Up to 1.12.5 (Orthanc 1.10.1's layout): ``PatientID
    PatientName/...``, letters, digits, spaces and ``._-`` only, files numbered from 0."""
    if not orthanc_api_at_least(1, 13, 0):
        return _layout_before_1_13(context, public_ids)
    entries: list[tuple[str, InstanceRecord]] = []
    used: dict[str, set[str]] = {}
    for row, tags in _instances_of(context, public_ids):
        patient = orjson.loads(tags.patient)
        study = orjson.loads(tags.study)
        series = orjson.loads(tags.series)
        modality = series.get("Modality", "")
        folder = "/".join((
            _folder(utf8, "Patient", patient.get("PatientID"), patient.get("PatientName")),
            _folder(utf8, "Study", study.get("AccessionNumber"), study.get("StudyDescription")),
            _folder(utf8, "Series", series.get("SeriesNumber"), modality,
                    series.get("SeriesDescription"))))
        taken = used.setdefault(folder, set())
        entries.append((f"{folder}/{_file_name(modality, row, taken)}", row))
    return entries


_FORBIDDEN = re.compile(r'[/\\:*?"<>|\x00-\x1f\x7f]')


def _folder(utf8: bool, level: str, *parts: str | None) -> str:
    cleaned = []
    for part in parts:
        text = _FORBIDDEN.sub(" ", part or "")
        if not utf8:
            text = text.encode("ascii", "ignore").decode("ascii")
        text = re.sub(r"\s+", " ", text).strip()
        if text:
            cleaned.append(text)
    name = " - ".join(cleaned)
    if not name or set(name) <= {"^", " ", "-"}:
        return f"Unknown {level}"
    return name


def _file_name(modality: str, row: InstanceRecord, taken: set[str]) -> str:
    letters = "".join(c for c in modality.upper() if c.isascii() and c.isalnum())[:2]
    pattern = f"{letters}{{:0{8 - len(letters)}d}}.dcm"
    number = None
    try:
        number = int(str(orjson.loads(row.main_tags or b"{}").get("InstanceNumber", "")).strip())
    except ValueError:
        pass
    if number is None or number < 0 or pattern.format(number) in taken:
        number = len(taken)
        while pattern.format(number) in taken:
            number += 1
    name = pattern.format(number)
    taken.add(name)
    return name


def _layout_before_1_13(context: ServerContext,
                        public_ids: Sequence[str]) -> list[tuple[str, InstanceRecord]]:
    entries: list[tuple[str, InstanceRecord]] = []
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


@dataclass
class ArchivePlan:
    """What a ZIP holds: (name, instance row) entries; a media also gets a DICOMDIR
    (Orthanc's extended SOP class when *extended*)."""

    entries: list[tuple[str, Any]]
    media: bool = False
    extended: bool = False


def archive_plan(context: ServerContext, public_ids: Sequence[str], *, media: bool,
                 extended: bool = False, utf8: bool = True) -> ArchivePlan:
    """The entries of the ZIP of *public_ids*: Orthanc's folders for an archive, its
    ``IMAGES/IM0``, ``IMAGES/IM1``... for a media."""
    if media:
        rows = [row for row, _ in _instances_of(context, public_ids)]
        names = [f"{dicomdir.IMAGES_FOLDER}/{dicomdir.file_name(i)}" for i in range(len(rows))]
        return ArchivePlan(list(zip(names, rows, strict=True)), media=True, extended=extended)
    return ArchivePlan(archive_layout(context, public_ids, utf8=utf8))


def stream_zip(context: ServerContext, plan: ArchivePlan, *, transcode: str | None = None,
               quality: int | None = None,
               after_entry: Callable[[int], None] | None = None) -> Iterator[bytes]:
    """Yield the ZIP of *plan*, each instance transcoded to *transcode* when given, a
    media's DICOMDIR last (built from the headers of the files as written);
    *after_entry(count)* is called after each instance (job progress, cancellation)."""
    sink = _Sink()
    directory = dicomdir.DicomDir(extended=plan.extended) if plan.media else None
    with zipfile.ZipFile(cast(IO[bytes], sink), "w", zipfile.ZIP_STORED,
                         allowZip64=True) as archive:
        for count, (name, row) in enumerate(plan.entries, 1):
            info = zipfile.ZipInfo(name, date_time=time.localtime()[:6])
            info.compress_type = zipfile.ZIP_STORED
            if transcode is not None:
                data = _transcoded(context, row, transcode, quality)
                with archive.open(info, "w", force_zip64=len(data) > 0x7FFFFFFF) as target:
                    target.write(data)
                header = _header(io.BytesIO(data)) if directory is not None else None
                del data
            else:
                with stored_file(context, row).open() as source, \
                        archive.open(info, "w", force_zip64=row.file_size > 0x7FFFFFFF) as target:
                    while chunk := source.read(CHUNK):
                        target.write(chunk)
                        if len(sink.parts) > 4:
                            yield sink.drain()
                header = None
                if directory is not None:
                    with stored_file(context, row).open() as source:
                        header = _header(source)
            if directory is not None and header is not None:
                syntax = str(header.file_meta.get("TransferSyntaxUID", row.transfer_syntax))
                directory.add(name.replace("/", "\\"), header, syntax)
            yield sink.drain()
            if after_entry is not None:
                after_entry(count)
        if directory is not None:
            archive.writestr("DICOMDIR", directory.encode())
    yield sink.drain()


def _header(stream: Any) -> Any:
    """The dataset up to the pixel data (what a DICOMDIR record needs)."""
    return read_dataset(stream, stop_before_pixels=True)


def _transcoded(context: ServerContext, row: Any, syntax: str, quality: int | None) -> bytes:
    """The instance in *syntax*; as stored when it cannot be transcoded (as Orthanc does)."""
    data = stored_file(context, row).read()
    if row.transfer_syntax == syntax:
        return data
    try:
        return transcoding.transcode_file(data, syntax, quality=quality)
    except Exception as error:  # noqa: BLE001 — a codec failing on one instance
        log.warning("Cannot transcode instance %s to %s, archived as stored: %s",
                    row.public_id, syntax, error)
        return data


def resources_of(body: Any) -> list[str]:
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


# --- transcoding (Orthanc's "Transcode"): app.dicom.transcode -----------------------------

check_transcode_target = transcoding.check_target
