"""The network use cases: the modalities and peers registry, and echo, store, move, get,
query and retrieve to DICOM modalities, and store to Orthanc peers.

Registry. The configuration file's ``DicomModalities``/``OrthancPeers`` are the base;
``PUT``/``DELETE`` through the REST API override them, in the index database when
``DicomModalitiesInDatabase``/``OrthancPeersInDatabase`` is on (shared by every process,
kept across restarts) and in the process' memory otherwise, as Orthanc does.

Long operations are job kinds (:mod:`app.jobs.kinds`) so that every one of them can run
synchronously or as a job. A job's payload carries the remote's parameters, so a job
submitted before a modality is changed or removed still runs against what was asked.
"""

from __future__ import annotations

import io
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
from pydicom import dcmread
from pydicom.dataset import Dataset
from sqlalchemy import Row

from app.config import Modality, Peer
from app.dicom import orthanc_json
from app.dicom.identifiers import is_orthanc_id
from app.dicom.levels import Level
from app.dicom.limits import check_deflated_dataset
from app.dicom.tags import parse_tag
from app.errors import (
    BadFileFormat,
    InexistentItem,
    NetworkProtocol,
    ParameterOutOfRange,
    PharosError,
    UnknownResource,
)
from app.index import network_repository as network_index
from app.index import repository
from app.jobs.kinds import CancelCheck, JobInterrupted, ProgressCallback, job_kind
from app.services import peers as peer_client
from app.services.context import ServerContext
from app.timeutil import now_stamp
from app.validation import is_digits

DESCRIPTION = "REST API"
QUERY_RETRIEVE_SIZE = 100  # Orthanc's QueryRetrieveSize default

STORE_JOB = "DicomModalityStore"
MOVE_JOB = "DicomMoveScu"
GET_JOB = "DicomGetScu"
PEER_STORE_JOB = "OrthancPeerStore"

# The identifiers C-FIND answers at each level must contain (Orthanc's FixFindQuery), and
# the keys C-MOVE/C-GET send per level (PS3.4 C.4.2.1.4: unique keys down to the level).
_LEVEL_KEYS: dict[Level, tuple[str, ...]] = {
    Level.PATIENT: ("PatientID",),
    Level.STUDY: ("AccessionNumber", "StudyInstanceUID"),
    Level.SERIES: ("SeriesInstanceUID",),
    Level.INSTANCE: ("SOPInstanceUID",),
}
_RETRIEVE_KEYS: dict[Level, tuple[str, ...]] = {
    Level.PATIENT: ("PatientID",),
    Level.STUDY: ("AccessionNumber", "PatientID", "StudyInstanceUID"),
    Level.SERIES: ("AccessionNumber", "PatientID", "StudyInstanceUID", "SeriesInstanceUID"),
    Level.INSTANCE: ("AccessionNumber", "PatientID", "StudyInstanceUID", "SeriesInstanceUID",
                     "SOPInstanceUID"),
}

_memory_lock = threading.Lock()


def _scu() -> Any:
    """The DIMSE SCU (app.dimse.scu), imported when first needed."""
    try:
        from app.dimse import scu
    except ImportError as error:  # pragma: no cover - until the DIMSE area lands
        raise NetworkProtocol("The DICOM SCU is not available in this build") from error
    return scu


# --- the registry -----------------------------------------------------------------------

def modality_json(modality: Modality) -> dict[str, Any]:
    """A modality as ``/modalities?expand`` shows it (Orthanc 1.10's long form)."""
    props = modality.properties or {}
    commitment = bool(props.get("AllowStorageCommitment", True))
    return {
        "AET": modality.aet,
        "AllowEcho": modality.allow_echo,
        "AllowEventReport": bool(props.get("AllowEventReport", commitment)),
        "AllowFind": modality.allow_find,
        "AllowFindWorklist": modality.allow_find_worklist,
        "AllowGet": modality.allow_get,
        "AllowMove": modality.allow_move,
        "AllowNAction": bool(props.get("AllowNAction", commitment)),
        "AllowStore": modality.allow_store,
        "AllowTranscoding": modality.allow_transcoding,
        "Host": modality.host,
        "LocalAet": modality.local_aet or "",
        "Manufacturer": modality.manufacturer,
        "Port": modality.port,
        "Timeout": modality.timeout,
        "UseDicomTls": modality.use_dicom_tls,
    }


