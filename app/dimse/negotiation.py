"""The presentation contexts the SCP accepts from one association (PS3.8 9.3.2.2), as
Orthanc's ``CommandDispatcher`` decides them:

* Verification, the Q/R Find/Move/Get models: the uncompressed syntaxes, for the
  services the calling AE may use (:mod:`app.dimse.security`);
* storage SOP classes: the accepted transfer syntaxes of the association
  (:func:`app.services.runtime.presentation_acceptance`: ``AcceptedTransferSyntaxes``,
  ``UnknownSopClassAccepted``), with whatever SCU/SCP role the requestor proposes (a
  C-GET requestor takes the SCP role); kept when C-STORE or C-GET is allowed;
* SOP classes the DICOM dictionary does not know ("promiscuous mode"), when unknown SOP
  classes are accepted and C-STORE is allowed: as storage, in the same syntaxes.

Only the abstract syntaxes the requestor proposes are built, and contexts are cached:
an association costs a few dictionary look-ups. The requestor's order of transfer
syntaxes wins (pynetdicom's acceptor, as Orthanc since 1.11.2).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from pydicom._uid_dict import UID_dictionary
from pydicom.uid import UID
from pynetdicom import build_context
from pynetdicom.presentation import PresentationContext

from app.dicom import storage_classes, transfer_syntaxes
from app.dimse.security import Service

STORAGE_COMMITMENT = "1.2.840.10008.1.20.1"  # Push Model SOP Class (PS3.4 J)
# Orthanc's "generic" syntaxes for non-storage services (CommandDispatcher.cpp).
GENERIC_SYNTAXES = ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2")
# Transfer syntaxes that are not network encodings of a data set (PS3.5 A.4-A.8 only
# describe encapsulated pixel data; RFC 2557 and XML are PS3.18/PS3.19 encodings).
_NOT_NETWORK = {"1.2.840.10008.1.2.6.1", "1.2.840.10008.1.2.6.2"}


STORAGE_CLASSES = storage_classes.KNOWN_SET


def is_unknown(abstract_syntax: str) -> bool:
    """A UID the DICOM dictionary does not know (DCMTK's ``dcmFindNameOfUID`` is NULL)."""
    return abstract_syntax not in UID_dictionary


def network_syntaxes(accepted: Iterable[str]) -> tuple[str, ...]:
    """The accepted syntaxes usable on an association, Explicit VR Little Endian first
    (Orthanc's preference: it keeps the VR of private tags)."""
    usable = [ts for ts in accepted if ts not in _NOT_NETWORK and UID(ts).is_transfer_syntax]
    first = transfer_syntaxes.EXPLICIT_LITTLE_ENDIAN
    return tuple(([first] if first in usable else []) + [ts for ts in usable if ts != first])


@lru_cache(maxsize=4096)
def _context(abstract_syntax: str, syntaxes: tuple[str, ...], roles: bool) -> PresentationContext:
    context = build_context(abstract_syntax, list(syntaxes))
    if roles:  # accept the role the requestor proposes (PS3.7 D.3.3.4), as AE does
        context.scu_role = True
        context.scp_role = True
    return context


def supported_contexts(proposed: Iterable[str], services: dict[str, Service],
                       allowed: set[Service], storage_syntaxes: tuple[str, ...],
                       unknown_accepted: bool,
                       accepted_classes: frozenset[str] = STORAGE_CLASSES,
                       rejected_classes: frozenset[str] = frozenset(),
                       ) -> list[PresentationContext]:
    """The contexts to support for the proposed abstract syntaxes.

    *services* maps the non-storage abstract syntaxes the SCP serves to their service;
    *storage_syntaxes* are :func:`network_syntaxes` of the association's acceptance;
    *accepted_classes* the storage SOP classes accepted (Orthanc 1.12.6's
    ``AcceptedSopClasses``: a class left out, known or not, is refused, as Orthanc
    refuses it); a class in *rejected_classes* is refused even in promiscuous mode.
    """
    answer: list[PresentationContext] = []
    storage = bool(storage_syntaxes) and bool({Service.STORE, Service.GET} & allowed)
    for abstract_syntax in dict.fromkeys(str(uid) for uid in proposed):
        service = services.get(abstract_syntax)
        if abstract_syntax == STORAGE_COMMITMENT:
            # SCU role to ask for commitment (N-ACTION), SCP role to report (N-EVENT-REPORT)
            commitment = {Service.N_ACTION, Service.N_EVENT_REPORT} & allowed
            wanted = (GENERIC_SYNTAXES, True) if commitment else None
        elif service is not None:
            wanted = (GENERIC_SYNTAXES, False) if service in allowed else None
        elif abstract_syntax in accepted_classes:
            wanted = (storage_syntaxes, True) if storage else None
        elif abstract_syntax in STORAGE_CLASSES or abstract_syntax in rejected_classes:
            wanted = None  # a known storage class that AcceptedSopClasses leaves out
        elif unknown_accepted and is_unknown(abstract_syntax) and storage_syntaxes \
                and Service.STORE in allowed:
            wanted = (storage_syntaxes, False)
        else:
            wanted = None
        if wanted is not None:
            try:
                answer.append(_context(abstract_syntax, *wanted))
            except ValueError:  # not a UID pynetdicom takes: the context is refused
                continue
    return answer
