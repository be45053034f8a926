"""The index schema. Alembic migrations (``app/index/migrations/``) create it; never ``create_all``.

One table per level with typed, indexed columns for identifiers and common matching keys
(``*_norm`` columns hold the upper-cased, accent-folded value for case-insensitive
matching), the Orthanc main tags as JSON text, and per instance the DICOM JSON without
bulk data so that QIDO-RS and WADO-RS metadata never re-read files.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

PublicId = String(44)
Uid = Text()  # values are Text: malformed files must not overflow a VARCHAR
Stamp = String(15)  # Orthanc's YYYYMMDDTHHMMSS, lexicographically ordered


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Patient(Base):
    __tablename__ = "patients"
    pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(PublicId, unique=True)
    patient_id: Mapped[str] = mapped_column(Text(), index=True)
    patient_name: Mapped[str | None] = mapped_column(Text())
    patient_name_norm: Mapped[str | None] = mapped_column(Text(), index=True)
    birth_date: Mapped[str | None] = mapped_column(Text(), index=True)
    sex: Mapped[str | None] = mapped_column(Text())
    main_tags: Mapped[bytes] = mapped_column(LargeBinary)
    last_update: Mapped[str] = mapped_column(Stamp)
    is_stable: Mapped[bool] = mapped_column(Boolean, default=False)
    is_protected: Mapped[bool] = mapped_column(Boolean, default=False)
    # Recycling order (Orthanc recycles the least recently stored patient first).
    recycle_seq: Mapped[int] = mapped_column(BigInteger, index=True)


class Study(Base):
    __tablename__ = "studies"
    pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(PublicId, unique=True)
    patient_pk: Mapped[int] = mapped_column(ForeignKey("patients.pk", ondelete="CASCADE"),
                                            index=True)
    study_uid: Mapped[str] = mapped_column(Uid, index=True)
    study_date: Mapped[str | None] = mapped_column(Text(), index=True)
    study_time: Mapped[str | None] = mapped_column(Text())
    accession: Mapped[str | None] = mapped_column(Text(), index=True)
    description_norm: Mapped[str | None] = mapped_column(Text())
    referring_norm: Mapped[str | None] = mapped_column(Text())
    main_tags: Mapped[bytes] = mapped_column(LargeBinary)
    last_update: Mapped[str] = mapped_column(Stamp)
    is_stable: Mapped[bool] = mapped_column(Boolean, default=False)


class Series(Base):
    __tablename__ = "series"
    pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(PublicId, unique=True)
    study_pk: Mapped[int] = mapped_column(ForeignKey("studies.pk", ondelete="CASCADE"),
                                          index=True)
    series_uid: Mapped[str] = mapped_column(Uid, index=True)
    modality: Mapped[str | None] = mapped_column(Text(), index=True)
    series_number: Mapped[str | None] = mapped_column(Text())
    description_norm: Mapped[str | None] = mapped_column(Text())
    expected_instances: Mapped[int | None] = mapped_column(Integer)
    main_tags: Mapped[bytes] = mapped_column(LargeBinary)
    last_update: Mapped[str] = mapped_column(Stamp)
    is_stable: Mapped[bool] = mapped_column(Boolean, default=False)


class Instance(Base):
    __tablename__ = "instances"
    pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(PublicId, unique=True)
    series_pk: Mapped[int] = mapped_column(ForeignKey("series.pk", ondelete="CASCADE"),
                                           index=True)
    sop_uid: Mapped[str] = mapped_column(Uid, index=True)
    sop_class_uid: Mapped[str] = mapped_column(Uid, index=True)
    instance_number: Mapped[str | None] = mapped_column(Text())
    index_in_series: Mapped[int | None] = mapped_column(Integer)
    transfer_syntax: Mapped[str] = mapped_column(Uid)
    blob_key: Mapped[str] = mapped_column(Text())
    file_size: Mapped[int] = mapped_column(BigInteger)  # of the DICOM file (uncompressed)
    md5: Mapped[str] = mapped_column(Text())  # of the DICOM file (uncompressed)
    # How the blob stores the file: 0 as received, 1 Orthanc's zlib format
    # (StorageCompression); the size and MD5 of the blob when compressed, else NULL.
    compression: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    compressed_size: Mapped[int | None] = mapped_column(BigInteger)
    compressed_md5: Mapped[str | None] = mapped_column(Text())
    received_at: Mapped[str] = mapped_column(Stamp)
    origin: Mapped[str] = mapped_column(Text())
    remote_aet: Mapped[str] = mapped_column(Text(), default="")
    remote_ip: Mapped[str] = mapped_column(Text(), default="")
    called_aet: Mapped[str] = mapped_column(Text(), default="")
    http_username: Mapped[str] = mapped_column(Text(), default="")
    main_tags: Mapped[bytes] = mapped_column(LargeBinary)
    dicom_json: Mapped[bytes] = mapped_column(LargeBinary)


class Metadata(Base):
    """User metadata (``/{level}/{id}/metadata/{name}``), keyed by level and resource pk."""

    __tablename__ = "metadata"
    pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    level: Mapped[str] = mapped_column(String(8))
    resource_pk: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(Text())
    value: Mapped[str] = mapped_column(Text)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    __table_args__ = (UniqueConstraint("level", "resource_pk", "name",
                                       name="uq_metadata_resource_name"),)


class Label(Base):
    __tablename__ = "labels"
    pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    level: Mapped[str] = mapped_column(String(8))
    resource_pk: Mapped[int] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(Text(), index=True)
    __table_args__ = (UniqueConstraint("level", "resource_pk", "label",
                                       name="uq_labels_resource_label"),)


class Change(Base):
    __tablename__ = "changes"
    # Orthanc's AUTOINCREMENT: a Seq is never given twice (SQLite would reuse freed ones).
    __table_args__ = {"sqlite_autoincrement": True}
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    change_type: Mapped[str] = mapped_column(Text())
    level: Mapped[str] = mapped_column(String(8))
    # Indexed: deleting a resource deletes its changes (as Orthanc's ON DELETE CASCADE).
    public_id: Mapped[str] = mapped_column(PublicId, index=True)
    date: Mapped[str] = mapped_column(Stamp)


class Export(Base):
    __tablename__ = "exports"
    __table_args__ = {"sqlite_autoincrement": True}
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    level: Mapped[str] = mapped_column(String(8))
    public_id: Mapped[str] = mapped_column(PublicId)
    remote_modality: Mapped[str] = mapped_column(Text())
    date: Mapped[str] = mapped_column(Stamp)
    patient_id: Mapped[str] = mapped_column(Text(), default="")
    study_uid: Mapped[str] = mapped_column(Uid, default="")
    series_uid: Mapped[str] = mapped_column(Uid, default="")
    sop_uid: Mapped[str] = mapped_column(Uid, default="")


class GlobalProperty(Base):
    """Counters and flags that must survive restarts (e.g. the recycling sequence)."""

    __tablename__ = "global_properties"
    name: Mapped[str] = mapped_column(Text(), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


Index("ix_series_study_uid", Series.study_pk, Series.series_uid)
Index("ix_instances_series_index", Instance.series_pk, Instance.index_in_series)
Index("ix_metadata_resource", Metadata.level, Metadata.resource_pk)
Index("ix_labels_resource", Label.level, Label.resource_pk)


class Job(Base):
    """Durable jobs (Orthanc's /jobs): claimed with FOR UPDATE SKIP LOCKED on PostgreSQL."""

    __tablename__ = "jobs"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, index=True)  # submission order
    type: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), index=True)  # Pending Running Success ...
    priority: Mapped[int] = mapped_column(Integer, default=0)
    payload: Mapped[bytes] = mapped_column(LargeBinary)  # the job's input (JSON)
    content: Mapped[bytes] = mapped_column(LargeBinary)  # Orthanc's "Content" (JSON)
    progress: Mapped[int] = mapped_column(Integer, default=0)
    error_code: Mapped[int] = mapped_column(Integer, default=0)
    error_description: Mapped[str] = mapped_column(Text, default="Success")
    creation_time: Mapped[str] = mapped_column(Text)
    completion_time: Mapped[str | None] = mapped_column(Text)
    effective_runtime: Mapped[float] = mapped_column(default=0.0)
    claimed_by: Mapped[str | None] = mapped_column(Text)
    heartbeat: Mapped[float | None] = mapped_column()
    output_key: Mapped[str | None] = mapped_column(Text)  # a blob the job produced (archive)
    user_data: Mapped[bytes | None] = mapped_column(LargeBinary)  # "UserData" (JSON), 1.12.9


