"""Settings: an Orthanc JSON configuration file (comments allowed) plus ``PHAROS_*`` variables.

Orthanc options keep their Orthanc names in the file; Pharos' own options live in a
``"Pharos"`` section of the same file and can be overridden by environment variables
(``PHAROS_DATABASE_URL``, ``PHAROS_BLOBSTORE_URL``, ``PHAROS_HTTP_PORT``...). Unknown
top-level options are ignored with one warning each, as Orthanc ignores options it does
not use.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import orjson

from app.dicom import storage_classes
from app.dicom.encodings import parse as parse_encoding
from app.dicom.transfer_syntaxes import ALL as ALL_SYNTAXES
from app.dicom.transfer_syntaxes import GROUP_OPTIONS
from app.dicom.transfer_syntaxes import from_configuration as syntaxes_of_configuration

log = logging.getLogger(__name__)


def strip_json_comments(text: str) -> str:
    """Remove ``//`` and ``/* */`` comments outside of JSON strings (Orthanc's dialect)."""
    out: list[str] = []
    i, n = 0, len(text)
    in_string = False
    while i < n:
        c = text[i]
        if in_string:
            out.append(c)
            if c == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 2
                continue
            if c == '"':
                in_string = False
            i += 1
        elif c == '"':
            in_string = True
            out.append(c)
            i += 1
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            if j < 0:
                raise ValueError("unterminated /* comment in configuration")
            out.append(" ")
            i = j + 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def load_orthanc_json(path: Path) -> dict[str, Any]:
    """Read one configuration file, or merge every ``*.json`` of a folder (as Orthanc does)."""
    files = sorted(path.glob("*.json")) if path.is_dir() else [path]
    merged: dict[str, Any] = {}
    for file in files:
        try:
            document = orjson.loads(strip_json_comments(file.read_text(encoding="utf-8")))
        except orjson.JSONDecodeError as error:
            raise ValueError(f"{file}: not valid JSON ({error})") from error
        if not isinstance(document, dict):
            raise ValueError(f"{file}: the configuration must be a JSON object")
        merged.update(document)
    return merged


# Orthanc's StringToModalityManufacturer: current names, and obsolete ones mapped.
MANUFACTURERS = {"Generic": "Generic", "GenericNoWildcardInDates": "GenericNoWildcardInDates",
                 "GenericNoUniversalWildcard": "GenericNoUniversalWildcard",
                 "Vitrea": "Vitrea", "GE": "GE",
                 "AgfaImpax": "GenericNoWildcardInDates", "SyngoVia": "GenericNoWildcardInDates",
                 "EFilm2": "Generic", "MedInria": "Generic", "ClearCanvas": "Generic",
                 "Dcm4Chee": "Generic"}


def _manufacturer(name: str, value: Any) -> str:
    found = MANUFACTURERS.get(str(value))
    if found is None:
        raise ValueError(f"modality {name}: unknown manufacturer {value!r}")
    if found != value:
        log.warning('The "%s" manufacturer is obsolete: "%s" is used instead', value, found)
    return found


def _port(name: str, value: Any) -> int:
    """Orthanc's ReadPortNumber: an integer (or a string of one) in 1..65535."""
    try:
        port = int(value) if not isinstance(value, bool) else -1
    except (TypeError, ValueError):
        port = -1
    if not 0 < port < 65536:
        raise ValueError(f"modality {name}: bad port number {value!r}")
    return port


def _flag(name: str, value: dict[str, Any], key: str, default: bool) -> bool:
    found = value.get(key, default)
    if not isinstance(found, bool):
        raise ValueError(f"modality {name}: {key} must be a Boolean")
    return found


