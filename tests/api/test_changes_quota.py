"""Changes (New*, Stable* after StableAge), storage quotas (recycle or reject)."""

from __future__ import annotations

import time

from pydicom.uid import generate_uid

from tests.helpers import live_server, make_dicom


def _wait_for(predicate, seconds: float = 20.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("condition not reached in time")


def test_changes_log_new_then_stable(fresh_server):
    with fresh_server.client() as http:
        stored = http.post("/instances", content=make_dicom(patient_id="P-CH")).json()
        changes = http.get("/changes").json()
        assert [c["ChangeType"] for c in changes["Changes"]] == [
            "NewInstance", "NewSeries", "NewStudy", "NewPatient"]
        assert changes["Done"] is True and changes["Last"] == changes["Changes"][-1]["Seq"]
        assert changes["Changes"][0]["Path"] == f"/instances/{stored['ID']}"
        last = changes["Last"]
        # StableAge is 2 s in the test configuration.
        stable = _wait_for(lambda: [c["ChangeType"] for c in
                                    http.get(f"/changes?since={last}").json()["Changes"]]
                           if len(http.get(f"/changes?since={last}").json()["Changes"]) == 3
                           else None)
        assert sorted(stable) == ["StablePatient", "StableSeries", "StableStudy"]
        assert http.get(f"/series/{stored['ParentSeries']}").json()["IsStable"] is True
        page = http.get("/changes?limit=2").json()
        assert len(page["Changes"]) == 2 and page["Done"] is False
        assert http.get("/changes?last").json()["Changes"][0]["Seq"] == \
            http.get("/changes").json()["Last"]
        assert http.delete("/changes").status_code == 200
        assert http.get("/changes").json()["Changes"] == []


def test_patient_count_quota_recycles_oldest_unprotected(tmp_path):
    with live_server(tmp_path, {"MaximumPatientCount": 2}) as live, live.client() as http:
        first = http.post("/instances", content=make_dicom(patient_id="Q1")).json()
        time.sleep(0.01)
        second = http.post("/instances", content=make_dicom(patient_id="Q2")).json()
        third = http.post("/instances", content=make_dicom(patient_id="Q3")).json()
        assert third["Status"] == "Success"
        patients = set(http.get("/patients").json())
        assert patients == {second["ParentPatient"], third["ParentPatient"]}
        assert first["ParentPatient"] not in patients


def test_storage_quota_in_reject_mode_refuses(tmp_path):
    config = {"MaximumStorageSize": 1, "MaximumStorageMode": "Reject"}
    with live_server(tmp_path, config) as live, live.client() as http:
        study = generate_uid()
        stored = 0
        status = 200
        while status == 200 and stored < 20:
            answer = http.post("/instances", content=make_dicom(study_uid=study, size=256))
            status = answer.status_code
            stored += status == 200
        assert status == 507, answer.text  # Orthanc's "The file storage is full"
        assert answer.json()["OrthancStatus"] == 19
        assert 0 < stored < 20
        assert http.get("/statistics").json()["CountInstances"] == stored
