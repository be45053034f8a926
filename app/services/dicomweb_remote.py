"""The DICOMweb client's use cases (Orthanc's plugin, ``DicomWebClient.cpp``): talk to a
remote DICOMweb server registered in :mod:`app.services.dicomweb_servers`.

* ``get``: any GET (QIDO-RS, WADO-RS, rendered...) answered as the remote answered it;
* ``qido``: a QIDO-RS search answered in Orthanc's simplified form;
* ``delete``: DELETE a study, series or instance (servers with ``HasDelete``);
* ``stow``: send local resources (Orthanc IDs of any level) in one STOW-RS request, as the
  job ``DicomWebStowClient``, synchronous by default;
* ``retrieve`` / ``wado``: WADO-RS retrieve of studies, series or instances (or of any
  URI answering multipart DICOM) into this server, as the job
  ``DicomWebWadoRetrieveClient`` (synchronous by default for ``retrieve``, not for
  ``wado``).

Jobs carry the server's parameters in their payload, so a job runs against what was
asked even if the server is changed or removed meanwhile. Memory stays flat: STOW-RS
bodies are generated file by file, WADO-RS answers are parsed part by part as they
arrive, each part stored then dropped.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import IO, Any

from pydicom.datadict import keyword_for_tag

from app.context import ServerContext
from app.dicom.levels import Level
from app.errors import BadFileFormat, NetworkProtocol, PharosError, UnknownResource
from app.index import repository
from app.jobs import queue
from app.jobs.kinds import CancelCheck, JobInterrupted, ProgressCallback
from app.protocols.dicomweb_http import (
    CHUNK,
    DicomWebConnection,
    json_answer,
    resource_uri,
)
from app.protocols.multipart import iter_parts, parse_media_type
from app.services import outgoing
from app.services.dicomweb import open_blob
from app.services.dicomweb_servers import DicomWebServer, get_server
from app.services.ingest import ingest_instance

STOW_JOB = "DicomWebStowClient"
RETRIEVE_JOB = "DicomWebWadoRetrieveClient"
UNIVERSAL_ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*'
# Answers of /get are spooled (memory below this, disk above) before they are relayed.
SPOOL_THRESHOLD = 8 << 20
_NOT_RELAYED = {"transfer-encoding", "content-length", "connection", "keep-alive",
                "content-type"}
MEBIBYTE = 1024 * 1024


# --- request bodies ---------------------------------------------------------------------------

def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadFileFormat("The body must be a JSON object")
    return body


def _strings(body: dict[str, Any], key: str) -> dict[str, str]:
    """An optional object of strings (``HttpHeaders``, ``Arguments``, ``GetArguments``)."""
    value = body.get(key, {})
    if not isinstance(value, dict) or not all(isinstance(v, str | int | float)
                                              for v in value.values()):
        raise BadFileFormat(f'"{key}" must be an object of strings')
    return {str(k): str(v) for k, v in value.items()}


@dataclass(frozen=True)
class GetRequest:
    """``{"Uri", "HttpHeaders", "Arguments"}`` of ``/get``, ``/qido`` and ``/wado``."""

    uri: str
    headers: dict[str, str]

    @classmethod
    def parse(cls, body: Any) -> GetRequest:
        body = _object(body)
        uri = body.get("Uri")
        if not isinstance(uri, str) or not uri:
            raise BadFileFormat('A request to the DICOMweb client must provide a JSON object '
                                'with the field "Uri" containing the URI of interest')
        return cls(resource_uri(uri, _strings(body, "Arguments")),
                   _strings(body, "HttpHeaders"))


def synchronous(body: dict[str, Any], default: bool) -> bool:
    """``Synchronous``, or the negation of ``Asynchronous``, else *default*."""
    if isinstance(body.get("Synchronous"), bool):
        return bool(body["Synchronous"])
    if isinstance(body.get("Asynchronous"), bool):
        return not body["Asynchronous"]
    return default


def _connection(context: ServerContext, server: DicomWebServer) -> DicomWebConnection:
    return DicomWebConnection(server, context.settings)


# --- get, qido, delete ------------------------------------------------------------------------

@dataclass
class RelayedAnswer:
    """A remote answer held in a spool: its type, the headers to relay, its body."""

    media_type: str
    headers: dict[str, str]
    body: IO[bytes]

    def chunks(self) -> Iterator[bytes]:
        try:
            self.body.seek(0)
            while chunk := self.body.read(CHUNK):
                yield chunk
        finally:
            self.body.close()


def get(context: ServerContext, name: str, body: Any) -> RelayedAnswer:
    """``POST /dicom-web/servers/{name}/get``: the remote's answer, type and headers kept
    (except the hop-by-hop ones). The body is spooled (disk above 8 MiB), then relayed."""
    request = GetRequest.parse(body)
    server = get_server(context, name)
    headers = {"Accept-Encoding": "identity", **request.headers}
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_THRESHOLD)
    try:
        with _connection(context, server) as connection, \
                connection.stream("GET", request.uri, headers=headers) as response:
            for chunk in response.iter_raw(CHUNK):
                spool.write(chunk)
            relayed = {key: value for key, value in response.headers.items()
                       if key.lower() not in _NOT_RELAYED}
            media_type = response.headers.get("content-type", "application/octet-stream")
    except BaseException:
        spool.close()
        raise
    return RelayedAnswer(media_type, relayed, spool)


def qido(context: ServerContext, name: str, body: Any) -> list[dict[str, Any]]:
    """``POST /dicom-web/servers/{name}/qido``: a QIDO-RS search whose answers are given in
    Orthanc's simplified form: ``{"0010,0010"-like tag: {"Group", "Element", "Name",
    "vr", "Value"}}`` with the first value of each attribute (a person name's
    alphabetic form)."""
    request = GetRequest.parse(body)
    server = get_server(context, name)
    headers = {"Accept": "application/dicom+json", **request.headers}
    with _connection(context, server) as connection:
        answer = json_answer(connection.request("GET", request.uri, headers=headers))
    if not isinstance(answer, list) or not all(isinstance(item, dict) for item in answer):
        raise NetworkProtocol("The QIDO-RS answer of the DICOMweb server is not a JSON array "
                              "of datasets")
    return [{key: _simplified(key, element) for key, element in item.items()
             if _is_tag(key)} for item in answer]


def _is_tag(key: str) -> bool:
    return len(key) == 8 and all(c in "0123456789abcdefABCDEF" for c in key)


def _simplified(key: str, element: Any) -> dict[str, Any]:
    if not isinstance(element, dict) or not isinstance(element.get("vr"), str):
        raise NetworkProtocol(f"Bad DICOM JSON element {key} in the QIDO-RS answer")
    tag = int(key, 16)
    answer: dict[str, Any] = {"Group": tag >> 16, "Element": tag & 0xFFFF}
    keyword = keyword_for_tag(tag)
    if keyword:
        answer["Name"] = keyword
    answer["vr"] = element["vr"]
    values = element.get("Value")
    if isinstance(values, list) and values:
        first = values[0]
        if isinstance(first, dict):
            if isinstance(first.get("Alphabetic"), str):
                answer["Value"] = first["Alphabetic"]
        elif isinstance(first, str | int | float) and not isinstance(first, bool):
            answer["Value"] = first
    return answer


def delete(context: ServerContext, name: str, body: Any) -> None:
    """``POST /dicom-web/servers/{name}/delete``: ``{"Level", "StudyInstanceUID",
    "SeriesInstanceUID", "SOPInstanceUID"}`` -> DELETE of the resource on the server."""
    server = get_server(context, name)
    if not server.flag("HasDelete", False):
        raise BadFileFormat('Cannot delete on DICOMweb server, check out property "HasDelete": '
                            + name)
    body = _object(body)
    level_text, study = body.get("Level"), body.get("StudyInstanceUID")
    if not isinstance(level_text, str) or not isinstance(study, str):
        raise BadFileFormat('The request body must contain a JSON object with fields "Level" '
                            'and "StudyInstanceUID"')
    try:
        level = Level(level_text.capitalize())
    except ValueError as error:
        raise BadFileFormat(f"Unknown level: {level_text}") from error
    if level == Level.PATIENT:
        raise BadFileFormat("DICOMweb deletes studies, series or instances")
    uri = f"/studies/{study}"
    if level in (Level.SERIES, Level.INSTANCE):
        uri += "/series/" + _required(body, "SeriesInstanceUID")
    if level == Level.INSTANCE:
        uri += "/instances/" + _required(body, "SOPInstanceUID")
    with _connection(context, server) as connection:
        connection.request("DELETE", uri)


def _required(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise BadFileFormat(f'The request body must contain the field "{key}"')
    return value


# --- STOW-RS client ---------------------------------------------------------------------------

_GROUPS = {Level.PATIENT: "Patients", Level.STUDY: "Studies", Level.SERIES: "Series",
           Level.INSTANCE: "Instances"}


def stow(context: ServerContext, name: str, body: Any) -> dict[str, Any]:
    """``POST /dicom-web/servers/{name}/stow``: ``{"Resources": [Orthanc IDs of any level],
    "HttpHeaders", "Synchronous" (default true), "Priority"}``."""

    body = _object(body)
    ids = body.get("Resources")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise BadFileFormat('A request to the DICOMweb STOW-RS client must provide a JSON '
                            'object with the field "Resources" containing an array of '
                            'resources to be sent')
    if any(not i for i in ids):
        raise UnknownResource("An empty resource identifier")
    server = get_server(context, name)
    resolved = outgoing.resolve_resources(context, ids)
    grouped: dict[str, list[str]] = {}
    instances: list[str] = []
    for level, public_id in resolved:
        below = outgoing.instances_of(context, [(level, public_id)])
        if level != Level.INSTANCE:
            grouped.setdefault(_GROUPS[level], []).append(public_id)
        for instance in below:
            grouped.setdefault("Instances", []).append(instance)
            instances.append(instance)
    payload = {"Server": name, "Remote": server.document(), "Instances": instances,
               "Resources": grouped, "HttpHeaders": _strings(body, "HttpHeaders")}
    content = {"Resources": grouped, "Server": name}
    return queue.submit_or_run(context, STOW_JOB, payload, synchronous=synchronous(body, True),
                               content=content, priority=outgoing.priority(body),
                               user_data=queue.user_data_of(body))


def run_stow(context: ServerContext, payload: dict[str, Any], progress: ProgressCallback,
             cancel_check: CancelCheck) -> dict[str, Any]:
    """One STOW-RS request carrying every instance, generated file by file."""
    server = DicomWebServer.parse(payload["Remote"])
    instances: list[str] = payload["Instances"]
    content: dict[str, Any] = {"InstancesCount": str(len(instances)), "NetworkSizeMB": "0",
                               "Resources": _resources_content(payload, instances),
                               "Server": payload["Server"]}
    sent = {"bytes": 0, "count": 0}
    boundary = f"{uuid.uuid4()}-{uuid.uuid4()}"

    def body() -> Iterator[bytes]:
        for index, public_id in enumerate(instances):
            if cancel_check():
                raise JobInterrupted()
            for chunk in _instance_part(context, public_id, boundary):
                sent["bytes"] += len(chunk)
                yield chunk
            sent["count"] += 1
            content["NetworkSizeMB"] = str(sent["bytes"] // MEBIBYTE)
            progress((index + 1) / max(1, len(instances)), content)
        yield f"--{boundary}--".encode()

    headers = {**payload.get("HttpHeaders", {}), "Accept": "application/dicom+json",
               "Content-Type": f'multipart/related; type="application/dicom"; '
                               f"boundary={boundary}"}
    with _connection(context, server) as connection, ExitStack() as cleanup:
        data: Any = body()
        if not server.flag("ChunkedTransfers", True):
            # A Content-Length for servers that do not take chunked transfers.
            data = cleanup.enter_context(_spooled(data))
        answer = json_answer(connection.request("POST", "/studies", headers=headers,
                                                content=data))
    _check_stow_answer(answer, payload["Server"], sent["count"])
    return content


def _resources_content(payload: dict[str, Any], instances: list[str]) -> dict[str, Any]:
    return payload.get("Resources") or {"Instances": instances}


def _instance_part(context: ServerContext, public_id: str, boundary: str) -> Iterator[bytes]:

    with context.db.read() as conn:
        row = repository.get_row(conn, Level.INSTANCE, public_id)
    if row is None:
        raise UnknownResource(f"The instance {public_id} disappeared before being sent")
    with open_blob(context, row) as stream:
        data = stream.read()
    yield (f"--{boundary}\r\nContent-Type: application/dicom\r\n"
           f"Content-Length: {len(data)}\r\n\r\n").encode()
    yield data
    yield b"\r\n"


def _spooled(chunks: Iterator[bytes]) -> IO[bytes]:
    """The body in a spool (disk above 8 MiB): httpx then sends its Content-Length."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_THRESHOLD)
    for chunk in chunks:
        spool.write(chunk)
    spool.seek(0)
    return spool