def peer_json(peer: Peer) -> dict[str, Any]:
    """A peer as ``/peers?expand`` shows it (the password is never shown)."""
    props = peer.properties or {}
    headers = props.get("HttpHeaders")
    answer: dict[str, Any] = {
        "HttpHeaders": sorted(headers) if isinstance(headers, dict) else [],
        "Pkcs11": bool(props.get("Pkcs11", False)),
        "Timeout": int(props.get("Timeout", 0) or 0),
        "Url": peer_client.normalized_url(peer.url),
    }
    if peer.username:
        answer["Password"] = None
        answer["Username"] = peer.username
    return answer


def _peer_document(peer: Peer) -> dict[str, Any]:
    """What is stored for a peer (unlike :func:`peer_json`, with its secrets)."""
    document = dict(peer.properties or {})
    document["Url"] = peer_client.normalized_url(peer.url)
    if peer.username:
        document["Username"] = peer.username
        document["Password"] = peer.password or ""
    return document


def _in_database(context: ServerContext, kind: str) -> bool:
    settings = context.settings
    return (settings.dicom_modalities_in_database if kind == "modalities"
            else settings.orthanc_peers_in_database)


def _overrides(context: ServerContext, kind: str) -> dict[str, Any]:
    """REST changes: name -> document (None when a configured entry was deleted).

    Both modes keep the changes in the index database so that every HTTP worker process
    of the server sees the same registry. Without ``...InDatabase`` the entries carry the
    prefix of this server's *generation* (see :func:`_generation`) and are forgotten
    when the server restarts, as Orthanc forgets them.
    """
    prefix = _prefix(context, kind)
    with context.db.read() as conn:
        stored = network_index.stored_entries(conn, kind)
    answer: dict[str, Any] = {}
    for key, config in stored.items():
        if prefix and key.startswith(prefix):
            answer[key[len(prefix):]] = orjson.loads(config)
        elif not prefix and not key.startswith(_VOLATILE):
            answer[key] = orjson.loads(config)
    return answer


_VOLATILE = "~"


def _prefix(context: ServerContext, kind: str) -> str:
    return "" if _in_database(context, kind) else f"{_VOLATILE}{_generation(context)}:"


def _generation(context: ServerContext) -> str:
    """A token shared by the processes of one running server, new at each server start.

    Every process holds a shared ``flock`` on a file of IndexDirectory for its lifetime;
    a process that can take it exclusively is alone, so the server (re)starts: it writes
    a new token. Everyone then reads the token under the shared lock.
    """
    with _memory_lock:
        cached = context.extras.get("network.generation")
        if isinstance(cached, str):
            return cached
        import fcntl
        directory = context.settings.index_path
        directory.mkdir(parents=True, exist_ok=True)
        token_path = directory / ".pharos-registry-generation"
        handle = open(directory / ".pharos-registry.lock", "ab")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            pass
        else:
            temporary = token_path.with_suffix(".tmp")
            temporary.write_text(uuid.uuid4().hex[:12])
            temporary.replace(token_path)
        fcntl.flock(handle.fileno(), fcntl.LOCK_SH)
        token = token_path.read_text().strip()
        context.extras["network.generation.lock"] = handle  # held until the process exits
        context.extras["network.generation"] = token
        return token


def _save(context: ServerContext, kind: str, name: str, document: Any) -> None:
    with context.db.write() as conn:
        network_index.put_entry(conn, kind, _prefix(context, kind) + name,
                                orjson.dumps(document))


def modalities(context: ServerContext) -> dict[str, Modality]:
    """Every modality known now, sorted by symbolic name."""
    merged: dict[str, Modality] = dict(context.settings.dicom_modalities)
    for name, document in _overrides(context, "modalities").items():
        if document is None:
            merged.pop(name, None)
        else:
            merged[name] = Modality.parse(name, document)
    return dict(sorted(merged.items()))


