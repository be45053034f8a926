"""The DICOM SCU: C-ECHO, C-STORE, C-FIND, C-MOVE and C-GET to a remote modality.

Each function opens one association, does its work and releases it. Failures to reach
or to be accepted by the remote, and failure statuses, raise
:class:`app.errors.NetworkProtocol` with a message naming the remote, as Orthanc's
``DicomControlUserConnection``/``DicomStoreUserConnection`` do.

C-STORE sends every file as it is stored (the data set bytes after the file meta go on
the wire untouched) when the remote accepts its transfer syntax; an uncompressed file
may go in another uncompressed syntax and a compressed one is decompressed only when the
remote accepts no compressed syntax for it (PS3.4 B.4.1: the SCU may convert).
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.uid import UID
from pynetdicom import AE, StoragePresentationContexts, _config, build_context, build_role, evt
from pynetdicom.association import Association
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.presentation import PresentationContext
from pynetdicom.sop_class import (
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

from app.config import Modality
from app.dicom.limits import check_pixel_decode
from app.errors import NetworkProtocol, PharosError, UnprocessableQuery
from app.protocols.dimse_common import (
    ACCEPTED_TRANSFER_SYNTAXES,
    IMPLEMENTATION_CLASS_UID,
    IMPLEMENTATION_VERSION_NAME,
    UNCOMPRESSED,
    Part10,
    enable_tcp_nodelay,
    part10_bytes,
    received_dataset_bytes,
    seconds,
    split_part10,
)

log = logging.getLogger(__name__)

# pynetdicom logs every identifier it sends or receives (INFO), decoding each value to do
# so: a raw value that is not valid for its VR would make the logging itself fail.
_config.LOG_REQUEST_IDENTIFIERS = False
_config.LOG_RESPONSE_IDENTIFIERS = False

MAX_CONTEXTS = 128  # PS3.8 9.3.2.2: presentation context IDs are odd numbers 1..255
PRIORITY_MEDIUM = 0  # PS3.7 9.1.1.1: 0 medium, 1 high, 2 low (Orthanc sends medium)

# PS3.4 C.4.1.1.3 / C.4.2.1.4: statuses of the Q/R services
PENDING = (0xFF00, 0xFF01)
SUCCESS = 0x0000
CANCEL = 0xFE00

# Query/Retrieve models: Patient Root for the patient level, Study Root otherwise, as
# Orthanc does (PS3.4 C.6.1 and C.6.2).
_FIND_MODELS = (PatientRootQueryRetrieveInformationModelFind,
                StudyRootQueryRetrieveInformationModelFind)
_MOVE_MODELS = (PatientRootQueryRetrieveInformationModelMove,
                StudyRootQueryRetrieveInformationModelMove)
_GET_MODELS = (PatientRootQueryRetrieveInformationModelGet,
               StudyRootQueryRetrieveInformationModelGet)
# QueryRetrieveLevel values (PS3.4 C.6.1.1.2): the instance level is "IMAGE".
_QR_LEVELS = {"patient": "PATIENT", "study": "STUDY", "series": "SERIES",
              "instance": "IMAGE", "image": "IMAGE"}


@dataclass
class StoreReport:
    """The outcome of C-STORE sub-operations (PS3.4 B.2.3 statuses)."""

    completed: int = 0
    failed: int = 0
    warning: int = 0
    failed_instances: list[str] = field(default_factory=list)

    def count(self, status: int | None, sop_instance_uid: str) -> None:
        """Success and warnings (B000-BFFF, PS3.4 B.2.3) complete; anything else fails."""
        if status == SUCCESS:
            self.completed += 1
        elif status is not None and 0xB000 <= status <= 0xBFFF:
            self.warning += 1
            self.completed += 1
        else:
            self.failed += 1
            self.failed_instances.append(sop_instance_uid)


@dataclass
class MoveReport:
    """The final C-MOVE response: status and sub-operation counts (PS3.4 C.4.2.1.5)."""

    status: int = SUCCESS
    completed: int = 0
    failed: int = 0
    warning: int = 0
    remaining: int = 0
    failed_instances: list[str] = field(default_factory=list)


@dataclass
class GetReport(MoveReport):
    """The final C-GET response, plus how many instances were handed to ``on_instance``."""

    received: int = 0


def _qr_level(level: str) -> str:
    try:
        return _QR_LEVELS[level.strip().lower()]
    except KeyError as error:
        raise NetworkProtocol(f"Unknown query/retrieve level: {level}") from error


def _model(models: tuple[UID, UID], level: str) -> UID:
    return models[0] if _qr_level(level) == "PATIENT" else models[1]


# --- associations ------------------------------------------------------------------------

def _application_entity(local_aet: str, timeout: float) -> AE:
    ae = AE(ae_title=local_aet)
    ae.implementation_class_uid = IMPLEMENTATION_CLASS_UID
    ae.implementation_version_name = IMPLEMENTATION_VERSION_NAME
    limit = seconds(timeout)
    ae.acse_timeout = limit
    ae.dimse_timeout = limit
    ae.network_timeout = limit
    ae.connection_timeout = limit
    return ae


def _describe(modality: Modality) -> str:
    return f'AET "{modality.aet}" at {modality.host}:{modality.port}'


def _associate(modality: Modality, local_aet: str, timeout: float,
               contexts: list[PresentationContext], *, ext_neg: list[Any] | None = None,
               handlers: list[Any] | None = None) -> Association:
    """An established association, or NetworkProtocol saying why not."""
    ae = _application_entity(local_aet, timeout)
    try:
        assoc = ae.associate(
            modality.host, int(modality.port), contexts=contexts, ae_title=modality.aet,
            ext_neg=ext_neg,
            evt_handlers=[(evt.EVT_CONN_OPEN, enable_tcp_nodelay), *(handlers or [])])
    except (OSError, ValueError, RuntimeError) as error:
        raise NetworkProtocol(f"DicomAssociation - cannot connect to {_describe(modality)}: "
                              f"{error}") from error
    if assoc.is_established:
        return assoc
    if assoc.is_rejected:
        reason = "the association was rejected"
        acceptor = assoc.acceptor.primitive
        if acceptor is not None and acceptor.result_str:
            reason += f" ({acceptor.result_str}, {acceptor.reason_str})"
    elif assoc.is_aborted:
        reason = "the association was aborted (no connection, or the remote refused it)"
    else:
        reason = "no association could be negotiated"
    raise NetworkProtocol(f"DicomAssociation - cannot connect to {_describe(modality)} "
                          f"from AET \"{local_aet}\": {reason}")


def _release(assoc: Association) -> None:
    try:
        if assoc.is_established:
            assoc.release()
    except Exception:  # noqa: BLE001 - a failed release loses nothing
        assoc.abort()


def _require_context(assoc: Association, modality: Modality, abstract_syntax: UID) -> None:
    if not any(cx.abstract_syntax == abstract_syntax for cx in assoc.accepted_contexts):
        _release(assoc)
        raise NetworkProtocol(f"{_describe(modality)} does not accept "
                              f"{UID(abstract_syntax).name}")


def _status_of(status: Dataset | None) -> int | None:
    if status is None or "Status" not in status:
        return None
    return int(status.Status)


# --- C-ECHO --------------------------------------------------------------------------------

def echo(modality: Modality, *, local_aet: str, timeout: float) -> None:
    """C-ECHO (PS3.4 A.4); NetworkProtocol unless the remote answers Success."""
    assoc = _associate(modality, local_aet, timeout, [build_context(Verification)])
    try:
        status = _status_of(assoc.send_c_echo())
    finally:
        _release(assoc)
    if status != SUCCESS:
        raise NetworkProtocol(f"C-ECHO to {_describe(modality)} failed"
                              + ("" if status is None else f" with status 0x{status:04X}"))


# --- C-STORE -------------------------------------------------------------------------------

def storage_contexts(needs: Iterable[tuple[str, str]]) -> list[PresentationContext]:
    """Presentation contexts for sending files of these (SOP class, transfer syntax):
    one context per pair (the file goes as is), and per SOP class one with the little
    endian uncompressed syntaxes (the conversion fallback); at most 128 (PS3.8 9.3.2.2)."""
    by_class: dict[str, set[str]] = {}
    for sop_class, syntax in needs:
        by_class.setdefault(sop_class, set()).add(syntax)
    answer = []
    for sop_class in sorted(by_class):
        answer += [build_context(sop_class, [ts]) for ts in sorted(by_class[sop_class]) if ts]
        answer.append(build_context(sop_class, [str(ts) for ts in UNCOMPRESSED[:2]]))
    return answer[:MAX_CONTEXTS]


class _StoreSession:
    """One association for a stream of files; reopened with more presentation contexts
    only when a file needs a SOP class / transfer syntax not proposed yet (Orthanc's
    ``DicomStoreUserConnection`` does the same)."""

    def __init__(self, modality: Modality, local_aet: str, timeout: float) -> None:
        self.modality = modality
        self.local_aet = local_aet
        self.timeout = timeout
        self.proposed: dict[str, set[str]] = {}  # SOP class -> transfer syntaxes
        self.assoc: Association | None = None
        self.message_id = 0

    def contexts(self) -> list[PresentationContext]:
        return storage_contexts((sop_class, ts) for sop_class, syntaxes in self.proposed.items()
                                for ts in syntaxes)

    def _propose(self, part: Part10) -> bool:
        """Record the needs of a file; True when the association must be (re)opened."""
        syntaxes = self.proposed.setdefault(part.sop_class_uid, set())
        new = part.transfer_syntax_uid not in syntaxes
        syntaxes.add(part.transfer_syntax_uid)
        return new

    def send(self, data: bytes, report: StoreReport, originator_aet: str | None,
             originator_id: int | None) -> None:
        try:
            part = split_part10(data)
        except ValueError as error:
            log.error("C-STORE to %s: skipping a file: %s", self.modality.aet, error)
            report.count(None, "")
            return
        if self._propose(part) or self.assoc is None or not self.assoc.is_established:
            self._open()
        assert self.assoc is not None
        self.message_id = self.message_id % 65535 + 1
        try:
            status = _send_file(self.assoc, data, part, self.message_id,
                                originator_aet, originator_id,
                                transcoding=self.modality.allow_transcoding)
        except PharosError as error:
            log.error("C-STORE of %s to %s: %s", part.sop_instance_uid, self.modality.aet,
                      error)
            status = None
        report.count(status, part.sop_instance_uid)
        if not self.assoc.is_established:
            raise NetworkProtocol(f"C-STORE to {_describe(self.modality)}: the association "
                                  f"was lost while sending {part.sop_instance_uid}")

    def _open(self) -> None:
        if self.assoc is not None:
            _release(self.assoc)
        self.assoc = _associate(self.modality, self.local_aet, self.timeout, self.contexts())

    def close(self) -> None:
        if self.assoc is not None:
            _release(self.assoc)
            self.assoc = None


def _pick_context(assoc: Association, sop_class: str, transfer_syntax: str
                  ) -> tuple[PresentationContext | None, bool]:
    """(accepted context, send as is?) for a file: its own syntax first; another
    uncompressed one for an uncompressed file; any uncompressed one otherwise."""
    accepted = [cx for cx in assoc.accepted_contexts if cx.abstract_syntax == sop_class]
    for cx in accepted:
        if cx.transfer_syntax[0] == transfer_syntax:
            return cx, True
    for cx in accepted:
        if cx.transfer_syntax[0] in UNCOMPRESSED:
            return cx, False
    return None, False


def _send_file(assoc: Association, data: bytes, part: Part10, message_id: int,
               originator_aet: str | None, originator_id: int | None, *,
               transcoding: bool = True) -> int | None:
    """C-STORE of one file: as stored when the remote accepts its syntax, else converted
    unless the modality has ``AllowTranscoding`` false (Orthanc's rule)."""
    context, as_is = _pick_context(assoc, part.sop_class_uid, part.transfer_syntax_uid)
    if context is None:
        raise NetworkProtocol(f"the remote accepts no presentation context for "
                              f"{UID(part.sop_class_uid).name}")
    if not as_is and not transcoding:
        raise NetworkProtocol(f"the remote does not accept "
                              f"{UID(part.transfer_syntax_uid).name} and transcoding to it "
                              f"is not allowed (AllowTranscoding)")
    if as_is:
        return _send_raw(assoc, context, data[part.dataset_offset:], part, message_id,
                         originator_aet, originator_id)
    # Convert: pynetdicom encodes the data set in the accepted uncompressed syntax.
    try:
        dataset = dcmread(io.BytesIO(data))
        if UID(part.transfer_syntax_uid).is_compressed:
            check_pixel_decode(dataset)
            dataset.decompress(generate_instance_uid=False)  # same instance, PS3.4 B.4.1
        dataset.file_meta.TransferSyntaxUID = context.transfer_syntax[0]
    except Exception as error:  # noqa: BLE001 - codecs raise many kinds
        raise NetworkProtocol(f"cannot convert {part.sop_instance_uid} to "
                              f"{UID(context.transfer_syntax[0]).name}: {error}") from error
    try:
        return _status_of(assoc.send_c_store(
            dataset, msg_id=message_id, priority=PRIORITY_MEDIUM,
            originator_aet=originator_aet, originator_id=originator_id))
    except (ValueError, AttributeError) as error:  # pynetdicom: no context, cannot encode
        raise NetworkProtocol(f"cannot send {part.sop_instance_uid}: {error}") from error


def _send_raw(assoc: Association, context: PresentationContext, dataset: bytes, part: Part10,
              message_id: int, originator_aet: str | None,
              originator_id: int | None) -> int | None:
    """C-STORE of a data set already encoded in the context's transfer syntax.

    ``Association.send_c_store`` always re-encodes a Dataset; this is its body without
    the encoding step (pynetdicom 2.1-3.x internals: the reactor is paused while the
    request is sent and its response read, exactly as ``send_c_store`` does).
    """
    request = C_STORE()
    request.MessageID = message_id
    request.AffectedSOPClassUID = part.sop_class_uid
    request.AffectedSOPInstanceUID = part.sop_instance_uid
    request.Priority = PRIORITY_MEDIUM
    if originator_aet:
        request.MoveOriginatorApplicationEntityTitle = originator_aet
    if originator_id is not None:
        request.MoveOriginatorMessageID = int(originator_id)
    request.DataSet = io.BytesIO(dataset)
    checkpoint = assoc._reactor_checkpoint
    checkpoint.clear()
    try:
        while not assoc._is_paused and assoc.is_established:
            time.sleep(0.0001)
        assoc.dimse.send_msg(request, int(context.context_id or 1))
        _, response = assoc.dimse.get_msg(block=True)
    finally:
        checkpoint.set()
    if response is None:  # DIMSE timeout: pynetdicom aborts the association
        assoc._handle_no_response()
        return None
    return int(response.Status) if response.Status is not None else None


def store(modality: Modality, files: Iterable[bytes], *, local_aet: str, timeout: float,
          move_originator_aet: str | None = None,
          move_originator_id: int | None = None) -> StoreReport:
    """C-STORE every file over one association (PS3.4 B.2). Per-instance failures are
    counted in the report; failing to associate raises NetworkProtocol."""
    report = StoreReport()
    session = _StoreSession(modality, local_aet, timeout)
    try:
        for data in files:
            session.send(data, report, move_originator_aet, move_originator_id)
    finally:
        session.close()
    return report


# --- C-FIND --------------------------------------------------------------------------------

def find(modality: Modality, level: str, identifier: Dataset, *, local_aet: str,
         timeout: float) -> list[Dataset]:
    """C-FIND (PS3.4 C.4.1): the identifiers of the pending responses."""
    query = _identifier(identifier, level)
    model = _model(_FIND_MODELS, level)
    assoc = _associate(modality, local_aet, timeout, [build_context(model)])
    _require_context(assoc, modality, model)
    answers: list[Dataset] = []
    final: int | None = None
    try:
        for status, found in assoc.send_c_find(query, model, priority=PRIORITY_MEDIUM):
            final = _status_of(status)
            if final in PENDING and found is not None:
                answers.append(found)
            elif final not in PENDING:
                break
    finally:
        _release(assoc)
    if final is not None and 0xC000 <= final <= 0xCFFF:
        raise UnprocessableQuery(f"C-FIND to {_describe(modality)} failed with status "
                                 f"0x{final:04X} (unable to process: invalid query?)")
    if final != SUCCESS:
        raise NetworkProtocol(f"C-FIND to {_describe(modality)} failed"
                              + (" (no answer)" if final is None
                                 else f" with status 0x{final:04X}"))
    return answers


def _identifier(identifier: Dataset, level: str) -> Dataset:
    """A copy with the QueryRetrieveLevel of *level*; elements stay as given (raw values
    encoded by the caller are sent byte for byte)."""
    query = Dataset()
    for tag in identifier.keys():
        query[tag] = identifier.get_item(tag)
    query.QueryRetrieveLevel = _qr_level(level)
    return query


# --- C-MOVE --------------------------------------------------------------------------------


def _read_final(report: MoveReport, responses: Any, stop: Any = None,
                abort: Any = None) -> None:
    """Skip the pending answers of a C-MOVE or C-GET and note its final one in *report*
    (0xFFFF when the association ended without one). *stop*, checked before each answer,
    aborts the association instead (a C-GET whose stored instances failed)."""
    for status, found in responses:
        if stop is not None and stop():
            abort()
            return
        if _status_of(status) in PENDING:
            continue
        _final_report(report, status, found)
        return
    report.status = 0xFFFF

def _final_report(report: MoveReport, status: Dataset | None, found: Dataset | None) -> None:
    code = _status_of(status)
    report.status = 0xFFFF if code is None else code
    if status is None:
        return
    for name, key in (("completed", "NumberOfCompletedSuboperations"),
                      ("failed", "NumberOfFailedSuboperations"),
                      ("warning", "NumberOfWarningSuboperations"),
                      ("remaining", "NumberOfRemainingSuboperations")):
        value = status.get(key)
        if value is not None and value != "":
            setattr(report, name, int(value))
    if found is not None and "FailedSOPInstanceUIDList" in found:
        value = found.FailedSOPInstanceUIDList
        values = value if isinstance(value, MultiValue | list) else [value]
        report.failed_instances = [str(v) for v in values if str(v)]


def _check_final(report: MoveReport, operation: str, modality: Modality) -> None:
    """Success, Warning (B000: some sub-operations failed) and Cancel are reports; any
    other final status is a failure (PS3.4 C.4.2.1.5, C.4.3.1.4)."""
    if report.status == SUCCESS or 0xB000 <= report.status <= 0xBFFF or report.status == CANCEL:
        return
    meaning = {0xA701: "out of resources (number of matches)",
               0xA702: "out of resources (sub-operations)",
               0xA801: "move destination unknown", 0xA900: "identifier does not match SOP class",
               0xFFFF: "no answer"}.get(report.status, "failure")
    raise NetworkProtocol(f"{operation} to {_describe(modality)} failed with status "
                          f"0x{report.status:04X} ({meaning})")


def move(modality: Modality, level: str, identifier: Dataset, target_aet: str, *,
         local_aet: str, timeout: float) -> MoveReport:
    """C-MOVE (PS3.4 C.4.2) of what *identifier* selects to *target_aet*."""
    query = _identifier(identifier, level)
    model = _model(_MOVE_MODELS, level)
    assoc = _associate(modality, local_aet, timeout, [build_context(model)])
    _require_context(assoc, modality, model)
    report = MoveReport()
    try:
        _read_final(report, assoc.send_c_move(query, target_aet, model,
                                              priority=PRIORITY_MEDIUM))
    finally:
        _release(assoc)
    _check_final(report, "C-MOVE", modality)
    return report


# --- C-GET ---------------------------------------------------------------------------------

_GET_TRANSFER_SYNTAXES = [str(ts) for ts in ACCEPTED_TRANSFER_SYNTAXES]


def _get_contexts(model: UID, storage_classes: Sequence[str] | None = None,
                  ) -> tuple[list[PresentationContext], list[Any]]:
    """The Q/R Get context plus up to 127 storage contexts with SCP role selection
    (PS3.4 C.4.3.1: the C-STORE sub-operations come back on the same association): the
    *storage_classes* given, else pynetdicom's common ones."""
    storage = list(storage_classes) if storage_classes is not None else \
        [cast(UID, cx.abstract_syntax) for cx in StoragePresentationContexts]
    storage = storage[:MAX_CONTEXTS - 1]
    contexts = [build_context(model)]
    contexts += [build_context(uid, _GET_TRANSFER_SYNTAXES) for uid in storage]
    roles = [build_role(uid, scp_role=True) for uid in storage]
    return contexts, roles


def get(modality: Modality, level: str, identifier: Dataset, *, local_aet: str,
        timeout: float, on_instance: Callable[[bytes], None],
        storage_classes: Sequence[str] | None = None) -> GetReport:
    """C-GET (PS3.4 C.4.3): each instance received is handed to *on_instance* as a Part 10
    file holding the data set exactly as sent. An exception of *on_instance* answers the
    sub-operation with a failure status; a non-Pharos exception (a cancelled job) also
    ends the C-GET and is raised again once the association is closed."""
    query = _identifier(identifier, level)
    model = _model(_GET_MODELS, level)
    report = GetReport()
    interrupted: list[BaseException] = []

    def handle_store(event: evt.Event) -> int:
        if interrupted:
            return 0xA700
        try:
            request = cast(C_STORE, event.request)
            data = part10_bytes(
                received_dataset_bytes(request),
                sop_class_uid=str(request.AffectedSOPClassUID),
                sop_instance_uid=str(request.AffectedSOPInstanceUID),
                transfer_syntax_uid=str(event.context.transfer_syntax))
            on_instance(data)
        except PharosError as error:
            log.error("C-GET from %s: instance refused: %s", modality.aet, error)
            return error.dimse_status
        except BaseException as error:  # noqa: BLE001 - handlers never raise
            log.warning("C-GET from %s interrupted: %s", modality.aet, error)
            interrupted.append(error)
            return 0xA700
        report.received += 1
        return SUCCESS

    contexts, roles = _get_contexts(model, storage_classes)
    assoc = _associate(modality, local_aet, timeout, contexts, ext_neg=roles,
                       handlers=[(evt.EVT_C_STORE, handle_store)])
    _require_context(assoc, modality, model)
    try:
        _read_final(report, assoc.send_c_get(query, model, priority=PRIORITY_MEDIUM),
                    stop=lambda: bool(interrupted), abort=assoc.abort)
    finally:
        _release(assoc)
    if interrupted:
        raise interrupted[0]
    _check_final(report, "C-GET", modality)
    return report


# --- Storage Commitment Push Model (PS3.4 J) --------------------------------------------

STORAGE_COMMITMENT = UID("1.2.840.10008.1.20.1")
STORAGE_COMMITMENT_INSTANCE = UID("1.2.840.10008.1.20.1.1")  # the well-known SOP instance


def _references(pairs: Iterable[tuple[str, str]]) -> list[Dataset]:
    items = []
    for sop_class, sop_instance in pairs:
        item = Dataset()
        item.ReferencedSOPClassUID = sop_class
        item.ReferencedSOPInstanceUID = sop_instance
        items.append(item)
    return items


def request_storage_commitment(modality: Modality, *, local_aet: str, timeout: float,
                               transaction_uid: str,
                               instances: list[tuple[str, str]]) -> None:
    """N-ACTION "Request Storage Commitment" (action type 1, PS3.4 J.3.2); the answer
    comes later as an N-EVENT-REPORT to this server's SCP."""
    request = Dataset()
    request.TransactionUID = transaction_uid
    request.ReferencedSOPSequence = _references(instances)
    assoc = _associate(modality, local_aet, timeout, [build_context(STORAGE_COMMITMENT)])
    _require_context(assoc, modality, STORAGE_COMMITMENT)
    try:
        status, _ = assoc.send_n_action(request, 1, STORAGE_COMMITMENT,
                                        STORAGE_COMMITMENT_INSTANCE)
    finally:
        _release(assoc)
    code = _status_of(status)
    if code != SUCCESS:
        raise NetworkProtocol(f"Storage commitment request to {_describe(modality)} failed"
                              + (" (no answer)" if code is None else f" with status 0x{code:04X}"))


def report_storage_commitment(modality: Modality, *, local_aet: str, timeout: float,
                              transaction_uid: str, success: list[tuple[str, str]],
                              failures: list[tuple[str, str, int]]) -> None:
    """N-EVENT-REPORT of the result (event type 1 all committed, 2 failures exist; PS3.4
    J.3.3), on a new association where this server takes the SCP role."""
    report = Dataset()
    report.TransactionUID = transaction_uid
    if success:
        report.ReferencedSOPSequence = _references(success)
    if failures:
        items = _references((c, i) for c, i, _ in failures)
        for item, (_, _, reason) in zip(items, failures, strict=True):
            item.FailureReason = reason
        report.FailedSOPSequence = items
    roles = [build_role(STORAGE_COMMITMENT, scp_role=True)]
    assoc = _associate(modality, local_aet, timeout, [build_context(STORAGE_COMMITMENT)],
                       ext_neg=roles)
    _require_context(assoc, modality, STORAGE_COMMITMENT)
    try:
        status, _ = assoc.send_n_event_report(report, 2 if failures else 1,
                                              STORAGE_COMMITMENT, STORAGE_COMMITMENT_INSTANCE)
    finally:
        _release(assoc)
    code = _status_of(status)
    if code != SUCCESS:
        raise NetworkProtocol(f"Storage commitment report to {_describe(modality)} failed"
                              + (" (no answer)" if code is None else f" with status 0x{code:04X}"))
