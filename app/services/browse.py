"""Orthanc's JSON for resources, children, parents and statistics, built from the index.

Batch-oriented: ``resources_json`` shapes many rows of one level with a fixed number of
queries, whatever their count (``/studies?expand`` on 100,000 studies stays linear).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from enum import Flag, auto
from pathlib import Path
from typing import Any, Literal, cast, overload

import orjson

from app import orthanc_api_at_least
from app.config import Settings
from app.context import ServerContext
from app.dicom.levels import Level
from app.dicom.parse import index_in_series_text
from app.dicom.tags import main_tags_signature
from app.errors import ParameterOutOfRange, UnknownResource
from app.index import attachments_repository, repository
from app.index.db import Connection
from app.index.records import (
    ChangeRecord,
    InstanceRecord,
    PatientRecord,
    ResourceRecord,
    SeriesRecord,
    StudyRecord,
)
from app.index.repository import series_status
from app.validation import is_digits


@overload
def get_row_or_404(conn: Connection, level: Literal[Level.PATIENT], public_id: str) -> PatientRecord: ...
@overload
def get_row_or_404(conn: Connection, level: Literal[Level.STUDY], public_id: str) -> StudyRecord: ...
@overload
def get_row_or_404(conn: Connection, level: Literal[Level.SERIES], public_id: str) -> SeriesRecord: ...
@overload
def get_row_or_404(conn: Connection, level: Literal[Level.INSTANCE], public_id: str) -> InstanceRecord: ...
@overload
def get_row_or_404(conn: Connection, level: Level, public_id: str) -> ResourceRecord: ...
def get_row_or_404(conn: Connection, level: Level, public_id: str) -> ResourceRecord:
    row = repository.get_row(conn, level, public_id)
    if row is None:
        raise UnknownResource(f"Unknown {level.value.lower()}: {public_id}")
    return row


class Content(Flag):
    """What the JSON of a resource holds: Orthanc 1.12.5's ``ResponseContentFlags``.

    ``EXPAND`` is the resource as ``GET /{level}/{id}`` (and ``Expand``) shows it; a
    ``ResponseContent`` list picks parts (``ID`` and ``Type`` are always there)."""

    NONE = 0
    REQUESTED_TAGS = auto()
    MAIN_DICOM_TAGS = auto()
    METADATA_LEGACY = auto()  # ExpectedNumberOfInstances, IndexInSeries, LastUpdate...
    ATTACHMENTS_LEGACY = auto()  # FileSize, FileUuid of an instance
    METADATA = auto()  # every metadata in a "Metadata" object
    ATTACHMENTS = auto()  # every attachment in an "Attachments" list
    STATUS = auto()
    PARENT = auto()
    CHILDREN = auto()
    LABELS = auto()
    IS_STABLE = auto()
    IS_PROTECTED = auto()


# The names of ResponseContent items (Orthanc's StringToResponseContent).
RESPONSE_CONTENT = {"MainDicomTags": Content.MAIN_DICOM_TAGS,
                    "RequestedTags": Content.REQUESTED_TAGS, "Metadata": Content.METADATA,
                    "Status": Content.STATUS, "Parent": Content.PARENT,
                    "Children": Content.CHILDREN, "Labels": Content.LABELS,
                    "Attachments": Content.ATTACHMENTS, "IsStable": Content.IS_STABLE,
                    "IsProtected": Content.IS_PROTECTED}


def expand_content() -> Content:
    """``Expand``: everything but the ``Metadata`` and ``Attachments`` lists; a patient's
    ``IsProtected`` is part of it from Orthanc 1.12.8 on."""
    content = (Content.REQUESTED_TAGS | Content.MAIN_DICOM_TAGS | Content.METADATA_LEGACY |
               Content.ATTACHMENTS_LEGACY | Content.STATUS | Content.PARENT |
               Content.CHILDREN | Content.LABELS | Content.IS_STABLE)
    return content | Content.IS_PROTECTED if orthanc_api_at_least(1, 12, 8) else content


_ORIGIN_METADATA = ("AnonymizedFrom", "ModifiedFrom")


def resources_json(conn: Connection, level: Level, rows: Sequence[ResourceRecord],
                   content: Content | None = None,
                   user_metadata: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The JSON of each row, in the same order: as ``GET /{level}/{id}`` by default, else
    the parts *content* names (Orthanc's ``ResourceFinder::Expand``), with a fixed number
    of queries whatever the number of rows (but ``Metadata``: a few per row)."""
    if not rows:
        return []
    content = expand_content() if content is None else content
    parts = _Parts(conn, level, rows, content)
    answers: list[dict[str, Any]] = []
    for row in rows:
        answer: dict[str, Any] = {"ID": row.public_id, "Type": level.value}
        if Content.MAIN_DICOM_TAGS in content:
            answer["MainDicomTags"] = orjson.loads(row.main_tags)
        if Content.LABELS in content:
            answer["Labels"] = parts.labels[row.pk]
        _level_parts(answer, level, row, content, parts)
        if Content.METADATA_LEGACY in content:
            for name in _ORIGIN_METADATA:  # Orthanc shows where a modified resource came from
                if name in parts.metadata[row.pk]:
                    answer[name] = parts.metadata[row.pk][name]
        if Content.METADATA in content:
            answer["Metadata"] = resource_metadata(conn, level, row, user_metadata)
        if Content.ATTACHMENTS in content:
            answer["Attachments"] = parts.attachments[row.pk]
        answers.append(answer)
    return answers