@dataclass(frozen=True)
class Modality:
    """A remote DICOM node, from ``DicomModalities`` (short list or long object form)."""

    name: str
    aet: str
    host: str
    port: int
    manufacturer: str = "Generic"
    allow_echo: bool = True
    allow_find: bool = True
    allow_get: bool = True
    allow_move: bool = True
    allow_store: bool = True
    allow_find_worklist: bool = True
    allow_storage_commitment: bool = True
    allow_transcoding: bool = True
    use_dicom_tls: bool = False
    local_aet: str | None = None
    timeout: int = 0
    # Orthanc 1.12.6: "C-MOVE" or "C-GET" for /queries/{id}/retrieve; None: the server's
    # DicomDefaultRetrieveMethod ("SystemDefault")
    retrieve_method: str | None = None
    properties: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def parse(cls, name: str, value: Any) -> Modality:
        """The short or long form; ValueError also when the AET or the host cannot work
        (an AE title is 1-16 characters without backslash, PS3.5 6.2): pynetdicom would
        fail on them at the first association, as a 500."""
        modality = cls._parse(name, value)
        aet = modality.aet.strip()
        if not 1 <= len(aet) <= 16 or "\\" in aet or not aet.isprintable():
            raise ValueError(f"modality {name}: the AET {modality.aet[:40]!r} is not 1 to 16 "
                             "printable characters")
        if not modality.host.strip() or not modality.host.isprintable():
            raise ValueError(f"modality {name}: the host is empty")
        local = modality.local_aet
        if local is not None and not 1 <= len(local.strip()) <= 16:
            raise ValueError(f"modality {name}: LocalAet must be 1 to 16 characters")
        return modality

    @classmethod
    def _parse(cls, name: str, value: Any) -> Modality:
        """Orthanc's ``RemoteModalityParameters::Unserialize`` (short or long form)."""
        if isinstance(value, list):
            if len(value) not in (3, 4):
                raise ValueError(f"modality {name}: expected [AET, host, port(, manufacturer)]")
            return cls(name, str(value[0]), str(value[1]), _port(name, value[2]),
                       _manufacturer(name, value[3]) if len(value) == 4 else "Generic")
        if not isinstance(value, dict) or not {"AET", "Host", "Port"} <= value.keys():
            raise ValueError(f"modality {name}: expected AET, Host and Port")
        if not isinstance(value["AET"], str) or not isinstance(value["Host"], str):
            raise ValueError(f"modality {name}: AET and Host must be strings")
        commitment = _flag(name, value, "AllowStorageCommitment", True)
        properties = dict(value)
        # AllowStorageCommitment, when given, sets both N-ACTION and N-EVENT-REPORT.
        for key in ("AllowNAction", "AllowEventReport"):
            properties[key] = commitment if "AllowStorageCommitment" in value \
                else _flag(name, value, key, True)
        timeout = value.get("Timeout", 0)
        if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 0:
            raise ValueError(f"modality {name}: Timeout must be a positive integer")
        local_aet = value.get("LocalAet")
        if local_aet is not None and not isinstance(local_aet, str):
            raise ValueError(f"modality {name}: LocalAet must be a string")
        return cls(
            name=name, aet=value["AET"], host=value["Host"], port=_port(name, value["Port"]),
            manufacturer=_manufacturer(name, value.get("Manufacturer", "Generic")),
            allow_echo=_flag(name, value, "AllowEcho", True),
            allow_find=_flag(name, value, "AllowFind", True),
            allow_get=_flag(name, value, "AllowGet", True),
            allow_move=_flag(name, value, "AllowMove", True),
            allow_store=_flag(name, value, "AllowStore", True),
            allow_find_worklist=_flag(name, value, "AllowFindWorklist", True),
            allow_storage_commitment=commitment,
            allow_transcoding=_flag(name, value, "AllowTranscoding", True),
            use_dicom_tls=_flag(name, value, "UseDicomTls", False),
            local_aet=local_aet or None,
            timeout=timeout,
            retrieve_method=_modality_retrieve_method(name, value.get("RetrieveMethod")),
            properties=properties,
        )

    def to_orthanc(self) -> dict[str, Any]:
        """The long form, as ``GET /modalities?expand`` shows it."""
        answer: dict[str, Any] = {
            "AET": self.aet, "Host": self.host, "Port": self.port,
            "Manufacturer": self.manufacturer,
            "AllowEcho": self.allow_echo, "AllowFind": self.allow_find,
            "AllowFindWorklist": self.allow_find_worklist, "AllowGet": self.allow_get,
            "AllowMove": self.allow_move, "AllowStore": self.allow_store,
            "AllowStorageCommitment": self.allow_storage_commitment,
            "AllowTranscoding": self.allow_transcoding, "UseDicomTls": self.use_dicom_tls,
            "Timeout": self.timeout,
        }
        if self.local_aet:
            answer["LocalAet"] = self.local_aet
        if self.retrieve_method:
            answer["RetrieveMethod"] = self.retrieve_method
        return answer


RETRIEVE_METHODS = ("C-MOVE", "C-GET")


def retrieve_method(value: object) -> str:
    """``DicomDefaultRetrieveMethod`` or a request's ``RetrieveMethod`` (Orthanc 1.12.6):
    "C-MOVE" or "C-GET" (any case); ValueError otherwise."""
    text = value.strip().upper() if isinstance(value, str) else None
    if text not in RETRIEVE_METHODS:
        raise ValueError(f'must be "C-MOVE" or "C-GET", not {_shown(value)}')
    return text


def _modality_retrieve_method(name: str, value: object) -> str | None:
    if value is None or (isinstance(value, str) and value.strip().lower() == "systemdefault"):
        return None
    try:
        return retrieve_method(value)
    except ValueError as error:
        raise ValueError(f"modality {name}: RetrieveMethod {error} (or \"SystemDefault\")") \
            from None


_PEER_RESERVED = {"CertificateFile", "CertificateKeyFile", "CertificateKeyPassword",
                  "HttpHeaders", "Password", "Pkcs11", "Url", "URL", "Username", "Timeout"}


def _peer_url(name: str, url: Any) -> str:
    """Orthanc's ``WebServiceParameters::SetUrl``: http(s) only, with a trailing slash;
    and a host and a valid port, without which every request would fail (a 500)."""
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ValueError(f"peer {name}: the URL must start with http:// or https://: "
                         f"{str(url)[:200]!r}")
    from urllib.parse import urlsplit
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 — raises ValueError for a port out of range
    except ValueError as error:
        raise ValueError(f"peer {name}: bad URL {url[:200]!r}: {error}") from None
    if not parts.hostname or not url.isprintable():
        raise ValueError(f"peer {name}: the URL {url[:200]!r} has no host")
    return url if url.endswith("/") else url + "/"


