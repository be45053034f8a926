"""The DICOMweb client (/dicom-web/servers) between two live Pharos servers, as Orthanc's
DICOMweb plugin offers it: registry, get, qido, stow, retrieve, wado, delete. A small
HTTP server records what the client sends (headers, credentials, chunking, DELETE)."""

from __future__ import annotations

import base64
import io
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import orjson
import pydicom
import pytest
from pydicom.uid import generate_uid

from tests.dicomweb.conftest import parse_multipart, stow
from tests.helpers import LiveServer, live_server, make_dicom, pinned_database

USER, PASSWORD = "alice", "orthanctest"


class Recorder(BaseHTTPRequestHandler):
    """Answers STOW-RS, DELETE and GET like a DICOMweb server, and records each request."""

    seen: list[dict] = []

    def log_message(self, *args: object) -> None:
        pass

    def _record(self) -> dict:
        length = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding") == "chunked":
            body = b""
            while (size := int(self.rfile.readline().strip(), 16)) > 0:
                body += self.rfile.read(size)
                self.rfile.readline()
            self.rfile.readline()
        else:
            body = self.rfile.read(int(length)) if length else b""
        entry = {"method": self.command, "path": self.path, "headers": dict(self.headers),
                 "body": body}
        Recorder.seen.append(entry)
        return entry

    def _answer(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 — http.server's naming
        self._record()
        self._answer(200, b"[]", "application/dicom+json")

    def do_DELETE(self) -> None:  # noqa: N802
        self._record()
        self._answer(204 if "gone" not in self.path else 404, b"", "text/plain")

    def do_POST(self) -> None:  # noqa: N802
        entry = self._record()
        count = entry["body"].count(b"Content-Type: application/dicom\r\n")
        answer = {"00081199": {"vr": "SQ", "Value": [{} for _ in range(count)]}}
        self._answer(200, orjson.dumps(answer), "application/dicom+json")


@pytest.fixture(scope="module")
def recorder() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/dicom-web/"
    httpd.shutdown()


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The remote DICOMweb server, behind Basic authentication."""
    config = {"AuthenticationEnabled": True, "RegisteredUsers": {USER: PASSWORD}}
    with live_server(tmp_path_factory.mktemp("remote"), config) as live:
        yield live


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory, remote: LiveServer,
          recorder: str) -> Iterator[LiveServer]:
    config = {"DicomWeb": {"Servers": {
        "remote": [remote.url + "/dicom-web/", USER, PASSWORD],
        "recorder": {"Url": recorder, "Username": "bob", "Password": "secret",
                     "HttpHeaders": {"Authorization-Token": "Bearer 42"},
                     "HasDelete": True, "ChunkedTransfers": False, "Timeout": 5}}}}
    with live_server(tmp_path_factory.mktemp("local"), config) as live:
        yield live


@pytest.fixture(scope="module")
def http(local: LiveServer) -> Iterator[httpx.Client]:
    with local.client() as session:
        yield session


@pytest.fixture(scope="module")
def remote_http(remote: LiveServer) -> Iterator[httpx.Client]:
    with remote.client(auth=(USER, PASSWORD)) as session:
        yield session


def _upload(http: httpx.Client, data: bytes) -> dict:
    answer = http.post("/instances", content=data)
    assert answer.status_code == 200
    return answer.json()


def test_registry(http: httpx.Client, remote: LiveServer, recorder: str) -> None:
    assert http.get("/dicom-web/servers").json() == ["recorder", "remote"]
    expanded = http.get("/dicom-web/servers", params={"expand": ""}).json()
    assert expanded["remote"] == {"Url": remote.url + "/dicom-web/", "Username": USER,
                                  "Password": None, "Pkcs11": False, "Timeout": 0,
                                  "HttpHeaders": []}
    assert expanded["recorder"]["HttpHeaders"] == ["Authorization-Token"]
    assert expanded["recorder"]["HasDelete"] == "1"  # user properties are strings
    assert http.get("/dicom-web/servers/remote").json() == \
        ["get", "retrieve", "stow", "wado", "qido"]
    assert http.get("/dicom-web/servers/recorder").json()[-1] == "delete"
    assert http.get("/dicom-web/servers/nope").status_code == 404

    assert http.put("/dicom-web/servers/hello", json={
        "Url": "http://localhost:1/dicom-web", "Username": "bob", "Password": "pw",
        "UserProperty": "Test", "Timeout": 66}).json() == {}
    hello = http.get("/dicom-web/servers", params={"expand": ""}).json()["hello"]
    assert hello["Url"] == "http://localhost:1/dicom-web/"  # trailing slash added
    assert hello["Timeout"] == 66 and hello["UserProperty"] == "Test"
    assert "pw" not in orjson.dumps(hello).decode()
    for bad in ({"Url": "ftp://x/"}, {"Username": "x"}, ["http://x/", "user"], "nope",
                {"Url": "http://x/", "Timeout": "soon"}):
        assert http.put("/dicom-web/servers/bad", json=bad).status_code == 400, bad
    assert http.delete("/dicom-web/servers/hello").json() == {}
    assert http.delete("/dicom-web/servers/hello").status_code == 400
    assert "hello" not in http.get("/dicom-web/servers").json()
    assert http.post("/dicom-web/servers").status_code == 405


def test_get_and_qido(http: httpx.Client, remote_http: httpx.Client) -> None:
    study = generate_uid()
    assert stow(remote_http, [make_dicom(study_uid=study, patient_name="KNIX^A")]
                ).status_code == 200
    found = http.post("/dicom-web/servers/remote/get", json={
        "Uri": "/studies", "Arguments": {"StudyInstanceUID": study}})
    assert found.status_code == 200
    assert found.headers["content-type"] == "application/dicom+json"
    assert [s["0020000D"]["Value"][0] for s in found.json()] == [study]
    xml = http.post("/dicom-web/servers/remote/get", json={
        "Uri": "studies", "Arguments": {"StudyInstanceUID": study},
        "HttpHeaders": {"Accept": "application/dicom+xml"}})
    assert len(parse_multipart(xml)) == 1
    simplified = http.post("/dicom-web/servers/remote/qido", json={
        "Uri": "/studies", "Arguments": {"00100010": "KNIX*", "StudyInstanceUID": study}})
    (answer,) = simplified.json()
    assert answer["00100010"] == {"Group": 0x10, "Element": 0x10, "Name": "PatientName",
                                  "vr": "PN", "Value": "KNIX^A"}
    assert answer["0020000D"]["Value"] == study
    # A remote error is an error here too; bad requests are 400; unknown servers 404.
    assert http.post("/dicom-web/servers/remote/get",
                     json={"Uri": "/studies/1.2.3/metadata"}).status_code >= 400
    assert http.post("/dicom-web/servers/remote/get", json={"Uri": "/studies?x=1"}
                     ).status_code == 400
    assert http.post("/dicom-web/servers/remote/get", json={}).status_code == 400
    assert http.post("/dicom-web/servers/nope/get", json={"Uri": "/studies"}
                     ).status_code == 404


def test_stow_then_retrieve(http: httpx.Client, remote_http: httpx.Client) -> None:
    study, series = generate_uid(), generate_uid()
    first = _upload(http, make_dicom(study_uid=study, series_uid=series, instance_number=1))
    second = _upload(http, make_dicom(study_uid=study, series_uid=series, instance_number=2))
    sent = http.post("/dicom-web/servers/remote/stow",
                     json={"Resources": [first["ParentStudy"]]}).json()
    assert sent["Server"] == "remote" and sent["InstancesCount"] == "2"
    assert sent["Resources"]["Studies"] == [first["ParentStudy"]]
    assert "Series" not in sent["Resources"]
    assert sorted(sent["Resources"]["Instances"]) == sorted([first["ID"], second["ID"]])
    assert len(remote_http.get("/dicom-web/studies", params={"StudyInstanceUID": study}
                               ).json()) == 1
    # Asynchronous: a job of Orthanc's type.
    job = http.post("/dicom-web/servers/remote/stow",
                    json={"Resources": [first["ID"]], "Synchronous": False}).json()
    assert set(job) == {"ID", "Path"}
    assert _wait_job(http, job["ID"])["Type"] == "DicomWebStowClient"
    assert http.post("/dicom-web/servers/remote/stow",
                     json={"Resources": ["0123abcd-0123abcd-0123abcd-0123abcd-0123abcd"]}
                     ).status_code == 404
    assert http.post("/dicom-web/servers/remote/stow", json={"Resources": "x"}
                     ).status_code == 400

    # Back from the remote into a clean local server.
    http.delete(f"/studies/{first['ParentStudy']}")
    got = http.post("/dicom-web/servers/remote/retrieve",
                    json={"Resources": [{"Study": study}]}).json()
    assert got == {"NetworkUsageMB": "0", "ReceivedInstancesCount": "2"}
    assert len(http.get(f"/studies/{first['ParentStudy']}/instances").json()) == 2
    sop = pydicom.dcmread(io.BytesIO(http.get(f"/instances/{second['ID']}/file").content))
    one = http.post("/dicom-web/servers/remote/retrieve", json={"Resources": [
        {"Study": study, "Series": series, "Instance": sop.SOPInstanceUID}]}).json()
    assert one["ReceivedInstancesCount"] == "1"
    for bad in ({"Resources": [{"Series": series}]},
                {"Resources": [{"Study": study, "Instance": sop.SOPInstanceUID}]},
                {"Resources": "x"}):
        assert http.post("/dicom-web/servers/remote/retrieve", json=bad).status_code == 400
    assert http.post("/dicom-web/servers/remote/retrieve",
                     json={"Resources": [{"Study": "1.2.3.4"}]}).status_code >= 400
    # /wado: any multipart DICOM URI, asynchronous by default.
    job = http.post("/dicom-web/servers/remote/wado",
                    json={"Uri": f"/studies/{study}/series/{series}"}).json()
    done = _wait_job(http, job["ID"])
    assert done["Type"] == "DicomWebWadoRetrieveClient" and done["State"] == "Success"
    assert done["Content"]["ReceivedInstancesCount"] == "2"


def test_retrieve_of_a_bigger_study_is_parsed_as_it_arrives(
        http: httpx.Client, remote_http: httpx.Client) -> None:
    """40 instances of 128 KiB: the answer arrives in many chunks, parts straddle them."""
    study = generate_uid()
    files = [make_dicom(study_uid=study, instance_number=i, size=256) for i in range(40)]
    for batch in (files[:20], files[20:]):
        assert stow(remote_http, batch).status_code == 200
    got = http.post("/dicom-web/servers/remote/retrieve",
                    json={"Resources": [{"Study": study}]}).json()
    assert got["ReceivedInstancesCount"] == "40"
    local = http.get("/dicom-web/instances", params={"StudyInstanceUID": study,
                                                     "limit": "100"}).json()
    assert len(local) == 40
    first = pydicom.dcmread(io.BytesIO(files[0]))
    (_, content), = parse_multipart(http.get(
        f"/dicom-web/studies/{study}/series/{first.SeriesInstanceUID}/instances/"
        f"{first.SOPInstanceUID}", headers={
            "Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'}))
    assert content == files[0]


def _wait_job(http: httpx.Client, job_id: str) -> dict:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = http.get(f"/jobs/{job_id}").json()
        if job["State"] in ("Success", "Failure"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish")


def test_what_the_client_sends(http: httpx.Client) -> None:
    Recorder.seen.clear()
    instance = _upload(http, make_dicom())
    sent = http.post("/dicom-web/servers/recorder/stow",
                     json={"Resources": [instance["ID"]], "HttpHeaders": {"X-Extra": "1"}})
    assert sent.status_code == 200
    post = Recorder.seen[-1]
    assert post["path"] == "/dicom-web/studies"
    headers = {k.lower(): v for k, v in post["headers"].items()}
    assert headers["authorization"] == "Basic " + base64.b64encode(b"bob:secret").decode()
    assert headers["authorization-token"] == "Bearer 42"
    assert headers["x-extra"] == "1"
    assert headers["accept"] == "application/dicom+json"
    assert headers["content-type"].startswith('multipart/related; type="application/dicom"')
    # ChunkedTransfers false: a Content-Length, the part lengths too.
    assert int(headers["content-length"]) == len(post["body"])
    assert b"Content-Length: " in post["body"]
    http.post("/dicom-web/servers/recorder/get", json={
        "Uri": "/series", "Arguments": {"00100010": "A B", "limit": "1"}})
    assert Recorder.seen[-1]["path"] == "/dicom-web/series?00100010=A%20B&limit=1"


def test_delete_on_a_server_with_has_delete(http: httpx.Client) -> None:
    Recorder.seen.clear()
    assert http.post("/dicom-web/servers/recorder/delete", json={
        "Level": "Series", "StudyInstanceUID": "1.2", "SeriesInstanceUID": "1.2.3"}
                     ).json() == {}
    assert Recorder.seen[-1]["method"] == "DELETE"
    assert Recorder.seen[-1]["path"] == "/dicom-web/studies/1.2/series/1.2.3"
    assert http.post("/dicom-web/servers/recorder/delete", json={
        "Level": "Instance", "StudyInstanceUID": "1.2", "SeriesInstanceUID": "1.2.3"}
                     ).status_code == 400
    assert http.post("/dicom-web/servers/recorder/delete", json={
        "Level": "Study", "StudyInstanceUID": "gone"}).status_code >= 400
    assert http.post("/dicom-web/servers/remote/delete", json={
        "Level": "Study", "StudyInstanceUID": "1.2"}).status_code == 400  # no HasDelete


def test_servers_in_database_survive_a_restart(tmp_path: Path) -> None:
    with pinned_database(tmp_path) as pinned:
        config = {**pinned, "DicomWeb": {"ServersInDatabase": True, "Servers": {
            "ignored": ["http://localhost:1/"]}}}
        with live_server(tmp_path / "first", config) as first, first.client() as client:
            assert client.get("/dicom-web/servers").json() == []  # the database alone
            client.put("/dicom-web/servers/kept", json=["http://localhost:2/dicom-web/"])
        if not pinned:  # SQLite: the index lives in the storage folder, reuse it
            config["Pharos"] = {"DatabaseUrl": "sqlite:///" + str(
                tmp_path / "first" / "storage" / "pharos-index.sqlite")}
        with live_server(tmp_path / "second", config) as second, \
                second.client() as client:
            assert client.get("/dicom-web/servers").json() == ["kept"]
