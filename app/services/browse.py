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
from app.errors import UnknownResource
from app.index import repository
from app.index.repository import INSTANCES


def get_row_or_404(conn: Connection, level: Level, public_id: str) -> Row:
    row = repository.get_row(conn, level, public_id)
    if row is None:
        raise UnknownResource(f"Unknown {level.value.lower()}: {public_id}")
    return row


def series_status(expected: int | None, indices: Sequence[int | None]) -> str:
    """Orthanc's ``GetSeriesStatus``: Unknown, Complete, Missing or Inconsistent."""
    if expected is None:
        return "Unknown"
    seen: set[int] = set()
    for index in indices:
        if index is None:
            return "Unknown"
        if not 0 < index <= expected or index in seen:
            return "Inconsistent"
        seen.add(index)
    return "Complete" if len(seen) == expected else "Missing"


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


def list_resources(conn: Connection, level: Level, *, expand: bool, since: int,
                   limit: int) -> list[Any]:
    """``GET /{level}``: IDs, or full JSON with ``expand``, paged by ``since``/``limit``."""
    ids = repository.list_public_ids(conn, level, since=since, limit=limit)
    if not expand:
        return [r.public_id for r in ids]
    rows = repository.get_rows_by_pk(conn, level, [r.pk for r in ids])
    return resources_json(conn, level, rows)


def related(conn: Connection, level: Level, public_id: str, target: Level,
            expand: bool = True) -> Any:
    """``/{level}/{id}/{target}``: descendants (a list) or the ancestor (one object)."""
    row = get_row_or_404(conn, level, public_id)
    if target.depth < level.depth:
        current_level, current = level, row
        while current_level != target:
            current = repository.parent_row(conn, current_level, current)
            current_level = current_level.parent  # type: ignore[assignment]
        return resources_json(conn, target, [current])[0]
    pks = repository.descendant_pks(conn, level, row.pk, target)
    rows = repository.get_rows_by_pk(conn, target, pks)
    if not expand:
        return [r.public_id for r in rows]
    return resources_json(conn, target, rows)


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
    if last:
        seq = repository.last_change(conn)
        rows, done = (repository.list_changes(conn, seq - 1, 1)[0], True) if seq else ([], True)
        last_seq = seq
    else:
        rows, done, last_seq = repository.list_changes(conn, since, limit)
    return {"Changes": [_change(r) for r in rows], "Done": done, "Last": last_seq}


def _change(row: Row) -> dict[str, Any]:
    level = Level(row.level)
    return {"ChangeType": row.change_type, "Date": row.date, "ID": row.public_id,
            "Path": f"/{level.plural}/{row.public_id}", "ResourceType": row.level,
            "Seq": row.seq}


def exports_json(conn: Connection, since: int, limit: int) -> dict[str, Any]:
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


def resource_metadata(conn: Connection, level: Level, row: Row) -> dict[str, str]:
    """``/{level}/{id}/metadata?expand`` for any level: automatic and stored metadata.

    The route should call this one (inside its read transaction) rather than
    ``services.instances.resource_metadata``, which cannot see stored metadata.
    """
    if level == Level.SERIES:
        return series_metadata(conn, row)
    from app.services.instances import resource_metadata as automatic
    return {**automatic(level, row), **repository.stored_metadata(conn, level, row.pk)}
