"""Pharos: a DICOM archive speaking Orthanc's REST API, DICOMweb and DIMSE over one store."""

__version__ = "0.1.0"

# The Orthanc REST API level Pharos answers as (`/system` "Version" and "ApiVersion"):
# Orthanc 1.13.0, whose suites (core and DICOMweb) pass at this version; the JSON of the
# routes is checked against Debian's Orthanc 1.10.1 by the differential tests. 1.12.11
# reports ApiVersion 30 (the Book's OpenAPI); 31 for 1.13.0 is the next one.
ORTHANC_API_VERSION = "1.13.0"
ORTHANC_API_LEVEL = 31


def orthanc_api_at_least(major: int, minor: int, revision: int) -> bool:
    """Whether the Orthanc version Pharos answers as (``ORTHANC_API_VERSION``) is at least
    *major.minor.revision*: where Orthanc's behaviour changed between versions in a way
    clients observe (``limit=0`` on lists from 1.12.5, ``IsProtected`` in patients from
    1.12.8...), Pharos behaves as the version it reports, as Orthanc's suite expects."""
    current = tuple(int(part) for part in ORTHANC_API_VERSION.split("."))
    return current >= (major, minor, revision)
