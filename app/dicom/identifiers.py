"""Orthanc's public resource identifiers (``DicomInstanceHasher``).

Each identifier is the SHA-1 of the identifying UIDs joined with ``|``, written as five
groups of eight hexadecimal digits: patient = SHA1(PatientID), study =
SHA1(PatientID|StudyInstanceUID), series = SHA1(...|SeriesInstanceUID), instance =
SHA1(...|SOPInstanceUID). Bit for bit the same as Orthanc, so that IDs travel between
an Orthanc and Pharos.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

OrthancId = str


def orthanc_hash(text: str) -> OrthancId:
    digest = hashlib.sha1(text.encode("utf-8")).hexdigest()
    return "-".join(digest[i:i + 8] for i in range(0, 40, 8))


@dataclass(frozen=True, slots=True)
class ResourceIds:
    """The four public identifiers of one instance's hierarchy."""

    patient: OrthancId
    study: OrthancId
    series: OrthancId
    instance: OrthancId

    @classmethod
    def compute(cls, patient_id: str, study_uid: str, series_uid: str,
                sop_uid: str) -> ResourceIds:
        return cls(
            patient=orthanc_hash(patient_id),
            study=orthanc_hash(f"{patient_id}|{study_uid}"),
            series=orthanc_hash(f"{patient_id}|{study_uid}|{series_uid}"),
            instance=orthanc_hash(f"{patient_id}|{study_uid}|{series_uid}|{sop_uid}"),
        )


def is_orthanc_id(text: str) -> bool:
    """True when *text* has the shape of an Orthanc identifier (5x8 lower-case hex)."""
    parts = text.split("-")
    return len(parts) == 5 and all(
        len(p) == 8 and all(c in "0123456789abcdef" for c in p) for p in parts)
