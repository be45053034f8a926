"""``StorageCompression``: DICOM files stored zlib-compressed in Orthanc's format, read
back byte-identical through every door (``/file`` and its ranges, the ``dicom``
attachment, WADO-RS, archives, previews, C-GET and C-MOVE), and the ``compress`` /
``uncompress`` routes of the ``dicom`` attachment."""

from __future__ import annotations

import hashlib
import io
import shutil
import struct
import subprocess
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest

from app.blobstore import open_blobstore
from tests.helpers import LiveServer, live_server, make_dicom, pinned_database
from tests.interop.test_network_dimse import StoreScp

AET = "PHAROSZ"
# 1536 x 1536 x 2 bytes: above the 4 MiB that /file answers in one read (it streams).
BIG_SIZE = 1536


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    config = {"StorageCompression": True, "DicomAet": AET}
    with live_server(tmp_path_factory.mktemp("pharos-compression"), config) as live:
        yield live


def _store(server: LiveServer, data: bytes) -> str:
    with server.client() as client:
        answer = client.post("/instances", content=data)
        assert answer.status_code == 200, answer.text
        return answer.json()["ID"]


def test_new_files_are_stored_compressed_in_orthancs_format(server: LiveServer) -> None:
    data = make_dicom(patient_id="Z-FORMAT", size=256)
    instance = _store(server, data)
    base = f"/instances/{instance}/attachments/dicom"
    with server.client() as client:
        assert client.get("/system").json()["StorageCompression"] is True
        assert client.get(f"{base}/is-compressed").text == "1"
        stored = client.get(f"{base}/compressed-data").content
        assert struct.unpack("<Q", stored[:8])[0] == len(data)  # Orthanc's size prefix
        assert zlib.decompress(stored[8:]) == data
        info = client.get(f"{base}/info").json()
        assert info == {"CompressedMD5": _md5(stored), "CompressedSize": len(stored),
                        "ContentType": 1, "UncompressedMD5": _md5(data),
                        "UncompressedSize": len(data), "Uuid": info["Uuid"]}
        assert len(stored) < len(data)
        assert client.get(f"{base}/size").text == str(len(data))
        assert client.get(f"{base}/md5").text == _md5(data)
        assert client.get(f"{base}/compressed-size").text == str(len(stored))
        assert client.get(f"{base}/compressed-md5").text == _md5(stored)
        assert client.post(f"{base}/verify-md5").json() == {}
        described = client.get(f"/instances/{instance}").json()
        assert described["FileSize"] == len(data) and described["FileUuid"] == info["Uuid"]
        [listed] = client.get(f"/instances/{instance}/attachments",
                              params={"full": ""}).json().items()
        assert listed == ("dicom", 1)
        statistics = client.get(f"/instances/{instance}/statistics").json()
        assert statistics["DiskSize"] == str(len(stored))
        assert statistics["UncompressedSize"] == str(len(data))
        everything = client.get("/statistics").json()
        assert int(everything["TotalDiskSize"]) < int(everything["TotalUncompressedSize"])


def test_file_and_its_ranges_read_the_dicom_file(server: LiveServer) -> None:
    small = make_dicom(patient_id="Z-FILE", size=64)
    big = make_dicom(patient_id="Z-FILE", size=BIG_SIZE)
    with server.client() as client:
        for data in (small, big):
            instance = _store(server, data)
            answer = client.get(f"/instances/{instance}/file")
            assert answer.status_code == 200
            assert answer.content == data
            assert answer.headers["content-type"] == "application/dicom"
            middle = len(data) // 2
            ranged = client.get(f"/instances/{instance}/file",
                                headers={"Range": f"bytes={middle}-{middle + 99}"})
            assert ranged.status_code == 206
            assert ranged.content == data[middle:middle + 100]
            assert ranged.headers["content-range"] == f"bytes {middle}-{middle + 99}/{len(data)}"
            tail = client.get(f"/instances/{instance}/attachments/dicom/data",
                              headers={"Range": "bytes=-10"})
            assert tail.status_code == 206 and tail.content == data[-10:]
            assert client.get(f"/instances/{instance}/file", headers={
                "Range": f"bytes={len(data)}-"}).status_code == 416
            assert client.get(f"/instances/{instance}/attachments/dicom/data").content == data
    assert len(big) > 4 * 1024 * 1024


