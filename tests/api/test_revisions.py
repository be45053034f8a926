"""Revisions of metadata and attachments as Orthanc 1.12.8 has them on its SQLite index
(conventions of CouchDB): ``ETag: "{revision}-{md5}"`` on reads and writes, ``If-None-Match``
answering 304, ``If-Match`` checked on writes (409 on a stale revision or MD5, and when
missing under ``CheckRevisions``), 400 for a malformed header, 403 for system entries.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import httpx
import pytest

from tests.helpers import LiveServer, live_server, make_dicom


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("pharos-revisions"),
                     {"CheckRevisions": True}) as live:
        yield live


@pytest.fixture()
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as http:
        yield http


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _upload(client: httpx.Client, patient_id: str) -> tuple[str, bytes]:
    data = make_dicom(patient_id=patient_id)
    return client.post("/instances", content=data).json()["ID"], data


def test_system_metadata_has_an_etag_and_is_read_only(client: httpx.Client) -> None:
    instance, _ = _upload(client, "REV-SYSTEM")
    url = f"/instances/{instance}/metadata/TransferSyntax"
    answer = client.get(url)
    value = answer.text
    assert answer.headers["etag"] == f'"0-{_md5(value.encode())}"'
    for bad in ('"aaa"', '"aaa-bbb"', "x"):
        assert client.get(url, headers={"If-None-Match": bad}).status_code == 400, bad
    same = client.get(url, headers={"If-None-Match": answer.headers["etag"]})
    assert same.status_code == 304 and same.content == b""
    assert same.headers["etag"] == answer.headers["etag"]
    for other in (f'"1-{_md5(value.encode())}"', '"0-aaa"'):
        again = client.get(url, headers={"If-None-Match": other})
        assert again.status_code == 200 and again.text == value
    assert client.delete(url).status_code == 403
    assert client.put(url, content=b"hello").status_code == 403
    assert client.put(f"/instances/{instance}/metadata/1023", content=b"x").status_code == 403


def test_user_metadata_revisions(client: httpx.Client) -> None:
    instance, _ = _upload(client, "REV-USER")
    url = f"/instances/{instance}/metadata/1024"
    hello, hello2 = f'"0-{_md5(b"hello")}"', f'"2-{_md5(b"hello2")}"'
    created = client.put(url, content=b"hello")
    assert created.status_code == 200 and created.text == "" and created.headers["etag"] == hello
    read = client.get(url)
    assert read.text == "hello" and read.headers["etag"] == hello
    assert client.get(url, headers={"If-None-Match": hello}).status_code == 304
    assert client.get(url, headers={"If-None-Match": '"1-tata"'}).text == "hello"
    # deleting: If-Match is mandatory (CheckRevisions) and must name revision and MD5
    assert client.delete(url).status_code == 409
    for stale in (f"45-{_md5(b'hello')}", "0-tata"):
        assert client.delete(url, headers={"If-Match": stale}).status_code == 409
    assert client.delete(url, headers={"If-Match": hello.strip('"')}).status_code == 200
    assert client.delete(url, headers={"If-Match": hello.strip('"')}).status_code == 404
    assert client.get(url).status_code == 404
    # a new sequence of revisions
    assert client.put(url, content=b"hello").headers["etag"] == hello
    assert client.put(url, content=b"hello").status_code == 409  # no If-Match
    updated = client.put(url, content=b"hello", headers={"If-Match": hello.strip('"')})
    assert updated.status_code == 200 and updated.headers["etag"] == f'"1-{_md5(b"hello")}"'
    assert client.get(url, headers={"If-None-Match": updated.headers["etag"]}).status_code \
        == 304
    assert client.put(url, content=b"hello2", headers={"If-Match": hello}).status_code == 409
    last = client.put(url, content=b"hello2", headers={"If-Match": updated.headers["etag"]})
    assert last.status_code == 200 and last.headers["etag"] == hello2
    assert client.get(url).text == "hello2"


@pytest.mark.parametrize("suffix", ["", "/compressed-data", "/compressed-md5",
                                    "/compressed-size", "/data", "/info", "/is-compressed",
                                    "/md5", "/size", "/uuid"])
def test_dicom_attachment_etag(client: httpx.Client, suffix: str) -> None:
    instance, data = _upload(client, f"REV-DICOM{suffix.replace('/', '-')}")
    url = f"/instances/{instance}/attachments/dicom{suffix}"
    etag = f'"0-{_md5(data)}"'
    answer = client.get(url)
    assert answer.status_code == 200 and answer.headers["etag"] == etag
    same = client.get(url, headers={"If-None-Match": etag})
    assert same.status_code == 304 and same.content == b"" and same.headers["etag"] == etag
    assert client.get(url, headers={"If-None-Match": '"tata"'}).status_code == 400
    for other in (f'"1-{_md5(data)}"', '"0-tata"'):
        again = client.get(url, headers={"If-None-Match": other})
        assert again.status_code == 200 and again.headers["etag"] == etag


def test_dicom_attachment_cannot_be_written(client: httpx.Client) -> None:
    instance, _ = _upload(client, "REV-DICOM-WRITE")
    url = f"/instances/{instance}/attachments/dicom"
    assert client.delete(url).status_code == 403
    assert client.put(url, content=b"hello").status_code == 403


def test_user_attachment_revisions(client: httpx.Client) -> None:
    instance, _ = _upload(client, "REV-ATTACH")
    url = f"/instances/{instance}/attachments/1024"
    hello = f'"0-{_md5(b"hello")}"'
    assert client.put(url, content=b"hello").headers["etag"] == hello
    data = client.get(f"{url}/data")
    assert data.content == b"hello" and data.headers["etag"] == hello
    assert client.get(f"{url}/data", headers={"If-None-Match": hello}).status_code == 304
    assert client.get(f"{url}/data", headers={"If-None-Match": "tata"}).status_code == 400
    assert client.delete(url).status_code == 409
    assert client.delete(url, headers={"If-Match": "0-tata"}).status_code == 409
    assert client.delete(url, headers={"If-Match": hello.strip('"')}).status_code == 200
    assert client.delete(url, headers={"If-Match": hello.strip('"')}).status_code == 404
    assert client.put(url, content=b"hello").headers["etag"] == hello
    assert client.put(url, content=b"hello").status_code == 409
    updated = client.put(url, content=b"hello", headers={"If-Match": hello.strip('"')})
    assert updated.headers["etag"] == f'"1-{_md5(b"hello")}"'
