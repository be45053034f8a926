"""What the index answers: plain, typed, immutable records (no SQLAlchemy row leaves it).

The layers above (services, and through them the doors) read these dataclasses; they
never see a SQLAlchemy ``Row`` (a tuple with a ``_mapping``, tied to its result). Each
record names the columns it carries, and the repositories select exactly those columns
in that order, so that a record is built from a row positionally (``Record(*row)``, the
cheapest way). Columns nobody above reads stay in the index: the ``*_norm`` matching
columns, and an instance's DICOM JSON (read on purpose by :class:`LeanInstance` and the
find module, never with the whole row).

``frozen=True, slots=True``: a record cannot be changed by mistake on its way up, and
costs no ``__dict__``. Building one costs about 0.1 µs per field (measured: a 23-field
instance record ~2.5 µs, in the order of what SQLAlchemy spends making the row).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import Any, TypeAlias, TypeVar

from app.dicom.levels import Level


@dataclass(frozen=True, slots=True)
class PatientRecord:
    pk: int
    public_id: str
    patient_id: str
    patient_name: str | None
    birth_date: str | None
    sex: str | None
    main_tags: bytes  # Orthanc's MainDicomTags of the level, JSON
    last_update: str
    is_stable: bool
    is_protected: bool
    recycle_seq: int

    @property
    def parent_pk(self) -> None:
        return None


@dataclass(frozen=True, slots=True)
class StudyRecord:
    pk: int
    public_id: str
    patient_pk: int
    study_uid: str
    study_date: str | None
    study_time: str | None
    accession: str | None
    main_tags: bytes
    last_update: str
    is_stable: bool

    @property
    def parent_pk(self) -> int:
        return self.patient_pk


@dataclass(frozen=True, slots=True)
class SeriesRecord:
    pk: int
    public_id: str
    study_pk: int
    series_uid: str
    modality: str | None
    series_number: str | None
    expected_instances: int | None
    main_tags: bytes
    last_update: str
    is_stable: bool

    @property
    def parent_pk(self) -> int:
        return self.study_pk


@dataclass(frozen=True, slots=True)
class InstanceRecord:
    pk: int
    public_id: str
    series_pk: int
    sop_uid: str
    sop_class_uid: str
    instance_number: str | None
    index_in_series: int | None
    transfer_syntax: str
    blob_key: str
    file_size: int  # of the DICOM file (uncompressed)
    md5: str  # of the DICOM file (uncompressed)
    compression: int  # how the blob stores the file (app.blobstore.compression)
    compressed_size: int | None  # of the blob, when compressed
    compressed_md5: str | None
    received_at: str
    origin: str
    remote_aet: str
    remote_ip: str
    called_aet: str
    http_username: str
    main_tags: bytes
    # Orthanc's PixelDataOffset metadata (Orthanc 1.9.1+), when the file has pixel data.
    pixel_data_offset: str | None = None

    @property
    def parent_pk(self) -> int:
        return self.series_pk

    @property
    def stored_size(self) -> int:
        """The size of the blob as stored: the file's when not compressed."""
        return self.file_size if self.compressed_size is None else self.compressed_size

    @property
    def stored_md5(self) -> str:
        """The MD5 of the blob as stored: the file's when not compressed."""
        return self.md5 if self.compressed_md5 is None else self.compressed_md5


ResourceRecord: TypeAlias = PatientRecord | StudyRecord | SeriesRecord | InstanceRecord

RECORD_OF_LEVEL: dict[Level, type[ResourceRecord]] = {
    Level.PATIENT: PatientRecord, Level.STUDY: StudyRecord, Level.SERIES: SeriesRecord,
    Level.INSTANCE: InstanceRecord}


@dataclass(frozen=True, slots=True)
class ResourceId:
    """A resource's primary key in the index and its Orthanc identifier."""

    pk: int
    public_id: str


@dataclass(frozen=True, slots=True)
class ChangeRecord:
    """One entry of ``/changes``."""

    seq: int
    change_type: str
    level: str
    public_id: str
    date: str


@dataclass(frozen=True, slots=True)
class ExportRecord:
    """One entry of ``/exports``: a resource sent to a modality or peer."""

    seq: int
    level: str
    public_id: str
    remote_modality: str
    date: str
    patient_id: str
    study_uid: str
    series_uid: str
    sop_uid: str