def _peer_string(name: str, value: dict[str, Any], key: str) -> str:
    found = value.get(key, "")
    if not isinstance(found, str):
        raise ValueError(f"peer {name}: {key} must be a string")
    return found


@dataclass(frozen=True)
class Peer:
    """A remote Orthanc-compatible HTTP server, from ``OrthancPeers`` (Orthanc's
    ``WebServiceParameters``: the short ``[URL]``/``[URL, user, password]`` or the long
    form; other keys of the long form are user properties, kept as strings)."""

    name: str
    url: str
    username: str | None = None
    password: str | None = None
    properties: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def parse(cls, name: str, value: Any) -> Peer:
        if isinstance(value, list):
            if len(value) not in (1, 3) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"peer {name}: expected [URL] or [URL, username, password]")
            if len(value) == 1:
                return cls(name, _peer_url(name, value[0]))
            return cls(name, _peer_url(name, value[0]), value[1] or None, value[2] or None)
        if not isinstance(value, dict):
            raise ValueError(f"peer {name}: expected a list or an object")
        url = _peer_string(name, value, "Url") or _peer_string(name, value, "URL")
        properties = dict(value)
        headers = value.get("HttpHeaders", {})
        if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
            raise ValueError(f"peer {name}: HttpHeaders must map names to strings")
        if not isinstance(value.get("Pkcs11", False), bool):
            raise ValueError(f"peer {name}: Pkcs11 must be a Boolean")
        timeout = value.get("Timeout", 0)
        if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 0:
            raise ValueError(f"peer {name}: Timeout must be a positive integer")
        for key, item in value.items():
            if key in _PEER_RESERVED:
                continue
            if isinstance(item, bool):
                properties[key] = "1" if item else "0"
            elif isinstance(item, int | str):
                properties[key] = str(item)
            else:
                raise ValueError(f"peer {name}: user-defined properties must be strings: {key}")
        return cls(name, _peer_url(name, url), _peer_string(name, value, "Username") or None,
                   _peer_string(name, value, "Password") or None, properties)

    def user_properties(self) -> dict[str, str]:
        return {k: v for k, v in (self.properties or {}).items() if k not in _PEER_RESERVED}


# Events a webhook may ask for (app/services/webhooks.py), from the index's events.
WEBHOOK_EVENTS = ("InstanceStored", "StableSeries", "StableStudy", "StablePatient",
                  "Deleted", "JobSubmitted", "JobSuccess", "JobFailure")


