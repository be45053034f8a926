"""Reconstruct on a live Pharos: refresh the index from changed files, adopt DICOM files no
row knows, and migrate a copy of a real Orthanc 1.10.1 storage folder (same identifiers,
same counts) through the route and through ``pharos reconstruct``."""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pydicom
import pytest

from tests.helpers import (
    REPO,
    LiveServer,
    live_server,
    make_dicom,
    on_filesystem,
    pinned_database,
)
from tests.interop.orthanc import running_orthanc, skip_unless_orthanc

NOW = {"MinimumAge": 0}  # no ingest is in flight in these tests


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # Reconstruction reads files written by the tests: the filesystem store.
    with live_server(tmp_path_factory.mktemp("pharos-reconstruct"), on_filesystem()) as live:
        yield live


def _rewrite(data: bytes, **tags: str) -> bytes:
    ds = pydicom.dcmread(io.BytesIO(data))
    for keyword, value in tags.items():
        setattr(ds, keyword, value)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _blob_path(storage: Path, key: str) -> Path:
    return storage / key[0:2] / key[2:4] / key


def test_reconstruct_refreshes_tags_from_the_file(server: LiveServer) -> None:
    data = make_dicom(patient_id="RECON", patient_name="OLD^NAME")
    with server.client() as client:
        ids = client.post("/instances", content=data).json()
        key = client.get(f"/instances/{ids['ID']}/attachments/dicom/uuid").text
        # The stored file changes behind the index's back (same UIDs, other tags).
        _blob_path(server.storage, key).write_bytes(
            _rewrite(data, PatientName="NEW^NAME", StudyDescription="Rebuilt",
                     SeriesDescription="Rebuilt series", InstanceNumber="7"))
        assert client.get(f"/studies/{ids['ParentStudy']}").json()["MainDicomTags"][
            "StudyDescription"] == "Test study"
        assert client.post(f"/studies/{ids['ParentStudy']}/reconstruct").json() == {}
        study = client.get(f"/studies/{ids['ParentStudy']}").json()
        assert study["MainDicomTags"]["StudyDescription"] == "Rebuilt"
        assert study["PatientMainDicomTags"]["PatientName"] == "NEW^NAME"
        assert client.get(f"/patients/{ids['ParentPatient']}").json()["MainDicomTags"][
            "PatientName"] == "NEW^NAME"
        instance = client.get(f"/instances/{ids['ID']}").json()
        assert instance["MainDicomTags"]["InstanceNumber"] == "7"
        assert instance["ID"] == ids["ID"]
        # the matching columns follow: a find on the new values answers the study
        found = client.post("/tools/find", json={"Level": "Study", "Query": {
            "StudyDescription": "Rebuilt", "PatientName": "NEW*"}}).json()
        assert found == [ids["ParentStudy"]]
        size = _blob_path(server.storage, key).stat().st_size
        assert client.get(f"/instances/{ids['ID']}/attachments/dicom/size").text == str(size)
        assert client.post(f"/instances/{ids['ID']}/attachments/dicom/verify-md5"
                           ).status_code == 200
        assert client.post("/series/nope/reconstruct").status_code == 404


