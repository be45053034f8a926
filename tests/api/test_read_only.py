"""``ReadOnly`` (Orthanc 1.12.5): a server that reads an archive another server writes,
and never changes its index or its storage, whatever the door (REST, DICOMweb, DIMSE).

A writing server fills the archive first; a second server, with ``ReadOnly``, is then
started on the same index and storage: it answers every read, refuses every write with
Orthanc's code 22 (HTTP 403, C-STORE 0xA700), keeps its run-time settings in memory, and
leaves the files and the index exactly as they were.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.helpers import LiveServer, free_port, live_server, make_dicom, pinned_database

REPO = Path(__file__).resolve().parents[2]


def _fingerprint(server: LiveServer) -> dict[str, str]:
    """Every blob of the storage with the MD5 of its content."""
    from app.blobstore import open_blobstore
    store = open_blobstore(server.blobstore_url, str(server.storage))
    return {key: hashlib.md5(store.read(key)).hexdigest() for key in store.keys()}


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict, dict]]:
    """A folder holding an archive written by a normal server: (folder, config, IDs)."""
    folder = tmp_path_factory.mktemp("pharos-read-only")
    with pinned_database(folder) as pinned:
        config = {**pinned, "DicomAlwaysAllowFind": True, "DicomAlwaysAllowGet": True,
                  "UserMetadata": {"Note": 1024}}
        with live_server(folder, config) as writer, writer.client() as client:
            stored = [client.post("/instances", content=make_dicom(
                patient_id="RO", instance_number=n + 1)).json() for n in range(2)]
            instance = stored[0]["ID"]
            assert client.put(f"/instances/{instance}/metadata/Note",
                              content=b"hello").status_code == 200
            assert client.put(f"/instances/{instance}/attachments/1025",
                              content=b"attached").status_code == 200
            job = client.post(f"/patients/{stored[0]['ParentPatient']}/archive",
                              json={"Asynchronous": True}).json()["ID"]
            from tests.api.test_jobs import wait_job
            wait_job(client, job)
        yield folder, config, {"instance": instance, "patient": stored[0]["ParentPatient"],
                               "study": stored[0]["ParentStudy"], "job": job}


@pytest.fixture(scope="module")
def reader(archive: tuple[Path, dict, dict]) -> Iterator[LiveServer]:
    folder, config, _ = archive
    with live_server(folder, {**config, "ReadOnly": True}) as live:
        yield live


@pytest.fixture()
def client(reader: LiveServer) -> Iterator[httpx.Client]:
    with reader.client() as http:
        yield http


def _refused(answer: httpx.Response) -> bool:
    return answer.status_code == 403 and answer.json()["OrthancStatus"] == 22


def test_reads_answer(client: httpx.Client, archive: tuple[Path, dict, dict]) -> None:
    ids = archive[2]
    assert client.get("/system").json()["ReadOnly"] is True
    assert client.get("/patients").json() == [ids["patient"]]
    assert client.get(f"/instances/{ids['instance']}/file").status_code == 200
    assert client.get(f"/instances/{ids['instance']}/metadata/Note").text == "hello"
    assert client.get(f"/instances/{ids['instance']}/attachments/1025/data").content \
        == b"attached"
    found = client.post("/tools/find", json={"Level": "Instance", "Query": {}})
    assert len(found.json()) == 2
    assert client.get(f"/jobs/{ids['job']}").json()["State"] == "Success"
    assert client.get(f"/jobs/{ids['job']}/archive").status_code == 200
    synchronous = client.post("/tools/create-archive", json={"Resources": [ids["patient"]]})
    assert synchronous.status_code == 200 and synchronous.content[:2] == b"PK"
    qido = client.get("/dicom-web/studies", headers={"Accept": "application/dicom+json"})
    assert qido.status_code == 200 and len(qido.json()) == len(client.get("/studies").json())


def test_every_write_is_refused(client: httpx.Client, reader: LiveServer,
                                archive: tuple[Path, dict, dict]) -> None:
    ids = archive[2]
    before = _fingerprint(reader)
    instance, patient, study = ids["instance"], ids["patient"], ids["study"]
    writes = [
        client.post("/instances", content=make_dicom(patient_id="RO-NEW")),
        client.delete(f"/patients/{patient}"),
        client.delete(f"/instances/{instance}"),
        client.put(f"/instances/{instance}/metadata/Note", content=b"x"),
        client.delete(f"/instances/{instance}/metadata/Note"),
        client.put(f"/instances/{instance}/attachments/1026", content=b"x"),
        client.delete(f"/instances/{instance}/attachments/1025"),
        client.put(f"/studies/{study}/labels/label"),
        client.put(f"/patients/{patient}/protected", content=b"1"),
        client.post(f"/studies/{study}/modify", json={"Replace": {"StudyDescription": "x"}}),
        client.post(f"/studies/{study}/modify", json={"Replace": {"StudyDescription": "x"},
                                                      "Asynchronous": True}),
        client.post(f"/patients/{patient}/archive", json={"Asynchronous": True}),
        client.delete(f"/jobs/{ids['job']}"),
        client.post("/tools/bulk-delete", json={"Resources": [instance]}),
        client.delete("/changes"),
    ]
    assert [w.status_code for w in writes if not _refused(w)] == []
    stow = client.post("/dicom-web/studies", content=(
        b"--XX\r\nContent-Type: application/dicom\r\n\r\n" + make_dicom(patient_id="RO-STOW")
        + b"\r\n--XX--\r\n"), headers={
            "Content-Type": 'multipart/related; type="application/dicom"; boundary=XX'})
    assert stow.status_code == 409  # nothing stored: PS3.18 10.5.3
    assert client.get("/patients").json() == [patient]
    assert _fingerprint(reader) == before


def test_cstore_refused_cfind_served(reader: LiveServer, tmp_path: Path) -> None:
    path = tmp_path / "new.dcm"
    path.write_bytes(make_dicom(patient_id="RO-DIMSE"))
    store = subprocess.run(["storescu", "-v", "127.0.0.1", str(reader.dicom_port), str(path)],
                           capture_output=True, text=True, timeout=60)
    assert "Refused: OutOfResources" in store.stderr + store.stdout
    find = subprocess.run(["findscu", "-v", "-S", "-k", "QueryRetrieveLevel=STUDY",
                           "-k", "PatientID=RO", "-k", "StudyInstanceUID", "127.0.0.1",
                           str(reader.dicom_port)], capture_output=True, text=True, timeout=60)
    assert find.returncode == 0 and "(Pending)" in find.stderr + find.stdout


def test_runtime_settings_stay_in_the_process(client: httpx.Client) -> None:
    """Orthanc keeps them in memory; a read-only server may not write them to the index."""
    assert client.put("/tools/default-encoding", content=b"Utf8").status_code == 200
    assert client.get("/tools/default-encoding").text == "Utf8"
    assert client.put("/tools/log-level", content=b"verbose").status_code == 200
    assert client.get("/tools/log-level").text == "verbose"


def test_refuses_to_start_on_an_empty_index(tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    storage.mkdir()
    config = tmp_path / "pharos.json"
    config.write_bytes(orjson.dumps({"StorageDirectory": str(storage), "ReadOnly": True,
                                     "HttpPort": free_port(), "DicomPort": free_port(),
                                     "Pharos": {"DatabaseUrl": None}}))
    started = subprocess.run([sys.executable, "-m", "app.cli", "serve", "--config",
                              str(config)], cwd=REPO, capture_output=True, text=True,
                             timeout=120)
    assert started.returncode == 2
    assert "ReadOnly never creates or upgrades it" in started.stderr
    assert list(storage.iterdir()) == []  # nothing created
