"""Fixtures and helpers for the DICOMweb tests: a live Pharos with CORS configured,
multipart bodies built byte by byte as curl would send them, multipart answers parsed
independently of the server's code."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from dicomweb_client.api import DICOMwebClient

from tests.helpers import LiveServer, live_server

VIEWER_ORIGIN = "http://viewer.example:3000"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A live Pharos whose DICOMweb answers may be read by VIEWER_ORIGIN (CORS)."""
    config = {"Pharos": {"CorsAllowOrigins": [VIEWER_ORIGIN]}}
    with live_server(tmp_path_factory.mktemp("pharos-dicomweb"), config) as live:
        yield live


@pytest.fixture(scope="module")
def client(server: LiveServer) -> DICOMwebClient:
    return DICOMwebClient(url=server.url + "/dicom-web")


@pytest.fixture(scope="module")
def http(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as session:
        yield session


def multipart_body(parts: list[tuple[dict[str, str], bytes]],
                   boundary: str | None = None) -> tuple[bytes, str]:
    """A multipart/related body (RFC 2046) and its boundary, each part with its headers."""
    boundary = boundary or "----pharos" + secrets.token_hex(8)
    chunks = []
    for headers, content in parts:
        head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        chunks.append(f"--{boundary}\r\n{head}\r\n".encode() + content + b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), boundary


def dicom_parts(files: list[bytes]) -> list[tuple[dict[str, str], bytes]]:
    return [({"Content-Type": "application/dicom"}, data) for data in files]


def stow(http: httpx.Client, files: list[bytes], path: str = "/dicom-web/studies",
         accept: str = "application/dicom+json") -> httpx.Response:
    body, boundary = multipart_body(dicom_parts(files))
    return http.post(path, content=body, headers={
        "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
        "Accept": accept})


def parse_multipart(response: httpx.Response) -> list[tuple[dict[str, str], bytes]]:
    """The parts of a multipart/related answer: (lower-cased headers, content)."""
    content_type = response.headers["content-type"]
    assert content_type.startswith("multipart/related"), content_type
    boundary = None
    for item in content_type.split(";")[1:]:
        name, _, value = item.strip().partition("=")
        if name.lower() == "boundary":
            boundary = value.strip('"')
    assert boundary, content_type
    body = response.content
    delimiter = b"--" + boundary.encode()
    assert body.rstrip().endswith(delimiter + b"--"), body[-100:]
    pieces = body.split(b"\r\n" + delimiter)
    first = pieces[0]
    assert first.startswith(delimiter)
    pieces[0] = first[len(delimiter):]
    parts = []
    for piece in pieces:
        if piece.startswith(b"--"):
            break
        assert piece.startswith(b"\r\n"), piece[:50]
        head, _, content = piece[2:].partition(b"\r\n\r\n")
        headers = {}
        for line in head.split(b"\r\n"):
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        parts.append((headers, content))
    return parts


def corpus_file(corpus: Path, relative: str) -> bytes:
    path = corpus / relative
    if not path.exists():
        pytest.skip(f"corpus file {relative} is missing")
    return path.read_bytes()