@dataclass(frozen=True)
class Webhook:
    """One entry of ``"Pharos": {"Webhooks": [...]}``: the receiver's URL, the events it
    wants (all of :data:`WEBHOOK_EVENTS` by default), the HMAC-SHA256 key of the signature
    header (none: unsigned), and the seconds one delivery may take."""

    url: str
    events: tuple[str, ...] = WEBHOOK_EVENTS
    secret: str | None = field(default=None, repr=False)
    timeout: float = 10.0

    @classmethod
    def parse(cls, position: int, value: Any) -> Webhook:
        where = f"entry {position + 1}"
        if not isinstance(value, dict):
            raise ValueError(f"{where} must be a JSON object with Url, Events, Secret")
        unknown = set(value) - {"Url", "Events", "Secret", "Timeout"}
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} (Url, "
                             "Events, Secret, Timeout)")
        url = value.get("Url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ValueError(f"{where}: Url must be an http:// or https:// URL")
        events = value.get("Events", list(WEBHOOK_EVENTS))
        if not isinstance(events, list) or not events or \
                not all(isinstance(e, str) and e in WEBHOOK_EVENTS for e in events):
            raise ValueError(f"{where}: Events must be a non-empty list of "
                             f"{', '.join(WEBHOOK_EVENTS)}")
        secret = value.get("Secret")
        if secret is not None and (not isinstance(secret, str) or not secret):
            raise ValueError(f"{where}: Secret must be a non-empty string")
        timeout = value.get("Timeout", 10)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise ValueError(f"{where}: Timeout must be a positive number of seconds")
        return cls(url, tuple(dict.fromkeys(events)), secret, float(timeout))


# Orthanc options Pharos reads (top level of the configuration file).
_ORTHANC_OPTIONS: dict[str, str] = {
    "Name": "name",
    "HttpPort": "http_port",
    "DicomAet": "dicom_aet",
    "DicomPort": "dicom_port",
    "StorageDirectory": "storage_directory",
    "IndexDirectory": "index_directory",
    "RemoteAccessAllowed": "remote_access_allowed",
    "AuthenticationEnabled": "authentication_enabled",
    "RegisteredUsers": "registered_users",
    "OverwriteInstances": "overwrite_instances",
    "StableAge": "stable_age",
    "LimitFindResults": "limit_find_results",
    "LimitFindInstances": "limit_find_instances",
    "MaximumStorageSize": "maximum_storage_size",
    "MaximumPatientCount": "maximum_patient_count",
    "MaximumStorageMode": "maximum_storage_mode",
    "DicomScuTimeout": "dicom_scu_timeout",
    "DicomScpTimeout": "dicom_scp_timeout",
    "DicomServerEnabled": "dicom_server_enabled",
    "HttpServerEnabled": "http_server_enabled",
    "DicomCheckCalledAet": "dicom_check_called_aet",
    "DicomAlwaysAllowEcho": "dicom_always_allow_echo",
    "DicomAlwaysAllowStore": "dicom_always_allow_store",
    "DicomCheckModalityHost": "dicom_check_modality_host",
    "UnknownSopClassAccepted": "unknown_sop_class_accepted",
    "LogExportedResources": "log_exported_resources",
    "KeepAlive": "keep_alive",
    "DefaultEncoding": "default_encoding",
    "HttpDescribeErrors": "http_describe_errors",
    "ConcurrentJobs": "concurrent_jobs",
    "DicomModalitiesInDatabase": "dicom_modalities_in_database",
    "OrthancPeersInDatabase": "orthanc_peers_in_database",
    "SaveJobs": "save_jobs",
    "JobsHistorySize": "jobs_history_size",
    "CheckRevisions": "check_revisions",
    "UserMetadata": "user_metadata",
    "UserContentType": "user_content_type",
    "StorageCompression": "storage_compression",
    "MediaArchiveSize": "media_archive_size",
    "DicomLossyTranscodingQuality": "dicom_lossy_transcoding_quality",
    "DicomWeb": "dicom_web",
    "HttpTimeout": "http_timeout",
    "HttpsVerifyPeers": "https_verify_peers",
    "HttpsCACertificates": "https_ca_certificates",
    "HttpProxy": "http_proxy",
    "ExecuteLuaEnabled": "execute_lua_enabled",
    "LuaScripts": "lua_scripts",
    "LuaHeartBeatPeriod": "lua_heart_beat_period",
    "Dictionary": "dictionary",
    "DefaultPrivateCreator": "default_private_creator",
    "MetricsEnabled": "metrics_enabled",
    "DicomAlwaysAllowFind": "dicom_always_allow_find",
    "DicomAlwaysAllowGet": "dicom_always_allow_get",
    "DicomAlwaysAllowMove": "dicom_always_allow_move",
    "DicomEchoChecksFind": "dicom_echo_checks_find",
    "SynchronousCMove": "synchronous_cmove",
    "ReadOnly": "read_only",
    "WebDavEnabled": "web_dav_enabled",
    "WebDavDeleteAllowed": "web_dav_delete_allowed",
    "WebDavUploadAllowed": "web_dav_upload_allowed",
    "MaximumRequestBodySizeMB": "maximum_request_body_size_mb",
    "DicomDefaultRetrieveMethod": "dicom_default_retrieve_method",
    "AcceptedSopClasses": "accepted_sop_classes",
    "RejectedSopClasses": "rejected_sop_classes",
    "DatabaseServerIdentifier": "database_server_identifier",
}

# Options read as a whole by a dedicated parser (app.dicom.transfer_syntaxes).
_TRANSFER_SYNTAX_OPTIONS = {"AcceptedTransferSyntaxes", *GROUP_OPTIONS}

# Options Orthanc knows that Pharos deliberately accepts without effect (no warning).
_ACCEPTED_WITHOUT_EFFECT = {
    "Plugins", "MaximumStorageCacheSize", "OrthancExplorerEnabled",
    "HttpCompressionEnabled",
    "SslEnabled", "SslCertificate", "SslMinimumProtocolVersion", "HttpThreadsCount",
    "HttpVerbose", "StorageAccessOnFind",
    "DicomAssociationCloseDelay", "QueryRetrieveSize",
    "DeidentifyLogs", "DeidentifyLogsDicomVersion", "MallocArenaMax", "LoadPrivateDictionary",
    "IngestTranscoding",
    "TranscodeDicomProtocol", "BuiltinDecoderTranscoderOrder", "OverwriteInstances_",
    "ExtraMainDicomTags", "Warnings", "ZipLoaderThreads", "StrictAetComparison", "DicomModalities", "OrthancPeers",
    "Pharos", "DicomTlsEnabled", "TcpNoDelay",
    "RejectSopClasses",  # Orthanc 1.12.6's spelling of RejectedSopClasses, read below
}


@dataclass
class Settings:
    """Everything the server reads at start. Defaults are Orthanc's, storage is ./storage."""

    name: str = "Pharos"
    http_port: int = 8042
    http_host: str = "0.0.0.0"
    dicom_aet: str = "ORTHANC"
    dicom_port: int = 4242
    storage_directory: str = "storage"
    index_directory: str | None = None
    remote_access_allowed: bool = False
    authentication_enabled: bool | None = None
    registered_users: dict[str, str] = field(default_factory=dict)
    dicom_modalities: dict[str, Modality] = field(default_factory=dict)
    orthanc_peers: dict[str, Peer] = field(default_factory=dict)
    # OverwriteInstances: true/false, or (Orthanc 1.13) "Never", "Always", "IfChanged"
    overwrite_instances: bool | str = False
    stable_age: int = 60
    limit_find_results: int = 0
    limit_find_instances: int = 0
    maximum_storage_size: int = 0  # MB, 0 = unlimited
    maximum_patient_count: int = 0
    maximum_storage_mode: str = "Recycle"  # or "Reject" (Orthanc 1.11)
    dicom_scu_timeout: int = 10
    dicom_scp_timeout: int = 30
    dicom_server_enabled: bool = True
    http_server_enabled: bool = True
    dicom_check_called_aet: bool = False
    dicom_always_allow_echo: bool = True
    dicom_always_allow_store: bool = True
    dicom_check_modality_host: bool = False
    unknown_sop_class_accepted: bool = False
    # AcceptedTransferSyntaxes + <Group>TransferSyntaxAccepted, resolved (Orthanc's order)
    accepted_transfer_syntaxes: list[str] = field(default_factory=lambda: list(ALL_SYNTAXES))
    metrics_enabled: bool = True
    dicom_always_allow_find: bool = False
    dicom_always_allow_get: bool = False
    dicom_always_allow_move: bool = False
    dicom_echo_checks_find: bool = False
    synchronous_cmove: bool = True
    # Orthanc 1.12.5: no change to the index or the storage (see app/blobstore/read_only.py)
    read_only: bool = False
    # Orthanc 1.8.0: the WebDAV share at /webdav/ (app/services/webdav.py)
    web_dav_enabled: bool = True
    web_dav_delete_allowed: bool = False
    web_dav_upload_allowed: bool = True
    # Orthanc 1.13: the largest HTTP request body, in MB (0: Pharos' MaxUploadSize)
    maximum_request_body_size_mb: int = 0
    # Orthanc 1.12.6: how /queries/{id}/retrieve fetches ("C-MOVE" or "C-GET"), unless the
    # request or the modality ("RetrieveMethod") says
    dicom_default_retrieve_method: str = "C-MOVE"
    # Orthanc 1.12.6: the storage SOP classes the C-STORE SCP (and the C-GET SCU) accepts,
    # UIDs or patterns with * and ? (app/dicom/storage_classes.py); empty: all known ones
    accepted_sop_classes: list[str] = field(default_factory=list)
    rejected_sop_classes: list[str] = field(default_factory=list)
    # /system's DatabaseServerIdentifier (Orthanc: this option, else a hash of the host's
    # MAC addresses, DicomAet, DicomPort and HttpPort)
    database_server_identifier: str | None = None
    log_exported_resources: bool = False
    keep_alive: bool = True
    default_encoding: str = "Latin1"
    http_describe_errors: bool = True
    concurrent_jobs: int = 2
    dicom_modalities_in_database: bool = False
    orthanc_peers_in_database: bool = False
    save_jobs: bool = True
    jobs_history_size: int = 10
    check_revisions: bool = False
    user_metadata: dict[str, int] = field(default_factory=dict)
    # {"name": 1024} or {"name": [1024, "mime/type"]}: user attachment types (Orthanc)
    user_content_type: dict[str, Any] = field(default_factory=dict)
    storage_compression: bool = False
    media_archive_size: int = 1  # outputs of asynchronous archive/media jobs kept at once
    dicom_lossy_transcoding_quality: int = 90  # JPEG quality of lossy transcoding
    # The "DicomWeb" section of Orthanc's DICOMweb plugin (Servers, Host, Ssl...).
    dicom_web: dict[str, Any] = field(default_factory=dict)
    # Outgoing HTTP (DICOMweb client): seconds of inactivity before giving up (Orthanc's
    # default 60; 0 = none), TLS verification, a CA bundle, a proxy URL.
    http_timeout: int = 60
    https_verify_peers: bool = True
    https_ca_certificates: str = ""
    http_proxy: str = ""
    # Lua (app/scripting): /tools/execute-script allowed; scripts loaded at start; the
    # period of OnHeartBeat in seconds (0: never). Lua in use means one HTTP process.
    execute_lua_enabled: bool = False
    lua_scripts: list[str] = field(default_factory=list)
    lua_heart_beat_period: int = 0
    # {"gggg,eeee": [VR, Name, MinVM, MaxVM, PrivateCreator]}: tags added to the dictionary
    dictionary: dict[str, Any] = field(default_factory=dict)
    default_private_creator: str = "PrivateCreator"
    # --- Pharos' own options ("Pharos" section, PHAROS_* variables) ---
    database_url: str | None = None  # default: SQLite file in IndexDirectory
    blobstore_url: str | None = None  # default: file store in StorageDirectory
    max_upload_size: int = 4 * 1024**3  # bytes accepted in one HTTP body
    max_zip_entries: int = 100_000
    max_zip_uncompressed_size: int = 16 * 1024**3
    max_zip_ratio: int = 200  # uncompressed/compressed size per entry above which a ZIP is refused
    # Decompression bombs (app/dicom/limits.py): bytes a deflated dataset (Deflated
    # Explicit VR Little Endian) may inflate to, and bytes one pixel decoding may produce.
    max_inflated_size: int = 512 * 1024**2
    max_decoded_image_size: int = 1024**3
    ingest_spool_threshold: int = 8 * 1024**2  # bodies above this are spooled to disk
    sweep_orphans_at_start: bool = True
    # Blobs younger than this (seconds) are never swept: another process sharing the
    # store may be between writing one and committing its row.
    orphan_min_age: int = 3600
    # HTTP worker processes (0: one per core, at most 4). Python runs one request's
    # parsing at a time per process; several processes share the index and the store.
    http_workers: int = 0
    # Seconds a running job's claim lasts without a heartbeat (renewed every sixth of it):
    # when the process running it dies, a process sharing the index takes it over then.
    job_lease: int = 30
    # The prebuilt OHIF viewer served at /ohif/ (fetched by `make ohif`); default: .ohif/dist
    # of the source tree. The viewer is off (404 with a hint) when the directory is absent.
    viewer_directory: str | None = None
    # DICOMweb CORS: origins allowed to read answers ("*": any); empty: no CORS headers.
    cors_allow_origins: list[str] = field(default_factory=list)
    # Decode, in Orthanc's image routes, what Orthanc's built-in decoder cannot (JPEG 2000,
    # uncompressed YBR, float pixels, unusual palettes...). Off by default: those routes
    # then answer exactly as Orthanc does (415), as Orthanc's clients and tests expect.
    extended_image_decoding: bool = False
    # Cross-origin isolation headers (COOP/COEP) on DICOMweb answers, for viewers that
    # need SharedArrayBuffer when served from another origin.
    coop_coep: bool = False
    # Orthanc's verbosity at start ("default", "verbose" or "trace"; Orthanc's --verbose
    # and --trace), changed at run time by PUT /tools/log-level.
    log_level: str = "default"
    # Python hooks (app/scripting/hooks.py): a module name or the path of a .py file whose
    # functions named like Orthanc's Lua callbacks are called on the same events.
    hooks: str | None = None
    # Webhooks: [{"Url", "Events", "Secret", "Timeout"}] (app/services/webhooks.py),
    # parsed into Webhook entries.
    webhooks: list[Any] = field(default_factory=list)
    # The whole configuration document as read (GetOrthancConfiguration() in Lua) and the
    # folder relative paths of LuaScripts / Hooks are read from (Orthanc's rule).
    document: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    configuration_directory: str | None = None

    @property
    def storage_sop_classes(self) -> tuple[str, ...]:
        """The accepted storage SOP classes, in order (``AcceptedSopClasses`` minus
        ``RejectedSopClasses``, app/dicom/storage_classes.py)."""
        return storage_classes.accepted(tuple(self.accepted_sop_classes),
                                        tuple(self.rejected_sop_classes))

    @property
    def overwrite_mode(self) -> str:
        """``OverwriteInstances`` as one of Orthanc's modes: "Never", "Always", "IfChanged"."""
        return overwrite_mode(self.overwrite_instances)

    @property
    def lua_in_use(self) -> bool:
        """Lua needs the server's one Lua state, hence one HTTP process (see README)."""
        return self.execute_lua_enabled or bool(self.lua_scripts)

    @property
    def effective_http_workers(self) -> int:
        if self.lua_in_use:
            return 1  # one process: exactly one Lua state, as in Orthanc
        if self.http_workers > 0:
            return self.http_workers
        # One process per two cores: a process keeps more than one core busy (its blob
        # writes and fsyncs, SQLite statements, hashing and zlib run outside the GIL on
        # other threads), and each process costs ~150 MB. Measured on 2 cores
        # (benchmarks/writes.py): one process ingests as fast as two, in 185 MB instead
        # of 511 (two workers plus the supervising parent that had imported everything).
        return max(1, min((os.cpu_count() or 1) // 2, 4))

    def resolve_path(self, path: str) -> Path:
        """A path of the configuration, relative to its folder as Orthanc reads it."""
        candidate = Path(path).expanduser()
        if candidate.is_absolute() or not self.configuration_directory:
            return candidate
        return Path(self.configuration_directory) / candidate

    @property
    def effective_authentication(self) -> bool:
        """Orthanc turns authentication on when remote access is allowed and the option is unset."""
        if self.authentication_enabled is None:
            return self.remote_access_allowed
        return self.authentication_enabled

    @property
    def index_path(self) -> Path:
        return Path(self.index_directory or self.storage_directory)

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.index_path / 'pharos-index.sqlite').resolve()}"

    @classmethod
    def from_sources(cls, config_path: str | os.PathLike[str] | None = None,
                     environ: dict[str, str] | None = None,
                     overrides: dict[str, Any] | None = None) -> Settings:
        """Build settings from defaults < configuration file < ``PHAROS_*`` variables < overrides."""
        document = load_orthanc_json(Path(config_path)) if config_path else {}
        settings = cls.from_document(document, os.environ if environ is None else environ,
                                     overrides)
        if config_path and settings.configuration_directory is None:
            path = Path(config_path).resolve()
            settings.configuration_directory = str(path if path.is_dir() else path.parent)
        return settings

    @classmethod
    def from_document(cls, document: dict[str, Any], environ: Mapping[str, str] | None = None,
                      overrides: dict[str, Any] | None = None) -> Settings:
        """Settings from a configuration document, ``PHAROS_*`` variables and overrides;
        ConfigurationError (one line naming the option and where it came from) for any
        value the server could not use."""
        values: dict[str, Any] = {}
        sources: dict[str, str] = {}  # attribute -> where its value came from
        for key, value in document.items():
            attribute = _ORTHANC_OPTIONS.get(key)
            if attribute is not None:
                values[attribute], sources[attribute] = value, key
            elif key not in _ACCEPTED_WITHOUT_EFFECT and key not in _TRANSFER_SYNTAX_OPTIONS:
                log.warning("Configuration option %r is unknown to Pharos and is ignored", key)
        for option, attribute, parse in (("DicomModalities", "dicom_modalities", Modality.parse),
                                         ("OrthancPeers", "orthanc_peers", Peer.parse)):
            if option in document:
                entries = document[option] or {}
                if not isinstance(entries, dict):
                    raise ConfigurationError(option, "must be a JSON object")
                try:
                    values[attribute] = {name: parse(name, value)
                                         for name, value in entries.items()}
                except (ValueError, TypeError) as error:
                    raise ConfigurationError(option, str(error)) from None
        try:
            values["accepted_transfer_syntaxes"] = list(syntaxes_of_configuration(document))
        except (ValueError, TypeError) as error:
            raise ConfigurationError("AcceptedTransferSyntaxes", str(error)) from None
        if "default_encoding" in values:
            try:
                values["default_encoding"] = parse_encoding(values["default_encoding"]).name
            except (ValueError, TypeError, AttributeError) as error:
                raise ConfigurationError("DefaultEncoding", str(error)) from None
        known = {f.name: f for f in fields(cls)}
        pharos_section = document.get("Pharos") or {}
        if not isinstance(pharos_section, dict):
            raise ConfigurationError("Pharos", "must be a JSON object")
        for key, value in pharos_section.items():
            attribute = _snake(key)
            if attribute in known:
                values[attribute], sources[attribute] = value, f"Pharos.{key}"
            else:
                log.warning("Configuration option Pharos.%s is unknown and is ignored", key)
        for name, raw in (environ or {}).items():
            if not name.startswith("PHAROS_"):
                continue
            attribute = name[len("PHAROS_"):].lower()
            if attribute in known and attribute not in ("dicom_modalities", "orthanc_peers"):
                try:
                    values[attribute] = _coerce(raw, known[attribute].type)
                except ValueError as error:
                    raise ConfigurationError(name, f"{error}", variable=True) from None
                sources[attribute] = name
        if isinstance(values.get("lua_scripts"), str):
            values["lua_scripts"] = [values["lua_scripts"]]
        for attribute in overrides or {}:
            sources[attribute] = "--" + attribute.split("_")[-1]
        values.update(overrides or {})
        values.setdefault("document", document)
        for attribute, value in list(values.items()):
            if attribute in known and attribute in sources:
                values[attribute] = _checked(attribute, str(known[attribute].type), value,
                                             sources[attribute])
        if "overwrite_instances" in sources:
            try:
                overwrite_mode(values["overwrite_instances"])
            except ValueError as error:
                raise ConfigurationError(sources["overwrite_instances"], str(error)) from None
        if "RejectSopClasses" in document and "RejectedSopClasses" not in document:
            # Orthanc 1.12.6 spelled it so; later releases read it when the right one is absent
            values["rejected_sop_classes"] = document["RejectSopClasses"]
            sources["rejected_sop_classes"] = "RejectSopClasses"
        for attribute, option in (("accepted_sop_classes", "AcceptedSopClasses"),
                                  ("rejected_sop_classes", "RejectedSopClasses")):
            if attribute in sources:
                try:
                    values[attribute] = list(storage_classes.entries(values[attribute], option))
                except ValueError as error:
                    raise ConfigurationError(sources[attribute], str(error)) from None
        if "dicom_default_retrieve_method" in sources:
            try:
                values["dicom_default_retrieve_method"] = retrieve_method(
                    values["dicom_default_retrieve_method"])
            except ValueError as error:
                raise ConfigurationError(sources["dicom_default_retrieve_method"],
                                         str(error)) from None
        if "job_lease" in sources and values["job_lease"] < 1:
            raise ConfigurationError(sources["job_lease"], "must be at least 1 (seconds), "
                                     f"not {values['job_lease']}")
        if values.get("webhooks"):
            try:
                values["webhooks"] = _webhooks(values["webhooks"])
            except ValueError as error:
                raise ConfigurationError(sources.get("webhooks", "Pharos.Webhooks"),
                                         str(error)) from None
        body_mb = values.get("maximum_request_body_size_mb") or 0
        if body_mb:  # the Orthanc option sets the limit; an explicit MaxUploadSize too
            limit = int(body_mb) * 1024 * 1024
            values["max_upload_size"] = min(limit, values["max_upload_size"]) \
                if "max_upload_size" in sources else limit
        return cls(**values)


def _webhooks(entries: list[Any]) -> list[Webhook]:
    webhooks = [entry if isinstance(entry, Webhook) else Webhook.parse(position, entry)
                for position, entry in enumerate(entries)]
    urls = [webhook.url for webhook in webhooks]
    if len(set(urls)) != len(urls):
        raise ValueError("lists one Url twice: give each receiver one entry (its Events "
                         "list may name several events)")
    return webhooks


_OVERWRITE_MODES = {"never": "Never", "always": "Always", "ifchanged": "IfChanged",
                    "false": "Never", "true": "Always", "0": "Never", "1": "Always"}


def overwrite_mode(value: object) -> str:
    """Orthanc's ``OverwriteInstances``: a Boolean (false is "Never", true "Always") or,
    since 1.13, "Never", "Always" or "IfChanged" (a re-sent instance replaces the stored
    one only when its file differs). ValueError for anything else."""
    if isinstance(value, bool):
        return "Always" if value else "Never"
    mode = _OVERWRITE_MODES.get(str(value).strip().lower()) if isinstance(value, str) else None
    if mode is None:
        raise ValueError('must be true, false, "Never", "Always" or "IfChanged", not '
                         f"{_shown(value)}")
    return mode


def _snake(name: str) -> str:
    out = []
    for i, c in enumerate(name):
        if c.isupper() and i and (not name[i - 1].isupper()):
            out.append("_")
        out.append(c.lower())
    return "".join(out)


def _coerce(raw: str, annotation: Any) -> Any:
    text = str(annotation)
    if "bool" in text and "str" not in text:  # "bool | str" (OverwriteInstances) stays text
        word = raw.strip().lower()
        if word not in ("1", "true", "yes", "on", "0", "false", "no", "off", ""):
            raise ValueError(f"must be true or false, not {raw[:40]!r}")
        return word in ("1", "true", "yes", "on")
    if text.startswith("int") or text == "<class 'int'>":
        try:
            return int(raw)
        except ValueError:
            raise ValueError(f"must be an integer, not {raw[:40]!r}") from None
    if text.startswith("list") and not raw.lstrip().startswith("["):
        return [item.strip() for item in raw.split(",") if item.strip()]  # a,b,c
    if text.startswith(("dict", "list")):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise ValueError(f"must be JSON, not {raw[:40]!r}") from None
    return raw


class ConfigurationError(ValueError):
    """A configuration value the server cannot use: one line naming the option (or the
    variable) and what it must be, which ``pharos`` prints before exiting with status 2."""

    def __init__(self, option: str, problem: str, *, variable: bool = False) -> None:
        self.option = option
        where = f"the environment variable {option}" if variable else option
        super().__init__(f"configuration: {where} {problem}")


# Options that are TCP ports, and AE titles (PS3.5 6.2: 1 to 16 characters).
_PORTS = {"http_port", "dicom_port"}
_AE_TITLES = {"dicom_aet"}


def _checked(attribute: str, annotation: str, value: Any, source: str) -> Any:
    """*value* as the attribute's annotation wants it (an integer may be given as its
    text), or ConfigurationError naming *source* and the expected kind."""
    base = annotation.replace(" | None", "").replace("None | ", "").strip()
    if value is None:
        if "None" in annotation:
            return None
        raise ConfigurationError(source, "must not be null")
    if base == "int":
        if isinstance(value, str) and value.strip().lstrip("-").isascii() \
                and value.strip().lstrip("-").isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigurationError(source, f"must be an integer, not {_shown(value)}")
        if attribute in _PORTS and not 0 < value < 65536:
            raise ConfigurationError(source, f"must be a TCP port (1-65535), not {value}")
        if value < 0:
            raise ConfigurationError(source, f"must not be negative, not {value}")
    elif base == "bool" and not isinstance(value, bool):
        raise ConfigurationError(source, f"must be true or false, not {_shown(value)}")
    elif base == "str":
        if not isinstance(value, str):
            raise ConfigurationError(source, f"must be a string, not {_shown(value)}")
        if attribute in _AE_TITLES and not 0 < len(value.strip()) <= 16:
            raise ConfigurationError(source, f"must be an AE title of 1 to 16 characters, "
                                     f"not {_shown(value)}")
    elif base.startswith("dict") and not isinstance(value, dict):
        raise ConfigurationError(source, f"must be a JSON object, not {_shown(value)}")
    elif base.startswith("list") and not isinstance(value, list):
        raise ConfigurationError(source, f"must be a JSON array, not {_shown(value)}")
    return value


def _shown(value: Any) -> str:
    return orjson.dumps(value).decode()[:60] if isinstance(value, str | int | float | bool) \
        else type(value).__name__
