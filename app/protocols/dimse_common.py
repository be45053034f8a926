"""Pieces shared by the DIMSE SCP and SCU: sockets, transfer syntaxes, Part 10 framing.

Nothing here touches the index or the blob store: these are pure helpers over pynetdicom
events and DICOM bytes.
"""

from __future__ import annotations

import io
import logging
import socket
import struct
from dataclasses import dataclass
from typing import Any

from pydicom.dataset import FileMetaDataset
from pydicom.filereader import _read_file_meta_info, read_preamble
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    AllTransferSyntaxes,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)
from pynetdicom import evt

from app import __version__

log = logging.getLogger(__name__)

# Pharos' Implementation Class UID on associations (PS3.7 D.3.3.2), under the
# UUID-derived root 2.25 (PS3.5 B.2).
IMPLEMENTATION_CLASS_UID = "2.25.181093346715262331846383427376127357491"
IMPLEMENTATION_VERSION_NAME = f"PHAROS_{__version__}"[:16]
# In the file meta information of instances received over the network (PS3.10 7.1), the
# implementation that encodes it: pydicom's file meta writer (its implementation UID),
# Pharos' version name padded with insignificant trailing spaces to the SH maximum.
# The meta group then has the length DCMTK gives Orthanc's (a 27-character UID, a
# 16-character name, no SourceApplicationEntityTitle), so the PixelDataOffset metadata
# of an instance received over DIMSE is the one Orthanc reports for the same data set.
FILE_META_IMPLEMENTATION_UID = str(PYDICOM_IMPLEMENTATION_UID)
FILE_META_VERSION_NAME = IMPLEMENTATION_VERSION_NAME.ljust(16)

UNCOMPRESSED = (ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian)
# Every transfer syntax pydicom knows, uncompressed first (the acceptor picks the first
# one it supports from the requestor's list, PS3.8 9.3.2.2). JPIP referenced syntaxes
# carry no pixels and are left out.
ACCEPTED_TRANSFER_SYNTAXES = list(UNCOMPRESSED) + [DeflatedExplicitVRLittleEndian] + [
    ts for ts in AllTransferSyntaxes
    if ts not in UNCOMPRESSED and ts != DeflatedExplicitVRLittleEndian
    and "JPIP" not in ts.name]


def enable_tcp_nodelay(event: evt.Event) -> None:
    """EVT_CONN_OPEN handler: turn Nagle's algorithm off on the association's socket.

    Without it every small PDU (a C-STORE-RSP, a command set) waits for the peer's
    delayed ACK, ~40 ms per C-STORE on Linux. pynetdicom triggers EVT_CONN_OPEN right
    after connect() (requestor) and accept() (acceptor), before any PDU is exchanged.
    """
    try:
        sock = event.assoc.dul.socket.socket if event.assoc.dul.socket else None
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (OSError, AttributeError) as error:  # never fail an association for this
        log.debug("Cannot set TCP_NODELAY: %s", error)


def seconds(timeout: float | int | None) -> float | None:
    """Orthanc's timeouts: 0 means "no timeout"."""
    if timeout is None or timeout <= 0:
        return None
    return float(timeout)


@dataclass(frozen=True)
class Part10:
    """A DICOM file split into its file meta information and its raw data set."""

    meta: FileMetaDataset
    dataset_offset: int

    @property
    def sop_class_uid(self) -> str:
        return str(self.meta.get("MediaStorageSOPClassUID", "")).strip("\0 ")

    @property
    def sop_instance_uid(self) -> str:
        return str(self.meta.get("MediaStorageSOPInstanceUID", "")).strip("\0 ")

    @property
    def transfer_syntax_uid(self) -> str:
        return str(self.meta.get("TransferSyntaxUID", "")).strip("\0 ")


def split_part10(data: bytes) -> Part10:
    """The file meta and the offset of the data set (PS3.10 7.1); ValueError if absent."""
    stream = io.BytesIO(data)
    try:
        read_preamble(stream, False)
        meta = _read_file_meta_info(stream)
    except Exception as error:  # noqa: BLE001 - pydicom raises many kinds
        raise ValueError(f"not a DICOM Part 10 file: {error}") from error
    part = Part10(meta, stream.tell())
    if not (part.sop_class_uid and part.sop_instance_uid and part.transfer_syntax_uid):
        raise ValueError("the file meta information lacks the SOP class, the SOP instance "
                         "or the transfer syntax UID")
    return part