def _sequence_size(answer: dict[str, Any], key: str, server: str, mandatory: bool) -> int | None:
    element = answer.get(key.upper(), answer.get(key.lower()))
    if element is None:
        if mandatory:
            raise NetworkProtocol(f"The STOW-RS JSON response from DICOMweb server {server} "
                                  f"does not contain the mandatory tag {key.upper()}")
        return None
    if not isinstance(element, dict) or not isinstance(element.get("Value", []), list):
        raise NetworkProtocol(f"Unable to parse STOW-RS JSON response from DICOMweb server "
                              f"{server}")
    return len(element.get("Value", []))


def _check_stow_answer(answer: Any, server: str, count: int) -> None:
    """The remote stored every instance (Orthanc's ``CheckStowAnswer``)."""
    if not isinstance(answer, dict):
        raise NetworkProtocol(f"Unable to parse STOW-RS JSON response from DICOMweb server "
                              f"{server}")
    stored = _sequence_size(answer, "00081199", server, True)
    if stored != count:
        raise NetworkProtocol(f"The STOW-RS server was only able to receive {stored} "
                              f"instances out of {count}")
    for key, name in (("00081198", "Failed SOP Sequence"),
                      ("0008119A", "Other Failures Sequence")):
        size = _sequence_size(answer, key, server, False)
        if size:
            raise NetworkProtocol(f"The response from the STOW-RS server contains {size} "
                                  f"items in its {name} ({key[:4]},{key[4:]}) tag")


