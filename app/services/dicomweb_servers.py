"""The remote DICOMweb servers of the DICOMweb client (Orthanc's plugin, ``DicomWebServers``).

Servers come from ``DicomWeb.Servers`` in the configuration, in Orthanc's two forms
(``[url]``, ``[url, user, password]`` or ``{"Url", "Username", "Password",
"HttpHeaders", "Timeout", "CertificateFile", ..., user properties}``: the rules of
Orthanc's ``WebServiceParameters``), and from ``PUT``/``DELETE
/dicom-web/servers/{name}``. As in the plugin, ``DicomWeb.ServersInDatabase`` keeps the
registry in the index database across restarts (the configuration's servers are then not
read); otherwise REST changes last until the server stops. Either way every HTTP process
of the server sees the same registry (see :func:`app.services.remotes.registry_overrides`).

User properties the client reads: ``HasDelete`` (``/delete`` allowed),
``ChunkedTransfers`` (STOW-RS bodies sent chunked, default true) and
``HasWadoRsUniversalTransferSyntax`` (``transfer-syntax=*`` asked, default true).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.context import ServerContext
from app.errors import BadFileFormat, InexistentItem, ParameterOutOfRange
from app.services import remotes

REGISTRY = "dicomweb-servers"
_RESERVED = {"CertificateFile", "CertificateKeyFile", "CertificateKeyPassword", "HttpHeaders",
             "Password", "Pkcs11", "Url", "URL", "Username", "Timeout"}


@dataclass(frozen=True)
class DicomWebServer:
    """One remote DICOMweb server (Orthanc's ``WebServiceParameters``)."""

    url: str  # always with a trailing slash
    username: str = ""
    password: str = ""
    certificate_file: str = ""
    certificate_key_file: str = ""
    certificate_key_password: str = ""
    pkcs11: bool = False
    timeout: int = 0  # seconds; 0: the global HttpTimeout
    http_headers: dict[str, str] = field(default_factory=dict)
    user_properties: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, value: Any) -> DicomWebServer:
        """The simple (list) or advanced (object) form; BadFileFormat (400) otherwise."""
        if isinstance(value, list):
            return cls._from_list(value)
        if isinstance(value, dict):
            return cls._from_object(value)
        raise BadFileFormat("A DICOMweb server is [url(, username, password)] or an object "
                            "with a Url")

    @classmethod
    def _from_list(cls, value: list[Any]) -> DicomWebServer:
        if len(value) not in (1, 3) or not all(isinstance(v, str) for v in value):
            raise BadFileFormat("A DICOMweb server as a list is [url] or "
                                "[url, username, password]")
        username, password = (value[1], value[2]) if len(value) == 3 else ("", "")
        return cls(_url(value[0]), *_credentials(username, password))

    @classmethod
    def _from_object(cls, value: dict[str, Any]) -> DicomWebServer:
        url = _string(value, "Url") or _string(value, "URL")
        certificate = _string(value, "CertificateFile")
        pkcs11 = value.get("Pkcs11", False)
        if not isinstance(pkcs11, bool):
            raise BadFileFormat("Pkcs11 must be a Boolean")
        headers = value.get("HttpHeaders", {})
        if not isinstance(headers, dict) or not all(isinstance(v, str)
                                                    for v in headers.values()):
            raise BadFileFormat("HttpHeaders must be an object of strings")
        timeout = value.get("Timeout", 0)
        if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 0:
            raise BadFileFormat("Timeout must be a non-negative integer (seconds)")
        return cls(
            _url(url), *_credentials(_string(value, "Username"), _string(value, "Password")),
            certificate_file=certificate,
            certificate_key_file=_string(value, "CertificateKeyFile") if certificate else "",
            certificate_key_password=(_string(value, "CertificateKeyPassword")
                                      if certificate else ""),
            pkcs11=pkcs11, timeout=timeout, http_headers=dict(headers),
            user_properties={key: _property(key, item) for key, item in value.items()
                             if key not in _RESERVED})

    def public_json(self) -> dict[str, Any]:
        """``GET /dicom-web/servers?expand`` (Orthanc's ``FormatPublic``): no secrets, the
        names of the HTTP headers only."""
        answer: dict[str, Any] = {"Url": self.url}
        if self.username:
            answer["Username"] = self.username
            answer["Password"] = None
        if self.certificate_file:
            answer["CertificateFile"] = self.certificate_file
            answer["CertificateKeyFile"] = None
            answer["CertificateKeyPassword"] = None
        answer["Pkcs11"] = self.pkcs11
        answer["Timeout"] = self.timeout
        answer["HttpHeaders"] = sorted(self.http_headers)
        answer.update(self.user_properties)
        return answer

    def document(self) -> dict[str, Any]:
        """The advanced form with its secrets, as stored (and given to jobs)."""
        answer: dict[str, Any] = {"Url": self.url, "Pkcs11": self.pkcs11,
                                  "Timeout": self.timeout, "HttpHeaders": self.http_headers}
        if self.username:
            answer["Username"], answer["Password"] = self.username, self.password
        if self.certificate_file:
            answer["CertificateFile"] = self.certificate_file
            answer["CertificateKeyFile"] = self.certificate_key_file
            answer["CertificateKeyPassword"] = self.certificate_key_password
        answer.update(self.user_properties)
        return answer

    def flag(self, key: str, default: bool) -> bool:
        """A Boolean user property (``true``/``false``/``1``/``0``, as Orthanc parses it)."""
        value = self.user_properties.get(key)
        if value is None:
            return default
        if value.lower() in ("true", "1"):
            return True
        if value.lower() in ("false", "0"):
            return False
        raise BadFileFormat(f"Bad value for the Boolean property {key!r} of a DICOMweb "
                            f"server: {value!r}")


