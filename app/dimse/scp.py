"""The DICOM SCP: a pynetdicom AE listening on DicomPort as DicomAet, in a background
thread started by the app's lifespan (``start_scp(context).stop()``).

It accepts C-ECHO, C-STORE for every storage SOP class (and unknown ones with
``UnknownSopClassAccepted``) in the accepted transfer syntaxes (runtime settings),
C-FIND, C-MOVE and C-GET in the Patient Root and Study Root models (PS3.4 C.6.1,
C.6.2), with the SCP/SCU role selection C-GET needs (app/dimse/negotiation.py). Associations time out after DicomScpTimeout
seconds of silence; sockets run with TCP_NODELAY.
"""

from __future__ import annotations

import logging
from typing import Protocol
from weakref import WeakKeyDictionary

from pynetdicom import AE, _config, evt
from pynetdicom.transport import ThreadedAssociationServer

from app.context import ServerContext
from app.dimse import handlers
from app.dimse.acceptor import RequestHandler
from app.dimse.negotiation import GENERIC_SYNTAXES
from app.dimse.security import Policy
from app.errors import StartupError
from app.protocols.dimse_common import (
    IMPLEMENTATION_CLASS_UID,
    IMPLEMENTATION_VERSION_NAME,
    enable_tcp_nodelay,
    seconds,
)

log = logging.getLogger(__name__)

MAX_ASSOCIATIONS = 64  # Orthanc serves associations with a thread pool too


class Stoppable(Protocol):
    def stop(self) -> None: ...


class RunningScp:
    """The handle the lifespan keeps: stop() closes the port and ends associations."""

    def __init__(self, ae: AE, server: ThreadedAssociationServer) -> None:
        self.ae = ae
        self.server = server

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def stop(self) -> None:
        try:
            self.server.shutdown()
        finally:
            for assoc in list(self.server.active_associations):
                assoc.abort()


def build_ae(context: ServerContext) -> AE:
    """The AE: timeouts, identity, limits. Its supported presentation contexts are set
    per association by ``handlers.handle_requested`` (app/dimse/negotiation.py)."""
    settings = context.settings
    ae = AE(ae_title=settings.dicom_aet)
    ae.implementation_class_uid = IMPLEMENTATION_CLASS_UID
    ae.implementation_version_name = IMPLEMENTATION_VERSION_NAME
    ae.maximum_associations = MAX_ASSOCIATIONS
    ae.maximum_pdu_size = 0  # no limit on what peers may send us in one PDU
    timeout = seconds(settings.dicom_scp_timeout)
    ae.network_timeout = timeout  # type: ignore[assignment]
    ae.acse_timeout = timeout  # type: ignore[assignment]
    ae.dimse_timeout = timeout  # type: ignore[assignment]
    # C-MOVE sub-associations are opened by this AE: a destination that does not answer
    # the TCP connection gives up after DicomScuTimeout, as Orthanc's SCU connections.
    ae.connection_timeout = seconds(settings.dicom_scu_timeout)
    # The called-AET check is the Policy's (Orthanc's rules, logged), not pynetdicom's.
    ae.require_called_aet = False
    # pynetdicom refuses to start a server without a supported context.
    ae.add_supported_context(handlers.Verification, list(GENERIC_SYNTAXES))
    return ae


def start_scp(context: ServerContext) -> Stoppable:
    """Start listening on DicomPort with DicomAet; return a handle whose stop() closes it."""
    settings = context.settings
    logging.getLogger("pynetdicom").setLevel(logging.WARNING)  # one line per PDU otherwise
    # pynetdicom's "standard" handlers format every PDU and DIMSE message for its
    # INFO/DEBUG lines even when the logger drops them (~5% of a C-STORE): unbind them.
    _config.LOG_HANDLER_LEVEL = "none"
    policy = Policy(context)
    peers: handlers.Peers = WeakKeyDictionary()
    ae = build_ae(context)
    bound = [
        (evt.EVT_CONN_OPEN, enable_tcp_nodelay),
        (evt.EVT_REQUESTED, handlers.handle_requested, [context, policy, peers]),
        (evt.EVT_C_ECHO, handlers.handle_echo, [policy, peers]),
        (evt.EVT_C_STORE, handlers.handle_store, [context, policy, peers]),
        (evt.EVT_C_FIND, handlers.handle_find, [context, policy, peers]),
        (evt.EVT_C_MOVE, handlers.handle_move, [context, policy, peers]),
        (evt.EVT_C_GET, handlers.handle_get, [context, policy, peers]),
        (evt.EVT_N_ACTION, handlers.handle_n_action, [context, policy, peers]),
        (evt.EVT_N_EVENT_REPORT, handlers.handle_n_event_report, [context, policy, peers]),
    ]
    try:
        server = ae.start_server(("0.0.0.0", int(settings.dicom_port)), block=False,
                                 evt_handlers=bound)
    except OSError as error:
        # Fatal, as in Orthanc (and as the HTTP port): `pharos serve` checks the port
        # before starting, so this is a port taken in the meantime.
        raise StartupError(f"DicomPort {settings.dicom_port} cannot be opened "
                           f"({error.strerror or error}): stop the program listening "
                           "there or choose another DicomPort") from None
    assert server is not None
    # Event-driven associations (app/dimse/acceptor.py); set before any peer can connect
    # in practice, and pynetdicom's handler would serve one that did, only slower.
    server.RequestHandlerClass = RequestHandler
    log.info("DICOM server listening on port %d as %s", settings.dicom_port, settings.dicom_aet)
    return RunningScp(ae, server)