class StoredModality(Base):
    """Modalities added through the REST API (DicomModalitiesInDatabase)."""

    __tablename__ = "modalities"
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    config: Mapped[bytes] = mapped_column(LargeBinary)


class RuntimeSetting(Base):
    """Orthanc's settings changeable at run time (``/tools/default-encoding``,
    ``/tools/accepted-transfer-syntaxes``, ``/tools/log-level``...): one row per name,
    shared by every process of the server; written from the configuration at start."""

    __tablename__ = "runtime_settings"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class StorageCommitmentReport(Base):
    """A storage commitment transaction this server asked a modality for."""

    __tablename__ = "storage_commitment_reports"
    transaction_uid: Mapped[str] = mapped_column(String(64), primary_key=True)
    remote_aet: Mapped[str] = mapped_column(Text)
    complete: Mapped[bool] = mapped_column(Boolean)
    success: Mapped[bytes] = mapped_column(LargeBinary)  # [[SOPClassUID, SOPInstanceUID]]
    failures: Mapped[bytes] = mapped_column(LargeBinary)  # [[class, instance, reason]]
    created: Mapped[float] = mapped_column()


class StoredPeer(Base):
    """Orthanc peers added through the REST API (OrthancPeersInDatabase)."""

    __tablename__ = "peers"
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    config: Mapped[bytes] = mapped_column(LargeBinary)


