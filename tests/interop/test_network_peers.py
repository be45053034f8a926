"""Orthanc peers over HTTP with real servers: Debian's Orthanc as the peer, and Pharos to
Pharos; the peer-store job's JSON compared with the one Orthanc itself produces."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.test_jobs import wait_job
from tests.helpers import live_server, make_dicom
from tests.interop.orthanc import RunningOrthanc, running_orthanc, skip_unless_orthanc


@pytest.fixture()
def orthanc(tmp_path: Path) -> Iterator[RunningOrthanc]:
    skip_unless_orthanc()
    with running_orthanc(tmp_path / "orthanc") as live:
        yield live


def _study(client, patient_id: str, count: int = 3) -> tuple[str, list[str]]:  # noqa: ANN001
    from pydicom.uid import generate_uid
    study_uid, series_uid = generate_uid(), generate_uid()
    ids = []
    for number in range(count):
        answer = client.post("/instances", content=make_dicom(
            patient_id=patient_id, study_uid=study_uid, series_uid=series_uid,
            instance_number=number + 1)).json()
        ids.append(answer["ID"])
    return answer["ParentStudy"], ids


def test_store_to_orthanc_peer_sync_and_async(tmp_path: Path, orthanc: RunningOrthanc) -> None:
    config = {"OrthancPeers": {"orthanc": [orthanc.url]}, "LogExportedResources": True}
    with live_server(tmp_path / "pharos", config) as pharos, pharos.client() as client, \
            orthanc.client() as remote:
        system = client.get("/peers/orthanc/system").json()
        assert system == remote.get("/system").json()

        study, instances = _study(client, "PEER1")
        sync = client.post("/peers/orthanc/store", content=study)
        assert sync.status_code == 200, sync.text
        assert sync.json()["InstancesCount"] == 3
        assert sorted(remote.get("/instances").json()) == sorted(instances)  # same Orthanc IDs

        remote.delete(f"/studies/{study}")
        job = client.post("/peers/orthanc/store", json={
            "Resources": [instances[0], study], "Synchronous": False}).json()
        done = wait_job(client, job["ID"])
        assert done["State"] == "Success"
        assert done["Content"]["InstancesCount"] == 3  # an instance counted once
        assert sorted(remote.get("/instances").json()) == sorted(instances)

        exports = client.get("/exports").json()["Exports"]
        assert [(e["ResourceType"], e["RemoteModality"]) for e in exports] == [
            ("Study", "orthanc"), ("Instance", "orthanc"), ("Study", "orthanc")]
        assert exports[1]["SOPInstanceUID"] and exports[0]["PatientID"] == "PEER1"

        straight = client.post("/peers/orthanc/store-straight",
                               content=make_dicom(patient_id="STRAIGHT"))
        assert straight.status_code == 200 and straight.json()["Status"] == "Success"
        assert client.get("/patients").json() != [] and len(
            remote.get("/patients").json()) == 2


def test_peer_store_job_json_matches_orthanc(tmp_path: Path, orthanc: RunningOrthanc) -> None:
    """The same store asked of Orthanc (to itself as a peer) and of Pharos (to Orthanc):
    the job documents have the same keys, types, and content keys."""
    with orthanc.client() as remote:
        remote.put("/peers/self", json=[orthanc.url])
        with live_server(tmp_path / "pharos", {"OrthancPeers": {"self": [orthanc.url]}}) \
                as pharos, pharos.client() as client:
            study, _ = _study(client, "SHAPE")
            client.post("/peers/self/store", content=study)  # now Orthanc has it too
            theirs = remote.post("/peers/self/store",
                                 json={"Resources": [study], "Synchronous": False}).json()
            ours = client.post("/peers/self/store",
                               json={"Resources": [study], "Synchronous": False}).json()
            assert set(theirs) == set(ours) == {"ID", "Path"}
            their_job = wait_job(remote, theirs["ID"])
            our_job = wait_job(client, ours["ID"])
    assert list(our_job) == list(their_job)
    assert {k: type(v) for k, v in our_job.items()} == {k: type(v) for k, v in their_job.items()}
    assert our_job["Type"] == their_job["Type"] == "OrthancPeerStore"
    assert our_job["Content"] == their_job["Content"]


def test_pharos_to_pharos(tmp_path: Path) -> None:
    with live_server(tmp_path / "target") as target:
        config = {"OrthancPeers": {"other": {"Url": target.url}}}
        with live_server(tmp_path / "source", config) as source, source.client() as client, \
                target.client() as remote:
            assert client.get("/peers/other/system").json()["Name"] == "PharosTest"
            study, instances = _study(client, "P2P", 4)
            job = client.post("/peers/other/store", json={
                "Resources": [study], "Synchronous": False}).json()
            assert wait_job(client, job["ID"])["State"] == "Success"
            assert sorted(remote.get("/instances").json()) == sorted(instances)
            ours = client.get(f"/instances/{instances[0]}/file").content
            assert remote.get(f"/instances/{instances[0]}/file").content == ours




def test_compressed_store_to_orthanc(tmp_path: Path, orthanc: RunningOrthanc) -> None:
    """``"Compress": true`` (Orthanc 1.6+) sends each file gzip-compressed with
    ``Content-Encoding: gzip``: the real Orthanc stores the same instances, and the job
    counts the compressed bytes."""
    config = {"OrthancPeers": {"orthanc": [orthanc.url]}}
    with live_server(tmp_path / "pharos", config) as pharos, pharos.client() as client, \
            orthanc.client() as remote:
        study, instances = _study(client, "GZIP", 2)
        sizes = sum(len(client.get(f"/instances/{i}/file").content) for i in instances)
        job = client.post("/peers/orthanc/store", json={
            "Resources": [study], "Compress": True, "Asynchronous": True}).json()
        done = wait_job(client, job["ID"])
        assert done["State"] == "Success", done
        assert done["Content"]["Compress"] is True
        assert 0 < int(done["Content"]["Size"]) < sizes / 2  # the synthetic ramp compresses
        assert sorted(remote.get("/instances").json()) == sorted(instances)
        for instance in instances:
            assert remote.get(f"/instances/{instance}/file").content == \
                client.get(f"/instances/{instance}/file").content
        assert client.post("/peers/orthanc/store", json={
            "Resources": [study], "Compress": "yes"}).status_code == 400
