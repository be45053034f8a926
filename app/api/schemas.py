"""Typed models of Orthanc's JSON shapes, for the OpenAPI document and code generators.

Routes return pre-serialised JSON (orjson ``JsonResponse``) for speed and declare these
models as their documented answers (``response_model=`` or ``responses={200: {"model":
...}}``): FastAPI documents them, and never validates nor re-serialises an answer that is
already a response, so the spec is precise at no run-time cost. Every model allows extra keys: Orthanc adds fields
between versions and clients must not break on them. ``app/api/openapi.py`` adds the error
responses (``OrthancError``) to every operation.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# Orthanc reads raw bodies whatever their Content-Type; each is declared with the one media
# type its content is (app/api/openapi.py says why only one).
_BINARY = {"schema": {"type": "string", "format": "binary"}}
RAW_DICOM_BODY = {"requestBody": {
    "required": True,
    "description": "A DICOM file (Part 10), or a ZIP archive of DICOM files (read the same "
                   "whatever the Content-Type: application/zip, application/octet-stream...)",
    "content": {"application/dicom": _BINARY}}}
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


class FullTag(_Model):
    """A tag in Orthanc's full format (``?full`` / ``"Full": true``)."""

    Name: str = Field(description="The tag's keyword")
    Type: str = Field(description="String, Null, Sequence...")
    Value: Any


# Simplified (the default, {keyword: value}), short ({gggg,eeee: value}) or full
# ({gggg,eeee: {Name, Type, Value}}).
TagValues = dict[str, str | FullTag]


class _Resource(_Model):
    ID: str = Field(description=_PUBLIC_ID)
    MainDicomTags: TagValues = Field(description="The main DICOM tags (by keyword; by "
                                                 "gggg,eeee with short or full)")
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
    PatientMainDicomTags: TagValues
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


class PartialResource(_Model):
    """A resource with only the parts ``?response-content=`` (Orthanc 1.12.5) asked for."""

    ID: str = Field(description=_PUBLIC_ID)
    Type: Literal["Patient", "Study", "Series", "Instance"]


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
    First: int | None = Field(None, description="The first change answered (absent when "
                              "none is): its Seq - 1 is the 'to' of the previous page")


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
    PharosVersion: str | None = Field(default=None, description="Pharos' own version "
                                      "(absent from Orthanc's answer)")
    Capabilities: dict[str, bool] | None = Field(
        default=None, description="The optional features of Orthanc's database back-ends (1.12.5+)")
    DatabaseServerIdentifier: str | None = Field(
        default=None, description="This node among those sharing the index: the option of that "
        "name, else a hash of the host's MAC addresses, DicomAet and the ports (1.12.0+)")
    DicomDefaultRetrieveMethod: str | None = Field(
        default=None, description="C-MOVE or C-GET: how /queries/{id}/retrieve fetches (1.12.6+)")


class EmptyAnswer(_Model):
    """``{}``: Orthanc's answer to a successful command that has nothing to say."""


class JobAnswer(_Model):
    """A job was submitted (``Asynchronous``): where to follow it."""

    ID: str = Field(description="The job's identifier")
    Path: str = Field(description="/jobs/{ID}")


class Job(_Model):
    """One job of ``/jobs/{id}`` (and of ``/jobs?expand``)."""

    ID: str
    Type: str
    State: str = Field(description="Pending, Running, Success, Failure, Paused or Retry")
    Progress: int
    Priority: int
    CreationTime: str = Field(description=_TIMESTAMP)
    CompletionTime: str | None = Field(default=None,
                                       description=_TIMESTAMP + ", once the job is done")
    EffectiveRuntime: float
    ErrorCode: int
    ErrorDescription: str
    ErrorDetails: str
    Timestamp: str
    Content: dict[str, Any]


class ResourceRef(_Model):
    """Where a resource is: ``{ID, Path, Type}``."""

    ID: str = Field(description=_PUBLIC_ID)
    Path: str = Field(description="/patients/{ID}, /studies/{ID}, /series/{ID} or /instances/{ID}")
    Type: str = Field(description="Patient, Study, Series or Instance")


class CreatedResource(_Model):
    """A resource created by ``/tools/create-dicom``: the instance, or the series of a
    multi-frame PDF/image set."""

    ID: str = Field(description=_PUBLIC_ID)
    Path: str = Field(description="/instances/{ID} (or /series/{ID})")