def part10_bytes(dataset: bytes, *, sop_class_uid: str, sop_instance_uid: str,
                 transfer_syntax_uid: str) -> bytes:
    """A Part 10 file around a data set received over the network, kept byte for byte.

    The meta header is ours (PS3.10 7.1: the application writing the file fills it);
    like Orthanc's, it names no SourceApplicationEntityTitle (type 3): the sender is
    recorded in the instance's RemoteAET metadata.
    """
    meta = _file_meta_bytes(sop_class_uid, sop_instance_uid, transfer_syntax_uid)
    if meta is None:  # a value _file_meta_bytes does not encode: pydicom's writer decides
        meta = _pydicom_file_meta_bytes(sop_class_uid, sop_instance_uid, transfer_syntax_uid)
    return b"".join((_PREAMBLE, meta, dataset))


_PREAMBLE = b"\0" * 128 + b"DICM"


def _pydicom_file_meta_bytes(sop_class_uid: str, sop_instance_uid: str,
                             transfer_syntax_uid: str) -> bytes:
    meta = FileMetaDataset()
    meta.FileMetaInformationVersion = b"\x00\x01"
    meta.MediaStorageSOPClassUID = UID(sop_class_uid)
    meta.MediaStorageSOPInstanceUID = UID(sop_instance_uid)
    meta.TransferSyntaxUID = UID(transfer_syntax_uid)
    meta.ImplementationClassUID = UID(FILE_META_IMPLEMENTATION_UID)
    meta.ImplementationVersionName = FILE_META_VERSION_NAME
    buffer = io.BytesIO()
    write_file_meta_info(buffer, meta, enforce_standard=True)  # type: ignore[arg-type]
    return buffer.getvalue()


def _short_element(element: int, vr: bytes, value: bytes, pad: bytes) -> bytes:
    """One group 0002 element, Explicit VR Little Endian, 2-byte length (PS3.5 7.1.2)."""
    if len(value) % 2:
        value += pad
    return struct.pack("<HH2sH", 0x0002, element, vr, len(value)) + value


def _file_meta_bytes(sop_class_uid: str, sop_instance_uid: str,
                     transfer_syntax_uid: str) -> bytes | None:
    """The file meta information pydicom's ``write_file_meta_info`` writes for these
    values, encoded directly (0.2 ms less per C-STORE); None for values it does not
    handle (non-ASCII, empty or over-long), left to pydicom."""
    uids = (sop_class_uid, sop_instance_uid, transfer_syntax_uid)
    if not all(0 < len(uid) <= 64 and uid.isascii() for uid in uids):
        return None
    body = b"".join((
        b"\x02\x00\x01\x00OB\x00\x00\x02\x00\x00\x00\x00\x01",  # (0002,0001) version 1
        _short_element(0x0002, b"UI", sop_class_uid.encode(), b"\0"),
        _short_element(0x0003, b"UI", sop_instance_uid.encode(), b"\0"),
        _short_element(0x0010, b"UI", transfer_syntax_uid.encode(), b"\0"),
        _IMPLEMENTATION_ELEMENTS))
    return struct.pack("<HH2sHL", 0x0002, 0x0000, b"UL", 4, len(body)) + body


_IMPLEMENTATION_ELEMENTS = (
    _short_element(0x0012, b"UI", FILE_META_IMPLEMENTATION_UID.encode(), b"\0")
    + _short_element(0x0013, b"SH", FILE_META_VERSION_NAME.encode(), b" "))


def received_dataset_bytes(request: Any) -> bytes:
    """The raw data set of a C-STORE request, as the peer encoded it."""
    data = request.DataSet
    if data is None:
        return b""
    if isinstance(data, io.BytesIO):
        return data.getvalue()
    data.seek(0)
    return bytes(data.read())


def ae_title(value: str | bytes | None) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return value.strip(" \0")


def same_aet(a: str, b: str, *, strict: bool = False) -> bool:
    """Orthanc's StrictAetComparison (default false): AETs compare case-insensitively."""
    a, b = ae_title(a), ae_title(b)
    return a == b if strict else a.upper() == b.upper()
