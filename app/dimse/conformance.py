"""The DICOM conformance statement of the DIMSE server, as ``/tools/dicom-conformance``
answers it (Orthanc answers DCMTK's text).  Built from the same lists the SCP registers
(``app.dimse.scp.build_ae``), so it cannot drift from what associations accept."""

from __future__ import annotations

from pydicom.uid import UID
from pynetdicom import AllStoragePresentationContexts

from app.dimse.handlers import SERVICE_OF_SOP_CLASS
from app.protocols.dimse_common import ACCEPTED_TRANSFER_SYNTAXES, UNCOMPRESSED


def _line(uid: str) -> str:
    name = UID(uid).name
    return f"  {name} ({uid})" if name != uid else f"  {uid}"


def conformance_statement() -> str:
    lines = [
        "Pharos DICOM conformance statement (DIMSE services)",
        "",
        "Application entity: one AE, title from DicomAet; SCP on DicomPort, SCU for "
        "C-ECHO, C-STORE, C-FIND, C-MOVE and C-GET towards DicomModalities.",
        "",
        "== Verification, query/retrieve and worklist SOP classes (SCP) ==",
        "Transfer syntaxes: " + ", ".join(f"{UID(ts).name} ({ts})" for ts in UNCOMPRESSED),
    ]
    for sop_class, service in SERVICE_OF_SOP_CLASS.items():
        lines.append(f"{_line(sop_class)}: {service.name}")
    lines += ["", "== Storage SOP classes (SCP, and SCU for C-GET sub-operations) ==",
              "Transfer syntaxes accepted:"]
    lines += [_line(str(ts)) for ts in ACCEPTED_TRANSFER_SYNTAXES]
    lines += ["Abstract syntaxes:"]
    lines += [_line(str(cx.abstract_syntax)) for cx in AllStoragePresentationContexts]
    lines += ["", "Unknown SOP classes are stored when UnknownSopClassAccepted is true.", ""]
    return "\n".join(lines)
