"""One plain function per DIMSE event, bound with its dependencies (pynetdicom's
``(evt.EVT_C_STORE, handle_store, [deps])``). Each one translates the protocol into a
call of a service and the answer back into statuses.

Handlers never raise: an exception becomes a failure status and a log line. The one
exception is a C-MOVE that cannot start (a bad identifier): pynetdicom offers no way
to answer a failure before the move destination is yielded other than an exception,
which it turns into a Cxxx "unable to process" failure (PS3.4 C.4.2.1.5).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import Any
from weakref import WeakKeyDictionary

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import evt
from pynetdicom.sop_class import (
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    PatientStudyOnlyQueryRetrieveInformationModelFind,
    PatientStudyOnlyQueryRetrieveInformationModelGet,
    PatientStudyOnlyQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

from app.config import Modality
from app.context import ServerContext
from app.dicom.limits import check_pixel_decode, current, inflated_size
from app.dimse import negotiation
from app.dimse.security import NOT_AUTHORIZED, Peer, Policy, Service
from app.errors import BadRequest, PharosError
from app.protocols.dimse_common import (
    ae_title,
    enable_tcp_nodelay,
    part10_bytes,
    received_dataset_bytes,
    same_aet,
)
from app.protocols.dimse_scu import storage_contexts
from app.scripting import events as scripting_events
from app.services import modalities, remotes, runtime, storage_commitment
from app.services.dimse_query import FindAnswers
from app.services.ingest import ingest_instance
from app.services.retrieve import RetrieveItem, instances_to_retrieve, read_instances

log = logging.getLogger(__name__)

SUCCESS = 0x0000
PENDING = 0xFF00
CANCEL = 0xFE00
PROCESSING_FAILURE = 0x0110  # PS3.7 C.4.? general "Processing failure"
CANNOT_UNDERSTAND = 0xC000  # PS3.4 B.2.3 / C.4.1.1.4 "Unable to process" range
IDENTIFIER_MISMATCH = 0xA900  # PS3.4 C.4.1.1.4: "Identifier does not match SOP Class"
OUT_OF_RESOURCES = 0xA700  # PS3.4 C.4.1.1.4 / B.2.3: "Refused: Out of resources"

SERVICE_OF_SOP_CLASS: dict[str, Service] = {
    Verification: Service.ECHO,
    PatientRootQueryRetrieveInformationModelFind: Service.FIND,
    StudyRootQueryRetrieveInformationModelFind: Service.FIND,
    PatientStudyOnlyQueryRetrieveInformationModelFind: Service.FIND,
    PatientRootQueryRetrieveInformationModelMove: Service.MOVE,
    StudyRootQueryRetrieveInformationModelMove: Service.MOVE,
    PatientStudyOnlyQueryRetrieveInformationModelMove: Service.MOVE,
    PatientRootQueryRetrieveInformationModelGet: Service.GET,
    StudyRootQueryRetrieveInformationModelGet: Service.GET,
    PatientStudyOnlyQueryRetrieveInformationModelGet: Service.GET,
}

# The calling side of each live association, as decided at negotiation.
Peers = WeakKeyDictionary[Any, Peer]


def status(code: int, comment: str | None = None) -> Dataset:
    """A status dataset; ErrorComment is LO, at most 64 characters (PS3.7 C.4)."""
    answer = Dataset()
    answer.Status = code
    if comment:
        answer.ErrorComment = comment.replace("\\", "/")[:64]
    return answer


def _peer(event: evt.Event, peers: Peers) -> Peer:
    peer = peers.get(event.assoc)
    if peer is not None:
        return peer
    requestor = event.assoc.requestor
    return Peer(ae_title(requestor.ae_title), ae_title(event.assoc.acceptor.ae_title),
                str(requestor.address), None)


# --- association ----------------------------------------------------------------------------

def handle_requested(event: evt.Event, context: ServerContext, policy: Policy,
                     peers: Peers) -> None:
    """EVT_REQUESTED: reject (PS3.8 9.3.4), or support exactly the presentation contexts
    this caller may use (:mod:`app.dimse.negotiation`)."""
    assoc = event.assoc
    try:
        request = assoc.requestor.primitive
        calling = ae_title(request.calling_ae_title)
        called = ae_title(request.called_ae_title)
        ip = str(assoc.requestor.address)
        reason = policy.rejection(calling, called, ip)
        if reason is not None:
            _reject(assoc, 0x01, 0x01, reason)
            return
        peer = Peer(calling, called, ip, policy.lookup(calling, ip))
        peers[assoc] = peer
        allowed = {service for service in Service if policy.allows(peer, service)}
        acceptance = runtime.presentation_acceptance(context, calling, ip)
        proposed = [cx.abstract_syntax for cx in
                    request.presentation_context_definition_list or []]
        assoc.acceptor.supported_contexts = negotiation.supported_contexts(
            proposed, SERVICE_OF_SOP_CLASS, allowed,
            negotiation.network_syntaxes(acceptance.transfer_syntaxes),
            acceptance.unknown_sop_class, acceptance.storage_classes,
            acceptance.rejected_classes)
        log.info("Association from %s (%s) to %s: %s", calling, ip, called,
                 ", ".join(sorted(allowed)) or "no service")
    except Exception:  # noqa: BLE001 - fail closed, never raise
        log.exception("Cannot decide on an association request; rejecting it")
        try:
            _reject(assoc, 0x02, 0x02, 0x01)  # transient, no reason given
        except Exception:  # noqa: BLE001
            assoc.abort()


def _reject(assoc: Any, result: int, source: int, reason: int) -> None:
    """A-ASSOCIATE-RJ, then stop the association the way pynetdicom's own rejections do
    (``kill`` lets the DUL send the queued PDU before the socket closes)."""
    assoc.acse.send_reject(result, source, reason)
    evt.trigger(assoc, evt.EVT_REJECTED, {})
    assoc.kill()


def handle_echo(event: evt.Event, policy: Policy, peers: Peers) -> Dataset | int:
    """C-ECHO (PS3.4 A.4)."""
    try:
        if not policy.allows(_peer(event, peers), Service.ECHO):
            return status(NOT_AUTHORIZED, "C-ECHO not allowed for this AET")
        return SUCCESS
    except Exception:  # noqa: BLE001
        log.exception("C-ECHO handler failed")
        return PROCESSING_FAILURE


def bounded_identifier(event: evt.Event) -> Dataset:
    """The request's Identifier, refused (DecompressionLimit) when it comes in a deflated
    context and inflates beyond MaxInflatedSize: pynetdicom would inflate all of it."""
    if UID(str(event.context.transfer_syntax)).is_deflated:
        raw = event.request.Identifier
        if raw is not None:
            inflated_size(raw.getvalue(), current().inflated)
    return event.identifier


# --- C-STORE --------------------------------------------------------------------------------

def handle_store(event: evt.Event, context: ServerContext, policy: Policy,
                 peers: Peers) -> Dataset | int:
    """C-STORE (PS3.4 B.2.3): the data set is stored byte for byte as received, behind a
    Pharos file meta header, through the one ingest path."""
    peer = _peer(event, peers)
    request = event.request
    sop_instance = str(request.AffectedSOPInstanceUID or "")
    try:
        if not policy.allows(peer, Service.STORE):
            log.warning("C-STORE from %s refused: not allowed", peer.calling_aet)
            return status(NOT_AUTHORIZED, "C-STORE not allowed for this AET")
        data = part10_bytes(
            received_dataset_bytes(request),
            sop_class_uid=str(request.AffectedSOPClassUID or ""),
            sop_instance_uid=sop_instance,
            transfer_syntax_uid=str(event.context.transfer_syntax))
        result = ingest_instance(context, data, {
            "Origin": "DicomProtocol", "RemoteAET": peer.calling_aet,
            "RemoteIP": peer.ip, "CalledAET": peer.called_aet})
        # A ReceivedCStoreInstanceFilter (Lua/Python) may refuse with its own status.
        return status(result.dimse_status, "Refused by a filter") if result.dimse_status \
            else SUCCESS
    except PharosError as error:
        log.warning("C-STORE of %s from %s refused: %s", sop_instance, peer.calling_aet, error)
        return status(error.dimse_status, str(error))
    except Exception as error:  # noqa: BLE001 - handlers never raise
        log.exception("C-STORE of %s from %s failed", sop_instance, peer.calling_aet)
        return status(CANNOT_UNDERSTAND, f"Cannot store: {error}")


# --- Storage commitment (PS3.4 J) ----------------------------------------------------------

def handle_n_action(event: evt.Event, context: ServerContext, policy: Policy,
                    peers: Peers) -> tuple[Dataset | int, Dataset | None]:
    """N-ACTION "Request Storage Commitment": acknowledged at once, answered later by
    an N-EVENT-REPORT (a StorageCommitmentScp job)."""
    peer = _peer(event, peers)
    try:
        if not policy.allows(peer, Service.N_ACTION):
            return status(NOT_AUTHORIZED, "N-ACTION not allowed for this AET"), None
        if int(event.request.ActionTypeID or 0) != 1:
            return status(0x0123, "Only action type 1 (storage commitment) is served"), None
        job = storage_commitment.handle_request(context, peer.calling_aet, peer.called_aet,
                                                event.action_information)
        log.info("Storage commitment request from %s: job %s", peer.calling_aet, job)
        return SUCCESS, None
    except PharosError as error:
        log.warning("Storage commitment request from %s refused: %s", peer.calling_aet, error)
        return status(PROCESSING_FAILURE, str(error)), None
    except Exception as error:  # noqa: BLE001
        log.exception("Storage commitment request from %s failed", peer.calling_aet)
        return status(PROCESSING_FAILURE, f"Cannot process the request: {error}"), None


def handle_n_event_report(event: evt.Event, context: ServerContext, policy: Policy,
                          peers: Peers) -> tuple[Dataset | int, Dataset | None]:
    """N-EVENT-REPORT of a storage commitment this server asked for."""
    peer = _peer(event, peers)
    try:
        if not policy.allows(peer, Service.N_EVENT_REPORT):
            return status(NOT_AUTHORIZED, "N-EVENT-REPORT not allowed for this AET"), None
        if not storage_commitment.handle_report(context, event.event_information):
            log.warning("Storage commitment report from %s for an unknown transaction",
                        peer.calling_aet)
        return SUCCESS, None
    except Exception as error:  # noqa: BLE001
        log.exception("Storage commitment report from %s failed", peer.calling_aet)
        return status(PROCESSING_FAILURE, f"Cannot process the report: {error}"), None


# --- C-FIND ---------------------------------------------------------------------------------

def handle_find(event: evt.Event, context: ServerContext, policy: Policy,
                peers: Peers) -> Iterator[tuple[Dataset | int, Dataset | None]]:
    """C-FIND (PS3.4 C.4.1) through the one matching engine; honours C-CANCEL."""
    peer = _peer(event, peers)
    try:
        if not policy.allows(peer, Service.FIND):
            yield status(NOT_AUTHORIZED, "C-FIND not allowed for this AET"), None
            return
        identifier = scripting_events.incoming_find_identifier(  # IncomingFindRequestFilter
            context, bounded_identifier(event), _find_origin(peer))
        answers = FindAnswers(context, identifier, retrieve_aet=context.settings.dicom_aet)
        count = 0
        for answer in answers:
            if event.is_cancelled:  # PS3.4 C.4.1.2.2.1: C-CANCEL-FIND
                yield CANCEL, None
                return
            count += 1
            yield PENDING, answer
        if answers.truncated:
            log.warning("C-FIND from %s: answers limited to %d by LimitFind*", peer.calling_aet,
                        count)
    except BadRequest as error:
        yield status(IDENTIFIER_MISMATCH, str(error)), None
    except PharosError as error:
        yield status(error.dimse_status, str(error)), None
    except Exception as error:  # noqa: BLE001
        log.exception("C-FIND from %s failed", peer.calling_aet)
        yield status(CANNOT_UNDERSTAND, f"Cannot process the query: {error}"), None


def _find_origin(peer: Peer) -> dict[str, str]:
    """The ``origin`` of IncomingFindRequestFilter (Orthanc's FormatOrigin)."""
    return {"RemoteIp": peer.ip, "RemoteAet": peer.calling_aet, "CalledAet": peer.called_aet,
            "Manufacturer": peer.modality.manufacturer if peer.modality else "Generic"}


# --- C-MOVE and C-GET -----------------------------------------------------------------------

def _destination(context: ServerContext, aet: str) -> Modality | None:
    for modality in remotes.modalities(context).values():
        if same_aet(modality.aet, aet):
            return modality
    return None


def _sub_operation_dataset(item: RetrieveItem, data: bytes) -> Dataset:
    """The instance as a Dataset for pynetdicom's C-STORE sub-operation; elements stay
    raw, so encoding them in the file's own transfer syntax writes the stored bytes."""
    return dcmread(io.BytesIO(data))


def handle_move(event: evt.Event, context: ServerContext, policy: Policy,
                peers: Peers) -> Iterator[Any]:
    """C-MOVE (PS3.4 C.4.2): C-STORE sub-operations to a modality known by its AET."""
    peer = _peer(event, peers)
    destination_aet = ae_title(event.move_destination)
    destination = _destination(context, destination_aet)
    if destination is None or not policy.allows(peer, Service.MOVE):
        log.warning("C-MOVE from %s refused: %s", peer.calling_aet,
                    "not allowed" if destination else f"unknown destination {destination_aet!r}")
        yield None, None  # pynetdicom answers A801 "Move destination unknown"
        return
    items = instances_to_retrieve(context, bounded_identifier(event))  # may raise: see module doc
    if not items:  # PS3.4 C.4.2.1.5: no match is a success without sub-operations
        log.info("C-MOVE from %s: no stored resource matches", peer.calling_aet)
        yield destination.host, destination.port
        yield 0
        return
    if not context.settings.synchronous_cmove:
        _submit_move(context, event, destination, items, peer)
        yield destination.host, destination.port
        yield 0  # nothing sent within the C-MOVE: the job sends (Orthanc's AsynchronousMove)
        return
    contexts = storage_contexts({(i.sop_class_uid, i.transfer_syntax_uid) for i in items})
    yield destination.host, destination.port, {
        "contexts": contexts, "evt_handlers": [(evt.EVT_CONN_OPEN, enable_tcp_nodelay)]}
    yield len(items)
    yield from _sub_operations(event, context, items, peer)


def _submit_move(context: ServerContext, event: evt.Event, destination: Modality,
                 items: list[RetrieveItem], peer: Peer) -> None:
    job = modalities.submit_move_store(
        context, destination, [item.public_id for item in items],
        originator_aet=peer.calling_aet, originator_id=int(event.request.MessageID or 0))
    log.info("C-MOVE from %s to %s: %d instance(s) in job %s", peer.calling_aet,
             destination.aet, len(items), job)


def handle_get(event: evt.Event, context: ServerContext, policy: Policy,
               peers: Peers) -> Iterator[Any]:
    """C-GET (PS3.4 C.4.3): C-STORE sub-operations on the same association, in the
    contexts the requestor offered with the SCP role (PS3.7 D.3.3.4)."""
    peer = _peer(event, peers)
    try:
        if not policy.allows(peer, Service.GET):
            yield 1
            yield status(NOT_AUTHORIZED, "C-GET not allowed for this AET"), None
            return
        items = instances_to_retrieve(context, bounded_identifier(event))
    except BadRequest as error:
        yield 1
        yield status(IDENTIFIER_MISMATCH, str(error)), None
        return
    except Exception as error:  # noqa: BLE001
        log.exception("C-GET from %s failed", peer.calling_aet)
        yield 1
        yield status(CANNOT_UNDERSTAND, f"Cannot process the request: {error}"), None
        return
    yield len(items)
    yield from _sub_operations(event, context, items, peer, same_association=True)


def _sub_operations(event: evt.Event, context: ServerContext, items: list[RetrieveItem],
                    peer: Peer, *, same_association: bool = False) -> Iterator[Any]:
    """(Pending, dataset) per instance; Cancel on C-CANCEL (PS3.4 C.4.2.3.1)."""
    for item, data in read_instances(context, items):
        if event.is_cancelled:
            yield CANCEL, None
            return
        try:
            if data is None:
                raise FileNotFoundError(f"the file of {item.public_id} is missing")
            dataset = _sub_operation_dataset(item, data)
            if same_association:
                dataset = _fit_get_contexts(event.assoc, dataset)
        except Exception as error:  # noqa: BLE001 - counted as a failed sub-operation
            log.error("Retrieve for %s: cannot send %s: %s", peer.calling_aet,
                      item.sop_instance_uid, error)
            dataset = Dataset()  # pynetdicom counts a failed sub-operation
        yield PENDING, dataset


def _fit_get_contexts(assoc: Any, dataset: Dataset) -> Dataset:
    """Decompress for a C-GET requestor that accepts no compressed syntax for the
    SOP class of a compressed instance (PS3.4 C.4.3.1: the SCP may convert)."""
    syntax = UID(str(dataset.file_meta.TransferSyntaxUID))
    sop_class = str(dataset.file_meta.MediaStorageSOPClassUID)
    accepted = {cx.transfer_syntax[0] for cx in assoc.accepted_contexts
                if cx.abstract_syntax == sop_class}
    if not syntax.is_compressed or syntax in accepted:
        return dataset
    target = ExplicitVRLittleEndian if ExplicitVRLittleEndian in accepted \
        else ImplicitVRLittleEndian
    check_pixel_decode(dataset)
    dataset.decompress(generate_instance_uid=False)  # the same instance, decoded
    dataset.file_meta.TransferSyntaxUID = target
    return dataset