def peers(context: ServerContext) -> dict[str, Peer]:
    merged: dict[str, Peer] = dict(context.settings.orthanc_peers)
    for name, document in _overrides(context, "peers").items():
        if document is None:
            merged.pop(name, None)
        else:
            merged[name] = Peer.parse(name, document)
    return dict(sorted(merged.items()))


def get_modality(context: ServerContext, name: str) -> Modality:
    found = modalities(context).get(name)
    if found is None:
        raise InexistentItem(f"Unknown DICOM modality with symbolic name: {name}")
    return found


def get_peer(context: ServerContext, name: str) -> Peer:
    found = peers(context).get(name)
    if found is None:
        raise UnknownResource(f"No peer with symbolic name: {name}")
    return found


def put_modality(context: ServerContext, name: str, body: Any) -> None:
    """``PUT /modalities/{name}``: the short ``[AET, host, port(, manufacturer)]`` or the
    long ``{"AET", "Host", "Port", ...}`` form."""
    try:
        modality = Modality.parse(name, body)
    except (ValueError, TypeError) as error:
        raise BadFileFormat(f"Bad configuration of modality {name}: {error}") from error
    document = modality_json(modality)
    if not modality.local_aet:
        document.pop("LocalAet")
    _save(context, "modalities", name, document)


def delete_modality(context: ServerContext, name: str) -> None:
    get_modality(context, name)
    _save(context, "modalities", name, None)


def put_peer(context: ServerContext, name: str, body: Any) -> None:
    try:
        peer = Peer.parse(name, body)
    except (ValueError, TypeError) as error:
        raise BadFileFormat(f"Bad configuration of peer {name}: {error}") from error
    _save(context, "peers", name, _peer_document(peer))


def delete_peer(context: ServerContext, name: str) -> None:
    get_peer(context, name)
    _save(context, "peers", name, None)


# --- parameters common to the DIMSE operations -----------------------------------------

def local_aet(context: ServerContext, modality: Modality, options: dict[str, Any]) -> str:
    value = options.get("LocalAet") or modality.local_aet or context.settings.dicom_aet
    return str(value)


def scu_timeout(context: ServerContext, modality: Modality, options: dict[str, Any]) -> int:
    value = options.get("Timeout")
    if value is not None:
        try:
            return max(0, int(value))
        except (TypeError, ValueError) as error:
            raise BadFileFormat("Timeout must be an integer") from error
    return modality.timeout or context.settings.dicom_scu_timeout


def echo(context: ServerContext, name: str, options: dict[str, Any]) -> None:
    modality = get_modality(context, name)
    _scu().echo(modality, local_aet=local_aet(context, modality, options),
                timeout=scu_timeout(context, modality, options))


# --- resources to send -----------------------------------------------------------------

def resolve_resources(context: ServerContext, ids: list[Any]) -> list[tuple[Level, str]]:
    """The level of each Orthanc ID (any level), refusing malformed and unknown ones."""
    resolved: list[tuple[Level, str]] = []
    with context.db.read() as conn:
        for public_id in ids:
            if not isinstance(public_id, str) or not is_orthanc_id(public_id):
                raise BadFileFormat(f"This string is not a valid Orthanc identifier: {public_id}")
            for level in Level:
                if repository.get_row(conn, level, public_id) is not None:
                    resolved.append((level, public_id))
                    break
            else:
                raise UnknownResource(f"Unknown resource: {public_id}")
    return resolved


def instances_of(context: ServerContext, resources: list[tuple[Level, str]]) -> list[str]:
    """The instance IDs below the resources, each once, in hierarchy order."""
    seen: set[str] = set()
    answer: list[str] = []
    with context.db.read() as conn:
        for level, public_id in resources:
            row = repository.get_row(conn, level, public_id)
            if row is None:
                continue
            for instance in repository.instances_below(conn, level, row.pk):
                if instance.public_id not in seen:
                    seen.add(instance.public_id)
                    answer.append(instance.public_id)
    return answer


def log_exports(context: ServerContext, resources: list[tuple[Level, str]], remote: str) -> None:
    """``LogExportedResources``: one ``/exports`` entry per resource asked for (at
    submission, as Orthanc does)."""
    if not context.settings.log_exported_resources:
        return
    date = now_stamp()
    with context.db.write() as conn:
        for level, public_id in resources:
            network_index.log_export(conn, level, public_id, remote, date)


