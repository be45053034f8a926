"""Modify and anonymize instances and whole resources (Orthanc's ResourceModificationJob).

* ``/instances/{id}/modify|anonymize`` answer the modified file and store nothing.
* ``/{patients|studies|series}/{id}/modify|anonymize`` apply one :class:`Modification` to
  every instance below the resource, one instance in memory at a time, and store each
  result through :func:`app.services.ingest.ingest_instance` (Origin ``RestApi``), so the
  new patient/study/series appear exactly as if the files had been uploaded. The shared
  identifier map keeps the new UIDs consistent across instances.

A whole-resource run is a plain function (:func:`run_modification`) with the signature of a
job kind (``context, payload, progress, cancel_check``): the synchronous route calls it
directly; ``Asynchronous: true`` submits it to the jobs engine when it is available.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from typing import Any

import orjson
import pydicom
from pydicom.dataset import Dataset

from app.context import ServerContext
from app.dicom import transcode as transcoding
from app.dicom.identifiers import orthanc_hash
from app.dicom.levels import Level
from app.dicom.modify import (
    PATIENT_ID,
    PATIENT_NAME,
    Modification,
    check_modify_level,
    detect_modify_level,
    parse_anonymization_request,
    parse_modify_request,
)
from app.dicom.parse import read_dataset
from app.dicom.tags import MAIN_TAGS, format_tag
from app.errors import (
    BadFileFormat,
    BadRequest,
    ParameterOutOfRange,
    PharosError,
    UnknownResource,
)
from app.index import curation_repository, repository
from app.index.records import ResourceRecord
from app.jobs import queue
from app.jobs.kinds import JobInterrupted
from app.services import delete as delete_service
from app.services import find
from app.services.ingest import ingest_instance
from app.services.instances import instance_row, read_file, stored_file
from app.services.reconstruct import refresh_instances
from app.timeutil import now_stamp

log = logging.getLogger(__name__)

ANONYMIZATION_SEQUENCE = "AnonymizationSequence"
DEFAULT_PRIVATE_CREATOR = "PrivateCreator"  # Orthanc's DefaultPrivateCreator default
JOB_TYPE = "ResourceModification"

# Transfer syntaxes Pharos can write (pydicom encoders available in this environment).
_UNCOMPRESSED = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"}


def default_private_creator(context: ServerContext) -> str:
    """Orthanc's ``DefaultPrivateCreator`` option (``PrivateCreator`` when unset)."""
    return str(getattr(context.settings, "default_private_creator", None)
               or DEFAULT_PRIVATE_CREATOR)


def _anonymized_name(context: ServerContext) -> str:
    with context.db.write() as conn:
        return f"Anonymized{curation_repository.next_global_sequence(conn, ANONYMIZATION_SEQUENCE)}"


def build_modification(context: ServerContext, request: Any, *, anonymize: bool,
                       level: Level | None, patient_name: str | None = None) -> Modification:
    """The Modification for a request; *level* None means ``/instances/{id}/modify``."""
    creator = default_private_creator(context)
    if anonymize:
        modification, overridden = parse_anonymization_request(request, creator)
        if not overridden:
            modification.replace_tag(PATIENT_NAME, patient_name or _anonymized_name(context),
                                     safe_for_anonymization=True)
            # Deliberately safer than Orthanc 1.10.1, which then leaves PatientName values
            # nested in sequences untouched: they still get a new (random) value.
            modification.uids.add(PATIENT_NAME)
        return modification
    modification, force = parse_modify_request(request, creator)
    if level is None:
        modification.level = detect_modify_level(modification)
    else:
        modification.level = level
        if level != Level.PATIENT:
            modification._mark_not_orthanc_anonymization()
        if not force:  # Orthanc 1.11.3+: "Force" lifts the per-level identifier checks
            check_modify_level(modification, level)
    return modification


def transcode_syntax(request: Any) -> str | None:
    if not isinstance(request, dict) or "Transcode" not in request:
        return None
    value = request["Transcode"]
    if not isinstance(value, str) or not value.strip():
        raise BadRequest('"Transcode" must be a transfer syntax UID')
    return value.strip()


