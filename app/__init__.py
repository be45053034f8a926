"""Pharos: a DICOM archive speaking Orthanc's REST API, DICOMweb and DIMSE over one store."""

__version__ = "0.1.0"

# The Orthanc REST API level Pharos answers as (`/system` "Version"): the shapes of
# Orthanc 1.12.1, whose labels and RequestedTags Pharos implements; the JSON of the
# routes is checked against Debian's Orthanc 1.10.1 by the differential tests.
ORTHANC_API_VERSION = "1.12.1"
ORTHANC_API_LEVEL = 22