class CreatedQuery(_Model):
    """A C-FIND was run; its answers are kept at ``Path``."""

    ID: str
    Path: str = Field(description="/queries/{ID}")


class _JobContent(_Model):
    Description: str


class ModificationResult(_JobContent):
    """The content of a modification or anonymization job (the synchronous answer)."""

    ID: str = Field(description="The new resource")
    Path: str
    PatientID: str = Field(description="The Orthanc identifier of the new patient")
    Type: str
    FailedInstancesCount: int
    InstancesCount: int
    IsAnonymization: bool


class BulkModificationResult(_JobContent):
    """The content of a ``/tools/bulk-modify`` or ``/tools/bulk-anonymize`` job."""

    FailedInstancesCount: int
    InstancesCount: int
    IsAnonymization: bool
    Resources: list[ResourceRef] = Field(description="The new resources")
    Transcode: str | None = None


class MergeResult(_JobContent):
    """The content of a ``/studies/{id}/merge`` job."""

    FailedInstancesCount: int
    InstancesCount: int
    TargetStudy: str


class SplitResult(_JobContent):
    """The content of a ``/studies/{id}/split`` job."""

    FailedInstancesCount: int
    InstancesCount: int
    TargetStudy: str | None = Field(default=None, description="The new study, once created")
    TargetStudyUID: str


class StoreResult(_JobContent):
    """The content of a C-STORE job (``/modalities/{name}/store``)."""

    FailedInstancesCount: int
    InstancesCount: int
    LocalAet: str
    ParentResources: list[str]
    RemoteAet: str


class RetrieveResult(_JobContent):
    """The content of a C-MOVE or C-GET job."""

    LocalAet: str
    Query: list[dict[str, Any]]
    RemoteAet: str


class PeerStoreResult(_JobContent):
    """The content of a ``/peers/{name}/store`` job."""

    Compress: bool
    FailedInstancesCount: int
    InstancesCount: int
    ParentResources: list[str]
    Peer: list[str] = Field(description="[URL] or [URL, username]")
    Size: str
    SizeMB: int


class StoreStraightResult(_Model):
    """What was sent by ``/modalities/{name}/store-straight``."""

    SOPClassUID: str
    SOPInstanceUID: str


class ModalityConfiguration(_Model):
    """A DICOM modality, as ``/modalities?expand`` shows it."""

    AET: str
    Host: str
    Port: int
    Manufacturer: str
    LocalAet: str
    Timeout: int
    AllowEcho: bool
    AllowEventReport: bool
    AllowFind: bool
    AllowFindWorklist: bool
    AllowGet: bool
    AllowMove: bool
    AllowNAction: bool
    AllowStore: bool
    AllowTranscoding: bool
    UseDicomTls: bool


class PeerConfiguration(_Model):
    """An Orthanc peer, as ``/peers?expand`` shows it (never its password)."""

    Url: str
    HttpHeaders: list[str] = Field(description="The names of the HTTP headers sent")
    Pkcs11: bool
    Timeout: int
    Username: str | None = None
    Password: None = Field(default=None, description="Always null (hidden) when set")


class AttachmentInfo(_Model):
    """``/{level}/{id}/attachments/{name}/info``."""

    CompressedMD5: str
    CompressedSize: int
    ContentType: int
    UncompressedMD5: str
    UncompressedSize: int
    Uuid: str


RESOURCE_MODEL = {"Patient": PatientResource, "Study": StudyResource, "Series": SeriesResource,
                  "Instance": InstanceResource}
ERROR_RESPONSES = {400: {"model": OrthancError}, 404: {"model": OrthancError}}


# --- request bodies ------------------------------------------------------------------------
# Documentation only: the routes read their bodies themselves, with Orthanc's rules (keys
# are case-sensitive, levels case-insensitive, unknown keys ignored), so these models
# never refuse a request Orthanc accepts. Flat on purpose: a generated client gets one
# typed class per body, with no nested definitions to resolve.

_LEVEL = Literal["Patient", "Study", "Series", "Instance"]
_TAGS = "DICOM tags by keyword or gggg,eeee"


def json_body_of(model: type[BaseModel], description: str = "") -> dict[str, Any]:
    """``openapi_extra`` declaring a JSON request body described by *model*."""
    body: dict[str, Any] = {"required": True, "content": {
        "application/json": {"schema": model.model_json_schema()}}}
    if description:
        body["description"] = description
    return {"requestBody": body}