def test_dicomweb_previews_and_tags(server: LiveServer) -> None:
    data = make_dicom(patient_id="Z-WADO", size=128)
    source = pydicom.dcmread(io.BytesIO(data))
    instance = _store(server, data)
    study, series, sop = (source.StudyInstanceUID, source.SeriesInstanceUID,
                          source.SOPInstanceUID)
    with server.client() as client:
        answer = client.get(f"/dicom-web/studies/{study}/series/{series}/instances/{sop}",
                            headers={"Accept": 'multipart/related; type="application/dicom"'})
        assert answer.status_code == 200
        assert data in answer.content  # the part is the file as received
        assert int(answer.headers["content-length"]) == len(answer.content)
        frame = client.get(f"/dicom-web/studies/{study}/series/{series}/instances/{sop}"
                           "/frames/1", headers={"Accept": "multipart/related; "
                                                 "type=application/octet-stream"})
        assert frame.status_code == 200 and source.PixelData in frame.content
        preview = client.get(f"/instances/{instance}/preview")
        assert preview.status_code == 200 and preview.content.startswith(b"\x89PNG")
        tags = client.get(f"/instances/{instance}/simplified-tags").json()
        assert tags["PatientID"] == "Z-WADO"
        assert client.get(f"/instances/{instance}/content/0010-0020").text.strip() == "Z-WADO"
        # Reads that stop before the pixel data (the file is not uncompressed whole).
        header = client.get(f"/instances/{instance}/header", params={"simplify": ""}).json()
        assert header["MediaStorageSOPInstanceUID"] == sop
        series_id = client.get(f"/instances/{instance}").json()["ParentSeries"]
        shared = client.get(f"/series/{series_id}/shared-tags", params={"simplify": ""}).json()
        assert shared["SeriesInstanceUID"] == series
        module = client.get(f"/instances/{instance}/module", params={"simplify": ""}).json()
        assert module["SOPInstanceUID"] == sop


def test_archives_hold_the_dicom_files(server: LiveServer) -> None:
    files = [make_dicom(patient_id="Z-ZIP", study_uid="1.2.826.0.1.3680043.10.1234.88.1",
                        series_uid="1.2.826.0.1.3680043.10.1234.88.2",
                        instance_number=n, size=64) for n in (1, 2)]
    instances = [_store(server, data) for data in files]
    with server.client() as client:
        series = client.get(f"/instances/{instances[0]}").json()["ParentSeries"]
        for route in ("archive", "media"):
            answer = client.get(f"/series/{series}/{route}")
            assert answer.status_code == 200
            with zipfile.ZipFile(io.BytesIO(answer.content)) as archive:
                contents = [archive.read(name) for name in archive.namelist()
                            if not name.endswith("DICOMDIR")]
            assert sorted(contents) == sorted(files)


def test_compress_and_uncompress_the_dicom_attachment(server: LiveServer) -> None:
    data = make_dicom(patient_id="Z-ROUNDTRIP", size=256)
    instance = _store(server, data)
    base = f"/instances/{instance}/attachments/dicom"
    with server.client() as client:
        compressed_size = int(client.get(f"{base}/compressed-size").text)
        disk = int(client.get("/statistics").json()["TotalDiskSize"])
        old_uuid = client.get(f"{base}/uuid").text
        assert client.post(f"{base}/uncompress").json() == {}
        assert client.get(f"{base}/is-compressed").text == "0"
        assert client.get(f"{base}/uuid").text != old_uuid  # a new blob
        assert client.get(f"{base}/compressed-data").content == data
        assert client.get(f"{base}/compressed-md5").text == _md5(data)
        assert client.get(f"{base}/compressed-size").text == str(len(data))
        assert client.get(f"{base}/md5").text == _md5(data)
        assert client.get(f"/instances/{instance}/file").content == data
        assert client.post(f"{base}/verify-md5").json() == {}
        statistics = client.get("/statistics").json()
        assert int(statistics["TotalDiskSize"]) == disk - compressed_size + len(data)
        assert client.post(f"{base}/uncompress").json() == {}  # already: nothing to do
        assert client.post(f"{base}/compress").json() == {}
        assert client.get(f"{base}/is-compressed").text == "1"
        assert client.get(f"{base}/compressed-size").text == str(compressed_size)
        assert client.get(f"/instances/{instance}/file").content == data
        assert int(client.get("/statistics").json()["TotalDiskSize"]) == disk
        assert client.post(f"{base}/verify-md5").json() == {}
        # The operations of a GET are not actions: 404, as in Orthanc.
        assert client.get(f"{base}/compress").status_code == 404
        assert old_uuid not in server.blob_keys()  # the replaced blobs are deleted


