"""Typed models of Orthanc's JSON shapes, for the OpenAPI document and code generators.

Routes return pre-serialised JSON (orjson) for speed and declare these models as their
documented answers (``responses={200: {"model": ...}}``), so the spec is precise without
validating every answer at run time. Every model allows extra keys: Orthanc adds fields
between versions and clients must not break on them. ``app/api/openapi.py`` adds the error
responses (``OrthancError``) to every operation.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# Orthanc reads raw bodies whatever their Content-Type. application/octet-stream is listed
# so that code generators which only know that binary type (openapi-python-client) can send
# the bytes; app/api/openapi.py adds it to any raw body that lacks it.
_BINARY = {"schema": {"type": "string", "format": "binary"}}
RAW_DICOM_BODY = {"requestBody": {
    "required": True,
    "description": "A DICOM file (Part 10), or a ZIP archive of DICOM files",
    "content": {"application/dicom": _BINARY, "application/zip": _BINARY,
                "application/octet-stream": _BINARY}}}
JSON_BODY_ANY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": {}}}}}

_TIMESTAMP = "Orthanc's timestamp, YYYYMMDDTHHMMSS"
_PUBLIC_ID = "An Orthanc identifier (SHA-1 based, 5 groups of 8 hex digits)"


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow")


class OrthancError(_Model):
    """Every 4xx/5xx answer of the REST API (same keys as Orthanc's)."""

    HttpError: str = Field(description="The HTTP reason phrase, e.g. Not Found")
    HttpStatus: int
    Message: str = Field(description="Orthanc's description of the error code")
    Method: str
    OrthancError: str
    OrthancStatus: int = Field(description="Orthanc's error code (ErrorCode enumeration)")
    Uri: str
    Details: str | None = Field(default=None, description="What exactly went wrong")


class InstanceStored(_Model):
    """The answer to ``POST /instances`` for one DICOM file."""

    ID: str = Field(description=_PUBLIC_ID)
    ParentPatient: str
    ParentStudy: str
    ParentSeries: str
    Path: str = Field(description="The REST path of the instance, /instances/{ID}")
    Status: str = Field(description="Success or AlreadyStored")


class _Resource(_Model):
    ID: str = Field(description=_PUBLIC_ID)
    MainDicomTags: dict[str, str] = Field(description="The main DICOM tags, by keyword")
    Labels: list[str]


class PatientResource(_Resource):
    Type: Literal["Patient"]
    IsStable: bool
    LastUpdate: str = Field(description=_TIMESTAMP)
    Studies: list[str]


class StudyResource(_Resource):
    Type: Literal["Study"]
    IsStable: bool
    LastUpdate: str = Field(description=_TIMESTAMP)
    ParentPatient: str
    PatientMainDicomTags: dict[str, str]
    Series: list[str]


class SeriesResource(_Resource):
    Type: Literal["Series"]
    IsStable: bool
    LastUpdate: str = Field(description=_TIMESTAMP)
    ParentStudy: str
    Instances: list[str]
    ExpectedNumberOfInstances: int | None
    Status: str = Field(description="Unknown, Complete, Missing or Inconsistent")


class InstanceResource(_Resource):
    Type: Literal["Instance"]
    ParentSeries: str
    FileSize: int
    FileUuid: str
    IndexInSeries: int | None


class AncestorRef(_Model):
    ID: str
    Path: str
    Type: str


class DeleteAnswer(_Model):
    RemainingAncestor: AncestorRef | None = Field(
        description="The nearest ancestor left, null when none is left")


class Change(_Model):
    ChangeType: str = Field(description="NewInstance, StableStudy, Deleted...")
    Date: str = Field(description=_TIMESTAMP)
    ID: str
    Path: str
    ResourceType: str
    Seq: int


class Changes(_Model):
    Changes: list[Change]
    Done: bool
    Last: int


class Exports(_Model):
    Exports: list[dict[str, Any]]
    Done: bool
    Last: int


class ResourceStatistics(_Model):
    CountStudies: int | None = None
    CountSeries: int | None = None
    CountInstances: int | None = None
    DiskSize: str
    DiskSizeMB: int
    UncompressedSize: str
    UncompressedSizeMB: int
    DicomDiskSize: str
    DicomDiskSizeMB: int
    DicomUncompressedSize: str
    DicomUncompressedSizeMB: int


class GlobalStatistics(_Model):
    CountInstances: int
    CountPatients: int
    CountSeries: int
    CountStudies: int
    TotalDiskSize: str
    TotalDiskSizeMB: int
    TotalUncompressedSize: str
    TotalUncompressedSizeMB: int


class SystemInfo(_Model):
    ApiVersion: int
    DatabaseVersion: int
    DicomAet: str
    DicomPort: int
    HttpPort: int
    Name: str
    Version: str = Field(description="The Orthanc version whose REST API Pharos answers as")
    PharosVersion: str


# Shapes ready for routes that still document no answer (see app/api/openapi.py).

class EmptyAnswer(_Model):
    """``{}``: Orthanc's answer to a successful command that has nothing to say."""


class JobAnswer(_Model):
    """A job was submitted (``Asynchronous``): where to follow it."""

    ID: str
    Path: str = Field(description="/jobs/{ID}")


class Job(_Model):
    """One job of ``/jobs/{id}`` (and of ``/jobs?expand``)."""

    ID: str
    Type: str
    State: str = Field(description="Pending, Running, Success, Failure, Paused or Retry")
    Progress: int
    Priority: int
    CreationTime: str = Field(description=_TIMESTAMP)
    CompletionTime: str | None = None
    EffectiveRuntime: float
    ErrorCode: int
    ErrorDescription: str
    ErrorDetails: str
    Timestamp: str
    Content: dict[str, Any]


RESOURCE_MODEL = {"Patient": PatientResource, "Study": StudyResource, "Series": SeriesResource,
                  "Instance": InstanceResource}
ERROR_RESPONSES = {400: {"model": OrthancError}, 404: {"model": OrthancError}}