def _string(value: dict[str, Any], key: str) -> str:
    item = value.get(key, "")
    if not isinstance(item, str):
        raise BadFileFormat(f"{key} must be a string")
    return item


def _property(key: str, value: Any) -> str:
    """User properties are strings; Booleans become "1"/"0", integers their digits."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, str | int):
        return str(value)
    raise BadFileFormat(f"User-defined properties of a DICOMweb server must be strings: {key}")


def _url(url: str) -> str:
    if not url:
        raise BadFileFormat("The URL of a DICOMweb server is empty")
    if "://" in url and not url.startswith(("http://", "https://")):
        raise BadFileFormat(f"Bad URL (only http and https): {url}")
    return url if url.endswith("/") else url + "/"


def _credentials(username: str, password: str) -> tuple[str, str]:
    if not username and password:
        raise BadFileFormat("A password is given without a username")
    return username, password


# --- the registry ---------------------------------------------------------------------------

def _persistent(context: ServerContext) -> bool:
    return bool((context.settings.dicom_web or {}).get("ServersInDatabase", False))


def _configured(context: ServerContext) -> dict[str, Any]:
    if _persistent(context):
        return {}  # as the plugin: the database alone then
    servers = (context.settings.dicom_web or {}).get("Servers") or {}
    if not isinstance(servers, dict):
        raise BadFileFormat('Cannot parse the "DicomWeb.Servers" section of the configuration')
    return servers


def servers(context: ServerContext) -> dict[str, DicomWebServer]:
    """Every server known now, sorted by name (Orthanc lists them so)."""
    documents = dict(_configured(context))
    for name, document in remotes.registry_overrides(
            context, REGISTRY, persistent=_persistent(context)).items():
        if document is None:
            documents.pop(name, None)
        else:
            documents[name] = document
    return {name: DicomWebServer.parse(document)
            for name, document in sorted(documents.items())}


def get_server(context: ServerContext, name: str) -> DicomWebServer:
    found = servers(context).get(name)
    if found is None:
        raise InexistentItem(f"Inexistent DICOMweb server: {name}")
    return found


def put_server(context: ServerContext, name: str, body: Any) -> None:
    """``PUT /dicom-web/servers/{name}``: add or replace."""
    server = DicomWebServer.parse(body)
    remotes.registry_save(context, REGISTRY, name, server.document(),
                          persistent=_persistent(context))


def delete_server(context: ServerContext, name: str) -> None:
    """``DELETE /dicom-web/servers/{name}`` (configured servers too, until restart)."""
    if name not in servers(context):
        raise ParameterOutOfRange(f"Unknown DICOMweb server: {name}")
    remotes.registry_save(context, REGISTRY, name, None, persistent=_persistent(context))


def operations(server: DicomWebServer) -> list[str]:
    """``GET /dicom-web/servers/{name}``: what can be done with the server."""
    answer = ["get", "retrieve", "stow", "wado", "qido"]
    if server.flag("HasDelete", False):
        answer.append("delete")
    return answer
