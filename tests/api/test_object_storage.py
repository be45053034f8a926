"""A live Pharos on each blob store: the filesystem, and S3 (moto's real S3 API server).

Store through REST, C-STORE and STOW-RS; read /file (whole and byte ranges), WADO-RS
frames (ranged reads of an uncompressed multi-frame file), archives and media; delete.
On S3 only: restart on the same bucket and index, the orphan sweep at start, and an S3
outage (ingest refused with 503 and nothing stored; a delete answered at once, its
objects deleted once S3 is back); credentials never in the server's log.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from pydicom.uid import generate_uid

from tests.dicomweb.conftest import parse_multipart, stow
from tests.helpers import LiveServer, live_server, make_dicom, pinned_database
from tests.s3server import TEST_ACCESS_KEY, TEST_SECRET_KEY, moto_s3

ROWS = COLUMNS = 128
FRAMES = 40  # 40 x 128 x 128 x 16 bits = 1.3 MB: above the ranged-frames threshold


def _multiframe(study_uid: str) -> tuple[bytes, np.ndarray]:
    pixels = (np.arange(FRAMES * ROWS * COLUMNS, dtype=np.uint32) * 7 % 4096) \
        .astype("<u2").reshape(FRAMES, ROWS, COLUMNS)
    data = make_dicom(study_uid=study_uid, size=ROWS, pixels=pixels.tobytes(),
                      NumberOfFrames=FRAMES, patient_id="OBJ")
    return data, pixels


@pytest.fixture(scope="module", params=["filesystem", "s3"])
def archive(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp(f"objects-{request.param}")
    url = None
    if request.param == "s3":
        s3 = moto_s3()
        url = s3.url(s3.new_bucket())
    with live_server(tmp, {"Pharos": {"BlobstoreUrl": url}}) as live:
        yield live


@pytest.fixture(scope="module")
def stored(archive: LiveServer) -> dict:
    """One study stored three ways, plus an uncompressed multi-frame instance."""
    study = generate_uid()
    files = [make_dicom(study_uid=study, patient_id="OBJ", instance_number=i, size=64)
             for i in range(1, 5)]
    multiframe, pixels = _multiframe(study)
    with archive.client() as http:
        rest = http.post("/instances", content=files[0])
        assert rest.status_code == 200, rest.text
        answer = stow(http, [files[1], multiframe])
        assert answer.status_code == 200, answer.text
    folder = archive.storage.parent / "outgoing"
    folder.mkdir(exist_ok=True)
    paths = []
    for index, data in enumerate(files[2:]):
        path = folder / f"{index}.dcm"
        path.write_bytes(data)
        paths.append(str(path))
    if shutil.which("storescu") is None:
        pytest.skip("dcmtk's storescu is not installed (apt-get install dcmtk)")
    sent = subprocess.run(["storescu", "-aec", "ORTHANC", "127.0.0.1", str(archive.dicom_port),
                           *paths], capture_output=True, text=True, timeout=60)
    assert sent.returncode == 0, sent.stderr
    with archive.client() as http:
        instances = http.get("/instances?expand").json()
    by_sop = {i["MainDicomTags"]["SOPInstanceUID"]: i["ID"] for i in instances}
    from pydicom import dcmread
    ids = {}
    with archive.client() as http:
        for data in files + [multiframe]:
            uid = dcmread(io.BytesIO(data), stop_before_pixels=True).SOPInstanceUID
            served = http.get(f"/instances/{by_sop[uid]}/file").content
            if data in files[2:]:  # C-STORE: storescu sends the dataset; a new meta header
                assert dcmread(io.BytesIO(served)) == dcmread(io.BytesIO(data))
            else:
                assert served == data
            ids[by_sop[uid]] = served
    multiframe_id = by_sop[dcmread(io.BytesIO(multiframe)).SOPInstanceUID]
    with archive.client() as http:
        study_id = http.get(f"/instances/{multiframe_id}/study").json()["ID"]
    return {"study": study, "study_id": study_id, "files": ids, "multiframe": multiframe_id,
            "pixels": pixels}


def test_every_door_stores_one_blob_per_instance(archive: LiveServer, stored: dict) -> None:
    assert len(stored["files"]) == 5
    with archive.client() as http:
        for public_id, data in stored["files"].items():
            answer = http.get(f"/instances/{public_id}/file")
            assert answer.status_code == 200
            assert answer.content == data
            assert answer.headers["accept-ranges"] == "bytes"
    assert len(archive.blob_keys()) == 5


def test_file_byte_ranges(archive: LiveServer, stored: dict) -> None:
    public_id = stored["multiframe"]
    data = stored["files"][public_id]
    size = len(data)
    with archive.client() as http:
        path = f"/instances/{public_id}/file"
        head = http.get(path, headers={"Range": "bytes=128-131"})
        assert head.status_code == 206
        assert head.content == b"DICM"
        assert head.headers["content-range"] == f"bytes 128-131/{size}"
        tail = http.get(path, headers={"Range": "bytes=-1000"})
        assert (tail.status_code, tail.content) == (206, data[-1000:])
        middle = http.get(path, headers={"Range": "bytes=500000-"})
        assert middle.status_code == 206 and middle.content == data[500000:]
        big = http.get(path, headers={"Range": f"bytes=1-{size + 100}"})  # clipped to the end
        assert big.status_code == 206 and big.content == data[1:]
        assert http.get(path, headers={"Range": f"bytes={size}-"}).status_code == 416
        several = http.get(path, headers={"Range": "bytes=0-1,5-6"})  # ignored: whole file
        assert (several.status_code, several.content) == (200, data)
        dicom = http.get(f"/instances/{public_id}/attachments/dicom/data",
                         headers={"Range": "bytes=0-127"})
        assert (dicom.status_code, dicom.content) == (206, data[:128])


def test_wado_rs_frames_of_an_uncompressed_multiframe(archive: LiveServer,
                                                      stored: dict) -> None:
    pixels: np.ndarray = stored["pixels"]
    series = stored["files"][stored["multiframe"]]
    from pydicom import dcmread
    ds = dcmread(io.BytesIO(series), stop_before_pixels=True)
    url = (f"/dicom-web/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
           f"/instances/{ds.SOPInstanceUID}/frames/1,7,{FRAMES}")
    with archive.client() as http:
        answer = http.get(url, headers={"Accept": 'multipart/related; '
                                                  'type="application/octet-stream"'})
        assert answer.status_code == 200, answer.text
        frames = [content for _, content in parse_multipart(answer)]
        assert frames == [pixels[0].tobytes(), pixels[6].tobytes(), pixels[FRAMES - 1].tobytes()]
        beyond = http.get(url.replace(f",{FRAMES}", f",{FRAMES + 1}"))
        assert beyond.status_code in (400, 404)


def test_archive_and_media_stream_every_file(archive: LiveServer, stored: dict) -> None:
    with archive.client() as http:
        answer = http.get(f"/studies/{stored['study_id']}/archive")
        assert answer.status_code == 200
        with zipfile.ZipFile(io.BytesIO(answer.content)) as zipped:
            contents = sorted(zipped.read(name) for name in zipped.namelist())
        assert contents == sorted(stored["files"].values())
        media = http.get(f"/studies/{stored['study_id']}/media")
        assert media.status_code == 200
        with zipfile.ZipFile(io.BytesIO(media.content)) as zipped:
            assert "DICOMDIR" in zipped.namelist()


def test_asynchronous_archive_output_with_a_range(archive: LiveServer, stored: dict) -> None:
    with archive.client() as http:
        job = http.post(f"/studies/{stored['study_id']}/archive",
                        json={"Synchronous": False}).json()["ID"]
        deadline = time.monotonic() + 60
        while http.get(f"/jobs/{job}").json()["State"] != "Success":
            assert time.monotonic() < deadline
            time.sleep(0.2)
        whole = http.get(f"/jobs/{job}/archive")
        assert whole.status_code == 200
        part = http.get(f"/jobs/{job}/archive", headers={"Range": "bytes=10-99"})
        assert (part.status_code, part.content) == (206, whole.content[10:100])


def test_delete_removes_the_objects(archive: LiveServer, stored: dict) -> None:
    before = archive.blob_keys()
    with archive.client() as http:
        extra = http.post("/instances", content=make_dicom(patient_id="GONE")).json()
        assert len(archive.blob_keys()) == len(before) + 1
        assert http.delete(f"/patients/{extra['ParentPatient']}").status_code == 200
    assert archive.blob_keys() == before


# --- S3 only: restart, orphan sweep, outage, credentials --------------------------------------

def test_s3_restart_then_orphan_sweep_at_start(tmp_path: Path) -> None:
    s3 = moto_s3()
    bucket = s3.new_bucket()
    url = s3.url(bucket)
    data = make_dicom(patient_id="KEEP")
    with pinned_database(tmp_path) as pinned:
        config = {"Pharos": {**pinned.get("Pharos", {}), "BlobstoreUrl": url}}
        with live_server(tmp_path, config) as first, first.client() as http:
            stored = http.post("/instances", content=data).json()
        orphans = [f"0badc0de-0000-4000-8000-00000000000{i}" for i in range(3)]
        client = s3.client()
        for name in orphans:
            client.put_object(Bucket=bucket, Key=f"blobs/{name}", Body=b"left by a crash")
        client.put_object(Bucket=bucket, Key="blobs/not-a-pharos-key.txt", Body=b"foreign")
        config["Pharos"]["OrphanMinAge"] = 0
        with live_server(tmp_path, config) as second, second.client() as http:
            assert http.get(f"/instances/{stored['ID']}/file").content == data
            names = set(s3.object_names(bucket))
            assert not any(f"blobs/{name}" in names for name in orphans)
            assert "blobs/not-a-pharos-key.txt" in names  # never another application's
            assert len(second.blob_keys()) == 1
            log = (tmp_path / "server.log").read_text(errors="replace")
            assert "Removed 3 orphan blob(s)" in log


def test_s3_outage_refuses_ingest_and_retries_deletes(tmp_path: Path) -> None:
    s3 = moto_s3()
    bucket = s3.new_bucket()
    with live_server(tmp_path, {"Pharos": {"BlobstoreUrl": s3.url(
            bucket, connect_timeout=1)}}) as server, server.client() as http:
        kept = http.post("/instances", content=make_dicom(patient_id="A")).json()
        doomed = http.post("/instances", content=make_dicom(patient_id="B")).json()
        assert len(server.blob_keys()) == 2
        with s3.outage():
            refused = http.post("/instances", content=make_dicom(patient_id="C"))
            assert refused.status_code == 503
            assert refused.json()["OrthancError"].startswith("Error in the plugin")
            if shutil.which("storescu") is not None:  # C-STORE: refused, out of resources
                path = tmp_path / "during.dcm"
                path.write_bytes(make_dicom(patient_id="D"))
                sent = subprocess.run(["storescu", "-v", "-aec", "ORTHANC", "127.0.0.1",
                                       str(server.dicom_port), str(path)],
                                      capture_output=True, text=True, timeout=60)
                assert "Refused: OutOfResources" in sent.stdout + sent.stderr
            assert http.delete(f"/patients/{doomed['ParentPatient']}").status_code == 200
            assert http.get(f"/instances/{doomed['ID']}").status_code == 404  # no dangling row
            assert len(http.get("/patients").json()) == 1
        deadline = time.monotonic() + 60  # the drainer's retry (5 s backoff, 5 s period)
        while len(server.blob_keys()) != 1 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert len(server.blob_keys()) == 1  # the object was deleted once S3 came back
        assert http.get(f"/instances/{kept['ID']}/file").status_code == 200
    log = (tmp_path / "server.log").read_text(errors="replace")
    assert "queued" in log
    assert TEST_SECRET_KEY not in log and TEST_ACCESS_KEY not in log
