"""Orthanc's JSON for resources, children, parents and statistics, built from the index.

Batch-oriented: ``resources_json`` shapes many rows of one level with a fixed number of
queries, whatever their count (``/studies?expand`` on 100,000 studies stays linear).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, Row, bindparam, select

from app.dicom.levels import Level
from app.dicom.tags import main_tags_signature
from app.errors import UnknownResource
from app.index import repository
from app.index.repository import INSTANCES, series_status
from app.validation import is_digits


def get_row_or_404(conn: Connection, level: Level, public_id: str) -> Row:
    row = repository.get_row(conn, level, public_id)
    if row is None:
        raise UnknownResource(f"Unknown {level.value.lower()}: {public_id}")
    return row


_ORIGIN_METADATA = ("AnonymizedFrom", "ModifiedFrom")
_INDICES_IN_SERIES = select(INSTANCES.c.series_pk, INSTANCES.c.index_in_series).where(
    INSTANCES.c.series_pk.in_(bindparam("b_pks", expanding=True)))


def resources_json(conn: Connection, level: Level, rows: Sequence[Row]) -> list[dict[str, Any]]:
    """The ``GET /{level}/{id}`` JSON of each row, in the same order."""
    if not rows:
        return []
    pks = [r.pk for r in rows]
    labels = repository.labels_of(conn, level, pks)
    children = repository.child_ids(conn, level, pks)
    wanted = _ORIGIN_METADATA + ((repository.STUDY_PATIENT_TAGS,) if level == Level.STUDY else ())
    metadata = repository.metadata_values(conn, level, pks, wanted)
    answers: list[dict[str, Any]] = []
    if level == Level.STUDY:
        patient_pks = sorted({r.patient_pk for r in rows})
        patients = repository.public_ids_by_pk(conn, Level.PATIENT, patient_pks)
        # Orthanc answers the patient tags copied when the study was created, not the
        # patient's: they differ when instances of one PatientID disagree.
        patient_tags = repository.study_patient_tags(conn, rows, metadata)
    if level == Level.SERIES:
        indices: dict[int, list[int | None]] = defaultdict(list)
        for series_pk, index in conn.execute(_INDICES_IN_SERIES, {"b_pks": pks}):
            indices[series_pk].append(index)
        studies = repository.public_ids_by_pk(conn, Level.STUDY, {r.study_pk for r in rows})
    if level == Level.INSTANCE:
        series = repository.public_ids_by_pk(conn, Level.SERIES, {r.series_pk for r in rows})
    for row in rows:
        answer: dict[str, Any] = {"ID": row.public_id,
                                  "MainDicomTags": orjson.loads(row.main_tags),
                                  "Type": level.value, "Labels": labels[row.pk]}
        if level == Level.PATIENT:
            answer.update(IsStable=bool(row.is_stable), LastUpdate=row.last_update,
                          Studies=children[row.pk])
        elif level == Level.STUDY:
            answer.update(IsStable=bool(row.is_stable), LastUpdate=row.last_update,
                          ParentPatient=patients[row.patient_pk],
                          PatientMainDicomTags=patient_tags[row.pk],
                          Series=children[row.pk])
        elif level == Level.SERIES:
            answer.update(ExpectedNumberOfInstances=row.expected_instances,
                          Instances=children[row.pk], IsStable=bool(row.is_stable),
                          LastUpdate=row.last_update, ParentStudy=studies[row.study_pk],
                          Status=series_status(row.expected_instances, indices[row.pk]))
        else:
            answer.update(FileSize=row.file_size, FileUuid=row.blob_key,
                          IndexInSeries=row.index_in_series, ParentSeries=series[row.series_pk])
        for name in _ORIGIN_METADATA:  # Orthanc shows where a modified resource came from
            if name in metadata[row.pk]:
                answer[name] = metadata[row.pk][name]
        answers.append(answer)
    return answers


def resource_json(conn: Connection, level: Level, public_id: str) -> dict[str, Any]:
    return resources_json(conn, level, [get_row_or_404(conn, level, public_id)])[0]


def list_ids(conn: Connection, level: Level, *, since: int = 0,
             limit: int | None = None) -> list[Row]:
    """``GET /{level}``: (pk, public_id) rows in index order, paged by since/limit (a
    limit of 0 answers nothing, as Orthanc 1.12.4; None: no limit)."""
    if limit == 0:
        return []
    return repository.list_public_ids(conn, level, since=since, limit=limit or 0)


def related_rows(conn: Connection, level: Level, public_id: str, target: Level) -> list[Row]:
    """``/{level}/{id}/{target}``: the rows of the descendants, or of the one ancestor."""
    row = get_row_or_404(conn, level, public_id)
    if target.depth < level.depth:
        current_level, current = level, row
        while current_level != target:
            current = repository.parent_row(conn, current_level, current)
            current_level = current_level.parent  # type: ignore[assignment]
        return [current]
    pks = repository.descendant_pks(conn, level, row.pk, target)
    return repository.get_rows_by_pk(conn, target, pks)


def _sizes(total: int) -> dict[str, Any]:
    megabytes = total // (1024 * 1024)
    return {"DicomDiskSize": str(total), "DicomDiskSizeMB": megabytes,
            "DicomUncompressedSize": str(total), "DicomUncompressedSizeMB": megabytes,
            "DiskSize": str(total), "DiskSizeMB": megabytes,
            "UncompressedSize": str(total), "UncompressedSizeMB": megabytes}


def resource_statistics(conn: Connection, level: Level, public_id: str) -> dict[str, Any]:
    row = get_row_or_404(conn, level, public_id)
    answer: dict[str, Any] = {}
    if level != Level.INSTANCE:
        for child, count in repository.count_children(conn, level, row.pk).items():
            answer[f"Count{'Series' if child == Level.SERIES else child.plural.capitalize()}"] = count
        pks = repository.descendant_pks(conn, level, row.pk, Level.INSTANCE)
        total = repository.storage_totals(conn, pks)[1] if pks else 0
    else:
        total = row.file_size
    answer.update(_sizes(total))
    return answer


def global_statistics(conn: Connection) -> dict[str, Any]:
    count, total = repository.storage_totals(conn)
    megabytes = total // (1024 * 1024)
    return {"CountInstances": count,
            "CountPatients": repository.count_level(conn, Level.PATIENT),
            "CountSeries": repository.count_level(conn, Level.SERIES),
            "CountStudies": repository.count_level(conn, Level.STUDY),
            "TotalDiskSize": str(total), "TotalDiskSizeMB": megabytes,
            "TotalUncompressedSize": str(total), "TotalUncompressedSizeMB": megabytes}


def changes_json(conn: Connection, since: int, limit: int, last: bool = False) -> dict[str, Any]:
    if last:  # Orthanc's GetLastChange: the newest change, Done
        newest = repository.newest_change(conn)
        rows, done = ([newest] if newest is not None else []), True
        last_seq = newest.seq if newest is not None else repository.last_change_index(conn)
    else:
        rows, done, last_seq = repository.list_changes(conn, since, limit)
    return {"Changes": [_change(r) for r in rows], "Done": done, "Last": last_seq}


def _change(row: Row) -> dict[str, Any]:
    level = Level(row.level)
    return {"ChangeType": row.change_type, "Date": row.date, "ID": row.public_id,
            "Path": f"/{level.plural}/{row.public_id}", "ResourceType": row.level,
            "Seq": row.seq}


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


def series_metadata(conn: Connection, row: Row) -> dict[str, str]:
    """A series' metadata: LastUpdate, RemoteAET of the instance that created it, and
    ExpectedNumberOfInstances when Orthanc could compute it (set at series creation)."""
    first = conn.execute(select(INSTANCES.c.remote_aet).where(INSTANCES.c.series_pk == row.pk)
                         .order_by(INSTANCES.c.pk).limit(1)).first()
    # Listed in the order of Orthanc's MetadataType numbers (3, 4, 7).
    answer = {"RemoteAET": first.remote_aet if first else ""}
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


def resource_metadata(conn: Connection, level: Level, row: Row,
                      user_metadata: dict[str, Any] | None = None) -> dict[str, str]:
    """``/{level}/{id}/metadata?expand`` for any level: automatic and stored metadata,
    in the order of their MetadataType numbers, as Orthanc lists them.

    The route should call this one (inside its read transaction) rather than
    ``services.instances.resource_metadata``, which cannot see stored metadata.
    """
    if level == Level.SERIES:
        values = series_metadata(conn, row)
    else:
        from app.services.instances import resource_metadata as automatic
        values = {**automatic(level, row), **repository.stored_metadata(conn, level, row.pk)}
    values["MainDicomTagsSignature"] = main_tags_signature(level)
    return dict(sorted(values.items(), key=lambda item: (
        metadata_number(item[0], user_metadata) or 1 << 20, item[0])))