class _Parts:
    """What the rows' JSON needs beyond the rows themselves, read in a few queries."""

    def __init__(self, conn: Connection, level: Level, rows: Sequence[ResourceRecord],
                 content: Content) -> None:
        pks = [r.pk for r in rows]
        self.labels = repository.labels_of(conn, level, pks) if Content.LABELS in content \
            else {}
        self.children = repository.child_ids(conn, level, pks) \
            if Content.CHILDREN in content else {}
        wanted: tuple[str, ...] = _ORIGIN_METADATA if Content.METADATA_LEGACY in content \
            else ()
        if level == Level.STUDY and Content.MAIN_DICOM_TAGS in content:
            wanted += (repository.STUDY_PATIENT_TAGS,)
        self.metadata = repository.metadata_values(conn, level, pks, wanted)
        self.parents: dict[int, str] = {}
        if level != Level.PATIENT and Content.PARENT in content:
            parent = level.parent
            assert parent is not None
            self.parents = repository.public_ids_by_pk(
                conn, parent, {r.parent_pk for r in rows if r.parent_pk is not None})
        self.patient_tags: dict[int, dict[str, str]] = {}
        if level == Level.STUDY and Content.MAIN_DICOM_TAGS in content:
            # Orthanc answers the patient tags copied when the study was created, not the
            # patient's: they differ when instances of one PatientID disagree.
            self.patient_tags = repository.study_patient_tags(
                conn, cast(Sequence[StudyRecord], rows), self.metadata)
        self.indices: dict[int, list[int | None]] = defaultdict(list)
        if level == Level.SERIES and content & (Content.STATUS | Content.METADATA_LEGACY):
            for series_pk, index in repository.indices_in_series(conn, pks):
                self.indices[series_pk].append(index)
        self.attachments: dict[int, list[dict[str, Any]]] = {}
        if Content.ATTACHMENTS in content:
            self.attachments = _attachments(conn, level, rows)


def _level_parts(answer: dict[str, Any], level: Level, row: ResourceRecord, content: Content,
                 parts: _Parts) -> None:
    """The keys of one level: parent, children, stability, status, legacy metadata."""
    if level != Level.PATIENT and Content.PARENT in content:
        assert row.parent_pk is not None
        answer[f"Parent{level.parent.value if level.parent else ''}"] = \
            parts.parents[row.parent_pk]
    if level == Level.STUDY and Content.MAIN_DICOM_TAGS in content:
        answer["PatientMainDicomTags"] = parts.patient_tags[row.pk]
    if not isinstance(row, InstanceRecord):
        if Content.CHILDREN in content:
            child = level.child
            assert child is not None
            answer[child.plural.capitalize()] = parts.children[row.pk]
        if Content.IS_STABLE in content:
            answer["IsStable"] = bool(row.is_stable)
        if Content.METADATA_LEGACY in content:
            answer["LastUpdate"] = row.last_update
    if isinstance(row, PatientRecord) and Content.IS_PROTECTED in content:
        answer["IsProtected"] = bool(row.is_protected)
    if isinstance(row, SeriesRecord):
        if Content.METADATA_LEGACY in content:
            answer["ExpectedNumberOfInstances"] = row.expected_instances
        if Content.STATUS in content:
            answer["Status"] = series_status(row.expected_instances, parts.indices[row.pk])
    if isinstance(row, InstanceRecord):
        if Content.ATTACHMENTS_LEGACY in content:
            answer.update(FileSize=row.file_size, FileUuid=row.blob_key)
        if Content.METADATA_LEGACY in content:
            answer["IndexInSeries"] = row.index_in_series


