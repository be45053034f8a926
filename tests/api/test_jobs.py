"""Jobs: Orthanc's /jobs JSON, asynchronous submissions, cancel/pause/resume/resubmit,
survival across a restart, and no double run by two processes sharing one PostgreSQL.

The jobs used here are Orthanc peer stores (``/peers/{name}/store``) to real HTTP
endpoints run by the test: a recording peer (answers ``POST /instances`` and keeps the
bodies) and a "hanging" peer (accepts connections and never answers) that keeps a worker
busy, so that the next job stays Pending as long as the test needs.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import orjson
import pydicom
import pytest

from tests.helpers import free_port, live_server, make_dicom, pinned_database

JOB_KEYS = {"CompletionTime", "Content", "CreationTime", "EffectiveRuntime", "ErrorCode",
            "ErrorDescription", "ErrorDetails", "ID", "Priority", "Progress", "State",
            "Timestamp", "Type"}


class RecordingPeer:
    """A minimal Orthanc-like HTTP endpoint: ``GET /system``, ``POST /instances``."""

    def __init__(self, delay: float = 0.0) -> None:
        self.received: list[bytes] = []
        self.lock = threading.Lock()
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                return None

            def _json(self, document: object) -> None:
                body = orjson.dumps(document)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802
                self._json({"Name": "Recorder", "Version": "1.10.1"})

            def do_POST(self) -> None:  # noqa: N802
                data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if delay:
                    time.sleep(delay)
                with peer.lock:
                    peer.received.append(data)
                self._json({"Status": "Success"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def sop_uids(self) -> list[str]:
        with self.lock:
            return [str(pydicom.dcmread(pydicom.filebase.DicomBytesIO(d)).SOPInstanceUID)
                    for d in self.received]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class HangingPeer:
    """Accepts TCP connections and never answers: a worker sending to it stays busy until
    the peer's ``Timeout`` or until :meth:`close` drops the connections."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/"
        self.connections: list[socket.socket] = []
        self.closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                connection, _ = self.sock.accept()
            except OSError:
                return
            self.connections.append(connection)

    def close(self) -> None:
        self.closed.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
        except OSError:
            pass
        self.sock.close()
        for connection in self.connections:
            connection.close()


@pytest.fixture()
def recorder() -> Iterator[RecordingPeer]:
    peer = RecordingPeer()
    yield peer
    peer.close()


@pytest.fixture()
def hanging() -> Iterator[HangingPeer]:
    peer = HangingPeer()
    yield peer
    peer.close()


def wait_job(client: httpx.Client, job_id: str, states: tuple[str, ...] = ("Success", "Failure"),
             limit: float = 60) -> dict:
    """Poll a job until it reaches one of *states* (the limit only stops a hung test)."""
    deadline = time.monotonic() + limit
    while True:
        job = client.get(f"/jobs/{job_id}").json()
        if job["State"] in states:
            return job
        assert time.monotonic() < deadline, f"job stuck in {job['State']}: {job}"
        time.sleep(0.05)


def upload(client: httpx.Client, count: int = 1, patient_id: str = "JOBS") -> list[dict]:
    answers = []
    for number in range(count):
        response = client.post("/instances", content=make_dicom(patient_id=patient_id,
                                                                 instance_number=number + 1))
        assert response.status_code == 200, response.text
        answers.append(response.json())
    return answers


def peers_config(recorder: RecordingPeer, hanging: HangingPeer | None = None) -> dict:
    peers: dict = {"rec": [recorder.url]}
    if hanging is not None:
        peers["hang"] = {"Url": hanging.url, "Timeout": 60}
    return {"OrthancPeers": peers, "ConcurrentJobs": 1}


def test_peer_of_store_jobs_hides_the_password(tmp_path: Path, recorder: RecordingPeer) -> None:
    """``Content.Peer`` as Orthanc's ``WebServiceParameters::Serialize`` without passwords:
    ``[URL, user, ""]``, or the long form (no password) when it has more to say."""
    config = peers_config(recorder)
    config["OrthancPeers"]["auth"] = [recorder.url, "alice", "secret"]
    config["OrthancPeers"]["long"] = {"Url": recorder.url, "Username": "bob",
                                      "Password": "hidden", "Timeout": 30}
    with live_server(tmp_path, config) as server, server.client() as client:
        patient = upload(client, 1)[0]["ParentPatient"]
        peers = {}
        for name in ("auth", "long"):
            job = client.post(f"/peers/{name}/store",
                              json={"Resources": [patient], "Synchronous": False}).json()
            peers[name] = wait_job(client, job["ID"])["Content"]["Peer"]
    assert peers["auth"] == [recorder.url, "alice", ""]
    assert peers["long"]["Url"] == recorder.url and peers["long"]["Username"] == "bob"
    assert peers["long"]["Timeout"] == 30 and "Password" not in peers["long"]
    assert "secret" not in str(peers) and "hidden" not in str(peers)


