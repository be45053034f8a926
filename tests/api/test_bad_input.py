"""Bad input never costs data: a clear 4xx, nothing stored, no orphan blob, server up."""

from __future__ import annotations

import io
import os
import time
import zipfile
from pathlib import Path

import pytest
from pydicom.uid import generate_uid

from tests.helpers import live_server, make_dicom, on_filesystem, pinned_database


def _blob_files(storage: Path) -> list[Path]:
    return [p for p in storage.rglob("*") if p.is_file() and len(p.parent.name) == 2
            and len(p.parent.parent.name) == 2]


def _zip(entries: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _without_sop_uid() -> bytes:
    import pydicom
    ds = pydicom.dcmread(io.BytesIO(make_dicom()))
    del ds.SOPInstanceUID
    out = io.BytesIO()
    ds.save_as(out)
    return out.getvalue()


GOOD = make_dicom(patient_id="P-GOOD", size=64)

BAD_BODIES = {
    "not-dicom": (b"this is plainly not a DICOM file" * 10, 400),
    "empty": (b"", 400),
    "truncated-in-pixel-data": (GOOD[:-100], 400),
    "truncated-in-header": (GOOD[:200], 400),
    "missing-sop-instance-uid": (_without_sop_uid(), 400),
    "zip-with-junk": (_zip({"a.dcm": make_dicom(patient_id="P-ZIPJUNK"),
                            "b.dcm": b"junk junk junk"}), 400),
    "corrupt-zip": (_zip({"a.dcm": make_dicom()})[:-30], 400),
    "zip-bomb": (_zip({"bomb.dcm": bytes(64 * 1024 * 1024)}), 413),
}


@pytest.fixture(scope="module")
def small_limit_server(tmp_path_factory):
    with live_server(tmp_path_factory.mktemp("limits"),
                     {"Pharos": {"MaxUploadSize": 200_000}}) as live:
        yield live


@pytest.mark.parametrize("name", sorted(BAD_BODIES))
def test_bad_body_is_refused_and_nothing_is_stored(server, name):
    body, status = BAD_BODIES[name]
    with server.client() as http:
        before = http.get("/statistics").json()
        blobs_before = server.blob_keys()
        answer = http.post("/instances", content=body)
        assert answer.status_code == status, answer.text
        error = answer.json()
        assert error["HttpStatus"] == status
        assert error["Uri"] == "/instances" and error["Method"] == "POST"
        assert error.get("Details") or error["Message"]
        assert http.get("/statistics").json() == before
        assert server.blob_keys() == blobs_before
        # The server keeps serving, and a good file still goes in.
        assert http.post("/instances", content=make_dicom()).status_code == 200


def test_body_over_the_limit_is_413(small_limit_server):
    with small_limit_server.client() as http:
        big = make_dicom(size=512)  # ~512 KB of pixels
        answer = http.post("/instances", content=big)
        assert answer.status_code == 413
        assert http.get("/statistics").json()["CountInstances"] == 0

        def chunks():  # chunked, no Content-Length: the limit holds while streaming
            for i in range(0, len(big), 65536):
                yield big[i:i + 65536]
        answer = http.post("/instances", content=chunks())
        assert answer.status_code == 413
        assert http.get("/statistics").json()["CountInstances"] == 0
        assert small_limit_server.blob_keys() == set()
        assert http.post("/instances", content=make_dicom()).status_code == 200


def test_orphan_blobs_are_swept_at_start(tmp_path):
    with pinned_database(tmp_path) as pinned:
        _restart_sweeps_orphans(tmp_path, on_filesystem(pinned))  # ages of files


def _restart_sweeps_orphans(tmp_path, pinned):
    with live_server(tmp_path, pinned) as live:
        with live.client() as http:
            assert http.post("/instances", content=make_dicom(study_uid=generate_uid())) \
                .status_code == 200
        orphan = live.storage / "ab" / "cd" / "abcd0000-0000-0000-0000-000000000000"
        orphan.parent.mkdir(parents=True, exist_ok=True)
        orphan.write_bytes(b"left by a crash")
        leftover = live.storage / "ab" / "cd" / "abcd0000-0000-0000-0000-000000000001.tmp"
        leftover.write_bytes(b"an interrupted write")
        young = live.storage / "ab" / "cd" / "abcd0000-0000-0000-0000-000000000002"
        young.write_bytes(b"maybe an ingest in flight in another process")
        old = time.time() - 7200  # the sweep only touches blobs older than an hour
        os.utime(orphan, (old, old))
        os.utime(leftover, (old, old))
    with live_server(tmp_path, pinned) as live:
        assert not orphan.exists() and not leftover.exists()
        assert young.exists()
        young.unlink()
        assert len(_blob_files(live.storage)) == 1
        with live.client() as http:
            instance = http.get("/instances").json()[0]
            assert http.get(f"/instances/{instance}/file").status_code == 200