def _attachments(conn: Connection, level: Level, rows: Sequence[ResourceRecord]) -> dict[int, list[Any]]:
    """Orthanc's ``Attachments`` list: the DICOM file of an instance (content type 1) and
    the user attachments, in content type order."""
    user = attachments_repository.attachments_of(conn, level, [r.pk for r in rows])
    answer: dict[int, list[Any]] = {}
    for row in rows:
        items = []
        if isinstance(row, InstanceRecord):
            items.append({"Uuid": row.blob_key, "ContentType": 1,
                          "UncompressedSize": row.file_size, "CompressedSize": row.stored_size,
                          "UncompressedMD5": row.md5, "CompressedMD5": row.stored_md5})
        items += [{"Uuid": a.uuid, "ContentType": a.content_type,
                   "UncompressedSize": a.uncompressed_size,
                   "CompressedSize": a.compressed_size,
                   "UncompressedMD5": a.uncompressed_md5, "CompressedMD5": a.compressed_md5}
                  for a in user[row.pk]]
        answer[row.pk] = items
    return answer


def clear_changes(context: ServerContext) -> None:
    """``DELETE /changes``."""
    with context.db.write() as conn:
        repository.clear_changes(conn)


def clear_exports(context: ServerContext) -> None:
    """``DELETE /exports``."""
    with context.db.write() as conn:
        repository.clear_exports(conn)


def _megabytes(size: int) -> int:
    return size // (1024 * 1024)


def _sizes(total: int, disk: int, attached: tuple[int, int] = (0, 0)) -> dict[str, Any]:
    """The sizes below a resource: of its DICOM files (``Dicom*``), and of everything it
    stores, user attachments included (Orthanc's ``GetResourceStatistics`` adds every
    attachment of the resource and of its descendants); as files, and as stored."""
    everything, everything_disk = total + attached[0], disk + attached[1]
    return {"DicomDiskSize": str(disk), "DicomDiskSizeMB": _megabytes(disk),
            "DicomUncompressedSize": str(total), "DicomUncompressedSizeMB": _megabytes(total),
            "DiskSize": str(everything_disk), "DiskSizeMB": _megabytes(everything_disk),
            "UncompressedSize": str(everything), "UncompressedSizeMB": _megabytes(everything)}


def resource_statistics(conn: Connection, level: Level, public_id: str) -> dict[str, Any]:
    row = get_row_or_404(conn, level, public_id)
    answer: dict[str, Any] = {}
    owners: dict[Level, list[int]] = {level: [row.pk]}
    if not isinstance(row, InstanceRecord):
        for child, count in repository.count_children(conn, level, row.pk).items():
            answer[f"Count{'Series' if child == Level.SERIES else child.plural.capitalize()}"] = count
        current = level
        while current.child is not None:
            current = current.child
            owners[current] = repository.descendant_pks(conn, level, row.pk, current)
        pks = owners[Level.INSTANCE]
        _, total, disk = repository.storage_totals(conn, pks) if pks else (0, 0, 0)
    else:
        total, disk = row.file_size, row.stored_size
    answer.update(_sizes(total, disk, attachments_repository.size_totals(conn, owners)))
    return answer


def statistics(context: ServerContext) -> dict[str, Any]:
    """``GET /statistics``."""
    with context.db.read() as conn:
        return global_statistics(conn)


def database_server_identifier(settings: Settings) -> str:
    """``/system``'s DatabaseServerIdentifier (Orthanc's
    ``OrthancConfiguration::GetDatabaseServerIdentifier``): the option when given, else
    the SHA-1 of this host's MAC addresses, DicomAet, DicomPort and HttpPort, so that
    each node sharing one index tells itself apart."""
    if settings.database_server_identifier:
        return settings.database_server_identifier
    items = {f"aet={settings.dicom_aet}", f"dicom-port={settings.dicom_port}",
             f"http-port={settings.http_port}"}
    items |= {f"mac={mac}" for mac in _mac_addresses()}
    digest = hashlib.sha1("|".join(sorted(items)).encode(), usedforsecurity=False).hexdigest()
    return "-".join(digest[i:i + 8] for i in range(0, 40, 8))


def _mac_addresses() -> set[str]:
    """The hardware addresses of this host's network interfaces (Linux sysfs; none
    elsewhere), loopback and all-zero addresses left out."""
    found: set[str] = set()
    root = Path("/sys/class/net")
    for interface in root.iterdir() if root.is_dir() else ():
        try:
            address = (interface / "address").read_text().strip().lower()
        except OSError:
            continue
        if address and address.strip("0:"):
            found.add(address)
    return found