@dataclass(frozen=True, slots=True)
class LeanInstance:
    """What retrieval needs of an instance (DICOMweb: UIDs, where its file is, its syntax
    and place in the series), and its stored DICOM JSON when asked for."""

    pk: int
    public_id: str
    series_pk: int
    sop_uid: str
    sop_class_uid: str
    transfer_syntax: str
    blob_key: str
    file_size: int
    compression: int
    index_in_series: int | None
    dicom_json: bytes | None = None


@dataclass(frozen=True, slots=True)
class HierarchyTags:
    """The main tags (JSON) of an instance's patient, study and series, and the pks of
    its series and study (archives lay their folders out with them)."""

    pk: int  # of the instance
    patient: bytes
    study: bytes
    series: bytes
    series_pk: int
    study_pk: int


@dataclass(frozen=True, slots=True)
class StoredInstance:
    """An instance's identifiers and the storage columns of its blob."""

    pk: int
    public_id: str
    blob_key: str
    file_size: int
    compression: int
    compressed_size: int | None
    compressed_md5: str | None


@dataclass(frozen=True, slots=True)
class InstanceChain:
    """The pks of an instance's series, study and patient."""

    series_pk: int
    study_pk: int
    patient_pk: int


@dataclass(frozen=True, slots=True)
class InstanceUid:
    """An instance named by its SOPInstanceUID: its Orthanc ID and SOP class."""

    public_id: str
    sop_class_uid: str


@dataclass(frozen=True, slots=True)
class AttachmentRecord:
    """What the index knows of one attachment (Orthanc's FileInfo plus its revision): a
    user attachment (content types 1024..65535), or an instance's DICOM file (1)."""

    content_type: int
    uuid: str  # the blob key
    compression: int
    uncompressed_size: int
    uncompressed_md5: str
    compressed_size: int
    compressed_md5: str
    revision: int


@dataclass(frozen=True, slots=True)
class MetadataValue:
    """A stored metadata value and its revision."""

    value: str
    revision: int


@dataclass(frozen=True, slots=True)
class JobRecord:
    """A job of the durable queue (Orthanc's ``/jobs/{id}``)."""

    id: str
    seq: int
    type: str
    state: str
    priority: int
    payload: bytes  # the job's input (JSON)
    content: bytes  # Orthanc's "Content" (JSON)
    progress: int
    error_code: int
    error_description: str
    creation_time: str
    completion_time: str | None
    effective_runtime: float
    claimed_by: str | None
    heartbeat: float | None
    output_key: str | None  # a blob the job produced (an archive)
    user_data: bytes | None  # "UserData" (JSON), Orthanc 1.12.9


@dataclass(frozen=True, slots=True)
class JobOutput:
    """A finished job that still holds an output blob."""

    id: str
    output_key: str


@dataclass(frozen=True, slots=True)
class QueryRecord:
    """A C-FIND issued through ``/modalities/{name}/query``, kept for ``/queries/{id}``."""

    id: str
    modality: str
    level: str
    query: bytes  # the request (JSON)
    answers: bytes  # the answers (a JSON list of DICOM JSON datasets)
    created: float
    options: bytes | None  # {"Normalize", "LocalAet", "Timeout", "Remote"} (JSON)


@dataclass(frozen=True, slots=True)
class CommitmentReport:
    """A storage commitment transaction this server asked a modality for."""

    transaction_uid: str
    remote_aet: str
    complete: bool
    success: bytes  # [[SOPClassUID, SOPInstanceUID]] (JSON)
    failures: bytes  # [[SOPClassUID, SOPInstanceUID, reason]] (JSON)
    created: float


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    """An event waiting to be POSTed to one webhook."""

    seq: int
    webhook: str
    event_id: str
    event: str
    body: bytes
    created: float
    attempts: int
    last_error: str | None


R = TypeVar("R")


def field_names(record: type[Any]) -> tuple[str, ...]:
    """The columns a record carries, in order (what its repository selects)."""
    return tuple(f.name for f in fields(record))


def build(record: type[R], rows: Iterable[Any]) -> list[R]:
    """Records from rows that hold their columns in order."""
    return [record(*row) for row in rows]


def build_one(record: type[R], row: Any | None) -> R | None:
    """A record from a row that holds its columns in order, or None without a row."""
    return None if row is None else record(*row)


def columns_of(table: Any, record: type[Any]) -> list[Any]:
    """The columns of *table* that *record* carries, in its field order."""
    return [table.c[name] for name in field_names(record)]
