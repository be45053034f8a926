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
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import orjson

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
    properties: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def parse(cls, name: str, value: Any) -> Modality:
        """The short or long form; ValueError when the AET, host or port cannot work (an
        AE title is 1-16 characters without backslash, PS3.5 6.2; a TCP port 1-65535)."""
        modality = cls._parse(name, value)
        aet = modality.aet.strip()
        if not 1 <= len(aet) <= 16 or "\\" in aet or not aet.isprintable():
            raise ValueError(f"modality {name}: the AET {modality.aet[:40]!r} is not 1 to 16 "
                             "printable characters")
        if not modality.host.strip() or not modality.host.isprintable():
            raise ValueError(f"modality {name}: the host is empty")
        if not 1 <= modality.port <= 65535:
            raise ValueError(f"modality {name}: the port {modality.port} is not 1-65535")
        if modality.local_aet is not None and not (
                isinstance(modality.local_aet, str) and 1 <= len(modality.local_aet) <= 16):
            raise ValueError(f"modality {name}: LocalAet must be 1 to 16 characters")
        return modality

    @classmethod
    def _parse(cls, name: str, value: Any) -> Modality:
        if isinstance(value, list):
            if len(value) not in (3, 4):
                raise ValueError(f"modality {name}: expected [AET, host, port(, manufacturer)]")
            return cls(name, str(value[0]), str(value[1]), _port(value[2]),
                       str(value[3]) if len(value) == 4 else "Generic")
        if not isinstance(value, dict) or not {"AET", "Host", "Port"} <= value.keys():
            raise ValueError(f"modality {name}: expected AET, Host and Port")
        return cls(
            name=name, aet=str(value["AET"]), host=str(value["Host"]), port=_port(value["Port"]),
            manufacturer=str(value.get("Manufacturer", "Generic")),
            allow_echo=bool(value.get("AllowEcho", True)),
            allow_find=bool(value.get("AllowFind", True)),
            allow_get=bool(value.get("AllowGet", True)),
            allow_move=bool(value.get("AllowMove", True)),
            allow_store=bool(value.get("AllowStore", True)),
            allow_find_worklist=bool(value.get("AllowFindWorklist", True)),
            allow_storage_commitment=bool(value.get("AllowStorageCommitment", True)),
            allow_transcoding=bool(value.get("AllowTranscoding", True)),
            use_dicom_tls=bool(value.get("UseDicomTls", False)),
            local_aet=value.get("LocalAet"),
            timeout=_port(value.get("Timeout", 0), "Timeout", 0, 86400),
            properties=dict(value),
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
        return answer


@dataclass(frozen=True)
class Peer:
    """A remote Orthanc-compatible HTTP server, from ``OrthancPeers``."""

    name: str
    url: str
    username: str | None = None
    password: str | None = None
    properties: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def parse(cls, name: str, value: Any) -> Peer:
        """The short or long form; ValueError unless the URL is http(s)://host..."""
        peer = cls._parse(name, value)
        from urllib.parse import urlsplit
        try:
            parts = urlsplit(peer.url)
            parts.port  # noqa: B018 — raises ValueError for a port out of range
        except ValueError as error:
            raise ValueError(f"peer {name}: bad URL {peer.url[:200]!r}: {error}") from None
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise ValueError(f"peer {name}: the URL {peer.url[:200]!r} must be "
                             "http(s)://host[:port]/...")
        return peer

    @classmethod
    def _parse(cls, name: str, value: Any) -> Peer:
        if isinstance(value, list):
            if len(value) not in (1, 3):
                raise ValueError(f"peer {name}: expected [URL] or [URL, username, password]")
            return cls(name, str(value[0]), *(str(v) for v in value[1:]))
        if not isinstance(value, dict) or "Url" not in value:
            raise ValueError(f"peer {name}: expected an object with Url")
        return cls(name, str(value["Url"]), value.get("Username"), value.get("Password"),
                   dict(value))


def _port(value: Any, what: str = "port", minimum: int = 1, maximum: int = 65535) -> int:
    """An integer option (a JSON number or its text), ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"the {what} must be a number, not {value}")
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"the {what} must be a number, not {str(value)[:40]!r}") from None
    if not minimum <= number <= maximum:
        raise ValueError(f"the {what} {number} is not within {minimum}-{maximum}")
    return number


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
    "Dictionary": "dictionary",
    "DefaultPrivateCreator": "default_private_creator",
}

# Options Orthanc knows that Pharos deliberately accepts without effect (no warning).
_ACCEPTED_WITHOUT_EFFECT = {
    "Plugins", "LuaScripts", "MaximumStorageCacheSize", "OrthancExplorerEnabled",
    "HttpCompressionEnabled", "WebDavEnabled", "WebDavDeleteAllowed", "WebDavUploadAllowed",
    "SslEnabled", "SslCertificate", "SslMinimumProtocolVersion", "HttpThreadsCount",
    "HttpTimeout", "HttpVerbose", "StorageAccessOnFind", "DicomWeb", "ExecuteLuaEnabled",
    "AcceptedTransferSyntaxes", "DicomAssociationCloseDelay", "QueryRetrieveSize",
    "DeidentifyLogs", "DeidentifyLogsDicomVersion", "MallocArenaMax", "LoadPrivateDictionary",
    "SynchronousCMove", "MediaArchiveSize", "IngestTranscoding",
    "TranscodeDicomProtocol", "BuiltinDecoderTranscoderOrder", "OverwriteInstances_",
    "ExtraMainDicomTags", "Warnings", "ZipLoaderThreads", "HttpProxy", "HttpsVerifyPeers",
    "HttpsCACertificates", "StrictAetComparison", "DicomModalities", "OrthancPeers",
    "Pharos", "DicomTlsEnabled", "TcpNoDelay",
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
    overwrite_instances: bool = False
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
    # HTTP worker processes (0: one per core, at most 4). Python runs one request's
    # parsing at a time per process; several processes share the index and the store.
    http_workers: int = 0
    # The prebuilt OHIF viewer served at /ohif/ (fetched by `make ohif`); default: .ohif/dist
    # of the source tree. The viewer is off (404 with a hint) when the directory is absent.
    viewer_directory: str | None = None
    # DICOMweb CORS: origins allowed to read answers ("*": any); empty: no CORS headers.
    cors_allow_origins: list[str] = field(default_factory=list)
    # Cross-origin isolation headers (COOP/COEP) on DICOMweb answers, for viewers that
    # need SharedArrayBuffer when served from another origin.
    coop_coep: bool = False

    @property
    def effective_http_workers(self) -> int:
        if self.http_workers > 0:
            return self.http_workers
        return max(1, min(os.cpu_count() or 1, 4))

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
        return cls.from_document(document, os.environ if environ is None else environ, overrides)

    @classmethod
    def from_document(cls, document: dict[str, Any], environ: dict[str, str] | None = None,
                      overrides: dict[str, Any] | None = None) -> Settings:
        values: dict[str, Any] = {}
        for key, value in document.items():
            attribute = _ORTHANC_OPTIONS.get(key)
            if attribute is not None:
                values[attribute] = value
            elif key not in _ACCEPTED_WITHOUT_EFFECT:
                log.warning("Configuration option %r is unknown to Pharos and is ignored", key)
        if "DicomModalities" in document:
            values["dicom_modalities"] = {
                name: Modality.parse(name, value)
                for name, value in (document["DicomModalities"] or {}).items()}
        if "OrthancPeers" in document:
            values["orthanc_peers"] = {
                name: Peer.parse(name, value)
                for name, value in (document["OrthancPeers"] or {}).items()}
        known = {f.name: f for f in fields(cls)}
        pharos_section = document.get("Pharos") or {}
        for key, value in pharos_section.items():
            attribute = _snake(key)
            if attribute in known:
                values[attribute] = value
            else:
                log.warning("Configuration option Pharos.%s is unknown and is ignored", key)
        for name, raw in (environ or {}).items():
            if not name.startswith("PHAROS_"):
                continue
            attribute = name[len("PHAROS_"):].lower()
            if attribute in known and attribute not in ("dicom_modalities", "orthanc_peers"):
                values[attribute] = _coerce(raw, known[attribute].type)
        values.update(overrides or {})
        return cls(**values)


def _snake(name: str) -> str:
    out = []
    for i, c in enumerate(name):
        if c.isupper() and i and (not name[i - 1].isupper()):
            out.append("_")
        out.append(c.lower())
    return "".join(out)


def _coerce(raw: str, annotation: Any) -> Any:
    text = str(annotation)
    if "bool" in text:
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if text.startswith("int") or text == "<class 'int'>":
        return int(raw)
    if text.startswith("dict"):
        return orjson.loads(raw)
    return raw
