"""The registry of remote modalities and Orthanc peers (``/modalities``, ``/peers``).

The configuration file's ``DicomModalities``/``OrthancPeers`` are the base; ``PUT``/``DELETE``
through the REST API override them, in the index database when
``DicomModalitiesInDatabase``/``OrthancPeersInDatabase`` is on (shared by every process,
kept across restarts) and in the process' memory otherwise, as Orthanc does. The DICOMweb
servers' registry (app/services/dicomweb_servers.py) is kept the same way.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

import orjson

from app.config import Modality, Peer
from app.context import ServerContext
from app.errors import (
    BadFileFormat,
    InexistentItem,
    UnknownResource,
)
from app.index import network_repository as network_index
from app.protocols import orthanc_peers as peer_client

_memory_lock = threading.Lock()


# --- the registry -----------------------------------------------------------------------

def modality_json(modality: Modality) -> dict[str, Any]:
    """A modality as ``/modalities?expand`` shows it (Orthanc's long form,
    ``RemoteModalityParameters::Serialize``)."""
    props = modality.properties or {}
    extra = {"RetrieveMethod": modality.retrieve_method} if modality.retrieve_method else {}
    return extra | {
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


def peer_job_json(peer: Peer) -> list[str] | dict[str, Any]:
    """A peer as a job's content names it (``WebServiceParameters::Serialize`` without
    passwords): ``[URL]``, ``[URL, username, ""]`` (the password blanked), or the long
    form when the short one cannot say everything (headers, certificate, PKCS#11, timeout,
    user properties), its header values kept and no password."""
    props = peer.properties or {}
    headers = props.get("HttpHeaders")
    timeout = int(props.get("Timeout", 0) or 0)
    pkcs11 = bool(props.get("Pkcs11", False))
    url = peer_client.normalized_url(peer.url)
    if not (headers or timeout or pkcs11 or props.get("CertificateFile")
            or peer.user_properties()):
        return [url, peer.username or "", ""] if peer.username or peer.password else [url]
    answer: dict[str, Any] = dict(peer.user_properties())
    answer.update({"HttpHeaders": dict(headers) if isinstance(headers, dict) else {},
                   "Pkcs11": pkcs11, "Timeout": timeout, "Url": url})
    if peer.username or peer.password:
        answer["Username"] = peer.username or ""
    for key in ("CertificateFile", "CertificateKeyFile"):
        if props.get(key):
            answer[key] = props[key]
    return answer


def peer_document(peer: Peer) -> dict[str, Any]:
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
    _save(context, "peers", name, peer_document(peer))


def delete_peer(context: ServerContext, name: str) -> None:
    get_peer(context, name)
    _save(context, "peers", name, None)
