"""Associations accepted by the SCP, without pynetdicom's polling latency.

pynetdicom (3.0) runs two polling loops per association, each sleeping 1 ms between
looks: the DUL thread (``select`` with a zero timeout on the socket, then
``time.sleep(0.001)`` when nothing happened) and the acceptor reactor
(``time.sleep(0.001)`` then a non-blocking look at the DIMSE message queue). A C-STORE
crosses both loops twice (the request in, the response out), and Linux rounds each
1 ms sleep up: measured on a storescu run, ~2.5 ms per instance went to these waits,
as much as the index transaction.

Here the same loops wait on the events themselves:

* the DUL thread blocks in ``select`` on the socket *and* on a wake-up socket pair
  that every primitive queued for sending writes to (``to_provider_queue.put``), so
  a PDU is read as soon as it arrives and a response is sent as soon as it is queued;
* the acceptor reactor blocks on the DIMSE message queue instead of sleeping.

And a C-STORE-RSP, the one message sent per stored instance, is encoded directly
(:func:`store_response_command`) rather than through a pydicom Dataset (0.3 ms).

Both waits are bounded (``WAIT``) so that the flags pynetdicom polls (kill, release,
abort, the idle timer, the ARTIM timer) are still seen promptly. Only what the
:class:`RequestHandler` creates is changed: the SCU side keeps pynetdicom's behaviour.
"""

from __future__ import annotations

import functools
import logging
import queue
import select
import socket
import struct
from typing import Any

from pynetdicom import evt
from pynetdicom.association import Association
from pynetdicom.dimse import DIMSEServiceProvider
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.pdu_primitives import P_DATA
from pynetdicom.service_class import StorageServiceClass
from pynetdicom.sop_class import uid_to_service_class
from pynetdicom.transport import AssociationSocket
from pynetdicom.transport import RequestHandler as PynetdicomRequestHandler

log = logging.getLogger(__name__)

WAIT = 0.01  # seconds: the longest a loop blocks before looking at pynetdicom's flags


class _WakingQueue(queue.Queue):  # type: ignore[type-arg]
    """The DUL's ``to_provider_queue``: a put wakes the DUL thread out of ``select``."""

    def __init__(self, wake: Any) -> None:
        super().__init__()
        self._wake = wake

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        super().put(item, block, timeout)
        self._wake()


class _Socket(AssociationSocket):
    """``ready`` blocks (up to WAIT) until the peer sends data or a primitive is queued.

    The instance is pynetdicom's own socket, re-classed by :class:`RequestHandler`
    before the DUL thread starts (``_arm`` adds the wake-up pair).
    """

    _wake_r: socket.socket | None = None
    _wake_w: socket.socket | None = None

    def _arm(self) -> None:
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)

    def wake(self) -> None:
        end = self._wake_w
        if end is not None:
            try:
                end.send(b"\0")
            except OSError:  # full (a wake-up is pending anyway) or closed
                pass

    @property
    def ready(self) -> bool:
        sock = self.socket
        if sock is None or self._is_connected is False:
            return False
        wake = self._wake_r
        watched = [sock] if wake is None else [sock, wake]
        try:
            readable, _, _ = select.select(watched, [], [], WAIT)
        except (OSError, TimeoutError, ValueError):
            self.event_queue.put("Evt17")  # transport connection closed
            return False
        if wake is not None and wake in readable:
            try:
                while wake.recv(4096):
                    pass
            except OSError:  # drained (BlockingIOError) or closed
                pass
        return sock in readable

    def close(self) -> None:
        super().close()
        ends, self._wake_r, self._wake_w = (self._wake_r, self._wake_w), None, None
        for end in ends:
            if end is not None:
                end.close()


