"""Jobs as Orthanc 1.12.2-1.12.9 has them: ``DELETE /jobs/{id}`` (completed jobs only,
their outputs with them) and the ``UserData`` a client attaches to any job it creates.

One module-scoped server; the jobs are real: archives, modifications, merges, peer
stores to a recording HTTP peer, DICOM stores and moves to a closed port (they fail, which
shows their UserData all the same), and a peer that never answers to keep a job running.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.test_jobs import HangingPeer, RecordingPeer, upload, wait_job
from tests.helpers import LiveServer, free_port, live_server


@pytest.fixture(scope="module")
def peers() -> Iterator[tuple[RecordingPeer, HangingPeer]]:
    recorder, hanging = RecordingPeer(), HangingPeer()
    yield recorder, hanging
    recorder.close()
    hanging.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory,
           peers: tuple[RecordingPeer, HangingPeer]) -> Iterator[LiveServer]:
    recorder, hanging = peers
    config = {"OrthancPeers": {"rec": [recorder.url],
                               "hang": {"Url": hanging.url, "Timeout": 60}},
              # nobody listens there: stores and moves fail at once
              "DicomModalities": {"nobody": ["NOBODY", "127.0.0.1", free_port()]},
              "ConcurrentJobs": 2, "MediaArchiveSize": 10}
    with live_server(tmp_path_factory.mktemp("pharos-jobs-history"), config) as live:
        yield live


@pytest.fixture()
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as http:
        yield http


def _archive_job(client: httpx.Client, study: str, **extra: object) -> str:
    answer = client.post(f"/studies/{study}/archive", json={"Asynchronous": True, **extra})
    assert answer.status_code == 200, answer.text
    return answer.json()["ID"]


def test_delete_completed_job_and_its_output(client: httpx.Client, server: LiveServer) -> None:
    stored = upload(client, 2, "JOBS-DELETE")
    study = stored[0]["ParentStudy"]
    job = _archive_job(client, study)
    assert wait_job(client, job)["State"] == "Success"
    assert client.get(f"/jobs/{job}/archive").status_code == 200
    keys_before = server.blob_keys()

    deleted = client.delete(f"/jobs/{job}")
    assert deleted.status_code == 200
    assert deleted.content == b""
    assert deleted.headers["content-type"].startswith("text/plain")
    assert client.get(f"/jobs/{job}").status_code == 404
    assert job not in client.get("/jobs").json()
    assert client.get(f"/jobs/{job}/archive").status_code == 404
    gone = keys_before - server.blob_keys()
    assert len(gone) == 1  # the ZIP, not a DICOM file
    for instance in stored:  # the archived files stay
        assert client.get(f"/instances/{instance['ID']}/file").status_code == 200

    again = client.delete(f"/jobs/{job}")
    assert again.status_code == 404
    assert again.json()["OrthancError"] == "Accessing an inexistent item"
    assert client.delete("/jobs/not-a-job").status_code == 404


def test_output_deleted_first_then_job(client: httpx.Client) -> None:
    """``DELETE /jobs/{id}/archive`` keeps the job; deleting the job afterwards works."""
    study = upload(client, 1, "JOBS-OUTPUT")[0]["ParentStudy"]
    job = _archive_job(client, study)
    wait_job(client, job)
    assert client.delete(f"/jobs/{job}/archive").status_code == 200
    assert client.get(f"/jobs/{job}").status_code == 200
    assert client.delete(f"/jobs/{job}").status_code == 200
    assert client.get(f"/jobs/{job}").status_code == 404


def test_a_job_that_did_not_complete_cannot_be_deleted(
        client: httpx.Client, peers: tuple[RecordingPeer, HangingPeer]) -> None:
    """Orthanc only deletes jobs of its history: cancel first, then delete."""
    patient = upload(client, 1, "JOBS-RUNNING")[0]["ParentPatient"]
    job = client.post("/peers/hang/store",
                      json={"Resources": [patient], "Synchronous": False}).json()["ID"]
    assert wait_job(client, job, ("Running", "Success", "Failure"))["State"] == "Running"
    refused = client.delete(f"/jobs/{job}")
    assert refused.status_code == 404
    assert "No job found" in refused.json()["Details"]
    assert client.get(f"/jobs/{job}").json()["State"] == "Running"
    assert client.post(f"/jobs/{job}/cancel").status_code == 200
    for connection in peers[1].connections:  # the blocked upload ends: the cancel settles
        connection.close()
    assert wait_job(client, job)["State"] == "Failure"
    assert client.delete(f"/jobs/{job}").status_code == 200
    assert client.get(f"/jobs/{job}").status_code == 404


def test_failed_job_is_deleted_too(client: httpx.Client) -> None:
    patient = upload(client, 1, "JOBS-FAILED")[0]["ParentPatient"]
    job = client.post("/modalities/nobody/store",
                      json={"Resources": [patient], "Asynchronous": True}).json()["ID"]
    assert wait_job(client, job)["State"] == "Failure"
    assert client.delete(f"/jobs/{job}").status_code == 200
    assert client.get(f"/jobs/{job}").status_code == 404


@pytest.mark.parametrize("user_data", [
    {"user-data": "titi", "nested": [1, 2.5, None, True]}, "simple-string", 42, [1, "a"], None])
def test_user_data_travels_with_archive_and_modify_jobs(client: httpx.Client,
                                                        user_data: object) -> None:
    stored = upload(client, 1, f"JOBS-USERDATA-{type(user_data).__name__}")[0]
    archive = client.post("/tools/create-archive", json={
        "Resources": [stored["ParentStudy"]], "Asynchronous": True, "UserData": user_data})
    modify = client.post(f"/studies/{stored['ParentStudy']}/modify", json={
        "Replace": {"StudyDescription": "toto"}, "Asynchronous": True, "UserData": user_data})
    for answer in (archive, modify):
        assert answer.status_code == 200, answer.text
        job = answer.json()["ID"]
        assert client.get(f"/jobs/{job}").json()["UserData"] == user_data
        done = wait_job(client, job)
        assert done["State"] == "Success" and done["UserData"] == user_data
        expanded = [j for j in client.get("/jobs", params={"expand": ""}).json()
                    if j["ID"] == job]
        assert expanded[0]["UserData"] == user_data


def test_user_data_of_network_and_study_jobs(client: httpx.Client,
                                             peers: tuple[RecordingPeer, HangingPeer]) -> None:
    stored = upload(client, 1, "JOBS-USERDATA-NET")[0]
    study = client.get(f"/studies/{stored['ParentStudy']}").json()
    requests = {
        "/peers/rec/store": {"Resources": [stored["ID"]], "Synchronous": False},
        "/modalities/nobody/store": {"Resources": [stored["ID"]], "Asynchronous": True},
        "/modalities/nobody/move": {"Level": "Study", "Asynchronous": True, "Resources": [
            {"StudyInstanceUID": study["MainDicomTags"]["StudyInstanceUID"]}]},
        "/modalities/nobody/get": {"Level": "Study", "Asynchronous": True, "Resources": [
            {"StudyInstanceUID": study["MainDicomTags"]["StudyInstanceUID"]}]},
        "/tools/bulk-modify": {"Resources": [stored["ID"]], "Level": "Instance",
                               "Replace": {"SeriesDescription": "x"}, "Asynchronous": True,
                               "KeepSource": True},
        # last: the split moves the series into a new study
        f"/studies/{stored['ParentStudy']}/split": {"Series": [stored["ParentSeries"]],
                                                    "Asynchronous": True},
    }
    for uri, body in requests.items():
        answer = client.post(uri, json={**body, "UserData": {"uri": uri}})
        assert answer.status_code == 200, (uri, answer.text)
        job = client.get(f"/jobs/{answer.json()['ID']}").json()
        assert job["UserData"] == {"uri": uri}, uri
        wait_job(client, job["ID"])
    assert stored["ID"] and peers[0].received


def test_no_user_data_no_key(client: httpx.Client) -> None:
    """A job created without ``UserData`` has no such key (not null)."""
    study = upload(client, 1, "JOBS-NO-USERDATA")[0]["ParentStudy"]
    job = _archive_job(client, study)
    assert "UserData" not in wait_job(client, job)


def test_user_data_survives_a_restart(tmp_path: Path) -> None:
    from tests.helpers import pinned_database
    with pinned_database(tmp_path) as pinned:
        with live_server(tmp_path, pinned) as first, first.client() as http:
            study = upload(http, 1, "JOBS-RESTART")[0]["ParentStudy"]
            job = _archive_job(http, study, UserData={"kept": True})
            wait_job(http, job)
        with live_server(tmp_path, pinned) as second, second.client() as http:
            assert http.get(f"/jobs/{job}").json()["UserData"] == {"kept": True}
