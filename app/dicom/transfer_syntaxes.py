"""The DICOM transfer syntaxes Orthanc knows, its groups, and its wildcard lists.

Orthanc (``Enumerations_TransferSyntaxes.impl.h``) enumerates 42 transfer syntaxes; the
C-STORE SCP accepts a subset of them, chosen by ``AcceptedTransferSyntaxes`` (UIDs with
``?``/``*`` wildcards; all of them when the option is absent), then each
``<Group>TransferSyntaxAccepted`` option present in the configuration adds (true) or
removes (false) a whole group (``OrthancConfiguration::GetAcceptedTransferSyntaxes``).
``GET /tools/accepted-transfer-syntaxes`` answers the accepted ones in the order of
Orthanc's enumeration, which is the order of :data:`ALL` below.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

# Orthanc's DicomTransferSyntax enumeration, in its order (PS3.5 Table A-1 / PS3.6 A-1).
ALL: tuple[str, ...] = (
    "1.2.840.10008.1.2",  # Implicit VR Little Endian
    "1.2.840.10008.1.2.1",  # Explicit VR Little Endian
    "1.2.840.10008.1.2.1.99",  # Deflated Explicit VR Little Endian
    "1.2.840.10008.1.2.2",  # Explicit VR Big Endian
    *(f"1.2.840.10008.1.2.4.{n}" for n in range(50, 67)),  # JPEG processes 1..29
    "1.2.840.10008.1.2.4.70",  # JPEG Lossless SV1
    "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81",  # JPEG-LS
    "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91",  # JPEG 2000
    "1.2.840.10008.1.2.4.92", "1.2.840.10008.1.2.4.93",  # JPEG 2000 multicomponent
    "1.2.840.10008.1.2.4.94", "1.2.840.10008.1.2.4.95",  # JPIP referenced (deflate)
    "1.2.840.10008.1.2.4.100", "1.2.840.10008.1.2.4.101",  # MPEG-2
    *(f"1.2.840.10008.1.2.4.{n}" for n in range(102, 107)),  # MPEG-4 AVC/H.264
    "1.2.840.10008.1.2.4.107", "1.2.840.10008.1.2.4.108",  # HEVC/H.265
    "1.2.840.10008.1.2.5",  # RLE Lossless
    "1.2.840.10008.1.2.6.1",  # RFC 2557 MIME encapsulation
    "1.2.840.10008.1.2.6.2",  # XML encoding
)

# The configuration options that switch a group on or off (ServerEnumerations.cpp).
GROUP_OPTIONS: dict[str, tuple[str, ...]] = {
    "DeflatedTransferSyntaxAccepted": ("1.2.840.10008.1.2.1.99",),
    "JpegTransferSyntaxAccepted": tuple(
        [f"1.2.840.10008.1.2.4.{n}" for n in range(50, 67)] + ["1.2.840.10008.1.2.4.70"]),
    "Jpeg2000TransferSyntaxAccepted": tuple(f"1.2.840.10008.1.2.4.{n}" for n in range(90, 94)),
    "JpegLosslessTransferSyntaxAccepted": ("1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"),
    "JpipTransferSyntaxAccepted": ("1.2.840.10008.1.2.4.94", "1.2.840.10008.1.2.4.95"),
    "Mpeg2TransferSyntaxAccepted": ("1.2.840.10008.1.2.4.100", "1.2.840.10008.1.2.4.101"),
    "Mpeg4TransferSyntaxAccepted": tuple(f"1.2.840.10008.1.2.4.{n}" for n in range(102, 107)),
    "RleTransferSyntaxAccepted": ("1.2.840.10008.1.2.5",),
    "H265TransferSyntaxAccepted": ("1.2.840.10008.1.2.4.107", "1.2.840.10008.1.2.4.108"),
}

EXPLICIT_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"


def _wildcard(pattern: str) -> re.Pattern[str]:
    """Orthanc's ``WildcardToRegularExpression``: ``*`` any run, ``?`` one character."""
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile("".join(parts))


def matching(patterns: str | Iterable[Any]) -> tuple[str, ...]:
    """The known transfer syntaxes matched by a pattern or a list of patterns, in
    Orthanc's order; ValueError for a list holding something else than strings
    (Orthanc's ``ParseAcceptedTransferSyntaxes``: BadFileFormat)."""
    if isinstance(patterns, str):
        patterns = [patterns]
    elif not isinstance(patterns, list | tuple):
        raise ValueError("expected a transfer syntax UID or a list of them")
    compiled = []
    for pattern in patterns:
        if not isinstance(pattern, str):
            raise ValueError("each accepted transfer syntax must be a string")
        compiled.append(_wildcard(pattern.strip()))
    return tuple(uid for uid in ALL if any(p.fullmatch(uid) for p in compiled))


def from_configuration(document: Mapping[str, Any]) -> tuple[str, ...]:
    """The accepted transfer syntaxes an Orthanc configuration file defines."""
    option = document.get("AcceptedTransferSyntaxes")
    accepted = set(ALL if option is None else matching(option))
    for name, group in GROUP_OPTIONS.items():
        value = document.get(name)
        if isinstance(value, bool):
            if value:
                accepted.update(group)
            else:
                accepted.difference_update(group)
    return tuple(uid for uid in ALL if uid in accepted)


def ordered(uids: Iterable[str]) -> tuple[str, ...]:
    """Known UIDs among *uids*, in Orthanc's order, each once."""
    wanted = set(uids)
    return tuple(uid for uid in ALL if uid in wanted)