def encode(ds: Dataset, syntax: str | None, quality: int | None = None) -> bytes:
    """Write the dataset as a Part 10 file, transcoded to *syntax* when asked (lossy
    targets at *quality*, Orthanc's LossyQuality)."""
    if syntax is not None:
        _transcode(ds, syntax, quality)
    _complete_file_meta(ds)
    buffer = io.BytesIO()
    try:
        pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    except Exception as error:  # noqa: BLE001 — a value pydicom cannot encode
        raise BadRequest(f"Cannot write the modified DICOM file: {error}") from error
    return buffer.getvalue()


def _complete_file_meta(ds: Dataset) -> None:
    """Orthanc always writes a Part 10 file: preamble, DICM, full file meta information."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
    meta = getattr(ds, "file_meta", None)
    if meta is None:
        meta = ds.file_meta = FileMetaDataset()
    if "TransferSyntaxUID" not in meta:
        implicit = getattr(ds, "original_encoding", (None, None))[0]
        meta.TransferSyntaxUID = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
    if "SOPClassUID" in ds:
        meta.MediaStorageSOPClassUID = ds.SOPClassUID
    if "SOPInstanceUID" in ds:
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID


def _transcode(ds: Dataset, syntax: str, quality: int | None = None) -> None:
    """Orthanc's ``Transcode``: :func:`app.dicom.transcode.transcode_dataset` (a lossy
    target gives a new SOP Instance UID, as Orthanc's DCMTK transcoder does)."""
    target = transcoding.check_target(syntax)
    current = str(ds.file_meta.get("TransferSyntaxUID", ""))
    if current == target:
        return
    if "PixelData" not in ds and target not in transcoding.UNCOMPRESSED:
        raise ParameterOutOfRange("Cannot compress an instance without pixel data")
    transcoding.transcode_dataset(ds, target, quality=quality)


# --- one instance, answered and not stored ------------------------------------------------

def modify_instance(context: ServerContext, public_id: str, request: Any, *,
                    anonymize: bool) -> bytes:
    row = instance_row(context, public_id)
    modification = build_modification(context, request, anonymize=anonymize, level=None)
    syntax = None if anonymize else transcode_syntax(request)
    quality = transcoding.lossy_quality(request) if syntax else None
    ds = read_dataset(read_file(context, row))
    modification.apply(ds)
    return encode(ds, syntax, quality)


# --- whole resources ------------------------------------------------------------------------

def prepare_payload(context: ServerContext, level: Level, public_id: str, request: Any, *,
                    anonymize: bool, origin: dict[str, str]) -> dict[str, Any]:
    """Validate a request and freeze it into a JSON payload a run (or a job) can replay.

    As Orthanc, the resource may be of any level (``/series/{study}/modify`` modifies the
    instances of the study at the series level): only the modification level follows the
    route."""
    _resource_row(context, public_id)
    if request is None:
        request = {}
    patient_name = None
    if anonymize:
        _, overridden = parse_anonymization_request(request, default_private_creator(context))
        if not overridden:
            patient_name = _anonymized_name(context)
    modification = build_modification(context, request, anonymize=anonymize, level=level,
                                      patient_name=patient_name or "check")
    keep_source = request.get("KeepSource", True) if isinstance(request, dict) else True
    if not isinstance(keep_source, bool):
        raise BadFileFormat('"KeepSource" must be a Boolean value')
    check_in_place(context, modification, keep_source)
    _keep_labels(request)  # checked now, not when the job runs
    if level == Level.STUDY and not anonymize:
        check_study_patient_tags(context, modification, public_id)
    return {"Level": level.value, "ID": public_id, "Anonymize": anonymize,
            "Request": request, "PatientName": patient_name, "KeepSource": keep_source,
            "Transcode": transcode_syntax(request), "Origin": origin,
            "LossyQuality": _checked_quality(request)}


def _checked_quality(request: Any) -> int | None:
    return transcoding.lossy_quality(request) if transcode_syntax(request) else None


def _payload_quality(payload: dict[str, Any]) -> int | None:
    """The LossyQuality of the request a modification job replays (checked at submission)."""
    return transcoding.lossy_quality(payload.get("Request")) if payload.get("Transcode") else None


