"""``POST /tools/create-dicom``: build an instance (or a series) and store it through the
one ingest path (Origin ``RestApi``)."""

from __future__ import annotations

from typing import Any, cast

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import generate_uid

from app.context import ServerContext
from app.dicom import create_dicom_builder as builder
from app.dicom import encodings, orthanc_json
from app.dicom.levels import Level
from app.dicom.modify import _tag as parse_tag_name
from app.dicom.modify import set_value
from app.dicom.tags import MAIN_TAG_KEYWORDS
from app.errors import BadRequest, UnknownResource
from app.index import repository
from app.services.ingest import ingest_instance
from app.services.instances import dataset_until_pixels
from app.services.modify import default_private_creator, encode

# Tags copied from an existing instance of the Parent, per level of the hierarchy.
_MODULE_EXTRA = {Level.PATIENT: ("PatientName", "PatientID", "PatientBirthDate", "PatientSex",
                                 "OtherPatientIDs", "PatientComments"),
                 Level.STUDY: ("StudyInstanceUID", "ReferringPhysicianName",
                               "StudyDescription", "AccessionNumber", "StudyID"),
                 Level.SERIES: ("SeriesInstanceUID", "Modality", "SeriesNumber",
                                "SeriesDescription")}


def _flag(request: dict[str, Any], name: str, default: bool) -> bool:
    value = request.get(name, default)
    if not isinstance(value, bool):
        raise BadRequest(f'"{name}" must be a Boolean value')
    return value


def create_dicom(context: ServerContext, request: Any, origin: dict[str, str]) -> dict[str, Any]:
    if not isinstance(request, dict):
        raise BadRequest("The body of /tools/create-dicom must be a JSON object")
    if "Tags" not in request:
        return _create_v1(context, request, origin)
    tags = request["Tags"]
    if not isinstance(tags, dict):
        raise BadRequest("Tags field is not an object")
    creator = request.get("PrivateCreator", default_private_creator(context))
    if not isinstance(creator, str):
        raise BadRequest('"PrivateCreator" must be a string')
    force = _flag(request, "Force", False)
    _flag(request, "InterpretBinaryTags", True)
    charset = tags.get("SpecificCharacterSet", default_charset())
    if not isinstance(charset, str):
        raise BadRequest("SpecificCharacterSet must be a string")
    ds = builder.new_dataset(charset)
    parent_level = None
    if "Parent" in request:
        parent_level = _copy_parent(context, ds, request["Parent"])
    builder.stamp_dates(ds, parent_level.value if parent_level else None)
    builder.inject_tags(ds, tags, creator, force)
    content = request.get("Content")
    if isinstance(content, list) and content:
        return _create_series(context, ds, content, creator, force, origin)
    encapsulate = _flag(request, "Encapsulate", False)
    if content is not None and not isinstance(content, list):
        builder.embed_content(ds, content, encapsulate)
    builder.default_sop_class(ds)
    return ingest_instance(context, encode(ds, None), origin).orthanc_json()


def default_charset() -> str:
    """The SpecificCharacterSet of a new instance whose request names none: the server's
    default encoding (``DefaultEncoding``, ``PUT /tools/default-encoding``), as Orthanc's
    ``GetDefaultDicomEncoding``; none for an encoding without a DICOM term."""
    codec = orthanc_json.default_encoding()
    for encoding in encodings.ENCODINGS.values():
        if encoding.codec == codec:
            return encoding.term or ""
    return "ISO_IR 100"


def _create_v1(context: ServerContext, request: dict[str, Any],
               origin: dict[str, str]) -> dict[str, Any]:
    """Orthanc <= 0.9.3's form: every member is a tag name with a string value."""
    ds = builder.new_dataset(default_charset())
    for name, value in request.items():
        if not isinstance(value, str):
            raise BadRequest("Only string values are supported when creating DICOM instances")
        if name in ("PixelData", "7fe0,0010", "7FE0,0010"):
            builder.embed_content(ds, value)
        else:
            set_value(ds, parse_tag_name(name), value, default_private_creator(context))
    builder.default_sop_class(ds)
    return ingest_instance(context, encode(ds, None), origin).orthanc_json()


def _create_series(context: ServerContext, base: Dataset, content: list[Any], creator: str,
                   force: bool, origin: dict[str, str]) -> dict[str, Any]:
    base.ImagesInAcquisition = len(content)
    base.NumberOfTemporalPositions = 1
    series_id = None
    for index, item in enumerate(content):
        ds = base.copy()
        ds.file_meta = cast(FileMetaDataset, base.file_meta.copy())
        ds.SOPInstanceUID = generate_uid()
        payload = item
        if isinstance(item, dict):
            if "Content" not in item:
                raise BadRequest("No payload in an item of Content")
            payload = item["Content"]
            if "Tags" in item:
                builder.inject_tags(ds, item["Tags"], creator, force)
        builder.embed_content(ds, payload)
        builder.default_sop_class(ds)
        ds.InstanceNumber = index + 1
        ds.ImageIndex = index + 1
        series_id = ingest_instance(context, encode(ds, None), origin).parsed.ids.series
    return {"ID": series_id, "Path": f"/series/{series_id}"}


def _copy_parent(context: ServerContext, ds: Dataset, parent: Any) -> Level:
    """Copy the patient/study/series tags of the Parent from one of its instances."""
    if not isinstance(parent, str):
        raise BadRequest('"Parent" must be an Orthanc identifier')
    with context.db.read() as conn:
        for level in (Level.PATIENT, Level.STUDY, Level.SERIES, Level.INSTANCE):
            row = repository.get_row(conn, level, parent)
            if row is not None:
                break
        else:
            raise UnknownResource(f"Unknown parent resource: {parent}")
        if level == Level.INSTANCE:
            raise BadRequest("The parent of a new instance cannot be an instance")
        siblings = repository.instances_below(conn, level, row.pk)
    if not siblings:
        raise UnknownResource(f"The parent resource {parent} has no instance")
    sibling = dataset_until_pixels(context, siblings[0])
    if "SpecificCharacterSet" in sibling:
        ds.SpecificCharacterSet = sibling.SpecificCharacterSet
    current: Level | None = level
    while current is not None:
        for keyword in (*MAIN_TAG_KEYWORDS[current], *_MODULE_EXTRA.get(current, ())):
            if keyword in sibling:
                ds[keyword] = sibling[keyword]
        current = current.parent
    return level