# --- WADO-RS retrieve client ------------------------------------------------------------------

def retrieve(context: ServerContext, name: str, body: Any) -> dict[str, Any]:
    """``POST /dicom-web/servers/{name}/retrieve``: ``{"Resources": [{"Study", "Series",
    "Instance"}], "GetArguments", "HttpHeaders", "Synchronous" (default true)}``."""
    body = _object(body)
    resources = body.get("Resources")
    if not isinstance(resources, list):
        raise BadFileFormat('The body must be a JSON object containing an array "Resources"')
    arguments = _strings(body, "GetArguments")
    headers = _strings(body, "HttpHeaders")
    uris = []
    for resource in resources:
        uris.append({"Uri": resource_uri(_wado_path(resource), arguments),
                     "HttpHeaders": headers})
    return _submit_retrieve(context, name, uris, body, default_synchronous=True)


def _wado_path(resource: Any) -> str:
    if not isinstance(resource, dict) or not isinstance(resource.get("Study"), str):
        raise BadFileFormat('Missing "Study" field in the body')
    series, instance = resource.get("Series", ""), resource.get("Instance", "")
    if not isinstance(series, str) or not isinstance(instance, str):
        raise BadFileFormat('"Series" and "Instance" must be strings')
    if instance and not series:
        raise BadFileFormat('Missing "Series" field in the body, as "Instance" is present')
    path: str = "/studies/" + resource["Study"]
    if series:
        path += "/series/" + series
    if instance:
        path += "/instances/" + instance
    return path


