"""Outbound HTTP to a remote DICOMweb server: the transport of the DICOMweb client.

One :class:`DicomWebConnection` per operation wraps an ``httpx.Client`` bound to the
server's URL, credentials, client certificate and extra headers, with:

* timeouts: the server's ``Timeout`` (seconds) or the global ``HttpTimeout`` (Orthanc's
  default 60), applied to connecting and to each read/write (an idle limit: a long
  transfer that keeps moving is not cut, unlike libcurl's total timeout in Orthanc);
* the global ``HttpsVerifyPeers``, ``HttpsCACertificates`` and ``HttpProxy``;
* streaming both ways: answers are read in chunks (``stream``), request bodies are
  iterators (STOW-RS sends the files one after the other, chunked), so memory stays flat
  whatever the study size.

URIs follow Orthanc's plugin: the resource path is appended to the server's URL (leading
slash or not), repeated slashes are collapsed, and GET arguments are given apart and
URL-encoded (an explicit ``?`` in the resource is refused). Transport errors and error
statuses of the remote become :class:`app.errors.NetworkProtocol`, with the URL and the
status in the message, as Orthanc reports them.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Protocol

import httpx

from app.config import Settings
from app.errors import BadFileFormat, NetworkProtocol

_MULTIPLE_SLASHES = re.compile(r"/{2,}")
CHUNK = 1 << 20


def resource_uri(resource: str, arguments: Mapping[str, str] | None = None) -> str:
    """``resource?key=value&...`` with the arguments URL-encoded, sorted by name (Orthanc's
    ``DicomWebServers::UriEncode``)."""
    if "?" in resource:
        raise BadFileFormat("The GET arguments must be provided in a separate field "
                            f"(explicit \"?\" is disallowed): {resource}")
    if not arguments:
        return resource
    pairs = []
    for key in sorted(arguments):
        value = str(arguments[key])
        name = urllib.parse.quote(str(key), safe="")
        pairs.append(f"{name}={urllib.parse.quote(value, safe='')}" if value else name)
    return resource + "?" + "&".join(pairs)


def join_url(base: str, uri: str) -> str:
    """The server's URL and a resource URI, repeated slashes of the path collapsed."""
    scheme, separator, rest = (base + "/" + uri).partition("://")
    if not separator:
        return _MULTIPLE_SLASHES.sub("/", scheme)
    path, question, query = rest.partition("?")
    return f"{scheme}://{_MULTIPLE_SLASHES.sub('/', path)}{question}{query}"


class DicomWebServer(Protocol):
    """What the transport needs of a remote server (the registry's record is
    :class:`app.services.dicomweb_servers.DicomWebServer`)."""

    @property
    def url(self) -> str: ...  # with a trailing slash
    @property
    def username(self) -> str: ...
    @property
    def password(self) -> str: ...
    @property
    def certificate_file(self) -> str: ...
    @property
    def certificate_key_file(self) -> str: ...
    @property
    def certificate_key_password(self) -> str: ...
    @property
    def timeout(self) -> int: ...  # seconds; 0: the global HttpTimeout
    @property
    def http_headers(self) -> dict[str, str]: ...


class DicomWebConnection:
    """HTTP requests to one DICOMweb server (a context manager: close it when done)."""

    def __init__(self, server: DicomWebServer, settings: Settings) -> None:
        self.server = server
        seconds = server.timeout or settings.http_timeout
        timeout = httpx.Timeout(float(seconds) if seconds else None)
        verify: Any = settings.https_verify_peers
        if verify and settings.https_ca_certificates:
            verify = settings.https_ca_certificates
        cert: Any = None  # (file, key file, key password), None where not given
        if server.certificate_file:
            cert = (server.certificate_file, server.certificate_key_file or None,
                    server.certificate_key_password or None)
        auth = (server.username, server.password) if server.username else None
        self._client = httpx.Client(auth=auth, timeout=timeout, verify=verify, cert=cert,
                                    proxy=settings.http_proxy or None,
                                    headers=server.http_headers, follow_redirects=True)

    def __enter__(self) -> DicomWebConnection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def url(self, uri: str) -> str:
        return join_url(self.server.url, uri)

    @contextmanager
    def stream(self, method: str, uri: str, *, headers: Mapping[str, str] | None = None,
               content: bytes | Iterable[bytes] | None = None,
               ) -> Iterator[httpx.Response]:
        """An answer whose body is read as it arrives; 2xx only (NetworkProtocol else)."""
        url = self.url(uri)
        try:
            with self._client.stream(method, url, headers=dict(headers or {}),
                                     content=content) as response:
                if not 200 <= response.status_code < 300:
                    response.read()
                    raise NetworkProtocol(_status_message(url, response))
                yield response
        except httpx.HTTPError as error:
            raise NetworkProtocol(f"Cannot issue an HTTP query to {url}: {error}") from error

    def request(self, method: str, uri: str, *, headers: Mapping[str, str] | None = None,
                content: bytes | Iterable[bytes] | None = None) -> httpx.Response:
        """A whole answer (small ones: QIDO-RS, STOW-RS and DELETE answers)."""
        with self.stream(method, uri, headers=headers, content=content) as response:
            response.read()
            return response


def _status_message(url: str, response: httpx.Response) -> str:
    text = response.text[:300].strip() if response.content else ""
    return (f"Cannot issue an HTTP query to {url} (HTTP status: {response.status_code})"
            + (f": {text}" if text else ""))


def json_answer(response: httpx.Response) -> Any:
    """The JSON of an answer; NetworkProtocol when it is not JSON."""
    try:
        return response.json()
    except ValueError as error:
        raise NetworkProtocol(f"The DICOMweb server answered something that is not JSON: "
                              f"{error}") from error
