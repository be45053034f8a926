"""Typed models of Orthanc's JSON shapes, for the OpenAPI document and code generators.

Routes return pre-serialised JSON (orjson) for speed and declare these models as their
documented answers, so the spec is precise without validating every answer at run time.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

_BINARY = {"schema": {"type": "string", "format": "binary"}}
RAW_DICOM_BODY = {"requestBody": {"required": True, "content": {
    "application/dicom": _BINARY, "application/zip": _BINARY,
    "application/octet-stream": _BINARY}}}
JSON_BODY_ANY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": {}}}}}


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow")


class InstanceStored(_Model):
    ID: str
    ParentPatient: str
    ParentStudy: str
    ParentSeries: str
    Path: str
    Status: str = Field(description="Success or AlreadyStored")


class PatientResource(_Model):
    ID: str
    Type: str
    IsStable: bool
    LastUpdate: str
    MainDicomTags: dict[str, str]
    Studies: list[str]
    Labels: list[str]


class StudyResource(_Model):
    ID: str
    Type: str
    IsStable: bool
    LastUpdate: str
    MainDicomTags: dict[str, str]
    ParentPatient: str
    PatientMainDicomTags: dict[str, str]
    Series: list[str]
    Labels: list[str]


class SeriesResource(_Model):
    ID: str
    Type: str
    IsStable: bool
    LastUpdate: str
    MainDicomTags: dict[str, str]
    ParentStudy: str
    Instances: list[str]
    ExpectedNumberOfInstances: int | None
    Status: str
    Labels: list[str]


class InstanceResource(_Model):
    ID: str
    Type: str
    MainDicomTags: dict[str, str]
    ParentSeries: str
    FileSize: int
    FileUuid: str
    IndexInSeries: int | None
    Labels: list[str]


class AncestorRef(_Model):
    ID: str
    Path: str
    Type: str


class DeleteAnswer(_Model):
    RemainingAncestor: AncestorRef | None


class Change(_Model):
    ChangeType: str
    Date: str
    ID: str
    Path: str
    ResourceType: str
    Seq: int


class Changes(_Model):
    Changes: list[Change]
    Done: bool
    Last: int


class Exports(_Model):
    Exports: list[dict[str, object]]
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
    Version: str
    PharosVersion: str


class OrthancError(_Model):
    HttpError: str
    HttpStatus: int
    Message: str
    Method: str
    OrthancError: str
    OrthancStatus: int
    Uri: str
    Details: str | None = None


RESOURCE_MODEL = {"Patient": PatientResource, "Study": StudyResource, "Series": SeriesResource,
                  "Instance": InstanceResource}
ERROR_RESPONSES = {400: {"model": OrthancError}, 404: {"model": OrthancError}}