class FindRequest(_Model):
    """``/tools/find`` (and ``/tools/count-resources``): Orthanc's find, with Orthanc
    1.12.5's extended find (OrderBy, ResponseContent, MetadataQuery, Parent*)."""

    Level: _LEVEL
    Query: dict[str, str | list[str]] = Field(
        default_factory=dict, description=f"{_TAGS} to the value to match (wildcards, "
        "date ranges, backslash-separated lists)")
    Expand: bool = Field(default=False, description="Answer resources, not identifiers")
    Limit: int | None = Field(default=None, ge=0, description="At most this many (0: all)")
    Since: int | None = Field(default=None, ge=0, description="Skip this many first")
    CaseSensitive: bool = Field(default=True, description="PatientName etc. case-sensitive")
    RequestedTags: list[str] | None = Field(default=None, description=f"{_TAGS} to add")
    Labels: list[str] | None = Field(default=None, description="Labels to match")
    LabelsConstraint: Literal["All", "Any", "None"] = "All"
    OrderBy: list[dict[str, str]] | None = Field(
        default=None, description='[{"Type": "DicomTag"|"Metadata", "Key": ..., '
        '"Direction": "ASC"|"DESC"}], first key first')
    ResponseContent: list[str] | None = Field(
        default=None, description="MainDicomTags, Metadata, Children, Parent, Labels, "
        "Status, IsStable, IsProtected, Attachments, RequestedTags...")
    MetadataQuery: dict[str, str] | None = Field(default=None,
                                                 description="Metadata to the value to match")
    ParentPatient: str | None = Field(default=None, description=_PUBLIC_ID)
    ParentStudy: str | None = Field(default=None, description=_PUBLIC_ID)
    ParentSeries: str | None = Field(default=None, description=_PUBLIC_ID)
    Full: bool = Field(default=False, description="Tags as {gggg,eeee: {Name, Type, Value}}")
    Short: bool = Field(default=False, description="Tags as {gggg,eeee: value}")


class ModifyRequest(_Model):
    """``/{level}/{id}/modify``: Orthanc's modification."""

    Replace: dict[str, Any] = Field(default_factory=dict, description=f"{_TAGS} to new values")
    Remove: list[str] = Field(default_factory=list, description=f"{_TAGS} to remove")
    Keep: list[str] = Field(default_factory=list, description="Tags kept (e.g. UIDs)")
    RemovePrivateTags: bool = False
    Force: bool = Field(default=False, description="Allow changing identifiers")
    KeepSource: bool = Field(default=True, description="Keep the original resources")
    KeepLabels: bool = Field(default=False, description="Copy the labels (Orthanc 1.13)")
    Transcode: str | None = Field(default=None, description="Transfer syntax UID")
    PrivateCreator: str | None = None
    Asynchronous: bool = Field(default=False, description="Answer a job at once")
    Synchronous: bool = Field(default=True, description="Wait for the result")
    Priority: int = 0


class AnonymizeRequest(_Model):
    """``/{level}/{id}/anonymize``: Orthanc's anonymization (PS3.15 basic profile)."""

    Replace: dict[str, Any] = Field(default_factory=dict, description=f"{_TAGS} to new values")
    Remove: list[str] = Field(default_factory=list, description=f"{_TAGS} to remove")
    Keep: list[str] = Field(default_factory=list, description=f"{_TAGS} to keep as they are")
    KeepPrivateTags: bool = False
    DicomVersion: str | None = Field(default=None,
                                     description="2008, 2017c or 2021b (the profile)")
    Force: bool = False
    KeepSource: bool = True
    KeepLabels: bool = False
    Transcode: str | None = None
    PrivateCreator: str | None = None
    Asynchronous: bool = False
    Synchronous: bool = True
    Priority: int = 0


class ModalityQueryRequest(_Model):
    """``/modalities/{id}/query``: a C-FIND whose answers are kept at ``/queries/{id}``."""

    Level: _LEVEL
    Query: dict[str, str] = Field(default_factory=dict,
                                  description=f"{_TAGS} to match (C-FIND identifier)")
    Normalize: bool = Field(default=True, description="Keep only the level's keys")
    Timeout: int | None = Field(default=None, description="Seconds (DicomScuTimeout)")