def run_modification(context: ServerContext, payload: dict[str, Any],
                     progress: Callable[..., None] | None = None,
                     cancel_check: Callable[[], bool] | None = None) -> dict[str, Any]:
    """Modify every instance below the resource; answer Orthanc's ``{ID, Path, PatientID,
    Type}`` for the new resource."""
    level = Level(payload["Level"])
    anonymize = bool(payload["Anonymize"])
    modification = build_modification(context, payload["Request"], anonymize=anonymize,
                                       level=level,
                                       patient_name=payload.get("PatientName"))
    if anonymize:
        modification.level = Level.PATIENT
    resource_level, row = _resource_row(context, payload["ID"])
    with context.db.read() as conn:
        instances = [(r.public_id, stored_file(context, r)) for r in
                     repository.instances_below(conn, resource_level, row.pk)]
    origin = payload.get("Origin") or {"Origin": "RestApi"}
    metadata_name = "AnonymizedFrom" if anonymize else "ModifiedFrom"
    answer: dict[str, Any] | None = None
    failed = 0
    in_place = InPlaceTracker(context)
    keep_labels = _keep_labels(payload["Request"])
    for index, (source_id, file) in enumerate(instances):
        if cancel_check is not None and cancel_check():
            raise JobInterrupted()
        try:
            data = file.read()
        except FileNotFoundError:
            log.warning("Skipping instance %s: its file is missing", source_id)
            failed += 1
            continue
        ds = read_dataset(data)
        modification.apply(ds)
        labels = _source_labels(context, source_id) if keep_labels else {}
        result = ingest_instance(context, encode(ds, payload.get("Transcode"),
                                                 _payload_quality(payload)), origin)
        in_place.stored(source_id, result)
        _restore_labels(context, result.parsed.ids, labels)
        source = _source_ids(context, source_id)
        _record_origin(context, result.parsed.ids, source, metadata_name)
        if not payload.get("KeepSource", True) and result.parsed.ids.instance != source_id:
            try:
                delete_service.delete_resource(context, Level.INSTANCE, source_id)
            except PharosError:
                pass
        ids = result.parsed.ids
        new_id = {Level.PATIENT: ids.patient, Level.STUDY: ids.study,
                  Level.SERIES: ids.series, Level.INSTANCE: ids.instance}[level]
        answer = {"ID": new_id, "Path": f"/{level.plural}/{new_id}", "PatientID": ids.patient,
                  "Type": level.value}
        if progress is not None:
            progress((index + 1) / len(instances))
    if answer is None:
        raise BadRequest("The resource has no instance to modify")
    in_place.finish()
    _log_change(context, level, answer["ID"], anonymize)
    # Orthanc's ResourceModificationJob content, which the synchronous route answers.
    return {"Description": "REST API", "FailedInstancesCount": failed, **answer,
            "InstancesCount": len(instances) - failed, "IsAnonymization": anonymize,
            "ParentResources": [payload["ID"]]}


def _keep_labels(request: Any) -> bool:
    """``"KeepLabels"`` (Orthanc 1.12.3): the modified resources get the labels of the
    resources they come from (without it, a modification in place loses them with the
    replaced resources, and new resources start without labels)."""
    if not isinstance(request, dict) or "KeepLabels" not in request:
        return False
    if not isinstance(request["KeepLabels"], bool):
        raise BadFileFormat('"KeepLabels" must be a Boolean value')
    return request["KeepLabels"]


def _source_labels(context: ServerContext, instance_id: str) -> dict[Level, list[str]]:
    """The labels of an instance and of its ancestors, read before it is replaced."""
    return {level: find.labels_of(context, level, public_id)
            for level, public_id in _source_ids(context, instance_id).items()}


def _restore_labels(context: ServerContext, new_ids: Any, labels: dict[Level, list[str]]
                    ) -> None:
    new = {Level.PATIENT: new_ids.patient, Level.STUDY: new_ids.study,
           Level.SERIES: new_ids.series, Level.INSTANCE: new_ids.instance}
    for level, names in labels.items():
        for label in names:
            find.add_label(context, level, new[level], label)


def _resource_row(context: ServerContext, public_id: str) -> tuple[Level, Any]:
    """The resource of any level with this ID (Orthanc's ``GetChildInstances``), or 404."""
    with context.db.read() as conn:
        for level in (Level.STUDY, Level.SERIES, Level.PATIENT, Level.INSTANCE):
            row = repository.get_row(conn, level, public_id)
            if row is not None:
                return level, row
    raise UnknownResource(f"Unknown resource: {public_id}")