def test_tools_reconstruct_adopts_files_no_row_knows(server: LiveServer) -> None:
    loose = make_dicom(patient_id="LOOSE")
    key = str(uuid.uuid4())
    path = _blob_path(server.storage, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(loose)
    junk_key = str(uuid.uuid4())
    junk = _blob_path(server.storage, junk_key)
    junk.parent.mkdir(parents=True, exist_ok=True)
    junk.write_bytes(b"not a DICOM file")
    with server.client() as client:
        for body in ([], {"AdoptOrphanFiles": "yes"}, {"MinimumAge": -1}):
            assert client.post("/tools/reconstruct", json=body).status_code == 400
        assert client.get("/tools/lookup").status_code in (404, 405)
        # recent files may be an ingest in flight: left for a later run by default
        assert client.post("/tools/reconstruct").json() == {}
        assert client.post("/tools/find", json={"Level": "Patient", "Query": {
            "PatientID": "LOOSE"}}).json() == []
        assert client.post("/tools/reconstruct", json=NOW).json() == {}
        found = client.post("/tools/find", json={"Level": "Instance", "Query": {
            "PatientID": "LOOSE"}}).json()
        assert len(found) == 1
        assert client.get(f"/instances/{found[0]}/attachments/dicom/uuid").text == key
        assert client.get(f"/instances/{found[0]}/file").content == loose
        assert junk.read_bytes() == b"not a DICOM file"  # left alone
        assert client.post("/tools/reconstruct", json=NOW).json() == {}  # idempotent
        assert len(client.post("/tools/find", json={"Level": "Instance", "Query": {
            "PatientID": "LOOSE"}}).json()) == 1


# --- migration from a real Orthanc ----------------------------------------------------------

def _snapshot(client: object) -> dict[str, object]:
    answer: dict[str, object] = {}
    for level in ("patients", "studies", "series", "instances"):
        answer[level] = sorted(client.get(f"/{level}").json())  # type: ignore[attr-defined]
    statistics = client.get("/statistics").json()  # type: ignore[attr-defined]
    answer["counts"] = {k: statistics[k] for k in ("CountPatients", "CountStudies",
                                                  "CountSeries", "CountInstances")}
    return answer


@pytest.fixture(scope="module")
def orthanc_storage(tmp_path_factory: pytest.TempPathFactory,
                    corpus: Path) -> tuple[Path, dict[str, object], dict[str, str]]:
    """A stopped Orthanc's storage folder holding the corpus, what it answered, and the MD5
    of each instance's file."""
    skip_unless_orthanc()
    directory = tmp_path_factory.mktemp("orthanc-migration")
    files = sorted(p for p in corpus.rglob("*") if p.is_file())
    with running_orthanc(directory) as orthanc, orthanc.client() as client:
        for path in files:
            client.post("/instances", content=path.read_bytes())
        snapshot = _snapshot(client)
        md5 = {i: client.get(f"/instances/{i}/attachments/dicom/md5").text
               for i in snapshot["instances"]}  # type: ignore[union-attr]
    assert (orthanc.storage / "index").exists()  # Orthanc's SQLite index sits in the folder
    return orthanc.storage, snapshot, md5


def _check_migrated(client: object, snapshot: dict[str, object], md5: dict[str, str]) -> None:
    migrated = _snapshot(client)
    assert migrated["counts"] == snapshot["counts"]
    for level in ("patients", "studies", "series", "instances"):
        assert migrated[level] == snapshot[level], level
    for instance, expected in md5.items():
        data = client.get(f"/instances/{instance}/file").content  # type: ignore[attr-defined]
        assert hashlib.md5(data).hexdigest() == expected


@pytest.mark.interop
@pytest.mark.corpus
def test_migrate_orthanc_storage_with_the_route(
        tmp_path: Path, orthanc_storage: tuple[Path, dict[str, object], dict[str, str]]) -> None:
    source, snapshot, md5 = orthanc_storage
    copy = tmp_path / "copy"
    shutil.copytree(source, copy)
    # Until the copy is indexed, the startup sweep must not see its files as orphans.
    config = on_filesystem({"StorageDirectory": str(copy),
                            "Pharos": {"SweepOrphansAtStart": False}})
    with live_server(tmp_path, config) as server, server.client() as client:
        assert client.get("/statistics").json()["CountInstances"] == 0
        assert client.post("/tools/reconstruct", json=NOW).json() == {}
        _check_migrated(client, snapshot, md5)
        assert (copy / "index").exists()  # Orthanc's index file was not touched


@pytest.mark.interop
@pytest.mark.corpus
def test_migrate_orthanc_storage_with_the_command(
        tmp_path: Path, orthanc_storage: tuple[Path, dict[str, object], dict[str, str]]) -> None:
    source, snapshot, md5 = orthanc_storage
    copy = tmp_path / "copy"
    shutil.copytree(source, copy)
    with pinned_database(tmp_path) as pinned:
        config = on_filesystem({"StorageDirectory": str(copy), **pinned})
        config_path = tmp_path / "offline.json"
        config_path.write_bytes(orjson.dumps(config))
        done = subprocess.run([sys.executable, "-m", "app.cli", "reconstruct", "--config",
                               str(config_path)], cwd=REPO, capture_output=True, timeout=600)
        assert done.returncode == 0, done.stderr.decode(errors="replace")[-3000:]
        report = orjson.loads(done.stdout.splitlines()[-1])
        assert report["Adopted"] == len(md5)
        with live_server(tmp_path, config) as server, server.client() as client:
            _check_migrated(client, snapshot, md5)


@pytest.mark.interop
def test_migrate_a_compressed_orthanc_storage(tmp_path: Path) -> None:
    """Orthanc with StorageCompression writes zlib blobs (and, for files with pixel data,
    a compressed dicom-until-pixel-data fragment): Pharos adopts each file where it lies,
    flagged compressed (same UUID, same stored bytes), and reads it as received."""
    skip_unless_orthanc()
    files = [make_dicom(patient_id="ZORTHANC", instance_number=n, size=128) for n in (1, 2)]
    with running_orthanc(tmp_path / "orthanc", config={"StorageCompression": True}) as orthanc, \
            orthanc.client() as client:
        ids = [client.post("/instances", content=data).json()["ID"] for data in files]
        base = [f"/instances/{i}/attachments/dicom" for i in ids]
        assert [client.get(f"{b}/is-compressed").text for b in base] == ["1", "1"]
        expected = {i: (client.get(f"{b}/info").json()["Uuid"],
                        client.get(f"{b}/compressed-data").content)
                    for i, b in zip(ids, base, strict=True)}
    copy = tmp_path / "copy"
    shutil.copytree(orthanc.storage, copy)
    config = on_filesystem({"StorageDirectory": str(copy),
                            "Pharos": {"SweepOrphansAtStart": False}})
    with live_server(tmp_path / "pharos", config) as server, server.client() as client:
        assert client.post("/tools/reconstruct", json=NOW).json() == {}
        assert sorted(client.get("/instances").json()) == sorted(ids)
        for instance, data in zip(ids, files, strict=True):
            uuid_, stored = expected[instance]
            base_ = f"/instances/{instance}/attachments/dicom"
            assert client.get(f"{base_}/uuid").text == uuid_  # adopted where it lies
            assert client.get(f"{base_}/is-compressed").text == "1"
            assert client.get(f"{base_}/compressed-data").content == stored
            assert client.get(f"/instances/{instance}/file").content == data
            assert client.post(f"{base_}/verify-md5").json() == {}
        assert client.post("/tools/reconstruct", json=NOW).json() == {}  # idempotent
        assert client.get(f"/instances/{ids[0]}/file").content == files[0]
