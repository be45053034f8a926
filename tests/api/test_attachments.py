"""User attachments on a live Pharos: every level, compression, revisions, bad input,
deletion with the resource, and the orphan sweep keeping attachment blobs."""

from __future__ import annotations

import hashlib
import os
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import LiveServer, live_server, make_dicom, on_filesystem, pinned_database

CONFIG = {"UserContentType": {"sample": 1024, "pdfdoc": [1025, "application/pdf"]}}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("pharos-attachments"), CONFIG) as live:
        yield live


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _upload(server: LiveServer, patient_id: str) -> dict[str, str]:
    with server.client() as client:
        return client.post("/instances", content=make_dicom(patient_id=patient_id)).json()


@pytest.mark.parametrize("level", ["patients", "studies", "series", "instances"])
def test_put_get_delete_every_level(server: LiveServer, level: str) -> None:
    ids = _upload(server, f"ATT-{level}")
    resource = {"patients": ids["ParentPatient"], "studies": ids["ParentStudy"],
                "series": ids["ParentSeries"], "instances": ids["ID"]}[level]
    base = f"/{level}/{resource}/attachments"
    content = b"hello world"
    with server.client() as client:
        put = client.put(f"{base}/sample", content=content)
        assert put.status_code == 200, put.text
        assert put.json() == {}
        assert put.headers["etag"] == f'"0-{_md5(content)}"'
        listed = client.get(base).json()
        assert listed == (["dicom", "sample"] if level == "instances" else ["sample"])
        full = client.get(base, params={"full": ""}).json()
        assert full["sample"] == 1024
        data = client.get(f"{base}/sample/data")
        assert data.content == content
        assert data.headers["content-type"] == "application/octet-stream"
        assert data.headers["etag"] == put.headers["etag"]
        assert client.get(f"{base}/1024/size").text == str(len(content))
        assert client.get(f"{base}/sample/md5").text == _md5(content)
        info = client.get(f"{base}/sample/info").json()
        assert info["ContentType"] == 1024 and info["UncompressedSize"] == len(content)
        assert info["CompressedMD5"] == info["UncompressedMD5"] == _md5(content)
        assert client.get(f"{base}/sample/is-compressed").text == "0"
        assert "verify-md5" in client.get(f"{base}/sample").json()
        assert client.post(f"{base}/sample/verify-md5").json() == {}
        assert client.delete(f"{base}/sample").status_code == 200
        assert client.get(f"{base}/sample/data").status_code == 404
        assert client.delete(f"{base}/sample").status_code == 404
        if level == "instances":  # the DICOM file is still served by its own routes
            assert client.get(f"{base}/dicom/size").status_code == 200
            assert client.get(f"{base}/dicom").status_code == 200


def test_statistics_count_the_attachments(tmp_path: Path) -> None:
    """As Orthanc's ``GetResourceStatistics``: ``DiskSize``/``UncompressedSize`` of a
    resource add the attachments of the resource and of everything below it (``Dicom*``
    only the DICOM files); ``/statistics`` adds every attachment."""
    with live_server(tmp_path, CONFIG) as live, live.client() as client:
        ids = client.post("/instances", content=make_dicom(patient_id="ATT-STATS")).json()
        other = client.post("/instances", content=make_dicom(patient_id="ATT-OTHER")).json()
        before = {level: client.get(f"/{level}/{ids[key]}/statistics").json()
                  for level, key in (("patients", "ParentPatient"), ("studies", "ParentStudy"),
                                     ("instances", "ID"))}
        total = int(client.get("/statistics").json()["TotalDiskSize"])
        assert client.put(f"/patients/{ids['ParentPatient']}/attachments/sample",
                          content=b"p" * 45).status_code == 200
        assert client.put(f"/series/{ids['ParentSeries']}/attachments/sample",
                          content=b"s" * 10).status_code == 200
        assert client.put(f"/studies/{other['ParentStudy']}/attachments/sample",
                          content=b"o" * 7).status_code == 200
        after = {level: client.get(f"/{level}/{ids[key]}/statistics").json()
                 for level, key in (("patients", "ParentPatient"), ("studies", "ParentStudy"),
                                    ("instances", "ID"))}
        everything = client.get("/statistics").json()
    grown = {"patients": 55, "studies": 10, "instances": 0}
    for level, size in grown.items():
        for key in ("DiskSize", "UncompressedSize"):
            assert int(after[level][key]) == int(before[level][key]) + size, (level, key)
        assert after[level]["DicomDiskSize"] == before[level]["DicomDiskSize"]
    assert int(everything["TotalDiskSize"]) == total + 62