def test_async_store_answers_id_and_path_and_job_json(tmp_path: Path,
                                                      recorder: RecordingPeer) -> None:
    with live_server(tmp_path, peers_config(recorder)) as server, server.client() as client:
        stored = upload(client, 2)
        patient = stored[0]["ParentPatient"]
        answer = client.post("/peers/rec/store",
                             json={"Resources": [patient], "Synchronous": False, "Priority": 4})
        assert answer.status_code == 200
        body = answer.json()
        assert set(body) == {"ID", "Path"} and body["Path"] == f"/jobs/{body['ID']}"
        job = wait_job(client, body["ID"])
        assert set(job) == JOB_KEYS
        assert job["State"] == "Success" and job["Progress"] == 100
        assert job["Type"] == "OrthancPeerStore" and job["Priority"] == 4
        assert job["ErrorCode"] == 0 and job["ErrorDescription"] == "Success"
        assert job["ErrorDetails"] == ""
        assert job["CreationTime"] <= job["CompletionTime"] <= job["Timestamp"]
        assert isinstance(job["EffectiveRuntime"], float)
        assert job["Content"]["InstancesCount"] == 2
        assert job["Content"]["ParentResources"] == [patient]
        assert job["Content"]["Peer"] == [recorder.url]
        assert sorted(recorder.sop_uids()) == sorted(
            client.get(f"/instances/{s['ID']}/simplified-tags").json()["SOPInstanceUID"]
            for s in stored)
        assert client.get("/jobs").json() == [body["ID"]]
        expanded = client.get("/jobs?expand").json()
        assert [j["ID"] for j in expanded] == [body["ID"]]
        # A synchronous store shows in /jobs too (Orthanc's SubmitAndWait).
        sync = client.post("/peers/rec/store", content=patient).json()
        assert sync["InstancesCount"] == 2 and sync["FailedInstancesCount"] == 0
        assert len(client.get("/jobs").json()) == 2
        missing = client.get("/jobs/00000000-0000-0000-0000-000000000000")
        assert missing.status_code == 404


def test_failed_job_reports_error_and_sync_call_fails(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}/"
    with live_server(tmp_path, {"OrthancPeers": {"dead": [dead]}}) as server, \
            server.client() as client:
        patient = upload(client)[0]["ParentPatient"]
        sync = client.post("/peers/dead/store", content=patient)
        assert sync.status_code == 500
        assert sync.json()["OrthancStatus"] == 9
        job_id = client.post("/peers/dead/store",
                             json={"Resources": [patient], "Synchronous": False}).json()["ID"]
        job = wait_job(client, job_id)
        assert job["State"] == "Failure"
        assert job["ErrorCode"] == 9
        assert job["ErrorDescription"] == "Error in the network protocol"
        assert job["ErrorDetails"]
        # Resume and resubmit follow Orthanc's rules: only a failed job is resubmitted.
        assert client.post(f"/jobs/{job_id}/resume").status_code == 400
        assert client.post(f"/jobs/{job_id}/pause").json() == {}  # nothing to do: 200
        assert client.post(f"/jobs/{job_id}/cancel").json() == {}
        assert client.get(f"/jobs/{job_id}").json()["ErrorCode"] == 9


def test_pause_resume_cancel_resubmit(tmp_path: Path, recorder: RecordingPeer,
                                      hanging: HangingPeer) -> None:
    with live_server(tmp_path, peers_config(recorder, hanging)) as server, \
            server.client() as client:
        patient = upload(client)[0]["ParentPatient"]
        busy = client.post("/peers/hang/store",
                           json={"Resources": [patient], "Synchronous": False}).json()["ID"]
        wait_job(client, busy, ("Running",))
        queued = client.post("/peers/rec/store",
                             json={"Resources": [patient], "Synchronous": False}).json()["ID"]
        assert client.get(f"/jobs/{queued}").json()["State"] == "Pending"

        assert client.post(f"/jobs/{queued}/pause").json() == {}
        assert client.get(f"/jobs/{queued}").json()["State"] == "Paused"
        assert client.post(f"/jobs/{queued}/resume").json() == {}
        assert client.get(f"/jobs/{queued}").json()["State"] == "Pending"
        assert client.post(f"/jobs/{queued}/resume").status_code == 400

        assert client.post(f"/jobs/{queued}/cancel").json() == {}
        canceled = client.get(f"/jobs/{queued}").json()
        assert canceled["State"] == "Failure"
        assert canceled["ErrorCode"] == 37
        assert canceled["ErrorDescription"] == "This job was canceled"
        assert "CompletionTime" in canceled

        # Cancelling the running job: it stops and fails as canceled.
        assert client.post(f"/jobs/{busy}/cancel").json() == {}
        hanging.close()  # the peer drops the connection: the blocked request ends now
        stopped = wait_job(client, busy)
        assert (stopped["State"], stopped["ErrorCode"]) == ("Failure", 37)

        # The canceled job is resubmitted and now runs to the end.
        assert client.post(f"/jobs/{queued}/resubmit").json() == {}
        done = wait_job(client, queued)
        assert done["State"] == "Success" and done["ErrorCode"] == 0
        assert len(recorder.received) == 1
        assert client.post(f"/jobs/{queued}/resubmit").status_code == 400


