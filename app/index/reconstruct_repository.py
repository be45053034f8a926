"""SQL of ``reconstruct``: refresh the indexed facts of an instance and of its parents
from a re-parsed file, keeping every identifier and primary key."""

from __future__ import annotations

from sqlalchemy import Connection, and_, delete, insert, select, update

from app.dicom.levels import Level
from app.dicom.parse import ParsedInstance
from app.dicom.text import normalize
from app.index.records import InstanceChain, StoredInstance, build, columns_of
from app.index.repository import (
    INSTANCES,
    METADATA,
    PATIENTS,
    PIXEL_DATA_OFFSET,
    PIXEL_DATA_VR,
    SERIES,
    STUDIES,
    STUDY_PATIENT_TAGS,
    _pack,
)


def instance_chain(conn: Connection, instance_pk: int) -> InstanceChain:
    """The pks of an instance's series, study and patient."""
    return InstanceChain(*conn.execute(
        select(INSTANCES.c.series_pk, SERIES.c.study_pk, STUDIES.c.patient_pk)
        .join(SERIES, INSTANCES.c.series_pk == SERIES.c.pk)
        .join(STUDIES, SERIES.c.study_pk == STUDIES.c.pk)
        .where(INSTANCES.c.pk == instance_pk)).one())


def referenced_blob_keys(conn: Connection) -> set[str]:
    return {key for (key,) in conn.execute(select(INSTANCES.c.blob_key))}


def instance_rows(conn: Connection, pks: list[int] | None = None) -> list[StoredInstance]:
    """The identifiers and storage columns of every instance, or of the given ones."""
    query = select(*columns_of(INSTANCES, StoredInstance))
    if pks is not None:
        query = query.where(INSTANCES.c.pk.in_(pks))
    return build(StoredInstance, conn.execute(query.order_by(INSTANCES.c.pk)))


def _set_metadata(conn: Connection, level: Level, pk: int, name: str,
                  value: str | None) -> None:
    conn.execute(delete(METADATA).where(and_(
        METADATA.c.level == level.value, METADATA.c.resource_pk == pk, METADATA.c.name == name)))
    if value is not None:
        conn.execute(insert(METADATA).values(level=level.value, resource_pk=pk, name=name,
                                             value=value))


def refresh(conn: Connection, instance_pk: int, parsed: ParsedInstance, *, blob_key: str,
            file_size: int, md5: str, compression: int = 0, compressed_size: int | None = None,
            compressed_md5: str | None = None) -> None:
    """Rewrite the instance's columns, main tags and DICOM JSON, and the main tags and
    matching columns of its series, study and patient, from *parsed* (Orthanc's
    ReconstructInstance: the last instance reconstructed sets its parents' tags)."""
    chain = instance_chain(conn, instance_pk)
    series_pk, study_pk, patient_pk = chain.series_pk, chain.study_pk, chain.patient_pk
    tags = parsed.main_tags
    instance = tags[Level.INSTANCE]
    conn.execute(update(INSTANCES).where(INSTANCES.c.pk == instance_pk).values(
        sop_class_uid=parsed.sop_class_uid, instance_number=instance.get("InstanceNumber"),
        index_in_series=parsed.index_in_series, transfer_syntax=parsed.transfer_syntax,
        blob_key=blob_key, file_size=file_size, md5=md5, compression=compression,
        compressed_size=compressed_size, compressed_md5=compressed_md5,
        main_tags=_pack(instance),
        dicom_json=parsed.dicom_json))
    series, study, patient = tags[Level.SERIES], tags[Level.STUDY], tags[Level.PATIENT]
    conn.execute(update(SERIES).where(SERIES.c.pk == series_pk).values(
        modality=series.get("Modality"), series_number=series.get("SeriesNumber"),
        description_norm=normalize(series.get("SeriesDescription")),
        expected_instances=parsed.expected_instances, main_tags=_pack(series)))
    conn.execute(update(STUDIES).where(STUDIES.c.pk == study_pk).values(
        study_date=study.get("StudyDate"), study_time=study.get("StudyTime"),
        accession=study.get("AccessionNumber"),
        description_norm=normalize(study.get("StudyDescription")),
        referring_norm=normalize(study.get("ReferringPhysicianName")), main_tags=_pack(study)))
    conn.execute(update(PATIENTS).where(PATIENTS.c.pk == patient_pk).values(
        patient_name=patient.get("PatientName"),
        patient_name_norm=normalize(patient.get("PatientName")),
        birth_date=patient.get("PatientBirthDate"), sex=patient.get("PatientSex"),
        main_tags=_pack(patient)))
    _set_metadata(conn, Level.STUDY, study_pk, STUDY_PATIENT_TAGS, _pack(patient).decode())
    offset = parsed.pixel_data_offset
    _set_metadata(conn, Level.INSTANCE, instance_pk, PIXEL_DATA_OFFSET,
                  None if offset is None else str(offset))
    _set_metadata(conn, Level.INSTANCE, instance_pk, PIXEL_DATA_VR, parsed.pixel_data_vr)
