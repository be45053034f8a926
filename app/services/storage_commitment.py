"""Storage commitment (Storage Commitment Push Model, PS3.4 Annex J), as Orthanc 1.6+.

As SCU: ``POST /modalities/{name}/storage-commitment`` (or ``"StorageCommitment": true``
on a store) records a Pending report and sends an N-ACTION asking the modality to commit
to the instances; the modality answers later with an N-EVENT-REPORT to this server's
SCP, which completes the report (``GET /storage-commitment/{transaction}``: Success,
Failure, or Pending until then). ``POST /storage-commitment/{transaction}/remove``
deletes the committed instances here.

As SCP: an N-ACTION from a modality allowed ``AllowNAction`` is acknowledged at once; a
``StorageCommitmentScp`` job checks each instance (0x0112 no such instance, 0x0119 SOP
class conflict) and sends the N-EVENT-REPORT to the modality of the calling AET on a new
association, from the called AET, as Orthanc's ``StorageCommitmentScpJob``.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson
from pydicom.dataset import Dataset

from app.config import Modality
from app.context import ServerContext
from app.dicom.levels import Level
from app.errors import BadFileFormat, BadRequest, InexistentItem, UnknownResource
from app.index import network_repository as network_index
from app.index import repository
from app.jobs import queue
from app.jobs.kinds import CancelCheck, JobInterrupted, ProgressCallback
from app.protocols import dimse_scu
from app.protocols.dimse_common import same_aet
from app.services import delete, modalities, outgoing, remotes

SCP_JOB = "StorageCommitmentScp"
REPORTS_SIZE = 100  # Orthanc's StorageCommitmentReportsSize default
PROCESSING_FAILURE = 0x0110
NO_SUCH_OBJECT_INSTANCE = 0x0112
CLASS_INSTANCE_CONFLICT = 0x0119
_REASONS = {
    0x0110: "A general failure in processing the operation was encountered",
    0x0112: "One or more of the elements in the Referenced SOP Instance Sequence was not "
            "available",
    0x0213: "The SCP does not currently have enough resources to store the requested SOP "
            "Instance(s)",
    0x0122: "Storage Commitment has been requested for a SOP Instance with a SOP Class that "
            "is not supported by the SCP",
    0x0119: "The SOP Class of an element in the Referenced SOP Instance Sequence did not "
            "correspond to the SOP class registered for this SOP Instance at the SCP",
    0x0131: "The Transaction UID of the Storage Commitment Request is already in use",
}


def new_transaction_uid() -> str:
    """A UUID-derived UID (PS3.5 B.2), as Orthanc's ``2.25.`` transaction UIDs."""
    return f"2.25.{uuid.uuid4().int}"


# --- SCU -------------------------------------------------------------------------------

def _pairs_of_body(context: ServerContext, body: dict[str, Any]) -> list[tuple[str, str]]:
    """``Resources`` (Orthanc IDs, any level) and ``DicomInstances`` (``[class, instance]``
    or ``{"SOPClassUID", "SOPInstanceUID"}``) as (SOPClassUID, SOPInstanceUID) pairs."""
    if "Resources" not in body and "DicomInstances" not in body:
        raise BadFileFormat('Must provide a JSON object with "Resources" or "DicomInstances"')
    pairs: list[tuple[str, str]] = []
    resources = body.get("Resources", [])
    if not isinstance(resources, list) or not all(isinstance(r, str) for r in resources):
        raise BadFileFormat("Resources must be a list of Orthanc identifiers")
    if resources:
        instances = outgoing.instances_of(context, outgoing.resolve_resources(context, resources))
        pairs += instance_pairs(context, instances)
    dicom = body.get("DicomInstances", [])
    if not isinstance(dicom, list):
        raise BadFileFormat("DicomInstances must be a list")
    for item in dicom:
        if isinstance(item, list) and len(item) == 2 and all(isinstance(v, str) for v in item):
            pairs.append((item[0], item[1]))
        elif isinstance(item, dict) and isinstance(item.get("SOPClassUID"), str) \
                and isinstance(item.get("SOPInstanceUID"), str):
            pairs.append((item["SOPClassUID"], item["SOPInstanceUID"]))
        else:
            raise BadFileFormat("Each of DicomInstances must be [SOPClassUID, SOPInstanceUID] "
                                "or an object with SOPClassUID and SOPInstanceUID")
    return pairs