def test_compress_uncompress_orthanc_format(server: LiveServer) -> None:
    patient = _upload(server, "ATT-ZLIB")["ParentPatient"]
    base = f"/patients/{patient}/attachments/1030"
    content = b"x" * 1000
    with server.client() as client:
        client.put(base, content=content)
        assert client.post(f"{base}/compress").json() == {}
        assert client.get(f"{base}/is-compressed").text == "1"
        stored = client.get(f"{base}/compressed-data").content
        # Orthanc's ZlibCompressor: uint64 little-endian size, then a zlib stream
        assert struct.unpack("<Q", stored[:8])[0] == 1000
        assert zlib.decompress(stored[8:]) == content
        info = client.get(f"{base}/info").json()
        assert info["CompressedSize"] == len(stored) < 1000
        assert info["CompressedMD5"] == _md5(stored)
        assert info["UncompressedMD5"] == _md5(content)
        assert client.get(f"{base}/compressed-size").text == str(len(stored))
        assert client.get(f"{base}/data").content == content
        assert client.post(f"{base}/verify-md5").json() == {}
        assert client.post(f"{base}/compress").json() == {}  # already: nothing to do
        assert client.post(f"{base}/uncompress").json() == {}
        assert client.get(f"{base}/is-compressed").text == "0"
        assert client.get(f"{base}/compressed-data").content == content


def test_declared_mime_and_names(server: LiveServer) -> None:
    instance = _upload(server, "ATT-PDF")["ID"]
    base = f"/instances/{instance}/attachments"
    with server.client() as client:
        assert client.put(f"{base}/pdfdoc", content=b"%PDF-1.4").status_code == 200
        assert client.put(f"{base}/2000", content=b"n").status_code == 200
        assert client.get(base).json() == ["dicom", "pdfdoc", "2000"]
        assert client.get(base, params={"full": ""}).json() == {
            "2000": 2000, "dicom": 1, "pdfdoc": 1025}
        answer = client.get(f"{base}/1025/data")
        assert answer.headers["content-type"] == "application/pdf"
        assert answer.content == b"%PDF-1.4"


def test_bad_names_and_system_attachments(server: LiveServer) -> None:
    ids = _upload(server, "ATT-BAD")
    base = f"/patients/{ids['ParentPatient']}/attachments"
    with server.client() as client:
        # undeclared names: 404 "Accessing an inexistent item" like Orthanc
        for name in ("foo", "SAMPLE"):
            answer = client.put(f"{base}/{name}", content=b"x")
            assert answer.status_code == 404 and answer.json()["OrthancStatus"] == 7
        # built-in or out-of-range content types: 403
        for name in ("dicom", "1023", "65536", "1"):
            assert client.put(f"{base}/{name}", content=b"x").status_code == 403, name
        assert client.delete(f"/instances/{ids['ID']}/attachments/dicom").status_code == 403
        assert client.get(f"/instances/{ids['ID']}/attachments/dicom/size").status_code == 200
        assert client.put("/patients/nope/attachments/sample", content=b"x").status_code == 404
        assert client.get(f"{base}/1500/size").status_code == 404
        assert client.get(base).json() == []  # nothing half stored
        client.put(f"{base}/sample", content=b"x")
        assert client.get(f"{base}/sample/nonsense").status_code == 404
        for header in ("1", "bad", '"x-abc"'):
            answer = client.put(f"{base}/sample", content=b"y", headers={"If-Match": header})
            assert answer.status_code == 400, header
        assert client.get(f"{base}/sample/data").content == b"x"


