"""Several HTTP worker processes sharing one index and one store."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from pydicom.uid import generate_uid

from tests.helpers import live_server, make_dicom


def test_two_workers_ingest_concurrently_without_duplicates(tmp_path):
    study, series = generate_uid(), generate_uid()
    files = [make_dicom(patient_id="MP", study_uid=study, series_uid=series, instance_number=i)
             for i in range(40)]
    with live_server(tmp_path, {"Pharos": {"HttpWorkers": 2}}) as live:
        def upload(chunk: list[bytes]) -> list[int]:
            with live.client() as http:
                return [http.post("/instances", content=data).status_code for data in chunk]

        with ThreadPoolExecutor(4) as pool:
            statuses = [s for part in pool.map(upload, [files[i::4] for i in range(4)])
                        for s in part]
        assert statuses == [200] * 40
        with live.client() as http:
            assert http.get("/statistics").json()["CountInstances"] == 40
            changes = http.get("/changes?limit=1000").json()["Changes"]
            kinds = [c["ChangeType"] for c in changes]
            assert kinds.count("NewInstance") == 40
            assert kinds.count("NewSeries") == kinds.count("NewStudy") == \
                kinds.count("NewPatient") == 1
            # Exactly one process runs the stability monitor: one StableSeries change.
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                kinds = [c["ChangeType"] for c in http.get("/changes?limit=1000").json()["Changes"]]
                if "StablePatient" in kinds:
                    break
                time.sleep(0.3)
            time.sleep(1.5)
            kinds = [c["ChangeType"] for c in http.get("/changes?limit=1000").json()["Changes"]]
            assert kinds.count("StableSeries") == kinds.count("StablePatient") == 1
