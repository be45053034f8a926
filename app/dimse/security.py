"""Who may do what over DIMSE, as Orthanc decides it (``OrthancApplicationEntityFilter``).

* ``DicomCheckCalledAet``: an association whose called AET is not ``DicomAet`` is
  rejected (PS3.8 9.3.4: result 1 rejected-permanent, source 1, reason 7 "called AE
  title not recognized").
* A calling AET is *known* when a modality of ``DicomModalities`` (or of the registry
  changed through REST) has it; with ``DicomCheckModalityHost`` the modality's Host must
  also be the peer's IP address. AETs compare case-insensitively
  (Orthanc's ``StrictAetComparison`` default).
* Unknown calling AETs: the association is accepted only when one of the
  ``DicomAlwaysAllow{Echo,Store,Find,Get,Move}`` options is on (otherwise rejected,
  reason 3 "calling AE title not recognized"); then each service is allowed when its
  ``DicomAlwaysAllow*`` option is on (Echo and Store default to true, the others to
  false, as in Orthanc 1.9.7+).
* Known modalities: their ``AllowEcho``/``AllowStore``/``AllowFind``/``AllowMove``/
  ``AllowGet``, each ORed with the ``DicomAlwaysAllow*`` option of the same service.

Refusal happens twice: at negotiation the presentation contexts of services the
calling AE may not use are not accepted (PS3.8 9.3.3.2, result "abstract syntax not
supported"), and each request is checked again (the registry may change while an
association lives), a refused one answering 0124H "Refused: Not Authorized".
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from dataclasses import dataclass
from enum import StrEnum

from app.config import Modality
from app.context import ServerContext
from app.protocols.dimse_common import same_aet
from app.services import remotes

log = logging.getLogger(__name__)

NOT_AUTHORIZED = 0x0124  # PS3.7 C.4.? general status "Refused: Not Authorized"


class Service(StrEnum):
    ECHO = "echo"
    STORE = "store"
    FIND = "find"
    MOVE = "move"
    GET = "get"
    N_ACTION = "storage commitment request"  # N-ACTION, AllowNAction
    N_EVENT_REPORT = "storage commitment report"  # N-EVENT-REPORT, AllowEventReport


@dataclass(frozen=True)
class Peer:
    """The calling side of one association, as the policy saw it at negotiation."""

    calling_aet: str
    called_aet: str
    ip: str
    modality: Modality | None


def _modalities(context: ServerContext) -> list[Modality]:
    try:
        return list(remotes.modalities(context).values())
    except Exception:  # noqa: BLE001 - a broken registry must not open the door
        log.exception("Cannot read the DICOM modalities registry; using the configuration")
        return list(context.settings.dicom_modalities.values())


def _same_host(configured: str, ip: str) -> bool:
    """Orthanc compares the modality's Host with the peer's address; a host name is
    resolved so that "localhost" matches 127.0.0.1."""
    if configured == ip:
        return True
    try:
        wanted = ipaddress.ip_address(ip)
    except ValueError:
        return False
    try:
        resolved = {info[4][0] for info in socket.getaddrinfo(configured, None)}
    except OSError:
        return False
    return any(ipaddress.ip_address(address) == wanted for address in resolved
               if "%" not in address)


class Policy:
    """The Orthanc rules above, over the live settings and modality registry."""

    def __init__(self, context: ServerContext) -> None:
        self.context = context

    @property
    def settings(self):  # noqa: ANN201 - Settings, kept short
        return self.context.settings

    def lookup(self, calling_aet: str, ip: str) -> Modality | None:
        """The modality a calling AE is (AET, and host when DicomCheckModalityHost)."""
        check_host = self.settings.dicom_check_modality_host
        for modality in _modalities(self.context):
            if same_aet(modality.aet, calling_aet) and (
                    not check_host or _same_host(modality.host, ip)):
                return modality
        return None

    def rejection(self, calling_aet: str, called_aet: str, ip: str) -> int | None:
        """None to accept the association; else the A-ASSOCIATE-RJ reason (PS3.8 9.3.4)."""
        settings = self.settings
        if settings.dicom_check_called_aet and not same_aet(called_aet, settings.dicom_aet):
            log.warning("Association from %s (%s) rejected: called AET %r is not %r",
                        calling_aet, ip, called_aet, settings.dicom_aet)
            return 7  # called AE title not recognized
        if any(self._always(service) for service in Service):
            return None
        if self.lookup(calling_aet, ip) is None:
            log.warning("Association from unknown AET %r (%s) rejected", calling_aet, ip)
            return 3  # calling AE title not recognized
        return None

    def _always(self, service: Service) -> bool:
        """``DicomAlwaysAllow<Service>``: even unknown AETs may use the service."""
        settings = self.settings
        return bool({
            Service.ECHO: settings.dicom_always_allow_echo,
            Service.STORE: settings.dicom_always_allow_store,
            Service.FIND: settings.dicom_always_allow_find,
            Service.MOVE: settings.dicom_always_allow_move,
            Service.GET: settings.dicom_always_allow_get,
        }.get(service, False))  # no DicomAlwaysAllow* for storage commitment

    def allows(self, peer: Peer, service: Service) -> bool:
        if self._always(service):
            return True
        modality = peer.modality
        if modality is None:
            return False
        props = modality.properties or {}
        return {
            Service.ECHO: modality.allow_echo, Service.STORE: modality.allow_store,
            Service.FIND: modality.allow_find, Service.MOVE: modality.allow_move,
            Service.GET: modality.allow_get,
            Service.N_ACTION: bool(props.get("AllowNAction", True)),
            Service.N_EVENT_REPORT: bool(props.get("AllowEventReport", True)),
        }[service]

    def refresh(self, peer: Peer) -> Peer:
        """The same peer against the registry as it is now."""
        return Peer(peer.calling_aet, peer.called_aet, peer.ip,
                    self.lookup(peer.calling_aet, peer.ip))