class _Association(Association):
    """The acceptor reactor waits on the DIMSE message queue instead of sleeping 1 ms."""

    def _next_message(self) -> tuple[int | None, Any]:
        messages = self.dimse.msg_queue
        try:
            item = messages.get(timeout=WAIT)
        except queue.Empty:
            return None, None
        if not self._reactor_checkpoint.is_set():
            # Another thread paused the reactor while it waited (to send a request
            # and read the answer itself): give the message back, first in line.
            with messages.mutex:
                messages.queue.appendleft(item)
                messages.not_empty.notify()
            return None, None
        return item

    def _serve_request(self, msg: Any, context_id: int) -> None:
        """pynetdicom's dispatch, except that a C-STORE of a SOP class it does not know
        as storage (accepted in "promiscuous mode", app/dimse/negotiation.py) goes to
        the storage service instead of aborting the association."""
        if isinstance(msg, C_STORE) and msg.is_valid_request and not self._sent_release \
                and uid_to_service_class(str(msg.AffectedSOPClassUID or "")) \
                is not StorageServiceClass:
            context = self._accepted_cx.get(context_id)
            if context is None:
                log.info("C-STORE on a rejected presentation context %d: aborting", context_id)
                self.abort()
                return
            self.dimse.cancel_req = {}
            self._is_paused = True
            try:
                StorageServiceClass(self).SCP(msg, context)
            except Exception:  # noqa: BLE001 - as pynetdicom does
                log.exception("C-STORE of an unknown SOP class failed")
                self.abort()
                return
            finally:
                self._is_paused = False
            self.dimse.cancel_req = {}
            return
        super()._serve_request(msg, context_id)

    def _run_reactor(self) -> None:
        """pynetdicom 3.0's ``Association._run_reactor`` (acceptor), with the message
        wait above in place of ``time.sleep(0.001)`` + ``get_msg(block=False)``."""
        self._is_paused = False
        while not self._kill:
            self._is_paused = True
            self._reactor_checkpoint.wait()
            self._is_paused = False

            context_id, msg = self._next_message()
            if msg:
                self._serve_request(msg, int(context_id))  # type: ignore[arg-type]

            if self.is_established and self.acse.is_release_requested():
                self.acse.send_release(is_response=True)
                self.is_released = True
                self.is_established = False
                evt.trigger(self, evt.EVT_RELEASED, {})
                self.kill()
                return

            if self.acse.is_aborted():
                self.dul.receive_pdu(wait=False)  # EVT_ACSE_RECV for subscribers
                self.is_aborted = True
                self.is_established = False
                evt.trigger(self, evt.EVT_ABORTED, {})
                self.kill()
                return

            if not self.dul.is_alive():
                self.kill()
                return

            if self.dul.idle_timer_expired():
                log.warning("DICOM association from %s: network timeout reached",
                            self.requestor.ae_title)
                if self.network_timeout_response == "A-RELEASE":
                    self._is_paused = True
                    self._reactor_checkpoint.wait()
                    self.release()
                    self._is_paused = False
                else:
                    self.abort()
                self.kill()
                return


def _element(element: int, value: bytes) -> bytes:
    """A command element, Implicit VR Little Endian (PS3.7 6.3.1)."""
    return struct.pack("<HHL", 0x0000, element, len(value)) + value


def _uid(value: str) -> bytes:
    data = value.encode("ascii")
    return data + b"\0" if len(data) % 2 else data


def store_response_command(rsp: C_STORE) -> bytes | None:
    """The command set of a plain C-STORE-RSP (PS3.7 9.3.1.2), as pynetdicom encodes it,
    without its pydicom round trip (~0.3 ms); None when the response carries more than
    the status (ErrorComment, OffendingElement), left to pynetdicom."""
    status, answered = rsp.Status, rsp.MessageIDBeingRespondedTo
    sop_class, sop_instance = rsp.AffectedSOPClassUID, rsp.AffectedSOPInstanceUID
    if rsp.ErrorComment is not None or rsp.OffendingElement is not None or status is None \
            or answered is None or not sop_class or not sop_instance \
            or not (str(sop_class).isascii() and str(sop_instance).isascii()):
        return None
    body = b"".join((
        _element(0x0002, _uid(str(sop_class))),
        _element(0x0100, struct.pack("<H", 0x8001)),  # CommandField C-STORE-RSP
        _element(0x0120, struct.pack("<H", answered)),
        _element(0x0800, struct.pack("<H", 0x0101)),  # no data set
        _element(0x0900, struct.pack("<H", status)),
        _element(0x1000, _uid(str(sop_instance)))))
    return _element(0x0000, struct.pack("<L", len(body))) + body


def _send_msg(dimse: DIMSEServiceProvider, send_msg: Any, primitive: Any,
              context_id: int) -> None:
    """``DIMSEServiceProvider.send_msg`` with C-STORE-RSP encoded by
    :func:`store_response_command` (one P-DATA, as pynetdicom sends it). EVT_DIMSE_SENT
    is not triggered for those: the SCP binds no handler to it."""
    if type(primitive) is C_STORE and primitive.MessageIDBeingRespondedTo is not None:
        command = store_response_command(primitive)
        limit = dimse.maximum_pdu_size
        if command is not None and (limit == 0 or len(command) + 6 <= limit):
            pdata = P_DATA()
            pdata.presentation_data_value_list.append((context_id, b"\x03" + command))
            dimse.dul.send_pdu(pdata)
            return
    send_msg(primitive, context_id)


class RequestHandler(PynetdicomRequestHandler):
    """pynetdicom's request handler, creating the event-driven association above."""

    def _create_association(self) -> Association:
        assoc = super()._create_association()
        assoc.__class__ = _Association  # same layout: only methods differ
        dul = assoc.dul
        sock = dul.socket
        if type(sock) is AssociationSocket and sock.socket is not None:
            sock.__class__ = _Socket
            sock._arm()
            dul.to_provider_queue = _WakingQueue(sock.wake)
            # The DUL loop sleeps this long after a turn without event; the turn
            # itself now waits in select, so no sleep is needed on top.
            dul._run_loop_delay = 0
        dimse = assoc.dimse
        dimse.send_msg = functools.partial(_send_msg, dimse, dimse.send_msg)  # type: ignore[method-assign]
        return assoc