def global_statistics(conn: Connection) -> dict[str, Any]:
    count, total, disk = repository.storage_totals(conn)
    attached, attached_disk = attachments_repository.size_totals(conn)
    total, disk = total + attached, disk + attached_disk
    return {"CountInstances": count,
            "CountPatients": repository.count_level(conn, Level.PATIENT),
            "CountSeries": repository.count_level(conn, Level.SERIES),
            "CountStudies": repository.count_level(conn, Level.STUDY),
            "TotalDiskSize": str(disk), "TotalDiskSizeMB": _megabytes(disk),
            "TotalUncompressedSize": str(total), "TotalUncompressedSizeMB": _megabytes(total)}


# Orthanc's ChangeType names (StringToChangeType): those /changes?type= accepts.
CHANGE_TYPES = ("CompletedSeries", "NewInstance", "NewPatient", "NewSeries", "NewStudy",
                "AnonymizedStudy", "AnonymizedSeries", "ModifiedStudy", "ModifiedSeries",
                "AnonymizedPatient", "ModifiedPatient", "StablePatient", "StableStudy",
                "StableSeries", "Deleted", "NewChildInstance", "UpdatedAttachment",
                "UpdatedMetadata")


def change_types(text: str) -> list[str]:
    """``?type=A;B`` of ``/changes`` (Orthanc 1.12.5); ``all``/``All`` (the default) keeps
    every type; an unknown type is refused (400), as by Orthanc."""
    if text in ("all", "All"):
        return []
    names = sorted({name for name in text.split(";") if name})
    for name in names:
        if name not in CHANGE_TYPES:
            raise ParameterOutOfRange(f"Unknown change type: {name}")
    return names


def changes(context: ServerContext, since: int, limit: int, last: bool = False,
            to: int | None = None, types: Sequence[str] = ()) -> dict[str, Any]:
    """``GET /changes``, read through the change log's transaction (``read_log``)."""
    with context.db.read_log() as conn:
        return changes_json(conn, since, limit, last, to, types)


def changes_json(conn: Connection, since: int, limit: int, last: bool = False,
                 to: int | None = None, types: Sequence[str] = ()) -> dict[str, Any]:
    """Orthanc's ``/changes`` answer: ``Changes``, ``Done``, ``Last`` and (when a change
    is answered, Orthanc 1.12.5) ``First``."""
    if last:  # Orthanc's GetLastChange: the newest change, Done
        newest = repository.newest_change(conn)
        rows, done = ([newest] if newest is not None else []), True
        last_seq = newest.seq if newest is not None else repository.last_change_index(conn)
    else:
        rows, done, last_seq = repository.list_changes(conn, since, limit, to=to, types=types)
    answer: dict[str, Any] = {"Changes": [_change(r) for r in rows], "Done": done,
                              "Last": last_seq}
    if rows:
        answer["First"] = rows[0].seq
    return answer


def _change(row: ChangeRecord) -> dict[str, Any]:
    level = Level(row.level)
    return {"ChangeType": row.change_type, "Date": row.date, "ID": row.public_id,
            "Path": f"/{level.plural}/{row.public_id}", "ResourceType": row.level,
            "Seq": row.seq}


def exports(context: ServerContext, since: int, limit: int, last: bool = False) -> dict[str, Any]:
    """``GET /exports``."""
    with context.db.read() as conn:
        return exports_json(conn, since, limit, last)


def exports_json(conn: Connection, since: int, limit: int, last: bool = False) -> dict[str, Any]:
    if last:  # Orthanc's GetLastExportedResource: the newest export, Done
        newest = repository.newest_export(conn)
        rows, done = ([newest] if newest is not None else []), True
        last_seq = int(newest.seq) if newest is not None else 0
    else:
        rows, done, last_seq = repository.list_exports(conn, since, limit)
    exports = []
    for row in rows:
        level = Level(row.level)
        entry: dict[str, Any] = {"Date": row.date, "ID": row.public_id,
                                 "Path": f"/{level.plural}/{row.public_id}",
                                 "PatientID": row.patient_id, "RemoteModality": row.remote_modality,
                                 "ResourceType": row.level, "Seq": row.seq}
        if level != Level.PATIENT:
            entry["StudyInstanceUID"] = row.study_uid
        if level in (Level.SERIES, Level.INSTANCE):
            entry["SeriesInstanceUID"] = row.series_uid
        if level == Level.INSTANCE:
            entry["SOPInstanceUID"] = row.sop_uid
        exports.append(entry)
    return {"Exports": exports, "Done": done, "Last": last_seq}