def instance_pairs(context: ServerContext, instance_ids: list[str]) -> list[tuple[str, str]]:
    pairs = []
    with context.db.read() as conn:
        for public_id in instance_ids:
            row = repository.get_row(conn, Level.INSTANCE, public_id)
            if row is not None:
                pairs.append((row.sop_class_uid or "", row.sop_uid))
    return pairs


def request(context: ServerContext, name: str, body: Any) -> dict[str, str]:
    """``POST /modalities/{name}/storage-commitment``."""
    if not isinstance(body, dict):
        raise BadFileFormat("Must provide a JSON object")
    pairs = _pairs_of_body(context, body)
    modality = remotes.get_modality(context, name)
    transaction = new_transaction_uid()
    ask(context, modality, transaction, pairs, local_aet=context.settings.dicom_aet,
        timeout=modalities.scu_timeout(context, modality, body))
    return {"ID": transaction, "Path": f"/storage-commitment/{transaction}"}


def ask(context: ServerContext, modality: Modality, transaction: str,
        pairs: list[tuple[str, str]], *, local_aet: str, timeout: float) -> None:
    """Record the Pending report first (the answer may come before N-ACTION returns),
    then send the N-ACTION."""
    with context.db.write() as conn:
        network_index.insert_report(conn, transaction, modality.aet, time.time())
        network_index.forget_old_reports(conn, REPORTS_SIZE)
    dimse_scu.request_storage_commitment(modality, local_aet=local_aet, timeout=timeout,
                                             transaction_uid=transaction, instances=pairs)


def _report_row(context: ServerContext, transaction: str) -> Any:
    with context.db.read() as conn:
        row = network_index.get_report(conn, transaction)
    if row is None:
        raise InexistentItem(f"No storage commitment transaction with UID: {transaction}")
    return row


def _status(row: Any) -> str:
    if not row.complete:
        return "Pending"
    return "Failure" if orjson.loads(row.failures) else "Success"


def report_json(context: ServerContext, transaction: str) -> dict[str, Any]:
    """``GET /storage-commitment/{transaction}`` (Orthanc's ``Report::Format``)."""
    row = _report_row(context, transaction)
    answer: dict[str, Any] = {"RemoteAET": row.remote_aet, "Status": _status(row)}
    if row.complete:
        answer["Success"] = [{"SOPClassUID": c, "SOPInstanceUID": i}
                             for c, i in orjson.loads(row.success)]
        answer["Failures"] = [{"Description": _REASONS.get(r, "Unknown failure reason"),
                               "FailureReason": r, "SOPClassUID": c, "SOPInstanceUID": i}
                              for c, i, r in orjson.loads(row.failures)]
    return dict(sorted(answer.items()))  # JsonCpp's order, as Orthanc answers


def remove(context: ServerContext, transaction: str) -> None:
    """``POST /storage-commitment/{transaction}/remove``: delete here the instances the
    modality committed to; only after a successful transaction."""
    row = _report_row(context, transaction)
    if _status(row) != "Success":
        raise BadRequest("Cannot remove the instances of a storage commitment transaction "
                         "that has not succeeded")
    for _, sop_instance in orjson.loads(row.success):
        with context.db.read() as conn:
            found = network_index.instances_with_sop_uid(conn, sop_instance)
        for instance in found:
            try:
                delete.delete_resource(context, Level.INSTANCE, instance.public_id)
            except UnknownResource:
                continue  # deleted meanwhile


# --- SCP -------------------------------------------------------------------------------

