"""Webhooks: a live server POSTs its events, signed, to a real HTTP receiver; when the
receiver is down, events wait in the index and all arrive once it is back."""

from __future__ import annotations

import hashlib
import hmac
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydicom.uid import generate_uid

from app.config import Settings
from tests.helpers import (
    REPO,
    blobstore_url_for_tests,
    free_port,
    live_server,
    make_dicom,
    pinned_database,
)

SECRET = "s3cret-key"


class Receiver:
    """A webhook receiver on a fixed port that can be stopped and started again."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        received, lock = self.received, self.lock

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with lock:
                    received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()
        self.server = None

    def events(self) -> list[dict]:
        with self.lock:
            return [orjson.loads(body) for _, body in self.received]

    def wait_for(self, condition, timeout: float = 90) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            events = self.events()
            if condition(events):
                return events
            time.sleep(0.2)
        raise AssertionError(f"events never satisfied the condition: {self.events()}")


def distinct(events: list[dict], kind: str) -> set[str]:
    """IDs of the events of one kind, duplicates (at-least-once) merged by EventId."""
    return {e["ID"] for e in {e["EventId"]: e for e in events}.values() if e["Event"] == kind}


def metric(http, name: str, **labels: str) -> float:
    text = http.get("/tools/metrics-prometheus").text
    return sum(sample.value for family in text_string_to_metric_families(text)
               for sample in family.samples
               if sample.name == name and all(sample.labels.get(k) == v
                                              for k, v in labels.items()))


def test_events_are_signed_and_survive_a_receiver_outage(tmp_path):
    receiver = Receiver(free_port())
    receiver.start()
    config = {"Pharos": {"Webhooks": [{
        "Url": f"http://127.0.0.1:{receiver.port}/hook?token=abc", "Secret": SECRET,
        "Events": ["InstanceStored", "StableSeries", "Deleted"]}]}}
    first_series, second_series = generate_uid(), generate_uid()
    study = generate_uid()
    with live_server(tmp_path, config) as live, live.client() as http:
        first = [http.post("/instances", content=make_dicom(
            patient_id="HOOK", study_uid=study, series_uid=first_series,
            instance_number=n)).json() for n in range(3)]
        events = receiver.wait_for(lambda found: len(distinct(found, "StableSeries")) == 1)
        assert distinct(events, "InstanceStored") == {answer["ID"] for answer in first}
        assert distinct(events, "StableSeries") == {first[0]["ParentSeries"]}
        for headers, body in receiver.received:
            expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
            assert hmac.compare_digest(headers["x-pharos-signature-256"], expected)
            event = orjson.loads(body)
            assert headers["x-pharos-event-id"] == event["EventId"]
            assert headers["x-pharos-event"] == event["Event"]
            assert headers["content-type"] == "application/json"
        stored = next(e for e in events if e["Event"] == "InstanceStored")
        assert stored["Path"] == f"/instances/{stored['ID']}"
        assert stored["ResourceType"] == "Instance" and stored["ChangeType"] == "NewInstance"
        # Only the events asked for: no NewSeries, no StableStudy.
        assert {e["Event"] for e in events} == {"InstanceStored", "StableSeries"}

        # The receiver goes down; the archive goes on storing and deleting, unblocked.
        receiver.stop()
        second = [http.post("/instances", content=make_dicom(
            patient_id="HOOK", study_uid=study, series_uid=second_series,
            instance_number=n)).json() for n in range(2)]
        assert [answer["Status"] for answer in second] == ["Success", "Success"]
        assert http.delete(f"/instances/{first[0]['ID']}").status_code == 200
        deadline = time.monotonic() + 60
        while metric(http, "pharos_webhook_deliveries_total", outcome="failed") < 2:
            assert time.monotonic() < deadline, "no failed delivery while the receiver was down"
            time.sleep(0.3)
        assert metric(http, "pharos_webhook_pending") >= 3

        # Back up: everything missed arrives.
        receiver.start()
        events = receiver.wait_for(lambda found: len(distinct(found, "StableSeries")) == 2
                                   and len(distinct(found, "InstanceStored")) == 5
                                   and distinct(found, "Deleted"))
        assert distinct(events, "InstanceStored") == {a["ID"] for a in first + second}
        assert distinct(events, "Deleted") == {first[0]["ID"]}
        assert distinct(events, "StableSeries") == {first[0]["ParentSeries"],
                                                    second[0]["ParentSeries"]}
        deleted = next(e for e in events if e["Event"] == "Deleted")
        assert deleted["ResourceType"] == "Instance"
        # Each webhook's queue is sent oldest first: in the order the events were produced.
        order = [e["ID"] for e in events if e["Event"] == "InstanceStored"]
        assert order.index(second[0]["ID"]) < order.index(second[1]["ID"])
        deadline = time.monotonic() + 30
        while metric(http, "pharos_webhook_pending") != 0:
            assert time.monotonic() < deadline
            time.sleep(0.3)
    receiver.stop()


@pytest.mark.parametrize("entry, problem", [
    ({"Url": "ftp://example/x"}, "Url must be an http:// or https:// URL"),
    ({"Url": "http://example/x", "Events": ["Stored"]}, "Events must be a non-empty list"),
    ({"Url": "http://example/x", "Secret": 3}, "Secret must be a non-empty string"),
    ({"Url": "http://example/x", "Retries": 3}, "unknown key(s) Retries"),
])
def test_a_bad_webhook_entry_is_one_clear_configuration_error(entry, problem):
    with pytest.raises(ValueError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        Settings.from_document({"Pharos": {"Webhooks": [entry]}})


def test_pharos_import_queues_events_that_the_running_server_delivers(tmp_path):
    receiver = Receiver(free_port())
    receiver.start()
    source = tmp_path / "source"
    source.mkdir()
    for n in range(2):
        (source / f"{n}.dcm").write_bytes(make_dicom(patient_id="IMPHOOK", instance_number=n))
    storage = tmp_path / "data"
    with pinned_database(tmp_path) as pinned:
        document = {**pinned, "StorageDirectory": str(storage)}
        document["Pharos"] = {**document.get("Pharos", {}),
                              "BlobstoreUrl": blobstore_url_for_tests(storage),
                              "Webhooks": [{"Url": f"http://127.0.0.1:{receiver.port}/",
                                            "Events": ["InstanceStored"]}]}
        config = tmp_path / "import.json"
        config.write_bytes(orjson.dumps(document))
        with live_server(tmp_path / "server", document) as live:
            done = subprocess.run([sys.executable, "-m", "app.cli", "import", "--config",
                                   str(config), str(source)], cwd=REPO, capture_output=True,
                                  text=True, timeout=300)
            assert done.returncode == 0, done.stderr
            events = receiver.wait_for(lambda found: len(distinct(found, "InstanceStored")) == 2)
            with live.client() as http:
                assert distinct(events, "InstanceStored") == set(http.get("/instances").json())
                # The import's ingests count in the archive's metrics too.
                assert metric(http, "pharos_ingest_total", origin="Unknown",
                              status="Success") == 2
    receiver.stop()


def test_several_processes_deliver_each_event_once_in_order(tmp_path):
    """Two HTTP processes store and both run a deliverer: the lease lets one send at a
    time, so each event arrives once (no crash here to cause a redelivery), in order."""
    receiver = Receiver(free_port())
    receiver.start()
    config = {"Pharos": {"HttpWorkers": 2, "Webhooks": [{
        "Url": f"http://127.0.0.1:{receiver.port}/", "Events": ["InstanceStored"]}]}}
    with live_server(tmp_path, config) as live:
        stored = []
        for number in range(12):
            with live.client() as http:  # new connections: spread over the processes
                stored.append(http.post("/instances", content=make_dicom(
                    patient_id="TWO", instance_number=number)).json()["ID"])
        events = receiver.wait_for(lambda found: len(distinct(found, "InstanceStored")) == 12)
    receiver.stop()
    assert len(events) == 12  # no event sent twice
    assert [e["ID"] for e in events] == stored  # in the order they were stored


def test_job_events(tmp_path):
    receiver = Receiver(free_port())
    receiver.start()
    config = {"Pharos": {"Webhooks": [{"Url": f"http://127.0.0.1:{receiver.port}/jobs",
                                       "Events": ["JobSuccess", "JobFailure"]}]}}
    with live_server(tmp_path, config) as live, live.client() as http:
        study = http.post("/instances", content=make_dicom(patient_id="JOB")).json()
        job = http.post(f"/studies/{study['ParentStudy']}/archive",
                        json={"Asynchronous": True}).json()["ID"]
        events = receiver.wait_for(lambda found: distinct(found, "JobSuccess"))
        assert distinct(events, "JobSuccess") == {job}
        success = next(e for e in events if e["Event"] == "JobSuccess")
        assert success["ResourceType"] == "Job" and success["Path"] == f"/jobs/{job}"
        assert http.get(f"/jobs/{job}").json()["State"] == "Success"
        assert not [e for e in events if e["Event"] != "JobSuccess"]  # no InstanceStored
        assert "x-pharos-signature-256" not in receiver.received[0][0]  # no Secret: unsigned
    receiver.stop()