def series_metadata(conn: Connection, row: SeriesRecord) -> dict[str, str]:
    """A series' metadata: LastUpdate, RemoteAET of the instance that created it, and
    ExpectedNumberOfInstances when Orthanc could compute it (set at series creation)."""
    # Listed in the order of Orthanc's MetadataType numbers (3, 4, 7).
    answer = {"RemoteAET": repository.first_remote_aet(conn, row.pk)}
    if row.expected_instances is not None:
        answer["ExpectedNumberOfInstances"] = str(row.expected_instances)
    answer["LastUpdate"] = row.last_update
    answer.update(repository.stored_metadata(conn, Level.SERIES, row.pk))
    return answer


# Orthanc's MetadataType numbers (ServerEnumerations.h): metadata are listed in this
# order and can be named by number (``/metadata/7``, ``?numeric``).
METADATA_NUMBERS = {
    "IndexInSeries": 1, "ReceptionDate": 2, "RemoteAET": 3, "ExpectedNumberOfInstances": 4,
    "ModifiedFrom": 5, "AnonymizedFrom": 6, "LastUpdate": 7, "Origin": 8,
    "TransferSyntax": 9, "SopClassUid": 10, "RemoteIP": 11, "CalledAET": 12,
    "HttpUsername": 13, "PixelDataOffset": 14, "MainDicomTagsSignature": 15,
    "MainDicomSequences": 16, "PixelDataVR": 17,
}


def metadata_number(name: str, user_metadata: dict[str, Any] | None) -> int | None:
    """The MetadataType number of a metadata name: automatic, declared in UserMetadata,
    or a number itself; None for an undeclared name."""
    if name in METADATA_NUMBERS:
        return METADATA_NUMBERS[name]
    if user_metadata and name in user_metadata:
        return int(user_metadata[name])
    return int(name) if is_digits(name) else None


def metadata_name(name: str, user_metadata: dict[str, Any] | None) -> str:
    """The name under which a metadata is kept, for a name or a MetadataType number."""
    if not is_digits(name):
        return name
    number = int(name)
    for known, value in METADATA_NUMBERS.items():
        if value == number:
            return known
    for declared, value in (user_metadata or {}).items():
        if int(value) == number:
            return declared
    return name


INSTANCE_METADATA = ("IndexInSeries", "ReceptionDate", "RemoteAET", "Origin", "TransferSyntax",
                     "SopClassUid", "RemoteIP", "CalledAET", "HttpUsername", "PixelDataOffset")


def instance_metadata(row: InstanceRecord) -> dict[str, str]:
    """Orthanc's automatic metadata of an instance, in Orthanc's listing order.

    IndexInSeries is Orthanc's text (InstanceNumber, else ImageIndex, stripped), which may
    be empty or not a number; the integer of ``GET /instances/{id}`` comes from it.
    PixelDataOffset is that of the record (``repository.get_row`` reads it).
    """
    offset = row.pixel_data_offset
    values = {
        "IndexInSeries": index_in_series_text(orjson.loads(row.main_tags)),
        "ReceptionDate": row.received_at, "RemoteAET": row.remote_aet, "Origin": row.origin,
        "TransferSyntax": row.transfer_syntax, "SopClassUid": row.sop_class_uid,
        "RemoteIP": row.remote_ip or None, "HttpUsername": row.http_username
        if row.origin == "RestApi" else None,
        "CalledAET": row.called_aet or None,
        "PixelDataOffset": offset,
    }
    return {k: v for k in INSTANCE_METADATA if (v := values[k]) is not None}


def automatic_metadata(level: Level, row: ResourceRecord) -> dict[str, str]:
    """The metadata Orthanc computes (an instance's, or LastUpdate), without stored ones."""
    if isinstance(row, InstanceRecord):
        return instance_metadata(row)
    return {"LastUpdate": row.last_update}


def resource_metadata(conn: Connection, level: Level, row: ResourceRecord,
                      user_metadata: dict[str, Any] | None = None) -> dict[str, str]:
    """``/{level}/{id}/metadata?expand`` for any level: automatic and stored metadata,
    in the order of their MetadataType numbers, as Orthanc lists them.

    The routes call this one (inside their read transaction): :func:`automatic_metadata`
    cannot see stored metadata.
    """
    if isinstance(row, SeriesRecord):
        values = series_metadata(conn, row)
    else:
        values = {**automatic_metadata(level, row),
                  **repository.stored_metadata(conn, level, row.pk)}
    values["MainDicomTagsSignature"] = main_tags_signature(level)
    return dict(sorted(values.items(), key=lambda item: (
        metadata_number(item[0], user_metadata) or 1 << 20, item[0])))
