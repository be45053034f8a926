"""Decompression bombs through every door (issue 13): refused in bounded time and memory,
nothing stored, no file left, the server and its DICOM SCP still answering.

The server runs with small limits (``MaxInflatedSize`` 32 MiB, ``MaxUploadSize`` 64 MiB)
so that the bombs stay cheap for the DIMSE client too (storescu inflates a file before
sending it); a unit test checks the default limits against a 2 GiB bomb in-process.
"""

from __future__ import annotations

import gzip
import io
import resource
import shutil
import subprocess
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.dicom import limits
from app.dicom.parse import parse_instance
from app.errors import DecompressionLimit
from tests.helpers import LiveServer, live_server, make_dicom
from tests.malformed import (
    deflate_bomb,
    deflated_ok,
    dimension_bomb,
    j2k_header_bomb,
    jpeg_header_bomb,
)

MIB = 1024**2


def test_default_limit_refuses_a_2_gib_bomb_in_constant_memory() -> None:
    limits.configure(512 * MIB, 1024 * MIB)
    bomb = deflate_bomb(2048 * MIB)
    assert len(bomb) < 4 * MIB
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(DecompressionLimit):
        parse_instance(bomb)
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 64 * 1024
    assert parse_instance(deflated_ok()).patient_id == "BOMB"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    config = {"DicomAet": "PHAROS", "Pharos": {"MaxInflatedSize": 32 * MIB,
                                               "MaxUploadSize": 64 * MIB,
                                               "MaxDecodedImageSize": 256 * MIB}}
    with live_server(tmp_path_factory.mktemp("bombs"), config) as live:
        yield live


def _blob_files(storage: Path) -> list[Path]:
    return [p for p in storage.rglob("*") if p.is_file() and len(p.parent.name) == 2
            and len(p.parent.parent.name) == 2]


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def _multipart(parts: list[bytes], boundary: str = "BOMBBOUNDARY") -> tuple[bytes, str]:
    body = b"".join(f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + p
                    + b"\r\n" for p in parts) + f"--{boundary}--\r\n".encode()
    return body, f'multipart/related; type="application/dicom"; boundary={boundary}'


def _assert_alive_and_empty(server: LiveServer, http: httpx.Client) -> None:
    assert server.process.poll() is None
    assert http.get("/system").status_code == 200
    assert http.get("/instances").json() == []
    assert _blob_files(server.storage) == []
    if shutil.which("echoscu"):
        echo = subprocess.run(["echoscu", "-aec", "PHAROS", "127.0.0.1",
                               str(server.dicom_port)], capture_output=True, timeout=60)
        assert echo.returncode == 0, echo.stderr


def test_rest_stow_zip_and_gzip_bombs(server: LiveServer) -> None:
    bomb = deflate_bomb(1024 * MIB)
    with server.client() as http:
        answer = http.post("/instances", content=bomb)
        assert answer.status_code == 400, answer.text
        assert "MaxInflatedSize" in answer.json()["Details"]

        body, content_type = _multipart([bomb])
        answer = http.post("/dicom-web/studies", content=body,
                           headers={"Content-Type": content_type, "Accept": "application/dicom+json"})
        # Nothing stored, the part unusable: 400 (as Orthanc's plugin), said in Warning,
        # the part listed by the UIDs of its (never inflated) file meta information.
        assert answer.status_code == 400, answer.text
        assert "MaxInflatedSize" in answer.headers["warning"]
        assert answer.json()["00081198"]["Value"][0]["00081197"]["Value"] == [0xC000]

        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zipped:
            zipped.writestr("ok.dcm", make_dicom())
            zipped.writestr("bomb.dcm", bomb)
        answer = http.post("/instances", content=archive.getvalue())
        assert answer.status_code == 400, answer.text

        # A gzip body that inflates past MaxUploadSize: 413 after 64 MiB, not 1 GiB.
        compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
        gzip_bomb = compressor.compress(bytes(1024 * MIB)) + compressor.flush()
        answer = http.post("/instances", content=gzip_bomb,
                           headers={"Content-Encoding": "gzip"})
        assert answer.status_code == 413, answer.text
        answer = http.post("/instances", content=b"\x00" * 100,
                           headers={"Content-Encoding": "br"})
        assert answer.status_code == 415
        _assert_alive_and_empty(server, http)
    assert _peak_rss_mib(server.process.pid) < 400


def test_gzip_body_and_small_deflated_file_are_accepted(server: LiveServer) -> None:
    with server.client() as http:
        stored = http.post("/instances", content=gzip.compress(make_dicom(patient_id="GZ")),
                           headers={"Content-Encoding": "gzip"})
        assert stored.status_code == 200, stored.text
        deflated = http.post("/instances", content=deflated_ok())
        assert deflated.status_code == 200, deflated.text
        body, content_type = _multipart([make_dicom(patient_id="GZSTOW")])
        stow = http.post("/dicom-web/studies", content=gzip.compress(body),
                         headers={"Content-Type": content_type, "Content-Encoding": "gzip"})
        assert stow.status_code == 200, stow.text
        for patient in http.get("/patients").json():
            http.delete(f"/patients/{patient}")
        assert _blob_files(server.storage) == []


@pytest.mark.skipif(shutil.which("storescu") is None, reason="dcmtk is not installed")
def test_c_store_bomb(server: LiveServer, tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.dcm"
    bomb.write_bytes(deflate_bomb(128 * MIB))
    sent = subprocess.run(["storescu", "-v", "-xd", "-aec", "PHAROS", "127.0.0.1", str(server.dicom_port),
                           str(bomb)], capture_output=True, text=True, timeout=300)
    assert "Error: CannotUnderstand" in sent.stdout + sent.stderr, sent.stdout + sent.stderr
    with server.client() as http:
        _assert_alive_and_empty(server, http)
    assert _peak_rss_mib(server.process.pid) < 400


def test_pixel_bombs_are_refused_when_decoded(server: LiveServer) -> None:
    """Bombs in the pixel data parse as DICOM (Orthanc stores them too, ingest never
    decodes pixels); every route that decodes them is refused at once (4xx)."""
    with server.client() as http:
        for bomb in (jpeg_header_bomb(), j2k_header_bomb(), dimension_bomb()):
            stored = http.post("/instances", content=bomb).json()
            instance, study = stored["ID"], stored["ParentStudy"]
            for route in (f"/instances/{instance}/preview", f"/instances/{instance}/rendered",
                          f"/instances/{instance}/frames/0/preview",
                          f"/instances/{instance}/image-uint8",
                          f"/instances/{instance}/numpy"):
                answer = http.get(route)
                # 400, or what Orthanc's decoded-frame handler makes of any failure (415).
                assert answer.status_code in (400, 415), (route, answer.status_code,
                                                          answer.text)
                assert "MaxDecodedImageSize" in answer.text
            series_uid = http.get(f"/instances/{instance}/simplified-tags").json()[
                "SeriesInstanceUID"]
            study_uid = http.get(f"/studies/{study}").json()["MainDicomTags"][
                "StudyInstanceUID"]
            sop = http.get(f"/instances/{instance}/simplified-tags").json()["SOPInstanceUID"]
            frames = http.get(f"/dicom-web/studies/{study_uid}/series/{series_uid}/instances/"
                              f"{sop}/frames/1", headers={"Accept": "multipart/related; "
                                                           "type=application/octet-stream"})
            assert frames.status_code in (400, 406, 415), frames.text
            http.delete(f"/studies/{study}")
        _assert_alive_and_empty(server, http)
    assert _peak_rss_mib(server.process.pid) < 400
