"""``POST /tools/bulk-modify`` and ``POST /tools/bulk-anonymize`` (Orthanc 1.9.4+).

One modification (or anonymization) is applied to every instance below a list of resources
of any level; a single identifier map keeps the new UIDs consistent across all of them (the
instances of one series still share one new series, one patient one new PatientID). The job
is Orthanc's ``ResourceModification`` with multiple outputs: its content lists every
resulting resource, level by level (``Resources``), instead of the single ``ID``/``Path`` of
``/{level}/{id}/modify``.

``Level`` (new in Orthanc 1.9.7) fixes the level of a modification; without it the level is
the highest identifier the request replaces (``PatientID`` > ``StudyInstanceUID`` >
``SeriesInstanceUID`` > instance). An anonymization always works at the patient level.

Every new instance is stored through :func:`app.services.ingest.ingest_instance`, with
``ModifiedFrom``/``AnonymizedFrom`` metadata like the single-resource routes. The sources are
kept unless ``KeepSource`` is false.

Deliberate difference from Orthanc 1.10.1: an instance reached twice (a study and one of its
series) is modified once, where Orthanc fails the job with "Cannot store an instance".
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from pydicom.uid import UID

from app.context import ServerContext
from app.dicom.levels import Level
from app.dicom.parse import read_dataset
from app.errors import BadFileFormat, ParameterOutOfRange, PharosError, UnknownResource
from app.index import repository
from app.jobs import queue
from app.jobs.kinds import JobInterrupted
from app.services import delete as delete_service
from app.services import modify as modify_service
from app.services.ingest import ingest_instance
from app.services.instances import instance_file_or_none
from app.services.merge_split import DESCRIPTION, read_boolean, read_strings

log = logging.getLogger(__name__)

JOB_TYPE = modify_service.JOB_TYPE  # "ResourceModification", as in Orthanc
_OUTPUT_ORDER = (Level.INSTANCE, Level.SERIES, Level.STUDY, Level.PATIENT)


def _level(body: dict[str, Any]) -> Level | None:
    if "Level" not in body:
        return None
    value = body["Level"]
    if not isinstance(value, str):
        raise BadFileFormat('"Level" must be a string')
    try:
        return Level.parse(value)
    except ValueError as error:
        raise ParameterOutOfRange(f"Unknown resource level: {value}") from error


def _transcode(body: dict[str, Any]) -> str | None:
    syntax = modify_service.transcode_syntax(body)
    if syntax is not None and not UID(syntax).is_transfer_syntax:
        raise BadFileFormat(f"Unknown transfer syntax UID: {syntax}")
    return syntax


def prepare(context: ServerContext, body: Any, *, anonymize: bool,
            origin: dict[str, str]) -> dict[str, Any]:
    """Validate a bulk request (Orthanc's order: options, level, resources) and freeze it
    into a job payload."""
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise BadFileFormat("The body must be a JSON object")
    level: Level | None = None
    patient_name: str | None = None
    if anonymize:
        modify_service.build_modification(context, body, anonymize=True, level=None,
                                          patient_name="check")
    else:
        level = _level(body)
        modification = modify_service.build_modification(context, body, anonymize=False,
                                                         level=level)
    resources = read_strings(body, "Resources")
    keep_source = read_boolean(body, "KeepSource", True)
    if not anonymize:
        modify_service.check_in_place(context, modification, keep_source)
    transcode = None if anonymize else _transcode(body)
    instances: list[str] = []
    seen: set[str] = set()
    with context.db.read() as conn:
        for public_id in resources:
            for instance_id in _instances_of(conn, public_id):
                if instance_id not in seen:
                    seen.add(instance_id)
                    instances.append(instance_id)
    if anonymize:  # drawn last: a refused request does not consume a sequence number
        patient_name = modify_service.generated_patient_name(context, body)
    return {"Bulk": True, "Anonymize": anonymize, "Request": body,
            "Level": level.value if level else None, "PatientName": patient_name,
            "KeepSource": keep_source, "Transcode": transcode, "Instances": instances,
            "Permissive": read_boolean(body, "Permissive", False), "Origin": origin}


def _instances_of(conn: Any, public_id: str) -> list[str]:
    for level in Level:
        row = repository.get_row(conn, level, public_id)
        if row is not None:
            return [r.public_id for r in repository.instances_below(conn, level, row.pk)]
    raise UnknownResource(f"Unknown resource: {public_id}")


def content(payload: dict[str, Any], outputs: dict[Level, set[str]] | None = None,
            failed: int = 0) -> dict[str, Any]:
    """``ResourceModificationJob::GetPublicContent`` with multiple outputs."""
    resources = []
    for level in _OUTPUT_ORDER:
        for public_id in sorted((outputs or {}).get(level, ())):
            resources.append({"ID": public_id, "Path": f"/{level.plural}/{public_id}",
                              "Type": level.value})
    answer: dict[str, Any] = {"Description": DESCRIPTION, "FailedInstancesCount": failed,
                              "InstancesCount": len(payload["Instances"]),
                              "IsAnonymization": bool(payload["Anonymize"]),
                              "Resources": resources}
    if payload.get("Transcode"):
        answer["Transcode"] = payload["Transcode"]
    return answer


def run_bulk(context: ServerContext, payload: dict[str, Any],
             progress: Callable[..., None] | None = None,
             cancel_check: Callable[[], bool] | None = None) -> dict[str, Any]:
    anonymize = bool(payload["Anonymize"])
    level = Level(payload["Level"]) if payload.get("Level") else None
    modification = modify_service.build_modification(
        context, payload["Request"], anonymize=anonymize, level=level,
        patient_name=payload.get("PatientName"))
    if anonymize:
        modification.level = Level.PATIENT
    origin = payload.get("Origin") or {"Origin": "RestApi"}
    instances: list[str] = payload["Instances"]
    outputs: dict[Level, set[str]] = {level: set() for level in _OUTPUT_ORDER}
    failed = 0
    in_place = modify_service.InPlaceTracker(context)
    for index, instance_id in enumerate(instances):
        if cancel_check is not None and cancel_check():
            raise JobInterrupted()
        data = instance_file_or_none(context, instance_id)
        if data is None:
            failed += 1
            if not payload.get("Permissive", False):
                raise UnknownResource(f"Cannot modify a removed instance: {instance_id}")
            continue
        ds = read_dataset(data)
        modification.apply(ds)
        result = ingest_instance(context, modify_service.encode(ds, payload.get("Transcode")),
                                 origin)
        in_place.stored(instance_id, result)
        ids = result.parsed.ids
        modify_service.record_modified_from(context, ids, instance_id, anonymize=anonymize)
        outputs[Level.INSTANCE].add(ids.instance)
        outputs[Level.SERIES].add(ids.series)
        outputs[Level.STUDY].add(ids.study)
        outputs[Level.PATIENT].add(ids.patient)
        if progress is not None:
            progress((index + 1) / len(instances))
    in_place.finish()
    if not payload.get("KeepSource", True):
        for instance_id in instances:
            if instance_id in outputs[Level.INSTANCE]:
                continue  # modified in place: the source is the result
            try:
                delete_service.delete_resource(context, Level.INSTANCE, instance_id)
            except PharosError:
                pass  # already gone
    return content(payload, outputs, failed)


def submit(context: ServerContext, payload: dict[str, Any], *, synchronous: bool,
           priority: int, user_data: Any = None, has_user_data: bool = False
           ) -> dict[str, Any]:
    """Run (or queue) the bulk job (with the request's ``UserData`` when *has_user_data*)."""
    return queue.submit_or_run(context, JOB_TYPE, payload, synchronous=synchronous,
                               content=content(payload), priority=priority,
                               user_data=user_data if has_user_data else queue.NO_USER_DATA)


def run_resource_modification(context: ServerContext, payload: dict[str, Any],
                               progress: Any, cancel_check: Callable[[], bool]
                               ) -> dict[str, Any]:
    """One ``ResourceModification`` kind for both flavours, as in Orthanc: bulk payloads
    here, single-resource payloads in :func:`app.services.modify.run_modification`."""
    if payload.get("Bulk"):
        return run_bulk(context, payload, progress, cancel_check)
    return modify_service.run_modification(context, payload, progress, cancel_check)