_PATIENT_MAIN_TAGS = {int(tag): keyword for tag, keyword in MAIN_TAGS[Level.PATIENT]}


def check_study_patient_tags(context: ServerContext, modification: Modification,
                             study_id: str) -> None:
    """Orthanc's (1.11.3+) rules for patient tags replaced by ``/studies/{id}/modify``.

    A study that is its patient's only one may change every patient tag. When the target
    patient (the replaced PatientID, else the study's) exists with other studies, the study
    can only be attached to it: every main patient tag that patient has must be replaced
    by that patient's value, and no other one may be replaced. Anything else would leave
    one patient with two sets of patient tags: use ``/patients/{id}/modify``.
    """
    replaced = [tag for tag in _PATIENT_MAIN_TAGS if modification.is_replaced(tag)]
    if not replaced:
        return
    with context.db.read() as conn:
        study = repository.get_row(conn, Level.STUDY, study_id)
        if study is None:
            raise UnknownResource("Study not found")
        if modification.is_replaced(PATIENT_ID):
            target_id = str(modification.replacements[PATIENT_ID])
        else:
            target_id = _main_tags(repository.parent_row(conn, Level.STUDY, study)).get(
                "PatientID", "")
        patient = repository.get_row(conn, Level.PATIENT, orthanc_hash(target_id))
        if patient is None:
            return
        studies = repository.descendant_pks(conn, Level.PATIENT, patient.pk, Level.STUDY)
        if not [pk for pk in studies if pk != study.pk]:
            return
        existing = _main_tags(patient)
    for tag, keyword in _PATIENT_MAIN_TAGS.items():
        if keyword in existing:
            if not modification.is_replaced(tag) or \
                    str(modification.replacements[tag]) != existing[keyword]:
                raise BadRequest(
                    "Trying to change patient tags in a study.  The Patient already exists and "
                    "has other studies.  All the 'Replace' tags should match the existing "
                    "patient main dicom tags and you should specify all Patient MainDicomTags "
                    "in your query.  Try using /patients/../modify instead to modify the "
                    f"patient. Failing tag: {format_tag(tag)}")
        elif modification.is_replaced(tag):
            raise BadRequest(
                "Trying to change patient tags in a study.  The Patient already exists and has "
                "other studies.  You are trying to replace a tag that is not defined yet in "
                "this patient. Try using /patients/../modify instead to modify the patient. "
                f"Failing tag: {format_tag(tag)}")


def _main_tags(row: Any) -> dict[str, str]:
    return orjson.loads(row.main_tags) if row.main_tags else {}


def _source_ids(context: ServerContext, instance_id: str) -> dict[Level, str]:
    """Public IDs of an instance and its ancestors (still there when KeepSource is true)."""
    ids = {Level.INSTANCE: instance_id}
    with context.db.read() as conn:
        current_level = Level.INSTANCE
        current: ResourceRecord | None = repository.get_row(conn, Level.INSTANCE, instance_id)
        while current is not None and current_level.parent is not None:
            current = repository.parent_row(conn, current_level, current)
            current_level = current_level.parent
            ids[current_level] = current.public_id
    return ids


def _record_origin(context: ServerContext, new_ids: Any, source: dict[Level, str],
                   name: str) -> None:
    """``ModifiedFrom``/``AnonymizedFrom`` metadata, as ResourceModificationJob sets them:
    on the instance always, on a parent when its identifier changed."""
    new = {Level.PATIENT: new_ids.patient, Level.STUDY: new_ids.study,
           Level.SERIES: new_ids.series, Level.INSTANCE: new_ids.instance}
    with context.db.write() as conn:
        entries = []
        for level, public_id in new.items():
            original = source.get(level)
            if original is None or (level != Level.INSTANCE and original == public_id):
                continue
            row = repository.get_row(conn, level, public_id)
            if row is not None:
                entries.append((level, row.pk, name, original))
        curation_repository.set_metadata_many(conn, entries)