def test_revisions(server: LiveServer) -> None:
    patient = _upload(server, "ATT-REV")["ParentPatient"]
    url = f"/patients/{patient}/attachments/sample"
    with server.client() as client:
        first = client.put(url, content=b"a").headers["etag"]
        assert first == f'"0-{_md5(b"a")}"'
        # CheckRevisions is false: overwriting without If-Match is allowed
        second = client.put(url, content=b"b").headers["etag"]
        assert second == f'"1-{_md5(b"b")}"'
        assert client.get(f"{url}/info").headers["etag"] == second  # the stored revision
        assert client.put(url, content=b"c", headers={"If-Match": first}).status_code == 409
        assert client.get(f"{url}/data", headers={"If-None-Match": second}).status_code == 304
        assert client.get(f"{url}/data", headers={"If-None-Match": first}).status_code == 200
        third = client.put(url, content=b"c", headers={"If-Match": second})
        assert third.status_code == 200 and third.headers["etag"] == f'"2-{_md5(b"c")}"'
        assert client.delete(url, headers={"If-Match": second}).status_code == 409
        assert client.delete(url, headers={"If-Match": third.headers["etag"]}).status_code == 200


def test_check_revisions(tmp_path: Path) -> None:
    with live_server(tmp_path, {**CONFIG, "CheckRevisions": True}) as server, \
            server.client() as client:
        patient = client.post("/instances", content=make_dicom()).json()["ParentPatient"]
        url = f"/patients/{patient}/attachments/sample"
        etag = client.put(url, content=b"a").headers["etag"]  # creating needs no If-Match
        assert client.put(url, content=b"b").status_code == 409
        assert client.delete(url).status_code == 409
        etag = client.put(url, content=b"b", headers={"If-Match": etag}).headers["etag"]
        assert client.delete(url, headers={"If-Match": etag}).status_code == 200


def _blob_path(storage: Path, uuid: str) -> Path:
    return storage / uuid[0:2] / uuid[2:4] / uuid


def test_deleted_with_resource_and_kept_by_the_sweep(tmp_path: Path) -> None:
    """Attachment blobs survive the startup sweep; a deleted resource takes its rows and
    their blobs along at once (no orphan waits for the sweep)."""
    old = 0.0  # the sweep only removes blobs older than an hour: age them explicitly
    with pinned_database(tmp_path) as pinned:
        config = on_filesystem({**CONFIG, **pinned})  # the test ages the files
        with live_server(tmp_path, config) as server, server.client() as client:
            kept = client.post("/instances", content=make_dicom(patient_id="KEEP")).json()
            gone = client.post("/instances", content=make_dicom(patient_id="GONE")).json()
            for ids in (kept, gone):
                url = f"/series/{ids['ParentSeries']}/attachments/sample"
                assert client.put(url, content=b"payload").status_code == 200
            kept_uuid = client.get(f"/series/{kept['ParentSeries']}/attachments/sample/"
                                   "info").json()["Uuid"]
            gone_uuid = client.get(f"/series/{gone['ParentSeries']}/attachments/sample/"
                                   "info").json()["Uuid"]
            assert client.delete(f"/patients/{gone['ParentPatient']}").status_code == 200
            storage = server.storage
        assert not _blob_path(storage, gone_uuid).exists()
        assert _blob_path(storage, kept_uuid).exists()
        os.utime(_blob_path(storage, kept_uuid), (old, old))
        with live_server(tmp_path, config) as server, server.client() as client:
            url = f"/series/{kept['ParentSeries']}/attachments/sample"
            assert client.get(f"{url}/data").content == b"payload"
            assert client.post(f"{url}/verify-md5").status_code == 200
            assert _blob_path(storage, kept_uuid).exists()
            assert not _blob_path(storage, gone_uuid).exists()
