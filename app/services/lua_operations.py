"""The job that ``SendToModality``, ``SendToPeer``, ``ModifyInstance``, ``Delete`` and
``CallSystem`` build (Orthanc's ``LuaJobManager`` and its ``SequenceOfOperationsJob``).

Those functions do not act at once: during a callback they queue operations (Lua table
``_job``, see toolbox.lua); when the callback returns, the operations become one job of
type ``SequenceOfOperations`` (description ``Lua``). Each operation works on its own
instance, or, when the instance given is ``""`` (what ``ModifyInstance`` returns), on
the outputs of the operation before it: ``Delete(SendToModality(ModifyInstance(id, ...),
'pacs'))`` modifies, sends the modified copy, then deletes that copy.

As in Orthanc, an operation that fails on one instance logs the error and the job goes
on: ``store-scu``, ``store-peer`` pass their input on even when sending failed,
``modify`` and ``call-system`` only when they succeeded, ``delete`` passes nothing.
Unlike Orthanc, which appends the operations of successive callbacks to one running job
(until it has 1000 operations or idles 5 s), Pharos submits one job per callback: jobs
are durable rows here, and each one is complete when submitted.
"""

from __future__ import annotations

import logging
import os
import subprocess
import tempfile
from typing import TYPE_CHECKING, Any

from app.dicom.levels import Level
from app.errors import PharosError, UnknownResource
from app.jobs import queue
from app.jobs.kinds import CancelCheck, JobInterrupted, ProgressCallback
from app.protocols import dimse_scu, orthanc_peers
from app.services import modalities, modify, remotes
from app.services.delete import delete_resource
from app.services.ingest import ingest_instance
from app.services.instances import instance_file_or_none

if TYPE_CHECKING:
    from app.context import ServerContext

log = logging.getLogger(__name__)

JOB_TYPE = "SequenceOfOperations"
DESCRIPTION = "Lua"
OPERATIONS = ("delete", "store-scu", "store-peer", "modify", "call-system")


def submit_operations(context: ServerContext, operations: list[dict[str, Any]]) -> str | None:
    """Check the operations a callback queued and submit them as one job (None if empty).

    Raises a PharosError for an unknown operation, modality or peer (the callback's
    operations are then dropped, and the error logged by the event thread)."""
    if not operations:
        return None
    checked = []
    for operation in operations:
        if not isinstance(operation, dict) or operation.get("Operation") not in OPERATIONS \
                or "Resource" not in operation:
            raise PharosError(f"Bad operation queued by a script: {operation!r}")
        kind = operation["Operation"]
        if kind == "store-scu":
            remotes.get_modality(context, str(operation.get("Modality")))
        elif kind == "store-peer":
            remotes.get_peer(context, str(operation.get("Peer")))
        elif kind == "call-system" and not isinstance(operation.get("Arguments", []), list):
            raise PharosError("CallSystem: the arguments must be a list")
        checked.append(operation)
    content = {"CountOperations": len(checked), "Description": DESCRIPTION}
    return queue.submit(context, JOB_TYPE, {"Operations": checked}, content=content)


def run_operations(context: ServerContext, payload: dict[str, Any], progress: ProgressCallback,
                   cancel_check: CancelCheck) -> dict[str, Any]:
    operations: list[dict[str, Any]] = payload["Operations"]
    previous: list[str] = []
    for index, operation in enumerate(operations):
        if cancel_check():
            raise JobInterrupted()
        resource = str(operation.get("Resource") or "")
        if resource:
            inputs = [resource]
        else:
            inputs = previous if index > 0 else []
        outputs: list[str] = []
        for instance_id in inputs:
            outputs.extend(_apply(context, operation, instance_id))
        previous = outputs
        progress((index + 1) / len(operations))
    return {"CountOperations": len(operations), "Description": DESCRIPTION}


def _apply(context: ServerContext, operation: dict[str, Any], instance_id: str) -> list[str]:
    """Run one operation on one instance; answer its outputs."""
    kind = operation["Operation"]
    try:
        if kind == "delete":
            _delete(context, instance_id)
            return []
        if kind == "store-scu":
            _store_scu(context, operation, instance_id)
            return [instance_id]
        if kind == "store-peer":
            _store_peer(context, operation, instance_id)
            return [instance_id]
        if kind == "modify":
            return [_modify(context, operation, instance_id)]
        _call_system(context, operation, instance_id)
        return [instance_id]
    except (PharosError, OSError, subprocess.SubprocessError) as error:
        log.error("Lua: %s of instance %s failed: %s", kind, instance_id, error)
        return [instance_id] if kind in ("store-scu", "store-peer") else []


def _file(context: ServerContext, instance_id: str) -> bytes:
    data = instance_file_or_none(context, instance_id)
    if data is None:
        raise UnknownResource(f"Unknown instance: {instance_id}")
    return data


def _delete(context: ServerContext, instance_id: str) -> None:
    log.info("Lua: Deleting instance: %s", instance_id)
    delete_resource(context, Level.INSTANCE, instance_id)


def _store_scu(context: ServerContext, operation: dict[str, Any], instance_id: str) -> None:
    modality = remotes.get_modality(context, str(operation["Modality"]))
    local_aet = str(operation.get("LocalAet") or modalities.local_aet(context, modality, {}))
    log.info('Lua: Sending instance %s to modality "%s"', instance_id, modality.aet)
    report = dimse_scu.store(modality, [_file(context, instance_id)], local_aet=local_aet,
                       timeout=modalities.scu_timeout(context, modality, {}))
    failed = getattr(report, "failed", 0)
    if failed if isinstance(failed, int) else len(failed):
        raise PharosError(f"The modality {modality.aet} refused the instance")


def _store_peer(context: ServerContext, operation: dict[str, Any], instance_id: str) -> None:
    peer = remotes.get_peer(context, str(operation["Peer"]))
    log.info('Lua: Sending instance %s to Orthanc peer "%s"', instance_id, peer.url)
    with orthanc_peers.open_client(peer, context.settings.http_timeout) as client:
        orthanc_peers.post_instance(client, _file(context, instance_id))


def _modify(context: ServerContext, operation: dict[str, Any], instance_id: str) -> str:
    """Store a modified copy (origin Lua, ``ModifiedFrom`` the source); answer its ID."""
    request: dict[str, Any] = {"Force": True}
    for key in ("Replace", "Remove", "RemovePrivateTags"):
        value = operation.get(key)
        if value not in (None, [], {}):
            request[key] = value
    log.info("Lua: Modifying instance %s", instance_id)
    data = modify.modify_instance(context, instance_id, request, anonymize=False)
    result = ingest_instance(context, data, {"Origin": "Lua", "ModifiedFrom": instance_id})
    modify.record_modified_from(context, result.parsed.ids, instance_id, anonymize=False)
    return result.parsed.ids.instance


def _call_system(context: ServerContext, operation: dict[str, Any], instance_id: str) -> None:
    """Run the command with its arguments and the path of a copy of the instance's file
    (removed afterwards), as Orthanc's SystemCallOperation."""
    command = str(operation["Command"])
    arguments = [str(a) for a in operation.get("Arguments") or []]
    handle, path = tempfile.mkstemp(suffix=".dcm", prefix="pharos-lua-")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(_file(context, instance_id))
        log.info('Lua: System call: "%s"', " ".join([command, *arguments, path]))
        completed = subprocess.run([command, *arguments, path], check=False)
        if completed.returncode != 0:
            raise PharosError(f"The system command {command!r} exited with status "
                              f"{completed.returncode}")
    finally:
        os.unlink(path)
