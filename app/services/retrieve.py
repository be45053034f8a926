"""Which stored instances a C-MOVE or C-GET identifier selects (PS3.4 C.4.2.2, C.4.3.2).

A retrieve identifier names resources by their unique keys: PatientID at the patient
level, StudyInstanceUID, SeriesInstanceUID, SOPInstanceUID below (each may be a UID
list, PS3.4 C.2.2.2.2). Keys of the levels above narrow the match (relational retrieve
is not needed for that). Like Orthanc, a study-level identifier without a
StudyInstanceUID may name studies by AccessionNumber. Matching goes through the one
find engine; files are opened lazily, one at a time, so that memory stays flat.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from pydicom.dataset import Dataset

from app.context import ServerContext
from app.dicom.levels import Level
from app.errors import BadRequest, InexistentFile
from app.index import find as index_find
from app.index import repository
from app.index.records import InstanceRecord
from app.services.dimse_query import element_text, parse_level
from app.services.find import build_query
from app.services.instances import stored_file

UNIQUE_KEYS: dict[Level, str] = {
    Level.PATIENT: "PatientID",
    Level.STUDY: "StudyInstanceUID",
    Level.SERIES: "SeriesInstanceUID",
    Level.INSTANCE: "SOPInstanceUID",
}


@dataclass(frozen=True)
class RetrieveItem:
    """One instance to send: what the C-STORE sub-operation needs, without the bytes."""

    public_id: str
    sop_instance_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    # Where the file is, as instances.stored_file reads it.
    blob_key: str
    file_size: int
    compression: int


def _item(row: InstanceRecord) -> RetrieveItem:
    return RetrieveItem(row.public_id, row.sop_uid, row.sop_class_uid,
                        row.transfer_syntax or "", row.blob_key, row.file_size,
                        row.compression)


def retrieve_keys(identifier: Dataset) -> tuple[Level, dict[str, str]]:
    """The level and the key constraints of a retrieve identifier, as Orthanc reads them
    (``OrthancMoveRequestHandler::LookupIdentifiers``):

    * the level's unique key names the resources (a backslash-separated list, each
      matched exactly); at the study level a non-empty AccessionNumber is used instead
      of the StudyInstanceUID (Ambra sends both, the UID empty);
    * without QueryRetrieveLevel (Tudor DICOM), the lowest level whose key is present;
    * unique keys of the levels above, when given, narrow the match.

    BadRequest when no usable key is present, or for wildcards (PS3.4 C.4.2.2.1).
    """
    level = _level_or_guess(identifier)
    keys: dict[str, str] = {}
    for current, keyword in UNIQUE_KEYS.items():
        if current.depth >= level.depth:
            break
        value = element_text(identifier, keyword)
        if value:
            keys[keyword] = value
    accession = element_text(identifier, "AccessionNumber") if level == Level.STUDY else None
    if accession:
        keys["AccessionNumber"] = accession
    else:
        value = element_text(identifier, UNIQUE_KEYS[level])
        if value is None:
            raise BadRequest(f"The retrieve identifier has no {UNIQUE_KEYS[level]} "
                             f"at the {level.value.upper()} level")
        keys[UNIQUE_KEYS[level]] = value
    for keyword, value in keys.items():
        if "*" in value or "?" in value:
            raise BadRequest(f"Wildcards are not allowed in the unique key {keyword}")
    return level, keys


def _level_or_guess(identifier: Dataset) -> Level:
    if element_text(identifier, "QueryRetrieveLevel"):
        return parse_level(identifier)
    for level in (Level.INSTANCE, Level.SERIES, Level.STUDY, Level.PATIENT):
        if element_text(identifier, UNIQUE_KEYS[level]) is not None or (
                level == Level.STUDY and element_text(identifier, "AccessionNumber")):
            return level
    raise BadRequest("Invalid fields in a C-MOVE request: no QueryRetrieveLevel and no "
                     "identifier")


def instances_to_retrieve(context: ServerContext, identifier: Dataset) -> list[RetrieveItem]:
    """The instances below every resource the identifier selects, each once, in
    hierarchy order."""
    level, keys = retrieve_keys(identifier)
    if not all(keys.values()):  # an empty unique key names nothing
        return []
    query = build_query(level, keys, case_sensitive=True)
    seen: set[int] = set()
    items: list[RetrieveItem] = []
    with context.db.read() as conn:
        for pk in index_find.find_pks(conn, query):
            for row in repository.instances_below(conn, level, pk):
                if row.pk not in seen:
                    seen.add(row.pk)
                    items.append(_item(row))
    return items


def read_instances(context: ServerContext, items: list[RetrieveItem]
                   ) -> Iterator[tuple[RetrieveItem, bytes | None]]:
    """Each item with its file, or None when the file vanished (deleted meanwhile)."""
    for item in items:
        try:
            yield item, stored_file(context, item).read()
        except (FileNotFoundError, InexistentFile):
            yield item, None
