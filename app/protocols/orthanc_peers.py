"""HTTP client to Orthanc peers (``OrthancPeers``): Orthanc's REST API spoken by httpx.

Any server speaking Orthanc's REST API is a peer: Debian's Orthanc, another Pharos.
Transport errors become :class:`app.errors.NetworkProtocol` (Orthanc answers "Error in the
network protocol" with libcurl's message in the details).
"""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from app.config import Peer
from app.errors import BadRequest, NetworkProtocol, PharosError, Unauthorized, UnknownResource

DEFAULT_TIMEOUT = 60.0  # Orthanc's HttpTimeout default


def normalized_url(url: str) -> str:
    """Orthanc keeps peer URLs with a trailing slash."""
    return url if url.endswith("/") else url + "/"


def peer_timeout(peer: Peer, default: float = DEFAULT_TIMEOUT) -> float | None:
    """The peer's ``Timeout``, else *default* (the server's ``HttpTimeout``); Orthanc's
    0 means no timeout (None)."""
    timeout = peer.properties.get("Timeout", 0) if peer.properties else 0
    try:
        value = float(timeout)
    except (TypeError, ValueError):
        value = 0.0
    value = value if value > 0 else float(default)
    return value if value > 0 else None


def open_client(peer: Peer, default_timeout: float = DEFAULT_TIMEOUT) -> httpx.Client:
    """A client bound to the peer's URL, credentials and extra HTTP headers."""
    headers = peer.properties.get("HttpHeaders") if peer.properties else None
    auth = (peer.username, peer.password or "") if peer.username else None
    return httpx.Client(base_url=normalized_url(peer.url), auth=auth,
                        headers=dict(headers) if isinstance(headers, dict) else None,
                        timeout=peer_timeout(peer, default_timeout))


def _request(client: httpx.Client, method: str, path: str, **kwargs: Any) -> httpx.Response:
    try:
        response = client.request(method, path, **kwargs)
    except httpx.HTTPError as error:
        raise NetworkProtocol(f"HTTP request to the peer failed: {error}") from error
    if response.status_code >= 400:
        # As Orthanc's HttpClient::ThrowException: the peer's 400, 401/403 and 404 are
        # answered as Bad request, Unauthorized and Unknown resource (a body the peer
        # refuses is the client's error, not ours); any other status is a network error.
        error_class = _PEER_ERRORS.get(response.status_code, NetworkProtocol)
        raise error_class(f"The peer answered HTTP status {response.status_code} to "
                          f"{method} {path}: {response.text[:500]}")
    return response


_PEER_ERRORS: dict[int, type[PharosError]] = {
    400: BadRequest, 401: Unauthorized, 403: Unauthorized, 404: UnknownResource}


def system(peer: Peer, default_timeout: float = DEFAULT_TIMEOUT) -> Any:
    """``GET /system`` of the peer, as it answers it."""
    with open_client(peer, default_timeout) as client:
        return _decode(_request(client, "GET", "system"))


def post_instance(client: httpx.Client, data: bytes, gzipped: bool = False) -> Any:
    """Upload one DICOM file to the peer (``POST /instances``; *gzipped*: *data* is the
    file compressed with gzip, sent with ``Content-Encoding: gzip`` as Orthanc 1.6+'s
    ``Compress``); answer the peer's JSON."""
    headers = {"Content-Type": "application/dicom"}
    if gzipped:
        headers["Content-Encoding"] = "gzip"
    return _decode(_request(client, "POST", "instances", content=data, headers=headers))


def _decode(response: httpx.Response) -> Any:
    try:
        return orjson.loads(response.content) if response.content.strip() else {}
    except orjson.JSONDecodeError as error:
        raise NetworkProtocol(f"The peer answered something that is not JSON: {error}") \
            from error
