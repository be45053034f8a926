"""Pharos: a DICOM archive speaking Orthanc's REST API, DICOMweb and DIMSE over one store."""

__version__ = "0.1.0"

# The Orthanc REST API level Pharos answers as (`/system` "Version"): the shapes of
# Orthanc 1.12.1, whose labels and RequestedTags Pharos implements; the JSON of the
# routes is checked against Debian's Orthanc 1.10.1 by the differential tests.
ORTHANC_API_VERSION = "1.12.1"
ORTHANC_API_LEVEL = 22


def orthanc_api_at_least(major: int, minor: int, revision: int) -> bool:
    """Whether the Orthanc version Pharos answers as (``ORTHANC_API_VERSION``) is at least
    *major.minor.revision*: where Orthanc's behaviour changed between versions in a way
    clients observe (``limit=0`` on lists from 1.12.5, ``IsProtected`` in patients from
    1.12.8...), Pharos behaves as the version it reports, as Orthanc's suite expects."""
    current = tuple(int(part) for part in ORTHANC_API_VERSION.split("."))
    return current >= (major, minor, revision)