class StoredDicomWebServer(Base):
    """Remote DICOMweb servers added through ``PUT /dicom-web/servers/{name}`` (the
    DICOMweb plugin's ``ServersInDatabase``; volatile entries otherwise, see network)."""

    __tablename__ = "dicomweb_servers"
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    config: Mapped[bytes] = mapped_column(LargeBinary)


class Query(Base):
    """A C-FIND issued through ``/modalities/{name}/query``, kept for ``/queries/{id}``."""

    __tablename__ = "queries"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    modality: Mapped[str] = mapped_column(Text)
    level: Mapped[str] = mapped_column(String(8))
    query: Mapped[bytes] = mapped_column(LargeBinary)  # the request (JSON)
    answers: Mapped[bytes] = mapped_column(LargeBinary)  # list of DICOM JSON datasets
    created: Mapped[float] = mapped_column()
    # {"Normalize", "LocalAet", "Timeout", "Remote"}: JSON; NULL for queries of 0.1
    options: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)


# Migration 0003 (found with benchmarks/find.py --explain): ModalitiesInStudy lookups,
# and on PostgreSQL prefix (text_pattern_ops) and infix (pg_trgm) wildcard indexes.
Index("ix_series_study_modality", Series.study_pk, Series.modality)
# Migration 0012: OrderBy + Limit (Orthanc 1.12.5) on LastUpdate of studies, and
# /changes?type=. It also indexes CAST(instance_number AS INTEGER) (dialect-specific
# expressions: see the migration).
Index("ix_studies_last_update", Study.last_update, Study.pk)
Index("ix_changes_change_type", Change.change_type, Change.seq)
# Migration 0007: case-insensitive PatientID look-ups (/tools/lookup, find with
# CaseSensitive false) compare upper(patient_id) when the value has many letters.
Index("ix_patients_patient_id_upper", func.upper(Patient.patient_id))
for _name, _column in (("ix_patients_patient_id_pattern", Patient.patient_id),
                       ("ix_patients_patient_name_norm_pattern", Patient.patient_name_norm),
                       ("ix_studies_accession_pattern", Study.accession),
                       ("ix_studies_description_norm_pattern", Study.description_norm),
                       ("ix_studies_referring_norm_pattern", Study.referring_norm),
                       ("ix_series_description_norm_pattern", Series.description_norm)):
    Index(_name, _column, postgresql_ops={_column.key: "text_pattern_ops"}).ddl_if(
        dialect="postgresql")
for _name, _column in (("ix_patients_patient_name_norm_trgm", Patient.patient_name_norm),
                       ("ix_studies_description_norm_trgm", Study.description_norm),
                       ("ix_studies_referring_norm_trgm", Study.referring_norm),
                       ("ix_series_description_norm_trgm", Series.description_norm)):
    # Only where the pg_trgm extension could be created (see migration 0003).
    Index(_name, _column, postgresql_using="gin",
          postgresql_ops={_column.key: "gin_trgm_ops"}).ddl_if(dialect="postgresql")