def _sequence_pairs(dataset: Dataset, keyword: str) -> list[tuple[str, str, int | None]]:
    pairs = []
    for item in dataset.get(keyword) or []:
        reason = item.get("FailureReason")
        pairs.append((str(item.get("ReferencedSOPClassUID", "") or ""),
                      str(item.get("ReferencedSOPInstanceUID", "") or ""),
                      int(reason) if reason is not None else None))
    return pairs


def handle_request(context: ServerContext, calling_aet: str, called_aet: str,
                   request: Dataset) -> str:
    """An incoming N-ACTION: queue the job that checks and answers; its ID."""
    transaction = str(request.get("TransactionUID", "") or "")
    if not transaction:
        raise BadRequest("Storage commitment request without TransactionUID")
    if _modality_of(context, calling_aet) is None:
        raise InexistentItem(f"Unknown remote modality for storage commitment SCP: "
                             f"{calling_aet}")
    pairs = [[c, i] for c, i, _ in _sequence_pairs(request, "ReferencedSOPSequence")]
    payload = {"TransactionUid": transaction, "RemoteAet": calling_aet,
               "CalledAet": called_aet, "Instances": pairs}
    return queue.submit(context, SCP_JOB, payload, content=_scp_content(payload))


def _modality_of(context: ServerContext, aet: str) -> Modality | None:
    for modality in remotes.modalities(context).values():
        if same_aet(modality.aet, aet):
            return modality
    return None


def _scp_content(payload: dict[str, Any]) -> dict[str, Any]:
    return {"CalledAet": payload["CalledAet"], "Description": "",
            "RemoteAet": payload["RemoteAet"], "TransactionUid": payload["TransactionUid"]}


def check_instance(context: ServerContext, sop_class: str, sop_instance: str) -> int:
    """0 when stored with this SOP class, else the PS3.4 J.3.3 failure reason."""
    with context.db.read() as conn:
        found = network_index.instances_with_sop_uid(conn, sop_instance)
    if not found:
        return NO_SUCH_OBJECT_INSTANCE
    if any((row.sop_class_uid or "") == sop_class for row in found):
        return 0
    return CLASS_INSTANCE_CONFLICT


def run_scp(context: ServerContext, payload: dict[str, Any], progress: ProgressCallback,
            cancel_check: CancelCheck) -> dict[str, Any]:
    """Check each instance, then send the N-EVENT-REPORT to the requesting modality."""
    modality = _modality_of(context, payload["RemoteAet"])
    if modality is None:
        raise InexistentItem(f"Unknown remote modality for storage commitment SCP: "
                             f"{payload['RemoteAet']}")
    success: list[tuple[str, str]] = []
    failures: list[tuple[str, str, int]] = []
    instances = payload["Instances"]
    for index, (sop_class, sop_instance) in enumerate(instances):
        if cancel_check():
            raise JobInterrupted()
        progress(index / max(1, len(instances) + 1))
        reason = check_instance(context, sop_class, sop_instance)
        if reason:
            failures.append((sop_class, sop_instance, reason))
        else:
            success.append((sop_class, sop_instance))
    dimse_scu.report_storage_commitment(
        modality, local_aet=payload["CalledAet"] or context.settings.dicom_aet,
        timeout=modalities.scu_timeout(context, modality, {}),
        transaction_uid=payload["TransactionUid"], success=success, failures=failures)
    return _scp_content(payload)


def handle_report(context: ServerContext, report: Dataset) -> bool:
    """An incoming N-EVENT-REPORT: complete the pending report of its transaction;
    False when the transaction is unknown (or already complete)."""
    transaction = str(report.get("TransactionUID", "") or "")
    success = [[c, i] for c, i, _ in _sequence_pairs(report, "ReferencedSOPSequence")]
    failures = [[c, i, r if r is not None else PROCESSING_FAILURE]
                for c, i, r in _sequence_pairs(report, "FailedSOPSequence")]
    with context.db.write() as conn:
        return network_index.complete_report(conn, transaction, orjson.dumps(success),
                                             orjson.dumps(failures))