def test_a_corrupted_compressed_blob_is_reported(server: LiveServer) -> None:
    data = make_dicom(patient_id="Z-CORRUPT", size=64)
    instance = _store(server, data)
    base = f"/instances/{instance}/attachments/dicom"
    with server.client() as client:
        key = client.get(f"{base}/uuid").text
        stored = client.get(f"{base}/compressed-data").content
        blobs = open_blobstore(server.blobstore_url, str(server.storage))
        blobs.put(key, stored[:len(stored) // 2])  # truncated zlib stream
        assert client.post(f"{base}/verify-md5").status_code == 500
        answer = client.get(f"/instances/{instance}/file")
        assert answer.status_code == 500
        assert "uncompress" in answer.json()["Details"] or "zlib" in answer.json()["Details"]
        assert client.post(f"{base}/uncompress").status_code == 500
        assert client.get(f"{base}/is-compressed").text == "1"  # left as it was
        assert client.delete(f"/instances/{instance}").status_code == 200


@pytest.mark.skipif(shutil.which("getscu") is None or shutil.which("storescp") is None,
                    reason="dcmtk is not installed (Debian package dcmtk)")
def test_c_get_and_c_move_send_the_dicom_files(server: LiveServer, tmp_path: Path) -> None:
    study = "1.2.826.0.1.3680043.10.1234.88.7"
    data = make_dicom(patient_id="Z-DIMSE", study_uid=study, size=64)
    _store(server, data)
    pixels = pydicom.dcmread(io.BytesIO(data)).PixelData
    destination = StoreScp(tmp_path / "moved")
    try:
        with server.client() as client:
            client.put("/modalities/getscu", json=["GETSCU", "127.0.0.1", 104])
            client.put("/modalities/storescp",
                       json=[destination.aet, "127.0.0.1", destination.port])
        out = tmp_path / "got"
        out.mkdir()
        got = subprocess.run(["getscu", "-S", "-aet", "GETSCU", "-aec", AET, "-k",
                              "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study}",
                              "--output-directory", str(out), "127.0.0.1",
                              str(server.dicom_port)], capture_output=True, text=True,
                             timeout=60)
        assert got.returncode == 0, got.stderr
        [received] = list(out.iterdir())
        assert pydicom.dcmread(received).PixelData == pixels
        moved = subprocess.run(["movescu", "-S", "-aet", destination.aet, "-aec", AET,
                                "--move", destination.aet, "-k", "QueryRetrieveLevel=STUDY",
                                "-k", f"StudyInstanceUID={study}", "127.0.0.1",
                                str(server.dicom_port)], capture_output=True, text=True,
                               timeout=60)
        assert moved.returncode == 0, moved.stderr
        [copy] = destination.files()
        assert pydicom.dcmread(copy).PixelData == pixels
    finally:
        destination.stop()


def test_files_stay_readable_when_the_option_changes(tmp_path: Path) -> None:
    """Whether a blob is compressed is recorded per instance: files stored with the
    option read the same once it is off, and new files are then stored as received."""
    first = make_dicom(patient_id="Z-TOGGLE", size=128)
    second = make_dicom(patient_id="Z-TOGGLE", size=128)
    with pinned_database(tmp_path) as pinned:
        with live_server(tmp_path, {"StorageCompression": True, **pinned}) as server:
            compressed = _store(server, first)
        with live_server(tmp_path, {"StorageCompression": False, **pinned}) as server, \
                server.client() as client:
            plain = _store(server, second)
            assert client.get("/system").json()["StorageCompression"] is False
            assert client.get(f"/instances/{compressed}/file").content == first
            assert client.get(f"/instances/{plain}/file").content == second
            assert client.get(f"/instances/{compressed}/attachments/dicom/is-compressed"
                              ).text == "1"
            assert client.get(f"/instances/{plain}/attachments/dicom/is-compressed"
                              ).text == "0"
            assert client.get(f"/instances/{plain}/attachments/dicom/compressed-data"
                              ).content == second