class Attachment(Base):
    """User attachments (Orthanc's content types 1024..65535) of a resource.

    The content lives in the blob store under ``uuid`` (Orthanc's FileUuid), stored as
    given or zlib-compressed in Orthanc's format (``compression`` 1). ``resource_pk`` is
    the pk of the resource at ``level``; exactly one of the four nullable foreign keys
    holds it too, so that deleting the resource (or recycling its patient) deletes the
    rows by cascade. Their blobs are then collected by the orphan sweep, which keeps only
    blobs referenced by instances or by this table.
    """

    __tablename__ = "attachments"
    pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    level: Mapped[str] = mapped_column(String(8))
    resource_pk: Mapped[int] = mapped_column(Integer)
    patient_pk: Mapped[int | None] = mapped_column(
        ForeignKey("patients.pk", ondelete="CASCADE"), index=True)
    study_pk: Mapped[int | None] = mapped_column(
        ForeignKey("studies.pk", ondelete="CASCADE"), index=True)
    series_pk: Mapped[int | None] = mapped_column(
        ForeignKey("series.pk", ondelete="CASCADE"), index=True)
    instance_pk: Mapped[int | None] = mapped_column(
        ForeignKey("instances.pk", ondelete="CASCADE"), index=True)
    content_type: Mapped[int] = mapped_column(Integer)
    uuid: Mapped[str] = mapped_column(Text(), index=True)
    compression: Mapped[int] = mapped_column(Integer, default=0)  # 0 none, 1 zlib+size
    uncompressed_size: Mapped[int] = mapped_column(BigInteger)
    uncompressed_md5: Mapped[str] = mapped_column(Text())
    compressed_size: Mapped[int] = mapped_column(BigInteger)
    compressed_md5: Mapped[str] = mapped_column(Text())
    revision: Mapped[int] = mapped_column(Integer, default=0)
    __table_args__ = (UniqueConstraint("level", "resource_pk", "content_type",
                                       name="uq_attachments_resource_type"),)


class BlobDeletion(Base):
    """Blobs to delete: the durable half of "a delete that fails is retried, not lost".

    A key is queued in the same transaction that drops the last row referencing it
    (instance or attachment deleted, overwritten, recycled); the process deletes the blob
    right after the commit and then forgets the key. When the store refuses (S3 outage)
    the key stays, and a background drainer in every server process retries it with
    backoff (``due``), so a crash or an outage leaves neither an orphan object nor a row
    pointing at a missing one. Several processes share the queue: a claim moves ``due``
    forward with a conditional UPDATE, so one process works on a key at a time (deleting
    twice would be harmless anyway).
    """

    __tablename__ = "blob_deletions"
    blob_key: Mapped[str] = mapped_column(Text(), primary_key=True)
    due: Mapped[float] = mapped_column(index=True)  # epoch seconds of the next attempt
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text())


class MetricCounter(Base):
    """The archive's counters for ``/tools/metrics-prometheus``, summed over every process.

    Each server process counts in memory (HTTP requests, latency buckets, ingests) and
    adds what it counted to these rows every few seconds (``value = value + delta``, one
    UPSERT per changed series), so that a scrape of any process, on any host sharing the
    index, answers the whole archive's figures. ``labels`` is the canonical JSON of the
    series' labels (sorted keys). Counters only grow: Prometheus' ``rate()`` needs nothing
    else, and they survive restarts.
    """

    __tablename__ = "metric_counters"
    name: Mapped[str] = mapped_column(Text(), primary_key=True)
    labels: Mapped[str] = mapped_column(Text(), primary_key=True)
    value: Mapped[float] = mapped_column()


class WebhookDelivery(Base):
    """An event waiting to be POSTed to one webhook (``app.services.webhooks``).

    Written in the same transaction as the change that produced the event, so an event is
    never lost nor sent for a change that rolled back; deleted once the receiver answered
    2xx. ``seq`` orders the deliveries of one webhook; ``webhook`` is a digest of its URL
    (URLs may carry tokens: they stay in the configuration only).
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_webhook_seq", "webhook", "seq"),
                      {"sqlite_autoincrement": True})
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    webhook: Mapped[str] = mapped_column(String(64))
    event_id: Mapped[str] = mapped_column(String(36))
    event: Mapped[str] = mapped_column(Text())
    body: Mapped[bytes] = mapped_column(LargeBinary())
    created: Mapped[float] = mapped_column()  # epoch seconds
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text())


class WebhookEndpoint(Base):
    """Per webhook: who delivers now (a lease, so that one process at a time sends, in
    order) and when the next attempt may be (exponential backoff after failures)."""

    __tablename__ = "webhook_endpoints"
    webhook: Mapped[str] = mapped_column(String(64), primary_key=True)
    next_attempt: Mapped[float] = mapped_column(default=0.0)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(Text())
    lease_until: Mapped[float] = mapped_column(default=0.0)
