"""SQL of the WebDAV share (``app/services/webdav.py``): the resources its virtual
folders list, and the look-ups by DICOM UIDs of ``by-uids/``.

Functions take a ``Connection`` inside a transaction opened by the caller, like
:mod:`app.index.repository`, and answer records (``app/index/records.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Select, and_, func, select

from app.dicom.levels import Level
from app.index.records import (
    RECORD_OF_LEVEL,
    InstanceRecord,
    SeriesRecord,
    StudyRecord,
    build,
)
from app.index.repository import (
    INSTANCES,
    PARENT_FK,
    PATIENTS,
    SERIES,
    STUDIES,
    TABLE,
    record_columns,
)


def _records(conn: Connection, level: Level, query: Select[Any]) -> list[Any]:
    return build(RECORD_OF_LEVEL[level], conn.execute(query))


def all_resources(conn: Connection, level: Level) -> list[Any]:
    """Every resource of one level (patients or studies: the roots of ``by-patients/``
    and ``by-studies/``), in index order."""
    table = TABLE[level]
    return _records(conn, level, select(*record_columns(level)).order_by(table.c.pk))


def children(conn: Connection, level: Level, parent_pk: int) -> list[Any]:
    """The resources of *level* whose parent is *parent_pk*, in index order."""
    table = TABLE[level]
    return _records(conn, level, select(*record_columns(level))
                    .where(table.c[PARENT_FK[level]] == parent_pk).order_by(table.c.pk))


def study_dates(conn: Connection) -> list[str]:
    """The distinct StudyDate values (``by-dates/`` lists their years and months)."""
    return [value for (value,) in conn.execute(
        select(STUDIES.c.study_date).where(STUDIES.c.study_date.is_not(None)).distinct())]


def studies_between(conn: Connection, first: str, last: str) -> list[StudyRecord]:
    """The studies whose StudyDate (YYYYMMDD) lies in [first, last], in index order."""
    return build(StudyRecord, conn.execute(
        select(*record_columns(Level.STUDY))
        .where(and_(STUDIES.c.study_date >= first, STUDIES.c.study_date <= last,
                    func.length(STUDIES.c.study_date) == 8))
        .order_by(STUDIES.c.pk)))


def patient_tags(conn: Connection, patient_pks: Sequence[int]) -> dict[int, bytes]:
    """The main tags (JSON) of these patients, by pk."""
    if not patient_pks:
        return {}
    return {pk: tags for pk, tags in conn.execute(
        select(PATIENTS.c.pk, PATIENTS.c.main_tags).where(PATIENTS.c.pk.in_(list(patient_pks))))}


def studies_by_uid(conn: Connection, study_uid: str) -> list[StudyRecord]:
    """The studies with this StudyInstanceUID (one, unless two patients share it)."""
    return build(StudyRecord, conn.execute(
        select(*record_columns(Level.STUDY)).where(STUDIES.c.study_uid == study_uid)
        .order_by(STUDIES.c.pk)))


def series_by_uids(conn: Connection, study_uid: str,
                   series_uid: str | None = None) -> list[SeriesRecord]:
    """The series of the studies with *study_uid* (only those with *series_uid*)."""
    query = select(*record_columns(Level.SERIES)).join(
        STUDIES, STUDIES.c.pk == SERIES.c.study_pk).where(STUDIES.c.study_uid == study_uid)
    if series_uid is not None:
        query = query.where(SERIES.c.series_uid == series_uid)
    return build(SeriesRecord, conn.execute(query.order_by(SERIES.c.pk)))


def instances_by_uids(conn: Connection, study_uid: str, series_uid: str,
                      sop_uid: str | None = None) -> list[InstanceRecord]:
    """The instances of the series (*study_uid*, *series_uid*); only *sop_uid* if given."""
    query = select(*record_columns(Level.INSTANCE)) \
        .join(SERIES, SERIES.c.pk == INSTANCES.c.series_pk) \
        .join(STUDIES, STUDIES.c.pk == SERIES.c.study_pk) \
        .where(STUDIES.c.study_uid == study_uid, SERIES.c.series_uid == series_uid)
    if sop_uid is not None:
        query = query.where(INSTANCES.c.sop_uid == sop_uid)
    return build(InstanceRecord, conn.execute(query.order_by(INSTANCES.c.pk)))
