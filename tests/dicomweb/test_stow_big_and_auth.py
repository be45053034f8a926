"""A big STOW-RS keeps the server's memory flat; DICOMweb behind authentication."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydicom.uid import generate_uid

from tests.helpers import live_server, make_dicom

PARTS = 48
SIZE = 2048  # 2048 x 2048 x 16 bits: 8 MiB of pixels per instance, ~400 MB in all


def _peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    pytest.skip("no /proc/PID/status VmHWM on this system")


def test_big_stow_is_spooled_not_held_in_memory(tmp_path: Path) -> None:
    """~400 MB sent chunked: the server's peak memory grows by far less than the body."""
    study = generate_uid()
    boundary = "big" + generate_uid().replace(".", "")[-16:]
    series = generate_uid()
    part_size = len(make_dicom(size=SIZE))

    def body() -> Iterator[bytes]:  # built part by part: the client holds one at a time
        for index in range(PARTS):
            data = make_dicom(study_uid=study, series_uid=series, size=SIZE,
                              instance_number=index + 1)
            yield (f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
                   + data + b"\r\n")
        yield f"--{boundary}--\r\n".encode()

    with live_server(tmp_path) as server:
        with server.client() as http:  # warm the server up: imports, pools, first ingest
            small = make_dicom(study_uid=study)
            http.post("/dicom-web/studies", content=(
                f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + small
                + f"\r\n--{boundary}--\r\n".encode()),
                headers={"Content-Type": f"multipart/related; type=application/dicom; "
                                         f"boundary={boundary}"})
            before = _peak_rss_kib(server.process.pid)
            response = http.post("/dicom-web/studies", content=body(), timeout=600, headers={
                "Content-Type": f"multipart/related; type=application/dicom; "
                                f"boundary={boundary}"})
            after = _peak_rss_kib(server.process.pid)
            assert response.status_code == 200, response.text[:500]
            stored = http.get(f"/dicom-web/studies/{study}/instances").json()
            assert len(stored) == PARTS + 1
    total_mib = PARTS * part_size / 2**20
    grown_mib = (after - before) / 1024
    print(f"peak RSS grew by {grown_mib:.0f} MiB for a {total_mib:.0f} MiB body")
    assert total_mib > 350
    assert grown_mib < 200, f"peak memory grew by {grown_mib:.0f} MiB for {total_mib:.0f} MiB"


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    config = {"AuthenticationEnabled": True, "RegisteredUsers": {"alice": "secret"},
              "Pharos": {"CorsAllowOrigins": ["*"]}}
    with live_server(tmp_path_factory.mktemp("secured"), config) as server:
        yield server.url


def test_dicomweb_behind_authentication(secured: str) -> None:
    with httpx.Client(base_url=secured, timeout=30) as anonymous:
        assert anonymous.get("/dicom-web/studies").status_code == 401
        assert anonymous.get("/rs/studies").status_code == 401
        # A CORS preflight carries no credentials (Fetch standard): it must not be refused.
        preflight = anonymous.options("/dicom-web/studies", headers={
            "Origin": "https://viewer.example", "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization"})
        assert preflight.status_code == 204
        assert preflight.headers["access-control-allow-origin"] == "https://viewer.example"
        assert preflight.headers["access-control-allow-credentials"] == "true"
    with httpx.Client(base_url=secured, timeout=30, auth=("alice", "secret")) as alice:
        assert alice.get("/dicom-web/studies").json() == []