def _log_change(context: ServerContext, level: Level, public_id: str, anonymize: bool) -> None:
    if level == Level.INSTANCE:
        return
    kind = f"{'Anonymized' if anonymize else 'Modified'}{level.value}"
    with context.db.write() as conn:
        repository.add_changes(conn, [(kind, level, public_id)], now_stamp())


def submit_job(context: ServerContext, payload: dict[str, Any], priority: int = 0,
               body: Any = None) -> str:
    """Queue the run as a ``ResourceModification`` job (``Asynchronous: true``), with the
    request *body*'s ``UserData`` (Orthanc 1.12.9)."""
    return queue.submit(context, JOB_TYPE, payload, priority=priority,
                        user_data=queue.user_data_of(body),
                        content={"Description": "REST API",
                                 "IsAnonymization": bool(payload["Anonymize"])})


# --- modification in place -----------------------------------------------------------------

_KEEP_SOURCE_NEEDED = ("When keeping StudyInstanceUID, SeriesInstanceUID and SOPInstanceUID "
                       "tag, you must set KeepSource to true to avoid deleting the modified "
                       "files at the end of the process")
_OVERWRITE_NEEDED = ("When keeping StudyInstanceUID, SeriesInstanceUID and SOPInstanceUID tag, "
                     "you must have the 'OverwriteInstances' Orthanc configuration set to true "
                     "in order to replace the modified resources")


def check_in_place(context: ServerContext, modification: Modification,
                   keep_source: bool) -> None:
    """Orthanc's ``ResourceModificationJob::PerformSanityChecks``: a modification that keeps
    every identifier replaces its sources, which needs ``KeepSource`` (else the results
    would be deleted as sources at the end) and ``OverwriteInstances`` (else every result
    would be "already stored" and nothing would change). Orthanc checks this at the study
    and patient levels; Pharos at the series level too (same reasons)."""
    if not modification.is_in_place():
        return
    if not keep_source:
        raise BadRequest(_KEEP_SOURCE_NEEDED)
    if context.settings.overwrite_mode == "Never":
        raise BadRequest(_OVERWRITE_NEEDED)


class InPlaceTracker:
    """Follows the results of a modification, especially those that land on their source.

    Such a result overwrites its source (``OverwriteInstances``). Once all results are
    stored, the main tags of their series, studies and patients are rebuilt from one result
    per series (Orthanc's ``PostProcessInstances`` reconstruction, 1.11.3+), since parents
    that kept other instances were not re-created from the new files. A result of its own
    source that was "already stored"
    (overwriting disabled) means the modification changed nothing: an error, never a
    silent success.
    """

    def __init__(self, context: ServerContext) -> None:
        self.context = context
        self.by_series: dict[str, str] = {}  # series public ID -> an instance to rebuild from

    def stored(self, source_id: str, result: Any) -> None:
        ids = result.parsed.ids
        if ids.instance == source_id and result.status == "AlreadyStored":
            raise BadRequest(_OVERWRITE_NEEDED)
        # Orthanc >= 1.11.3 rebuilds the parents of every modified series, not only of the
        # results that replaced their source: a result may join an existing series or study
        # (UIDs kept) whose main tags came from older instances.
        self.by_series.setdefault(ids.series, ids.instance)

    def finish(self) -> None:
        if not self.by_series:
            return
        with self.context.db.read() as conn:
            pks = [row.pk for public_id in self.by_series.values()
                   if (row := repository.get_row(conn, Level.INSTANCE, public_id)) is not None]
        refresh_instances(self.context, pks)


# --- shared with the bulk routes (app.services.bulk_modify) ---------------------------------

def generated_patient_name(context: ServerContext, request: Any) -> str | None:
    """The ``Anonymized<N>`` PatientName an anonymization request gets (one per request, drawn
    when the request is accepted), or None when the request chooses the PatientName."""
    _, overridden = parse_anonymization_request(request, default_private_creator(context))
    return None if overridden else _anonymized_name(context)


def record_modified_from(context: ServerContext, new_ids: Any, source_instance_id: str, *,
                         anonymize: bool) -> None:
    """``ModifiedFrom``/``AnonymizedFrom`` on a stored result, from its (still present) source
    instance, as :func:`run_modification` records them."""
    _record_origin(context, new_ids, _source_ids(context, source_instance_id),
                   "AnonymizedFrom" if anonymize else "ModifiedFrom")
