"""DICOM modalities as remotes: C-ECHO and C-STORE (C-FIND, C-MOVE and C-GET as an SCU:
app/services/query_retrieve.py), with the DIMSE parameters every SCU operation shares
(``LocalAet``, ``Timeout``).

A store is a job kind (``DicomModalityStore``) so that it can run synchronously or as a
job. A job's payload carries the remote's parameters, so a job submitted before a modality
is changed or removed still runs against what was asked.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from pydicom import dcmread

from app.config import Modality
from app.context import ServerContext
from app.dicom.levels import Level
from app.dicom.limits import check_deflated_dataset
from app.errors import (
    BadFileFormat,
    NetworkProtocol,
)
from app.jobs import queue
from app.jobs.kinds import CancelCheck, JobInterrupted, ProgressCallback
from app.protocols import dimse_scu
from app.services.outgoing import (
    DESCRIPTION,
    instance_files,
    instances_of,
    log_exports,
    parse_store_body,
    priority,
    resolve_resources,
    synchronous,
)
from app.services.remotes import get_modality, modality_json

STORE_JOB = "DicomModalityStore"


# --- parameters common to the DIMSE operations -----------------------------------------

def local_aet(context: ServerContext, modality: Modality, options: dict[str, Any]) -> str:
    value = options.get("LocalAet") or modality.local_aet or context.settings.dicom_aet
    return str(value)


def scu_timeout(context: ServerContext, modality: Modality, options: dict[str, Any]) -> int:
    value = options.get("Timeout")
    if value is not None:
        try:
            return max(0, int(value))
        except (TypeError, ValueError) as error:
            raise BadFileFormat("Timeout must be an integer") from error
    return modality.timeout or context.settings.dicom_scu_timeout


def echo(context: ServerContext, name: str, options: dict[str, Any]) -> None:
    """``POST /modalities/{name}/echo``: ``{"Timeout", "CheckFind"}`` (both optional)."""
    _echo(context, get_modality(context, name), options)


def echo_tool(context: ServerContext, body: Any) -> None:
    """``POST /tools/dicom-echo``: C-ECHO a modality described in the body (the short
    or long form of ``DicomModalities``, plus ``Timeout`` and ``CheckFind``)."""
    try:
        modality = Modality.parse("dicom-echo", body)
    except (ValueError, TypeError) as error:
        raise BadFileFormat(f"Bad description of the remote modality: {error}") from error
    _echo(context, modality, body if isinstance(body, dict) else {})


def _echo(context: ServerContext, modality: Modality, options: dict[str, Any]) -> None:
    """C-ECHO; then, with ``CheckFind`` (default: ``DicomEchoChecksFind``), a C-FIND
    for a random study, which fails unless the remote knows this AET and serves C-FIND
    (Orthanc's ``ExecuteEcho``)."""
    check_find = options.get("CheckFind", context.settings.dicom_echo_checks_find)
    if not isinstance(check_find, bool):
        raise BadFileFormat("CheckFind must be a Boolean")
    aet, timeout = local_aet(context, modality, options), scu_timeout(context, modality, options)
    dimse_scu.echo(modality, local_aet=aet, timeout=timeout)
    if check_find:
        from pydicom.uid import generate_uid

        from app.services import query_retrieve, runtime
        identifier = query_retrieve.encode_identifier(
            Level.STUDY, {0x0020000D: generate_uid()}, runtime.current(context).default_encoding)
        dimse_scu.find(modality, Level.STUDY.value, identifier, local_aet=aet, timeout=timeout)


# --- C-STORE to a modality ---------------------------------------------------------------

def prepare_store(context: ServerContext, name: str, body: Any
                  ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(payload, initial content, options) of a store job to modality *name*."""
    modality = get_modality(context, name)
    ids, options = parse_store_body(body)
    modality = _redirected(modality, options)
    resources = resolve_resources(context, ids)
    instances = instances_of(context, resources)
    log_exports(context, resources, name)
    aet = local_aet(context, modality, options)
    payload = {
        "Modality": name, "Remote": modality_json(modality) | {"LocalAet": modality.local_aet},
        "Instances": instances, "LocalAet": aet,
        "ParentResources": [public_id for _, public_id in resources],
        "Timeout": scu_timeout(context, modality, options),
        "MoveOriginatorAet": options.get("MoveOriginatorAet"),
        "MoveOriginatorID": options.get("MoveOriginatorID"),
        "Permissive": bool(options.get("Permissive", False)),
        "StorageCommitment": bool(options.get("StorageCommitment", False)),
    }
    content = {"Description": DESCRIPTION, "FailedInstancesCount": 0,
               "InstancesCount": len(instances), "LocalAet": aet,
               "ParentResources": [public_id for _, public_id in resources],
               "RemoteAet": modality.aet}
    if payload["StorageCommitment"]:
        from app.services import storage_commitment
        payload["StorageCommitmentTransactionUID"] = storage_commitment.new_transaction_uid()
        content["StorageCommitmentTransactionUID"] = payload["StorageCommitmentTransactionUID"]
    return payload, content, options


def submit_move_store(context: ServerContext, destination: Modality, instances: list[str], *,
                      originator_aet: str, originator_id: int) -> str:
    """The store job of a C-MOVE served asynchronously (``SynchronousCMove`` false, as
    Orthanc's ``AsynchronousMove``): described "C-MOVE", not permissive, from the
    destination's ``LocalAet`` when it has one (Orthanc 1.13.0), else DicomAet; answer
    the job's ID."""
    aet = destination.local_aet or context.settings.dicom_aet
    payload = {
        "Modality": destination.name, "Description": "C-MOVE",
        "Remote": modality_json(destination) | {"LocalAet": destination.local_aet},
        "Instances": instances, "LocalAet": aet, "ParentResources": [],
        "Timeout": scu_timeout(context, destination, {}),
        "MoveOriginatorAet": originator_aet, "MoveOriginatorID": originator_id,
        "Permissive": False, "StorageCommitment": False,
    }
    content = {"Description": "C-MOVE", "FailedInstancesCount": 0,
               "InstancesCount": len(instances), "LocalAet": aet, "ParentResources": [],
               "RemoteAet": destination.aet}
    return queue.submit(context, STORE_JOB, payload, content=content)


def _redirected(modality: Modality, options: dict[str, Any]) -> Modality:
    """Orthanc 1.11.3's ``CalledAet``, ``Host`` and ``Port`` of a store request: the
    modality's parameters, overridden for this operation only."""
    changes: dict[str, Any] = {}
    for key, attribute, kind in (("CalledAet", "aet", str), ("Host", "host", str),
                                 ("Port", "port", int)):
        value = options.get(key)
        if value is None:
            continue
        if not isinstance(value, kind) or isinstance(value, bool) or (
                isinstance(value, int) and not 0 < value < 65536):
            raise BadFileFormat(f"{key} must be {'a port number' if kind is int else 'a string'}")
        changes[attribute] = value
    return replace(modality, **changes) if changes else modality


def remote_of(payload: dict[str, Any]) -> Modality:
    """The remote modality a job's payload was submitted for."""
    remote = dict(payload["Remote"])
    if not remote.get("LocalAet"):
        remote.pop("LocalAet", None)
    return Modality.parse(payload.get("Modality", "remote"), remote)


def run_store(context: ServerContext, payload: dict[str, Any], progress: ProgressCallback,
              cancel_check: CancelCheck) -> dict[str, Any]:
    """Send every instance of the job in one association."""
    modality = remote_of(payload)
    instances: list[str] = payload["Instances"]
    content = {"Description": payload.get("Description", DESCRIPTION),
               "FailedInstancesCount": 0,
               "InstancesCount": len(instances), "LocalAet": payload["LocalAet"],
               "ParentResources": payload.get("ParentResources", []),
               "RemoteAet": modality.aet}
    missing: list[str] = []

    def files() -> Iterator[bytes]:
        for index, (_, data) in enumerate(instance_files(context, instances, missing)):
            if cancel_check():
                raise JobInterrupted()
            progress(index / max(1, len(instances)))
            yield data

    if instances:
        report = dimse_scu.store(modality, files(), local_aet=payload["LocalAet"],
                              timeout=payload["Timeout"],
                              move_originator_aet=payload.get("MoveOriginatorAet"),
                              move_originator_id=payload.get("MoveOriginatorID"))
        failed = _count(report, "failed") + len(missing)
    else:
        failed = 0
    content["FailedInstancesCount"] = failed
    if failed and not payload.get("Permissive"):
        progress(1.0, content)
        raise NetworkProtocol(f"{failed} instance(s) could not be sent to {modality.aet}")
    transaction = payload.get("StorageCommitmentTransactionUID")
    if payload.get("StorageCommitment") and transaction:
        _commit(context, modality, payload, [i for i in instances if i not in missing])
        content["StorageCommitmentTransactionUID"] = transaction
    return content


def _commit(context: ServerContext, modality: Modality, payload: dict[str, Any],
            sent: list[str]) -> None:
    """Orthanc's DicomModalityStoreJob with StorageCommitment: once every instance is
    sent, ask the modality to commit to them (the report completes later)."""
    from app.services import storage_commitment
    pairs = storage_commitment.instance_pairs(context, sent)
    storage_commitment.ask(context, modality, payload["StorageCommitmentTransactionUID"],
                           pairs, local_aet=payload["LocalAet"], timeout=payload["Timeout"])


def _count(report: Any, name: str) -> int:
    value = getattr(report, name, 0)
    if isinstance(value, (list, tuple, set)):
        return len(value)
    return int(value or 0)


def store(context: ServerContext, name: str, body: Any) -> dict[str, Any]:
    """``POST /modalities/{name}/store``: sync (the job's content) or ``{"ID", "Path"}``."""
    payload, content, options = prepare_store(context, name, body)
    return queue.submit_or_run(context, STORE_JOB, payload, synchronous=synchronous(options),
                               content=content, priority=priority(options),
                               user_data=queue.user_data_of(options))


def store_straight(context: ServerContext, name: str, data: bytes) -> dict[str, Any]:
    """``POST /modalities/{name}/store-straight``: send the body, a DICOM file, as is."""
    modality = get_modality(context, name)
    check_deflated_dataset(data)
    try:
        ds = dcmread(io.BytesIO(data), stop_before_pixels=True, force=True)
        sop_class, sop_instance = str(ds.SOPClassUID), str(ds.SOPInstanceUID)
    except Exception as error:  # noqa: BLE001 - any unreadable body
        raise BadFileFormat(f"The body is not a DICOM file: {error}") from error
    report = dimse_scu.store(modality, [data], local_aet=local_aet(context, modality, {}),
                          timeout=scu_timeout(context, modality, {}))
    if _count(report, "failed"):
        raise NetworkProtocol(f"{modality.aet} refused the instance {sop_instance}")
    return {"SOPClassUID": sop_class, "SOPInstanceUID": sop_instance}
