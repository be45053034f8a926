"""kill -9 during ingest loses nothing acknowledged, and leaves nothing half stored.

Clients keep storing instances through REST (one per request) and STOW-RS (several per
request) while the server is killed with SIGKILL, without warning. A new server on the
same index and store must then hold every instance that was acknowledged (200), with
the exact bytes sent; and every instance it lists must have its file (no index row
without its blob). An instance in flight at the kill may be there or not: it was never
acknowledged.
"""

from __future__ import annotations

import hashlib
import secrets
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest
from pydicom.uid import generate_uid

from tests.helpers import live_server, make_dicom, pinned_database


def _rest_client(url: str, tag: str, acknowledged: dict[str, str], stop: threading.Event) -> None:
    study, series = generate_uid(), generate_uid()
    with httpx.Client(base_url=url, timeout=30) as http:
        number = 0
        while not stop.is_set():
            number += 1
            data = make_dicom(patient_id=f"KILL-{tag}", study_uid=study,
                              series_uid=None if number % 7 == 0 else series,
                              instance_number=number, size=16)
            try:
                answer = http.post("/instances", content=data)
            except httpx.HTTPError:
                return  # the server is gone: this one was never acknowledged
            if answer.status_code == 200:
                acknowledged[answer.json()["ID"]] = hashlib.md5(data).hexdigest()


def _stow_client(url: str, acknowledged: dict[str, str], stop: threading.Event) -> None:
    study, series = generate_uid(), generate_uid()
    with httpx.Client(base_url=url, timeout=30) as http:
        number = 0
        while not stop.is_set():
            files = []
            for _ in range(5):
                number += 1
                files.append(make_dicom(patient_id="KILL-STOW", study_uid=study,
                                        series_uid=series, instance_number=number,
                                        size=16))
            boundary = secrets.token_hex(8)
            body = b"".join(f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n"
                            .encode() + f + b"\r\n" for f in files) + f"--{boundary}--\r\n".encode()
            try:
                answer = http.post("/dicom-web/studies", content=body, headers={
                    "Content-Type": f"multipart/related; type=application/dicom; "
                                    f"boundary={boundary}",
                    "Accept": "application/dicom+json"})
            except httpx.HTTPError:
                return
            if answer.status_code != 200:
                continue
            stored = {item["00081155"]["Value"][0]
                      for item in answer.json()["00081199"]["Value"]}
            for data in files:
                sop = _sop_uid(data)
                if sop in stored:
                    acknowledged[_instance_id(sop, study, series)] = hashlib.md5(data).hexdigest()


def _sop_uid(data: bytes) -> str:
    import io

    import pydicom
    return str(pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True).SOPInstanceUID)


def _instance_id(sop: str, study: str, series: str) -> str:
    from app.dicom.identifiers import ResourceIds
    return ResourceIds.compute("KILL-STOW", study, series, sop).instance


@pytest.mark.parametrize("workers", [1, 2])
def test_kill_9_during_ingest_loses_nothing_acknowledged(tmp_path: Path, workers: int) -> None:
    acknowledged: dict[str, str] = {}
    stop = threading.Event()
    with pinned_database(tmp_path) as pinned:
        config = {**pinned, "Pharos": {**pinned.get("Pharos", {}), "HttpWorkers": workers}}
        with live_server(tmp_path, config) as server:
            threads = [threading.Thread(target=_rest_client, args=(server.url, str(i),
                                                                   acknowledged, stop))
                       for i in range(3)]
            threads.append(threading.Thread(target=_stow_client,
                                            args=(server.url, acknowledged, stop)))
            for thread in threads:
                thread.start()
            deadline = time.monotonic() + 60
            while len(acknowledged) < 60 and time.monotonic() < deadline:
                time.sleep(0.05)
            # SIGKILL the whole server (its worker processes too), mid-ingest.
            _kill_tree(server.process.pid)
            stop.set()
            for thread in threads:
                thread.join(timeout=30)
            server.process.wait(timeout=10)
        assert len(acknowledged) >= 60, "the clients did not get going"
        with live_server(tmp_path, config) as restarted, restarted.client() as http:
            missing = [i for i in acknowledged if http.get(f"/instances/{i}").status_code != 200]
            assert missing == [], f"{len(missing)} acknowledged instances lost"
            for instance, md5 in acknowledged.items():
                data = http.get(f"/instances/{instance}/file").content
                assert hashlib.md5(data).hexdigest() == md5, instance
            listed = http.get("/instances").json()
            assert http.get("/statistics").json()["CountInstances"] == len(listed)
            for instance in listed:  # nothing half stored: every row has its file
                assert http.get(f"/instances/{instance}/file").status_code == 200, instance


def _kill_tree(pid: int) -> None:
    """SIGKILL *pid* and its descendants at once (children first listed, all killed)."""
    import os
    todo, found = [pid], []
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                todo += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                pass
    for process in found:
        try:
            os.kill(process, signal.SIGKILL)
        except ProcessLookupError:
            pass
