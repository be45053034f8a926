"""DICOMweb: QIDO-RS, WADO-RS, STOW-RS (one router, mounted at /dicom-web and /rs)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()

# WADO-URI lives at /wado (Orthanc's WadoRoot), outside the DICOMweb root.
wado_uri_router = APIRouter()
