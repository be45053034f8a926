"""``GET /changes/stream``: the change log as Server-Sent Events, read by a real client
while instances are stored; resuming with Last-Event-ID; the stream ends when the server
stops."""

from __future__ import annotations

import queue
import signal
import threading

import httpx
import orjson
from pydicom.uid import generate_uid

from tests.helpers import live_server, make_dicom


def read_events(url: str, into: queue.Queue, headers: dict | None = None) -> None:
    """Parse the SSE stream at *url* into (id, data) tuples; ("open", None) once the
    server has answered; ("end", None) when the stream ends."""
    try:
        with httpx.stream("GET", url, headers=headers or {}, timeout=60) as answer:
            assert answer.status_code == 200, answer.read()
            assert answer.headers["content-type"].startswith("text/event-stream")
            into.put(("open", None))
            event: dict[str, str] = {}
            for line in answer.iter_lines():
                if not line:
                    if "data" in event:
                        into.put((int(event["id"]), orjson.loads(event["data"])))
                    event = {}
                elif not line.startswith(":"):
                    name, _, value = line.partition(":")
                    event[name] = value.removeprefix(" ")
    except httpx.HTTPError as error:
        into.put(("error", repr(error)))
    into.put(("end", None))


def start_reader(url: str, headers: dict | None = None) -> queue.Queue:
    events: queue.Queue = queue.Queue()
    threading.Thread(target=read_events, args=(url, events, headers), daemon=True).start()
    assert events.get(timeout=60) == ("open", None)
    return events


def take(events: queue.Queue, count: int) -> list[tuple[int, dict]]:
    return [events.get(timeout=30) for _ in range(count)]


def take_until(events: queue.Queue, done) -> list[tuple[int, dict]]:
    got: list[tuple[int, dict]] = []
    while not done(got):
        got.append(events.get(timeout=30))
    return got


def test_a_client_reads_changes_live_and_resumes(tmp_path):
    study, series = generate_uid(), generate_uid()
    with live_server(tmp_path) as live, live.client() as http:
        assert http.post("/instances", content=make_dicom(
            patient_id="OLD", instance_number=99)).status_code == 200
        # Default: only the changes to come (the one stored above is not sent).
        events = start_reader(f"{live.url}/changes/stream?type=NewInstance")
        stored = [http.post("/instances", content=make_dicom(
            patient_id="LIVE", study_uid=study, series_uid=series, instance_number=n)).json()
            for n in range(3)]
        received = take(events, 3)
        assert [data["ID"] for _, data in received] == [s["ID"] for s in stored]
        assert all(data["ChangeType"] == "NewInstance" and data["Seq"] == seq
                   and data["Path"] == f"/instances/{data['ID']}" for seq, data in received)
        assert received[0][0] < received[1][0] < received[2][0]

        # From a sequence number (and two types): the past first, then live.
        everything = start_reader(f"{live.url}/changes/stream?since={received[0][0]}"
                                  "&type=NewInstance;NewSeries")
        replayed = take_until(everything, lambda got: sum(
            d["ChangeType"] == "NewInstance" for _, d in got) == 2)
        assert [d["ID"] for _, d in replayed if d["ChangeType"] == "NewInstance"] == \
            [s["ID"] for s in stored[1:]]
        assert all(seq > received[0][0] for seq, _ in replayed)
        other = http.post("/instances", content=make_dicom(patient_id="LIVE",
                                                           study_uid=study)).json()
        live_events = take_until(everything, lambda got: any(
            d["ChangeType"] == "NewInstance" for _, d in got) and any(
            d["ChangeType"] == "NewSeries" and d["ID"] == other["ParentSeries"] for _, d in got))
        assert [d["ID"] for _, d in live_events if d["ChangeType"] == "NewInstance"] == \
            [other["ID"]]

        # A reconnecting EventSource sends Last-Event-ID: it wins over ?since.
        resumed = start_reader(f"{live.url}/changes/stream?since=0&type=NewInstance",
                               headers={"Last-Event-ID": str(received[1][0])})
        assert [data["ID"] for _, data in take(resumed, 2)] == [stored[2]["ID"], other["ID"]]
        assert httpx.get(f"{live.url}/changes/stream",
                         headers={"Last-Event-ID": "abc"}).status_code == 400
        assert httpx.get(f"{live.url}/changes/stream?type=Nonsense").status_code == 400

        # Stopping the server ends the open streams, so its graceful shutdown (which
        # waits for every answer to complete) ends: it exits of the SIGTERM it was sent
        # (uvicorn re-raises it after shutting down), not of a SIGKILL after a timeout.
        live.process.terminate()
        assert live.process.wait(timeout=30) in (0, -signal.SIGTERM)
        for stream in (events, everything, resumed):
            leftovers = []
            while (item := stream.get(timeout=30))[0] != "end":
                leftovers.append(item)
            assert all(kind != "error" for kind, _ in leftovers), leftovers