def test_pausing_a_running_job_then_resuming_it(tmp_path: Path, recorder: RecordingPeer,
                                                hanging: HangingPeer) -> None:
    with live_server(tmp_path, peers_config(recorder, hanging)) as server, \
            server.client() as client:
        patient = upload(client)[0]["ParentPatient"]
        busy = client.post("/peers/hang/store",
                           json={"Resources": [patient], "Synchronous": False}).json()["ID"]
        wait_job(client, busy, ("Running",))
        assert client.post(f"/jobs/{busy}/pause").json() == {}
        # A running job pauses between steps: here, when the hanging call gives up
        # (the peer's 60 s Timeout), so allow longer than that on a loaded machine.
        assert wait_job(client, busy, ("Paused",), limit=150)["State"] == "Paused"
        hanging.close()  # the peer is gone: the resumed job fails with a network error
        assert client.post(f"/jobs/{busy}/resume").json() == {}
        failed = wait_job(client, busy)
        assert (failed["State"], failed["ErrorCode"]) == ("Failure", 9)


def test_jobs_survive_a_restart(tmp_path: Path, recorder: RecordingPeer,
                                hanging: HangingPeer) -> None:
    """Stop the server with one job running and one pending; restart on the same storage
    and index; both run again (the interrupted one from the start)."""
    with pinned_database(tmp_path) as pinned:
        config = {**peers_config(recorder, hanging), **pinned}
        with live_server(tmp_path, config) as server, server.client() as client:
            patient = upload(client)[0]["ParentPatient"]
            busy = client.post("/peers/hang/store",
                               json={"Resources": [patient], "Synchronous": False}).json()["ID"]
            wait_job(client, busy, ("Running",))
            queued = client.post("/peers/rec/store",
                                 json={"Resources": [patient], "Synchronous": False}).json()["ID"]
            assert client.get(f"/jobs/{queued}").json()["State"] == "Pending"
        assert recorder.received == []
        hanging.close()  # the restarted busy job now fails at once instead of hanging
        with live_server(tmp_path, config) as server, server.client() as client:
            assert wait_job(client, queued)["State"] == "Success"
            again = wait_job(client, busy)
            assert (again["State"], again["ErrorCode"]) == ("Failure", 9)
            assert sorted(client.get("/jobs").json()) == sorted([busy, queued])
        assert len(recorder.received) == 1


@pytest.mark.skipif(not os.environ.get("PHAROS_TEST_DATABASE_URL"),
                    reason="needs PostgreSQL (PHAROS_TEST_DATABASE_URL): two processes "
                           "cannot share one SQLite index")
def test_two_processes_never_run_the_same_job_twice(tmp_path: Path) -> None:
    recorder = RecordingPeer(delay=0.02)
    count = 40
    try:
        with pinned_database(tmp_path) as pinned:
            storage = tmp_path / "shared-storage"
            config = {**pinned, "StorageDirectory": str(storage), "ConcurrentJobs": 3,
                      "OrthancPeers": {"rec": [recorder.url]}}
            with live_server(tmp_path / "a", config) as first, \
                    live_server(tmp_path / "b", config) as second, \
                    first.client() as one, second.client() as two:
                stored = upload(one, count, patient_id="TWICE")
                jobs = []
                for number, instance in enumerate(stored):
                    client = one if number % 2 else two
                    jobs.append(client.post("/peers/rec/store", json={
                        "Resources": [instance["ID"]], "Synchronous": False}).json()["ID"])
                for job_id in jobs:
                    assert wait_job(one, job_id)["State"] == "Success"
                workers = _last_workers(pinned["Pharos"]["DatabaseUrl"], jobs)
        uids = recorder.sop_uids()
        assert len(uids) == count and len(set(uids)) == count  # each sent exactly once
        processes = {worker.split(":")[1] for worker in workers}
        assert len(processes) == 2, f"one process ran every job: {processes}"
    finally:
        recorder.close()


def _last_workers(url: str, job_ids: list[str]) -> list[str]:
    import psycopg
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        rows = conn.execute("SELECT claimed_by FROM jobs WHERE id = ANY(%s)", (job_ids,))
        return [row[0] for row in rows]
