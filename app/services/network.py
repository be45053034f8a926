"""The network use cases: the modalities and peers registry, echo and store to DICOM
modalities, and store to Orthanc peers (query, move and get: app.services.query_retrieve).

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
import logging
import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import orjson
from pydicom import dcmread
from sqlalchemy import Row

from app.config import Modality, Peer
from app.context import ServerContext
from app.dicom.identifiers import is_orthanc_id
from app.dicom.levels import Level
from app.dicom.limits import check_deflated_dataset
from app.errors import (
    BadFileFormat,
    InexistentItem,
    NetworkProtocol,
    UnknownResource,
)
from app.index import network_repository as network_index
from app.index import repository
from app.jobs.kinds import CancelCheck, JobInterrupted, ProgressCallback, job_kind
from app.services import peers as peer_client
from app.services.instances import stored_file
from app.timeutil import now_stamp

DESCRIPTION = "REST API"

STORE_JOB = "DicomModalityStore"
MOVE_JOB = "DicomMoveScu"
GET_JOB = "DicomGetScu"
PEER_STORE_JOB = "OrthancPeerStore"

_memory_lock = threading.Lock()


def scu() -> Any:
    """The DIMSE SCU (app.dimse.scu), imported when first needed."""
    try:
        from app.dimse import scu
    except ImportError as error:  # pragma: no cover - until the DIMSE area lands
        raise NetworkProtocol("The DICOM SCU is not available in this build") from error
    return scu


# --- the registry -----------------------------------------------------------------------

def modality_json(modality: Modality) -> dict[str, Any]:
    """A modality as ``/modalities?expand`` shows it (Orthanc's long form,
    ``RemoteModalityParameters::Serialize``)."""
    props = modality.properties or {}
    return {
        "AET": modality.aet,
        "AllowEcho": modality.allow_echo,
        "AllowEventReport": bool(props.get("AllowEventReport", True)),
        "AllowFind": modality.allow_find,
        "AllowFindWorklist": modality.allow_find_worklist,
        "AllowGet": modality.allow_get,
        "AllowMove": modality.allow_move,
        "AllowNAction": bool(props.get("AllowNAction", True)),
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
    """A peer as ``/peers?expand`` shows it (``WebServiceParameters::FormatPublic``):
    secrets as null, HTTP header names without their values, user properties."""
    props = peer.properties or {}
    headers = props.get("HttpHeaders")
    answer: dict[str, Any] = dict(peer.user_properties())
    answer.update({
        "HttpHeaders": sorted(headers) if isinstance(headers, dict) else [],
        "Pkcs11": bool(props.get("Pkcs11", False)),
        "Timeout": int(props.get("Timeout", 0) or 0),
        "Url": peer_client.normalized_url(peer.url),
    })
    if peer.username:
        answer["Password"] = None
        answer["Username"] = peer.username
    if props.get("CertificateFile"):
        answer["CertificateFile"] = props["CertificateFile"]
        answer["CertificateKeyFile"] = None
        answer["CertificateKeyPassword"] = None
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
    return registry_overrides(context, kind, persistent=_in_database(context, kind))


def registry_overrides(context: ServerContext, kind: str, *, persistent: bool,
                       ) -> dict[str, Any]:
    """:func:`_overrides` for any registry kind (``network_repository._TABLES``), kept
    across restarts when *persistent* (the DICOMweb servers registry uses it too)."""
    prefix = _prefix(context, persistent)
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


def _prefix(context: ServerContext, persistent: bool) -> str:
    return "" if persistent else f"{_VOLATILE}{_generation(context)}:"


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
    registry_save(context, kind, name, document, persistent=_in_database(context, kind))


def registry_save(context: ServerContext, kind: str, name: str, document: Any, *,
                  persistent: bool) -> None:
    """Store a registry entry (None: a configured entry deleted)."""
    with context.db.write() as conn:
        network_index.put_entry(conn, kind, _prefix(context, persistent) + name,
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
    """``POST /modalities/{name}/echo``: ``{"Timeout", "CheckFind"}`` (both optional)."""
    _echo(context, get_modality(context, name), options)


def echo_tool(context: ServerContext, body: Any) -> None:
    """``POST /tools/dicom-echo``: C-ECHO a modality described in the body (the short
    or long form of ``DicomModalities``, plus ``Timeout`` and ``CheckFind``)."""
    try:
        modality = Modality.parse("dicom-echo", body)
    except (ValueError, TypeError) as error:
        raise BadFileFormat(f"Bad description of the remote modality: {error}") from error
    _echo(context, modality, body if isinstance(body, dict) else {})


def _echo(context: ServerContext, modality: Modality, options: dict[str, Any]) -> None:
    """C-ECHO; then, with ``CheckFind`` (default: ``DicomEchoChecksFind``), a C-FIND
    for a random study, which fails unless the remote knows this AET and serves C-FIND
    (Orthanc's ``ExecuteEcho``)."""
    check_find = options.get("CheckFind", context.settings.dicom_echo_checks_find)
    if not isinstance(check_find, bool):
        raise BadFileFormat("CheckFind must be a Boolean")
    aet, timeout = local_aet(context, modality, options), scu_timeout(context, modality, options)
    scu().echo(modality, local_aet=aet, timeout=timeout)
    if check_find:
        from pydicom.uid import generate_uid

        from app.services import query_retrieve, runtime
        identifier = query_retrieve.encode_identifier(
            Level.STUDY, {0x0020000D: generate_uid()}, runtime.current(context).default_encoding)
        scu().find(modality, Level.STUDY.value, identifier, local_aet=aet, timeout=timeout)


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
            data = stored_file(context, row).read()
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
    modality = _redirected(modality, options)
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
    if payload["StorageCommitment"]:
        from app.services import storage_commitment
        payload["StorageCommitmentTransactionUID"] = storage_commitment.new_transaction_uid()
        content["StorageCommitmentTransactionUID"] = payload["StorageCommitmentTransactionUID"]
    return payload, content, options


def submit_move_store(context: ServerContext, destination: Modality, instances: list[str], *,
                      originator_aet: str, originator_id: int) -> str:
    """The store job of a C-MOVE served asynchronously (``SynchronousCMove`` false, as
    Orthanc's ``AsynchronousMove``): described "C-MOVE", not permissive, from the
    destination's ``LocalAet`` when it has one (Orthanc 1.13.0), else DicomAet; answer
    the job's ID."""
    from app.jobs import queue
    aet = destination.local_aet or context.settings.dicom_aet
    payload = {
        "Modality": destination.name, "Description": "C-MOVE",
        "Remote": modality_json(destination) | {"LocalAet": destination.local_aet},
        "Instances": instances, "LocalAet": aet, "ParentResources": [],
        "Timeout": scu_timeout(context, destination, {}),
        "MoveOriginatorAet": originator_aet, "MoveOriginatorID": originator_id,
        "Permissive": False, "StorageCommitment": False,
    }
    content = {"Description": "C-MOVE", "FailedInstancesCount": 0,
               "InstancesCount": len(instances), "LocalAet": aet, "ParentResources": [],
               "RemoteAet": destination.aet}
    return queue.submit(context, STORE_JOB, payload, content=content)


def _redirected(modality: Modality, options: dict[str, Any]) -> Modality:
    """Orthanc 1.11.3's ``CalledAet``, ``Host`` and ``Port`` of a store request: the
    modality's parameters, overridden for this operation only."""
    changes: dict[str, Any] = {}
    for key, attribute, kind in (("CalledAet", "aet", str), ("Host", "host", str),
                                 ("Port", "port", int)):
        value = options.get(key)
        if value is None:
            continue
        if not isinstance(value, kind) or isinstance(value, bool) or (
                kind is int and not 0 < value < 65536):
            raise BadFileFormat(f"{key} must be {'a port number' if kind is int else 'a string'}")
        changes[attribute] = value
    return replace(modality, **changes) if changes else modality


def remote_of(payload: dict[str, Any]) -> Modality:
    """The remote modality a job's payload was submitted for."""
    remote = dict(payload["Remote"])
    if not remote.get("LocalAet"):
        remote.pop("LocalAet", None)
    return Modality.parse(payload.get("Modality", "remote"), remote)


@job_kind(STORE_JOB)
def run_store(context: ServerContext, payload: dict[str, Any], progress: ProgressCallback,
              cancel_check: CancelCheck) -> dict[str, Any]:
    """Send every instance of the job in one association."""
    modality = remote_of(payload)
    instances: list[str] = payload["Instances"]
    content = {"Description": payload.get("Description", DESCRIPTION),
               "FailedInstancesCount": 0,
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
        report = scu().store(modality, files(), local_aet=payload["LocalAet"],
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
    transaction = payload.get("StorageCommitmentTransactionUID")
    if payload.get("StorageCommitment") and transaction:
        _commit(context, modality, payload, [i for i in instances if i not in missing])
        content["StorageCommitmentTransactionUID"] = transaction
    return content


def _commit(context: ServerContext, modality: Modality, payload: dict[str, Any],
            sent: list[str]) -> None:
    """Orthanc's DicomModalityStoreJob with StorageCommitment: once every instance is
    sent, ask the modality to commit to them (the report completes later)."""
    from app.services import storage_commitment
    pairs = storage_commitment.instance_pairs(context, sent)
    storage_commitment.ask(context, modality, payload["StorageCommitmentTransactionUID"],
                           pairs, local_aet=payload["LocalAet"], timeout=payload["Timeout"])


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
                               content=content, priority=priority(options),
                               user_data=queue.user_data_of(options))


def store_straight(context: ServerContext, name: str, data: bytes) -> dict[str, Any]:
    """``POST /modalities/{name}/store-straight``: send the body, a DICOM file, as is."""
    modality = get_modality(context, name)
    check_deflated_dataset(data)
    try:
        ds = dcmread(io.BytesIO(data), stop_before_pixels=True, force=True)
        sop_class, sop_instance = str(ds.SOPClassUID), str(ds.SOPInstanceUID)
    except Exception as error:  # noqa: BLE001 - any unreadable body
        raise BadFileFormat(f"The body is not a DICOM file: {error}") from error
    report = scu().store(modality, [data], local_aet=local_aet(context, modality, {}),
                          timeout=scu_timeout(context, modality, {}))
    if _count(report, "failed"):
        raise NetworkProtocol(f"{modality.aet} refused the instance {sop_instance}")
    return {"SOPClassUID": sop_class, "SOPInstanceUID": sop_instance}


# --- Orthanc peers ---------------------------------------------------------------------

def peer_system(context: ServerContext, name: str) -> Any:
    return peer_client.system(get_peer(context, name), context.settings.http_timeout)


@job_kind(PEER_STORE_JOB)
def run_peer_store(context: ServerContext, payload: dict[str, Any], progress: ProgressCallback,
                   cancel_check: CancelCheck) -> dict[str, Any]:
    """``POST /instances`` of each instance to the peer, on one keep-alive connection."""
    peer = Peer.parse(payload["Peer"], payload["Remote"])
    instances: list[str] = payload["Instances"]
    content = _peer_content(payload, peer)
    missing: list[str] = []
    size = 0
    with peer_client.open_client(peer, context.settings.http_timeout) as client:
        for index, (_, data) in enumerate(_instance_files(context, instances, missing)):
            if cancel_check():
                raise JobInterrupted()
            if payload.get("Transcode"):
                data = _transcoded_for_peer(data, payload["Transcode"])
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


def _transcoded_for_peer(data: bytes, syntax: str) -> bytes:
    """Orthanc's ``OrthancPeerStoreJob``: the instance in *syntax*, sent as stored when it
    cannot be transcoded (a lossy target gives a new SOP Instance UID)."""
    from app.dicom import transcode as transcoding
    try:
        return transcoding.transcode_file(data, syntax)
    except Exception as error:  # noqa: BLE001 — a codec failing on one instance
        logging.getLogger(__name__).warning(
            "Cannot transcode an instance to %s, sent as stored: %s", syntax, error)
        return data


def _peer_content(payload: dict[str, Any], peer: Peer) -> dict[str, Any]:
    url = [peer_client.normalized_url(peer.url)]
    if peer.username:
        url.append(peer.username)
    content = {"Compress": False, "Description": DESCRIPTION, "FailedInstancesCount": 0,
               "InstancesCount": len(payload["Instances"]),
               "ParentResources": payload["ParentResources"], "Peer": url,
               "Size": "0", "SizeMB": 0}
    if payload.get("Transcode"):
        content["Transcode"] = payload["Transcode"]
    return content


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
    if "Transcode" in options:
        from app.dicom import transcode as transcoding
        payload["Transcode"] = transcoding.check_target(options["Transcode"])
    return queue.submit_or_run(context, PEER_STORE_JOB, payload,
                               synchronous=synchronous(options),
                               content=_peer_content(payload, peer), priority=priority(options),
                               user_data=queue.user_data_of(options))


def peer_store_straight(context: ServerContext, name: str, data: bytes) -> Any:
    """``POST /peers/{name}/store-straight``: the body, a DICOM file, to the peer as is."""
    peer = get_peer(context, name)
    with peer_client.open_client(peer, context.settings.http_timeout) as client:
        return peer_client.post_instance(client, data)