def _instance_files(context: ServerContext, instance_ids: list[str],
                    missing: list[str]) -> Iterator[tuple[str, bytes]]:
    for public_id in instance_ids:
        with context.db.read() as conn:
            row: Row | None = repository.get_row(conn, Level.INSTANCE, public_id)
        if row is None:
            missing.append(public_id)
            continue
        try:
            data = context.blobs.read(row.blob_key)
        except FileNotFoundError:
            missing.append(public_id)
            continue
        yield public_id, data


def parse_store_body(body: Any) -> tuple[list[Any], dict[str, Any]]:
    """Orthanc's three forms: one ID as text, a JSON list of IDs, or an object with
    ``Resources`` and options."""
    if isinstance(body, str):
        return [body.strip()], {}
    if isinstance(body, list):
        return body, {}
    if isinstance(body, dict):
        resources = body.get("Resources")
        if isinstance(resources, str):
            resources = [resources]
        if not isinstance(resources, list):
            raise BadFileFormat("The body must contain a list of Resources")
        return resources, body
    raise BadFileFormat("The body must be an Orthanc ID, a list of IDs or a JSON object")


def synchronous(options: dict[str, Any]) -> bool:
    """Orthanc's ``Synchronous`` (default true) and ``Asynchronous`` (its negation)."""
    if "Asynchronous" in options:
        return not bool(options["Asynchronous"])
    return bool(options.get("Synchronous", True))


def priority(options: dict[str, Any]) -> int:
    try:
        return int(options.get("Priority", 0))
    except (TypeError, ValueError) as error:
        raise BadFileFormat("Priority must be an integer") from error


# --- C-STORE to a modality ---------------------------------------------------------------