def wado(context: ServerContext, name: str, body: Any) -> dict[str, Any]:
    """``POST /dicom-web/servers/{name}/wado``: ``{"Uri", "HttpHeaders", "Arguments"}`` of
    a WADO-RS retrieval into this server, asynchronous by default."""
    request = GetRequest.parse(body)
    return _submit_retrieve(context, name, [{"Uri": request.uri,
                                             "HttpHeaders": request.headers}],
                            _object(body), default_synchronous=False)


def _submit_retrieve(context: ServerContext, name: str, uris: list[dict[str, Any]],
                     body: dict[str, Any], *, default_synchronous: bool) -> dict[str, Any]:

    server = get_server(context, name)
    payload = {"Server": name, "Remote": server.document(), "Resources": uris}
    return queue.submit_or_run(context, RETRIEVE_JOB, payload,
                               synchronous=synchronous(body, default_synchronous),
                               content={}, priority=outgoing.priority(body),
                               user_data=queue.user_data_of(body))


def run_retrieve(context: ServerContext, payload: dict[str, Any], progress: ProgressCallback,
                 cancel_check: CancelCheck) -> dict[str, Any]:
    """Each resource's multipart answer is read as it arrives; each DICOM part is stored
    through the one ingest path, then dropped. Restarted from the first resource after a
    pause (as Orthanc's job, which cannot be paused)."""
    server = DicomWebServer.parse(payload["Remote"])
    resources: list[dict[str, Any]] = payload["Resources"]
    state = {"bytes": 0, "instances": 0}
    content: dict[str, Any] = {}
    with _connection(context, server) as connection:
        for index, resource in enumerate(resources):
            headers = dict(resource.get("HttpHeaders") or {})
            if "Accept" not in headers and server.flag("HasWadoRsUniversalTransferSyntax",
                                                       True):
                headers["Accept"] = UNIVERSAL_ACCEPT
            _retrieve_one(context, connection, resource["Uri"], headers, state, cancel_check)
            content = {"NetworkUsageMB": str(state["bytes"] // MEBIBYTE),
                       "ReceivedInstancesCount": str(state["instances"])}
            progress((index + 1) / max(1, len(resources)), content)
    return content or {"NetworkUsageMB": "0", "ReceivedInstancesCount": "0"}


def _retrieve_one(context: ServerContext, connection: DicomWebConnection, uri: str,
                  headers: dict[str, str], state: dict[str, int],
                  cancel_check: CancelCheck) -> None:
    with connection.stream("GET", uri, headers=headers) as response:
        media_type, params = parse_media_type(response.headers.get("content-type", ""))
        if media_type != "multipart/related" or not params.get("boundary"):
            raise NetworkProtocol(f'The remote WADO-RS server answers with a "{media_type}" '
                                  'Content-Type, but "multipart/related" is expected')

        def chunks() -> Iterator[bytes]:
            for chunk in response.iter_bytes(CHUNK):
                state["bytes"] += len(chunk)
                yield chunk

        for part_headers, part in iter_parts(chunks(), params["boundary"],
                                             memory_threshold=SPOOL_THRESHOLD):
            if cancel_check():
                raise JobInterrupted()
            part_type, _ = parse_media_type(part_headers.get("content-type", ""))
            if part_type != "application/dicom":
                raise NetworkProtocol('Parts of a WADO-RS retrieve should have '
                                      f'"application/dicom" type, but received: {part_type}')
            try:
                ingest_instance(context, part.read(), {"Origin": "Plugins"})
            except PharosError as error:
                raise NetworkProtocol(f"An instance received by WADO-RS cannot be stored: "
                                      f"{error}") from error
            state["instances"] += 1
