"""Merge and split studies (Orthanc's ``MergeStudyJob`` and ``SplitStudyJob``).

* ``POST /studies/{id}/merge`` moves studies, series and instances into the target study:
  every moved instance gets the target's Patient and General Study module tags (copied from
  one instance of the target, removed where the target has no plain value), one new
  SeriesInstanceUID per source series and a new SOPInstanceUID.
* ``POST /studies/{id}/split`` moves series and instances out of a study into one brand new
  study (one new StudyInstanceUID per request, one new SeriesInstanceUID per source series,
  a new SOPInstanceUID per instance); ``Replace``/``Remove`` may only touch the Patient and
  General Study modules.

Both are job kinds (``MergeStudy``, ``SplitStudy``) whose content is Orthanc's
(``Description``, ``FailedInstancesCount``, ``InstancesCount``, ``TargetStudy`` and, for a
split, ``TargetStudyUID``). Requests are fully validated before the job exists, so bad input
never stores anything. Every new UID is drawn when the request is accepted and kept in the
payload: a job restarted after a pause or a crash rebuilds the very same instances (they
come back ``AlreadyStored``) instead of duplicating them. The sources are deleted at the end
unless ``KeepSource`` is true (Orthanc's ``CleaningInstancesJob``; default false here).

Every new instance is stored through :func:`app.services.ingest.ingest_instance`.

Deliberate differences from Orthanc 1.10.1: a resource named twice (or a study and one of
its series) is moved once, where Orthanc stores a second copy of the instances; an unknown
tag name is a 400, where Orthanc answers 500.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.uid import generate_uid

from app.context import ServerContext
from app.dicom.levels import Level
from app.dicom.modify import SERIES_UID, SOP_UID, STUDY_UID, set_value
from app.dicom.parse import read_dataset
from app.dicom.tags import parse_tag, tag_name
from app.errors import (
    BadFileFormat,
    BadRequest,
    ParameterOutOfRange,
    PharosError,
    UnknownResource,
)
from app.index import repository
from app.jobs.kinds import JobInterrupted, job_kind
from app.services import delete as delete_service
from app.services.ingest import ingest_instance
from app.services.instances import dataset_until_pixels, instance_file_or_none
from app.services.modify import default_private_creator, encode

log = logging.getLogger(__name__)

MERGE_JOB = "MergeStudy"
SPLIT_JOB = "SplitStudy"
DESCRIPTION = "REST API"  # OrthancRestApi::SubmitCommandsJob

# DICOM PS3.3 (2011) Table C.7-1 "Patient Module Attributes" (+ Issuer of Patient ID macro),
# as Orthanc's DicomTag::AddTagsForModule(DicomModule_Patient) lists them.
PATIENT_MODULE = (
    0x00100010, 0x00100020, 0x00100030, 0x00100040, 0x00081120, 0x00100032, 0x00101000,
    0x00101002, 0x00101001, 0x00102160, 0x00104000, 0x00102201, 0x00102202, 0x00102292,
    0x00102293, 0x00102294, 0x00102297, 0x00102298, 0x00102299, 0x00120062, 0x00120063,
    0x00120064, 0x00100021, 0x00100024,
)
# DICOM PS3.3 (2011) Table C.7-3 "General Study Module Attributes" (DicomModule_Study).
STUDY_MODULE = (
    0x0020000D, 0x00080020, 0x00080030, 0x00080090, 0x00080096, 0x00200010, 0x00080050,
    0x00080051, 0x00081030, 0x00081048, 0x00081049, 0x00081060, 0x00081062, 0x00321034,
    0x00081110, 0x00081032, 0x00401012,
)
MODULE_TAGS = frozenset(PATIENT_MODULE + STUDY_MODULE)
SPLIT_ALLOWED_TAGS = MODULE_TAGS - {STUDY_UID, SERIES_UID}
# ORTHANC_MAXIMUM_TAG_LENGTH: longer values are null in Orthanc's DICOM summary.
MAXIMUM_SUMMARY_LENGTH = 256
_BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN", "SQ"})


# --- request parsing (SerializationToolbox's messages) ------------------------------------------

def _object(body: Any) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise BadFileFormat("The body must be a JSON object")
    return body


def read_strings(body: dict[str, Any], field: str) -> list[str]:
    value = body.get(field)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadFileFormat(f"List of strings expected in field: {field}")
    return value


def read_boolean(body: dict[str, Any], field: str, default: bool) -> bool:
    if field not in body:
        return default
    value = body[field]
    if not isinstance(value, bool):
        raise BadFileFormat(f"Boolean value expected in field: {field}")
    return value


def _tag(text: str) -> int:
    try:
        return int(parse_tag(text))
    except (ValueError, TypeError) as error:
        raise BadRequest(f"Unknown DICOM tag: {text!r}") from error


def _format_tag(tag: int) -> str:
    return f"{tag_name(tag)} ({tag >> 16:04x},{tag & 0xFFFF:04x})"


def _unique(items: list[tuple[str, str]]) -> list[tuple[str, str]]:
    seen: set[str] = set()
    kept = []
    for instance_id, series_id in items:
        if instance_id not in seen:
            seen.add(instance_id)
            kept.append((instance_id, series_id))
    return kept


# --- resolving resources ------------------------------------------------------------------------

def _find(conn: Any, public_id: str) -> tuple[Level, Any] | None:
    for level in Level:
        row = repository.get_row(conn, level, public_id)
        if row is not None:
            return level, row
    return None


def _ancestor_id(conn: Any, level: Level, row: Any, wanted: Level) -> str:
    while level != wanted:
        row = repository.parent_row(conn, level, row)
        parent = level.parent
        assert parent is not None
        level = parent
    return str(row.public_id)


def _instances_with_series(conn: Any, level: Level, row: Any) -> list[tuple[str, str]]:
    """(instance ID, parent series ID) of every instance below a study, series or instance."""
    if level == Level.INSTANCE:
        return [(row.public_id, _ancestor_id(conn, level, row, Level.SERIES))]
    series_rows = [row] if level == Level.SERIES else repository.get_rows_by_pk(
        conn, Level.SERIES, repository.descendant_pks(conn, level, row.pk, Level.SERIES))
    found: list[tuple[str, str]] = []
    for series in series_rows:
        for instance in repository.instances_below(conn, Level.SERIES, series.pk):
            found.append((instance.public_id, series.public_id))
    return found


def _plan(items: list[tuple[str, str]]) -> tuple[list[list[str]], dict[str, str]]:
    """New UIDs for a set of instances: one SeriesInstanceUID per source series, one
    SOPInstanceUID per instance."""
    series_map: dict[str, str] = {}
    instances = []
    for instance_id, series_id in _unique(items):
        if series_id not in series_map:
            series_map[series_id] = generate_uid()
        instances.append([instance_id, series_id, generate_uid()])
    return instances, series_map


# --- merge --------------------------------------------------------------------------------------

def target_module_values(ds: Dataset) -> tuple[dict[str, str], list[str]]:
    """The Patient and General Study module tags of the target study, as Orthanc derives them
    from its DICOM summary: plain values are copied (multiple values joined by ``\\``), tags
    that are absent, sequences, binary or longer than 256 characters are removed."""
    replacements: dict[str, str] = {}
    removals: list[str] = []
    for tag in sorted(MODULE_TAGS):
        key = f"{tag:08X}"
        text = _plain_text(ds[tag]) if tag in ds else None
        if text is None or len(text) > MAXIMUM_SUMMARY_LENGTH:
            removals.append(key)
        else:
            replacements[key] = text
    return replacements, removals


def _plain_text(element: DataElement) -> str | None:
    if element.VR in _BINARY_VRS:
        return None
    value = element.value
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("latin-1").rstrip("\0 ")
    if isinstance(value, list | tuple | MultiValue):
        return "\\".join(str(v) for v in value)
    return str(value)


def prepare_merge(context: ServerContext, study_id: str, body: Any,
                  origin: dict[str, str]) -> dict[str, Any]:
    """Validate a merge request and freeze it into a job payload."""
    body = _object(body)
    with context.db.read() as conn:
        target = repository.get_row(conn, Level.STUDY, study_id)
        if target is None:
            raise UnknownResource(f"Cannot merge into an unknown study: {study_id}")
        target_instances = repository.instances_below(conn, Level.STUDY, target.pk)
        if not target_instances:
            raise UnknownResource(f"The study {study_id} has no instance")
        resources = read_strings(body, "Resources")
        items: list[tuple[str, str]] = []
        for public_id in resources:
            items.extend(_merge_source(conn, study_id, public_id))
    keep_source = read_boolean(body, "KeepSource", False)
    permissive = read_boolean(body, "Permissive", False)
    ds = dataset_until_pixels(context, target_instances[0])
    replacements, removals = target_module_values(ds)
    instances, series_map = _plan(items)
    return {"TargetStudy": study_id, "Instances": instances, "SeriesUIDMap": series_map,
            "Replacements": replacements, "Removals": removals, "KeepSource": keep_source,
            "Permissive": permissive, "Origin": origin}


def _merge_source(conn: Any, target_id: str, public_id: str) -> list[tuple[str, str]]:
    """``MergeStudyJob::AddSource``: a study, series or instance outside the target."""
    found = _find(conn, public_id)
    if found is None:
        raise UnknownResource(f"Cannot find this resource: {public_id}")
    level, row = found
    if level == Level.PATIENT:
        raise UnknownResource("This resource is neither a study, nor a series, nor an "
                              f"instance: {public_id} is a Patient")
    if level == Level.STUDY and public_id == target_id:
        raise UnknownResource(f"Cannot merge a study into the same study: {public_id}")
    if level != Level.STUDY and _ancestor_id(conn, level, row, Level.STUDY) == target_id:
        raise UnknownResource(f"Cannot merge {level.value.lower()} {public_id} into its "
                              f"parent study {target_id}")
    return _instances_with_series(conn, level, row)


def merge_content(payload: dict[str, Any], failed: int = 0) -> dict[str, Any]:
    return {"Description": DESCRIPTION, "FailedInstancesCount": failed,
            "InstancesCount": len(payload["Instances"]), "TargetStudy": payload["TargetStudy"]}


@job_kind(MERGE_JOB)
def run_merge(context: ServerContext, payload: dict[str, Any],
              progress: Callable[..., None] | None = None,
              cancel_check: Callable[[], bool] | None = None) -> dict[str, Any]:
    replacements = {int(k, 16): v for k, v in payload["Replacements"].items()}
    removals = [int(k, 16) for k in payload["Removals"]]

    def transform(ds: Dataset) -> None:
        for tag in removals:
            if tag in ds:
                del ds[tag]
        for tag, value in replacements.items():
            set_value(ds, tag, value, default_private_creator(context))

    failed, _ = _move_instances(context, payload, transform, progress, cancel_check)
    return merge_content(payload, failed)


# --- split --------------------------------------------------------------------------------------

def prepare_split(context: ServerContext, study_id: str, body: Any,
                  origin: dict[str, str]) -> dict[str, Any]:
    """Validate a split request (in Orthanc's order) and freeze it into a job payload."""
    body = _object(body)
    items: list[tuple[str, str]] = []
    with context.db.read() as conn:
        if repository.get_row(conn, Level.STUDY, study_id) is None:
            raise UnknownResource(f"Cannot split unknown study {study_id}")
        for field, level in (("Series", Level.SERIES), ("Instances", Level.INSTANCE)):
            if field not in body:
                continue
            for public_id in read_strings(body, field):
                row = repository.get_row(conn, level, public_id)
                if row is None or _ancestor_id(conn, level, row, Level.STUDY) != study_id:
                    raise UnknownResource(f"This {'series' if level == Level.SERIES else 'instance'}"
                                          f" does not belong to the study to be split: {public_id}")
                items.extend(_instances_with_series(conn, level, row))
    if not body.get("Series") and not body.get("Instances"):
        raise BadRequest('Both the "Series" and the "Instances" fields are missing')
    keep_source = read_boolean(body, "KeepSource", False)
    removals = _split_removals(body)
    replacements = _split_replacements(body)
    instances, series_map = _plan(items)
    return {"SourceStudy": study_id, "TargetStudyUID": generate_uid(), "Instances": instances,
            "SeriesUIDMap": series_map, "Replacements": replacements, "Removals": removals,
            "KeepSource": keep_source, "Permissive": read_boolean(body, "Permissive", False),
            "Origin": origin}


def _check_split_tag(tag: int) -> None:
    if tag not in SPLIT_ALLOWED_TAGS:
        raise ParameterOutOfRange("Cannot modify the following tag while splitting a study "
                                  f"(not in the patient/study modules): {_format_tag(tag)}")


def _split_removals(body: dict[str, Any]) -> list[str]:
    if "Remove" not in body:
        return []
    value = body["Remove"]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadFileFormat('"Remove" must be a list of tags')
    removals = []
    for name in value:
        tag = _tag(name)
        _check_split_tag(tag)
        removals.append(f"{tag:08X}")
    return removals


def _split_replacements(body: dict[str, Any]) -> dict[str, str]:
    if "Replace" not in body:
        return {}
    value = body["Replace"]
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise BadFileFormat('"Replace" must be an object mapping tags to strings')
    replacements = {}
    for name, text in value.items():
        tag = _tag(name)
        _check_split_tag(tag)
        replacements[f"{tag:08X}"] = text
    return replacements


def split_content(payload: dict[str, Any], target_study: str | None,
                  failed: int = 0) -> dict[str, Any]:
    content: dict[str, Any] = {"Description": DESCRIPTION, "FailedInstancesCount": failed,
                               "InstancesCount": len(payload["Instances"])}
    if target_study:
        content["TargetStudy"] = target_study
    content["TargetStudyUID"] = payload["TargetStudyUID"]
    return content


@job_kind(SPLIT_JOB)
def run_split(context: ServerContext, payload: dict[str, Any],
              progress: Callable[..., None] | None = None,
              cancel_check: Callable[[], bool] | None = None) -> dict[str, Any]:
    replacements = {int(k, 16): v for k, v in payload["Replacements"].items()}
    removals = [int(k, 16) for k in payload["Removals"]]
    study_uid = payload["TargetStudyUID"]

    def transform(ds: Dataset) -> None:
        for tag in removals:
            if tag in ds:
                del ds[tag]
        for tag, value in replacements.items():
            set_value(ds, tag, value, default_private_creator(context))
        ds[STUDY_UID] = DataElement(STUDY_UID, "UI", study_uid)

    failed, target = _move_instances(context, payload, transform, progress, cancel_check)
    return split_content(payload, target, failed)


# --- the common run (SetOfInstancesJob + CleaningInstancesJob) ----------------------------------

def _move_instances(context: ServerContext, payload: dict[str, Any],
                    transform: Callable[[Dataset], None],
                    progress: Callable[..., None] | None,
                    cancel_check: Callable[[], bool] | None) -> tuple[int, str | None]:
    """Store a transformed copy of every instance, then delete the sources unless
    ``KeepSource``; answer the failed count and the study of the first new instance."""
    instances = payload["Instances"]
    series_map = payload["SeriesUIDMap"]
    origin = payload.get("Origin") or {"Origin": "RestApi"}
    failed = 0
    target_study: str | None = None
    for index, (instance_id, series_id, new_sop_uid) in enumerate(instances):
        if cancel_check is not None and cancel_check():
            raise JobInterrupted()
        data = instance_file_or_none(context, instance_id)
        if data is None:
            failed += 1
            if not payload.get("Permissive", False):
                raise UnknownResource("An instance was removed after the job was issued: "
                                      f"{instance_id}")
            continue
        ds = read_dataset(data)
        transform(ds)
        ds[SERIES_UID] = DataElement(SERIES_UID, "UI", series_map[series_id])
        ds[SOP_UID] = DataElement(SOP_UID, "UI", new_sop_uid)
        result = ingest_instance(context, encode(ds, None), origin)
        if target_study is None:
            target_study = result.parsed.ids.study
        if progress is not None:
            progress((index + 1) / len(instances))
    if not payload.get("KeepSource", False):
        for instance_id, _, _ in instances:
            try:
                delete_service.delete_resource(context, Level.INSTANCE, instance_id)
            except PharosError:
                pass  # already gone (deleted meanwhile, or by an earlier run of this job)
    return failed, target_study


# --- submitting ---------------------------------------------------------------------------------

def submit(context: ServerContext, kind: str, payload: dict[str, Any], *, synchronous: bool,
           priority: int, user_data: Any = None, has_user_data: bool = False) -> dict[str, Any]:
    """Run (or queue) a merge or split job; the job shows in ``/jobs`` either way (with
    the request's ``UserData`` when *has_user_data*)."""
    from app.jobs import queue
    content = merge_content(payload) if kind == MERGE_JOB else split_content(payload, None)
    return queue.submit_or_run(context, kind, payload, synchronous=synchronous,
                               content=content, priority=priority,
                               user_data=user_data if has_user_data else queue.NO_USER_DATA)