def prepare_store(context: ServerContext, name: str, body: Any
                  ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(payload, initial content, options) of a store job to modality *name*."""
    modality = get_modality(context, name)
    ids, options = parse_store_body(body)
    resources = resolve_resources(context, ids)
    instances = instances_of(context, resources)
    log_exports(context, resources, name)
    aet = local_aet(context, modality, options)
    payload = {
        "Modality": name, "Remote": modality_json(modality) | {"LocalAet": modality.local_aet},
        "Instances": instances, "LocalAet": aet,
        "ParentResources": [public_id for _, public_id in resources],
        "Timeout": scu_timeout(context, modality, options),
        "MoveOriginatorAet": options.get("MoveOriginatorAet"),
        "MoveOriginatorID": options.get("MoveOriginatorID"),
        "Permissive": bool(options.get("Permissive", False)),
        "StorageCommitment": bool(options.get("StorageCommitment", False)),
    }
    content = {"Description": DESCRIPTION, "FailedInstancesCount": 0,
               "InstancesCount": len(instances), "LocalAet": aet,
               "ParentResources": [public_id for _, public_id in resources],
               "RemoteAet": modality.aet}
    return payload, content, options


def _remote(payload: dict[str, Any]) -> Modality:
    remote = dict(payload["Remote"])
    if not remote.get("LocalAet"):
        remote.pop("LocalAet", None)
    return Modality.parse(payload.get("Modality", "remote"), remote)


@job_kind(STORE_JOB)
def run_store(context: ServerContext, payload: dict[str, Any], progress: ProgressCallback,
              cancel_check: CancelCheck) -> dict[str, Any]:
    """Send every instance of the job in one association."""
    modality = _remote(payload)
    instances: list[str] = payload["Instances"]
    content = {"Description": DESCRIPTION, "FailedInstancesCount": 0,
               "InstancesCount": len(instances), "LocalAet": payload["LocalAet"],
               "ParentResources": payload.get("ParentResources", []),
               "RemoteAet": modality.aet}
    missing: list[str] = []

    def files() -> Iterator[bytes]:
        for index, (_, data) in enumerate(_instance_files(context, instances, missing)):
            if cancel_check():
                raise JobInterrupted()
            progress(index / max(1, len(instances)))
            yield data

    if instances:
        report = _scu().store(modality, files(), local_aet=payload["LocalAet"],
                              timeout=payload["Timeout"],
                              move_originator_aet=payload.get("MoveOriginatorAet"),
                              move_originator_id=payload.get("MoveOriginatorID"))
        failed = _count(report, "failed") + len(missing)
    else:
        failed = 0
    content["FailedInstancesCount"] = failed
    if failed and not payload.get("Permissive"):
        progress(1.0, content)
        raise NetworkProtocol(f"{failed} instance(s) could not be sent to {modality.aet}")
    return content


def _count(report: Any, name: str) -> int:
    value = getattr(report, name, 0)
    if isinstance(value, (list, tuple, set)):
        return len(value)
    return int(value or 0)


def store(context: ServerContext, name: str, body: Any) -> dict[str, Any]:
    """``POST /modalities/{name}/store``: sync (the job's content) or ``{"ID", "Path"}``."""
    from app.jobs import queue
    payload, content, options = prepare_store(context, name, body)
    return queue.submit_or_run(context, STORE_JOB, payload, synchronous=synchronous(options),
                               content=content, priority=priority(options))


def store_straight(context: ServerContext, name: str, data: bytes) -> dict[str, Any]:
    """``POST /modalities/{name}/store-straight``: send the body, a DICOM file, as is."""
    modality = get_modality(context, name)
    check_deflated_dataset(data)
    try:
        ds = dcmread(io.BytesIO(data), stop_before_pixels=True, force=True)
        sop_class, sop_instance = str(ds.SOPClassUID), str(ds.SOPInstanceUID)
    except Exception as error:  # noqa: BLE001 - any unreadable body
        raise BadFileFormat(f"The body is not a DICOM file: {error}") from error
    report = _scu().store(modality, [data], local_aet=local_aet(context, modality, {}),
                          timeout=scu_timeout(context, modality, {}))
    if _count(report, "failed"):
        raise NetworkProtocol(f"{modality.aet} refused the instance {sop_instance}")
    return {"SOPClassUID": sop_class, "SOPInstanceUID": sop_instance}


# --- C-FIND, C-MOVE, C-GET -------------------------------------------------------------

def parse_level(value: Any) -> Level:
    if not isinstance(value, str):
        raise BadFileFormat("The Level must be given")
    try:
        return Level.parse(value)
    except ValueError as error:
        raise BadFileFormat(f"Unknown resource level: {value}") from error


def build_identifier(level: Level, keys: dict[str, Any], *, normalize: bool = True) -> Dataset:
    """A C-FIND/C-MOVE identifier: QueryRetrieveLevel plus the given keys (names or
    ``gggg,eeee``); normalized with the level's unique keys when missing."""
    ds = Dataset()
    ds.QueryRetrieveLevel = level.value.upper()
    for key, value in keys.items():
        try:
            tag = parse_tag(str(key))
        except ValueError as error:
            raise BadFileFormat(f"Unknown DICOM tag: {key}") from error
        if tag == 0x00080052:
            continue
        _set(ds, tag, value)
    if normalize:
        for keyword in _LEVEL_KEYS[level]:
            if keyword not in ds:
                setattr(ds, keyword, "")
    _check_encodable(ds)
    return ds


def _check_encodable(ds: Dataset) -> None:
    """Encode the identifier once, as pynetdicom will (Implicit VR Little Endian): a value
    its VR cannot hold (text in a US tag, 70 characters in a UI...) is the client's error
    (400), not a failure of the association (500)."""
    import warnings

    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset
    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            write_dataset(buffer, ds)
    except Exception as error:  # noqa: BLE001 — pydicom raises many kinds here
        raise BadFileFormat(f"The query cannot be encoded as a DICOM identifier: {error}") \
            from error


def _set(ds: Dataset, tag: int, value: Any) -> None:
    from pydicom.datadict import dictionary_VR
    try:
        vr = dictionary_VR(tag)
    except KeyError:
        vr = "LO"
    if vr == "SQ":
        items = []
        for item in value if isinstance(value, list) else []:
            if not isinstance(item, dict):
                raise BadFileFormat(f"Items of the sequence {tag:08X} must be JSON objects")
            child = Dataset()
            for key, sub in item.items():
                try:
                    child_tag = parse_tag(str(key))
                except ValueError as error:
                    raise BadFileFormat(f"Unknown DICOM tag: {key}") from error
                _set(child, child_tag, sub)
            items.append(child)
        ds.add_new(tag, "SQ", items)
    else:
        ds.add_new(tag, vr, "" if value is None else str(value))


def _move_identifiers(level: Level, resources: list[Any]) -> list[Dataset]:
    identifiers = []
    for resource in resources:
        if not isinstance(resource, dict):
            raise BadFileFormat("Each resource must be a JSON object of DICOM tags")
        identifiers.append(build_identifier(level, resource, normalize=False))
    return identifiers


def _short(ds: Dataset) -> dict[str, Any]:
    return orthanc_json.to_short(orthanc_json.dataset_to_json(ds))


@job_kind(MOVE_JOB)
def run_move(context: ServerContext, payload: dict[str, Any], progress: ProgressCallback,
             cancel_check: CancelCheck) -> dict[str, Any]:
    """One C-MOVE per resource to the target AET."""
    modality = _remote(payload)
    level = Level(payload["Level"])
    resources = payload["Resources"]
    for index, resource in enumerate(resources):
        if cancel_check():
            raise JobInterrupted()
        progress(index / max(1, len(resources)))
        identifier = build_identifier(level, resource, normalize=False)
        report = _scu().move(modality, level.value, identifier, payload["TargetAet"],
                             local_aet=payload["LocalAet"], timeout=payload["Timeout"])
        if _count(report, "failed"):
            raise NetworkProtocol(f"C-MOVE from {modality.aet} to {payload['TargetAet']}: "
                                  f"{_count(report, 'failed')} sub-operation(s) failed")
    return _move_content(payload, modality)


def _move_content(payload: dict[str, Any], modality: Modality) -> dict[str, Any]:
    level = Level(payload["Level"])
    return {"Description": DESCRIPTION, "LocalAet": payload["LocalAet"],
            "Query": [_short(build_identifier(level, r, normalize=False))
                      for r in payload["Resources"]],
            "RemoteAet": modality.aet}


@job_kind(GET_JOB)
def run_get(context: ServerContext, payload: dict[str, Any], progress: ProgressCallback,
            cancel_check: CancelCheck) -> dict[str, Any]:
    """C-GET: the remote sends the instances back on the same association; each one is
    ingested as it arrives."""
    from app.services.ingest import ingest_instance
    modality = _remote(payload)
    level = Level(payload["Level"])
    origin = {"Origin": "DicomProtocol", "RemoteAET": modality.aet, "RemoteIP": modality.host,
              "CalledAET": payload["LocalAet"]}  # the keys ingest records (see repository)
    received = {"count": 0, "failed": 0}

    def on_instance(data: bytes) -> None:
        if cancel_check():
            raise JobInterrupted()
        try:
            ingest_instance(context, data, origin)
            received["count"] += 1
        except PharosError:
            received["failed"] += 1
            raise

    resources = payload["Resources"]
    for index, resource in enumerate(resources):
        if cancel_check():
            raise JobInterrupted()
        progress(index / max(1, len(resources)))
        identifier = build_identifier(level, resource, normalize=False)
        report = _scu().get(modality, level.value, identifier, local_aet=payload["LocalAet"],
                            timeout=payload["Timeout"], on_instance=on_instance)
        if _count(report, "failed"):
            raise NetworkProtocol(f"C-GET from {modality.aet}: "
                                  f"{_count(report, 'failed')} sub-operation(s) failed")
    content = _move_content(payload, modality)
    content["InstancesCount"] = received["count"]
    return content


def _retrieve_payload(context: ServerContext, name: str, level: Level, resources: list[Any],
                      options: dict[str, Any], *, target: str | None) -> dict[str, Any]:
    modality = get_modality(context, name)
    _move_identifiers(level, resources)  # validates
    payload = {"Modality": name,
               "Remote": modality_json(modality) | {"LocalAet": modality.local_aet},
               "Level": level.value, "Resources": resources,
               "LocalAet": local_aet(context, modality, options),
               "Timeout": scu_timeout(context, modality, options)}
    if target is not None:
        payload["TargetAet"] = target
    return payload


def move(context: ServerContext, name: str, body: Any) -> dict[str, Any]:
    """``POST /modalities/{name}/move``: ``{Level, Resources, TargetAet, Timeout}``.
    Orthanc 1.10 answers ``{}`` when synchronous; ``{"ID", "Path"}`` as a job."""
    from app.jobs import queue
    options = _object(body)
    level = parse_level(options.get("Level"))
    resources = options.get("Resources")
    if not isinstance(resources, list):
        raise BadFileFormat("Resources must be a list of JSON objects")
    target = str(options.get("TargetAet") or local_aet(
        context, get_modality(context, name), options))
    payload = _retrieve_payload(context, name, level, resources, options, target=target)
    answer = queue.submit_or_run(context, MOVE_JOB, payload, synchronous=synchronous(options),
                                 content=_move_content(payload, _remote(payload)),
                                 priority=priority(options))
    return {} if synchronous(options) else answer


def get(context: ServerContext, name: str, body: Any) -> dict[str, Any]:
    """``POST /modalities/{name}/get``: ``{Level, Resources, Timeout}`` (C-GET, Orthanc
    1.12's route); the content of the job when synchronous."""
    from app.jobs import queue
    options = _object(body)
    level = parse_level(options.get("Level"))
    resources = options.get("Resources")
    if not isinstance(resources, list):
        raise BadFileFormat("Resources must be a list of JSON objects")
    payload = _retrieve_payload(context, name, level, resources, options, target=None)
    return queue.submit_or_run(context, GET_JOB, payload, synchronous=synchronous(options),
                               content=_move_content(payload, _remote(payload)),
                               priority=priority(options))


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadFileFormat("The body must be a JSON object")
    return body


# --- /modalities/{name}/query and /queries/{id} ------------------------------------------

def query(context: ServerContext, name: str, body: Any) -> dict[str, str]:
    """C-FIND now; keep the request and the answers as ``/queries/{id}``."""
    options = _object(body)
    modality = get_modality(context, name)
    level = parse_level(options.get("Level"))
    keys = options.get("Query", {})
    if not isinstance(keys, dict):
        raise BadFileFormat("Query must be a JSON object of DICOM tags")
    asked = build_identifier(level, keys, normalize=False)
    del asked.QueryRetrieveLevel
    identifier = build_identifier(level, keys, normalize=bool(options.get("Normalize", True)))
    answers = _scu().find(modality, level.value, identifier,
                          local_aet=local_aet(context, modality, options),
                          timeout=scu_timeout(context, modality, options))
    query_id = str(uuid.uuid4())
    with context.db.write() as conn:
        network_index.insert_query(
            conn, query_id=query_id, modality=name, level=level.value,
            query=orjson.dumps(orthanc_json.dataset_to_json(asked)),
            answers=orjson.dumps([orthanc_json.dataset_to_json(a) for a in answers]),
            created=time.time())
        network_index.forget_old_queries(conn, QUERY_RETRIEVE_SIZE)
    return {"ID": query_id, "Path": f"/queries/{query_id}"}


def query_row(context: ServerContext, query_id: str) -> Row:
    with context.db.read() as conn:
        row = network_index.get_query(conn, query_id)
    if row is None:
        raise UnknownResource(f"Unknown query: {query_id}")
    return row


def list_queries(context: ServerContext) -> list[str]:
    with context.db.read() as conn:
        return network_index.list_queries(conn)


def delete_query(context: ServerContext, query_id: str) -> None:
    with context.db.write() as conn:
        if not network_index.delete_query(conn, query_id):
            raise UnknownResource(f"Unknown query: {query_id}")


def query_answers(row: Row) -> list[dict[str, Any]]:
    return orjson.loads(row.answers)


def query_answer(row: Row, index: str) -> dict[str, Any]:
    answers = query_answers(row)
    if not is_digits(index) or int(index) >= len(answers):
        raise ParameterOutOfRange(f"No answer {index} in query {row.id}")
    return answers[int(index)]


def _answer_keys(level: Level, answer: dict[str, Any]) -> dict[str, str]:
    """The keys a C-MOVE for one C-FIND answer carries (Orthanc keeps those present)."""
    short = orthanc_json.to_short(answer)
    keys: dict[str, str] = {}
    for keyword in _RETRIEVE_KEYS[level]:
        tag = parse_tag(keyword)
        key = f"{tag.group:04x},{tag.element:04x}"
        if key in short and isinstance(short[key], str):
            keys[keyword] = short[key]
    return keys


def retrieve(context: ServerContext, row: Row, indices: list[int], body: Any) -> dict[str, Any]:
    """``/queries/{id}/retrieve`` and ``/answers/{n}/retrieve``: C-MOVE the answers to a
    target AET (the body as text, or ``{"TargetAet", "Synchronous", ...}``; this server's
    AET when missing)."""
    from app.jobs import queue
    options: dict[str, Any] = {}
    if isinstance(body, dict):
        options = body
    elif isinstance(body, str) and body.strip():
        options = {"TargetAet": body.strip()}
    elif body not in (None, ""):
        raise BadFileFormat("The body must be a target AET or a JSON object")
    level = Level(row.level)
    answers = query_answers(row)
    resources = [_answer_keys(level, answers[i]) for i in indices]
    target = str(options.get("TargetAet") or context.settings.dicom_aet)
    payload = _retrieve_payload(context, row.modality, level, resources, options, target=target)
    return queue.submit_or_run(context, MOVE_JOB, payload, synchronous=synchronous(options),
                               content=_move_content(payload, _remote(payload)),
                               priority=priority(options))


# --- Orthanc peers ---------------------------------------------------------------------

def peer_system(context: ServerContext, name: str) -> Any:
    return peer_client.system(get_peer(context, name))


@job_kind(PEER_STORE_JOB)
def run_peer_store(context: ServerContext, payload: dict[str, Any], progress: ProgressCallback,
                   cancel_check: CancelCheck) -> dict[str, Any]:
    """``POST /instances`` of each instance to the peer, on one keep-alive connection."""
    peer = Peer.parse(payload["Peer"], payload["Remote"])
    instances: list[str] = payload["Instances"]
    content = _peer_content(payload, peer)
    missing: list[str] = []
    size = 0
    with peer_client.open_client(peer) as client:
        for index, (_, data) in enumerate(_instance_files(context, instances, missing)):
            if cancel_check():
                raise JobInterrupted()
            peer_client.post_instance(client, data)
            size += len(data)
            content["Size"] = str(size)
            content["SizeMB"] = size // (1024 * 1024)
            progress((index + 1) / max(1, len(instances)), content)
    content["FailedInstancesCount"] = len(missing)
    if missing:
        progress(1.0, content)
        raise InexistentItem(f"{len(missing)} instance(s) disappeared before being sent")
    return content


def _peer_content(payload: dict[str, Any], peer: Peer) -> dict[str, Any]:
    url = [peer_client.normalized_url(peer.url)]
    if peer.username:
        url.append(peer.username)
    return {"Compress": False, "Description": DESCRIPTION, "FailedInstancesCount": 0,
            "InstancesCount": len(payload["Instances"]),
            "ParentResources": payload["ParentResources"], "Peer": url,
            "Size": "0", "SizeMB": 0}


def peer_store(context: ServerContext, name: str, body: Any) -> dict[str, Any]:
    """``POST /peers/{name}/store``: IDs of any level, sync or as a job."""
    from app.jobs import queue
    peer = get_peer(context, name)
    ids, options = parse_store_body(body)
    resources = resolve_resources(context, ids)
    instances = instances_of(context, resources)
    log_exports(context, resources, name)
    payload = {"Peer": name, "Remote": _peer_document(peer), "Instances": instances,
               "ParentResources": [public_id for _, public_id in resources]}
    return queue.submit_or_run(context, PEER_STORE_JOB, payload,
                               synchronous=synchronous(options),
                               content=_peer_content(payload, peer), priority=priority(options))


def peer_store_straight(context: ServerContext, name: str, data: bytes) -> Any:
    """``POST /peers/{name}/store-straight``: the body, a DICOM file, to the peer as is."""
    peer = get_peer(context, name)
    with peer_client.open_client(peer) as client:
        return peer_client.post_instance(client, data)

