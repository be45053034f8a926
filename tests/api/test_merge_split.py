"""Study merge and split, bulk modify and bulk anonymize on a live Pharos: tags and hierarchy
of the stored results, UID consistency, KeepSource, asynchronous jobs, bad input refused
with nothing stored."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from tests.helpers import LiveServer, live_server, make_dicom


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("pharos-merge-split")) as live:
        yield live


def _study(client: httpx.Client, patient_id: str, series_count: int = 2, per_series: int = 2,
           **tags: Any) -> dict[str, Any]:
    """Upload a study; answer its ID, its patient, its series and instance IDs."""
    study_uid = generate_uid()
    answers = []
    for _ in range(series_count):
        series_uid = generate_uid()
        for number in range(1, per_series + 1):
            data = make_dicom(patient_id=patient_id, study_uid=study_uid, series_uid=series_uid,
                              instance_number=number, **tags)
            answer = client.post("/instances", content=data)
            assert answer.status_code == 200, answer.text
            answers.append(answer.json())
    series: dict[str, list[str]] = {}
    for answer in answers:
        series.setdefault(answer["ParentSeries"], []).append(answer["ID"])
    return {"ID": answers[0]["ParentStudy"], "Patient": answers[0]["ParentPatient"],
            "Series": list(series), "Instances": series}


def _datasets(client: httpx.Client, level: str, public_id: str) -> list[Dataset]:
    return [pydicom.dcmread(io.BytesIO(client.get(f"/instances/{i['ID']}/file").content))
            for i in client.get(f"/{level}/{public_id}/instances").json()]


def _exists(client: httpx.Client, level: str, public_id: str) -> bool:
    return client.get(f"/{level}/{public_id}").status_code == 200


def _instance_count(client: httpx.Client) -> int:
    return int(client.get("/statistics").json()["CountInstances"])


def _wait_job(client: httpx.Client, job_id: str) -> dict[str, Any]:
    for _ in range(600):
        job = client.get(f"/jobs/{job_id}").json()
        if job["State"] in ("Success", "Failure"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish")


# --- merge --------------------------------------------------------------------------------------

def test_merge_series_takes_target_patient_and_study_tags(server: LiveServer) -> None:
    with server.client() as client:
        target = _study(client, "MERGE-T", PatientName="TARGET^PAT", StudyDescription="target",
                        AccessionNumber="ACC-T", InstitutionName="HOSP T")
        source = _study(client, "MERGE-S", PatientName="SOURCE^PAT", StudyDescription="source",
                        AccessionNumber="ACC-S", OtherPatientIDs="OTHER-S",
                        InstitutionName="HOSP S", PatientAge="042Y")
        moved = source["Series"][0]
        answer = client.post(f"/studies/{target['ID']}/merge", json={"Resources": [moved]})
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"Description": "REST API", "FailedInstancesCount": 0,
                                 "InstancesCount": 2, "TargetStudy": target["ID"]}
        study = client.get(f"/studies/{target['ID']}").json()
        assert len(study["Series"]) == 3
        new_series = [s for s in study["Series"] if s not in target["Series"]]
        assert len(new_series) == 1
        merged = _datasets(client, "series", new_series[0])
        assert len(merged) == 2
        reference = _datasets(client, "series", target["Series"][0])[0]
        for ds in merged:
            # Patient and General Study modules come from the target...
            for keyword in ("PatientID", "PatientName", "StudyInstanceUID", "StudyDescription",
                            "AccessionNumber", "StudyDate", "PatientBirthDate"):
                assert ds[keyword].value == reference[keyword].value, keyword
            # ...module tags the target lacks are removed, other tags are kept as they were.
            assert "OtherPatientIDs" not in ds
            assert ds.InstitutionName == "HOSP S" and ds.PatientAge == "042Y"
        assert len({ds.SeriesInstanceUID for ds in merged}) == 1
        assert merged[0].SeriesInstanceUID != reference.SeriesInstanceUID
        # The moved series left its study (KeepSource defaults to false)
        assert not _exists(client, "series", moved)
        assert _exists(client, "studies", source["ID"])
        job = [j for j in client.get("/jobs?expand").json() if j["Type"] == "MergeStudy"][-1]
        assert job["State"] == "Success" and job["Content"] == answer.json()


def test_merge_study_and_instance_keep_source(server: LiveServer) -> None:
    with server.client() as client:
        target = _study(client, "MERGE-T2", series_count=1)
        source = _study(client, "MERGE-S2", series_count=2, per_series=2)
        other = _study(client, "MERGE-S3", series_count=1, per_series=3)
        lone = other["Instances"][other["Series"][0]][1]
        before = _instance_count(client)
        answer = client.post(f"/studies/{target['ID']}/merge", json={
            "Resources": [source["ID"], source["Series"][0], lone], "KeepSource": True})
        assert answer.status_code == 200, answer.text
        assert answer.json()["InstancesCount"] == 5  # a resource named twice moves once
        assert _instance_count(client) == before + 5
        series = client.get(f"/studies/{target['ID']}/series").json()
        sizes = sorted(len(s["Instances"]) for s in series)
        assert sizes == [1, 2, 2, 2]  # one new series per source series
        for level, public_id in (("studies", source["ID"]), ("instances", lone)):
            assert _exists(client, level, public_id)
        uids = [ds.SOPInstanceUID for ds in _datasets(client, "studies", target["ID"])]
        assert len(set(uids)) == len(uids) == 7
        patient = client.get(f"/patients/{target['Patient']}").json()
        assert patient["Studies"] == [target["ID"]]


def test_merge_asynchronous(server: LiveServer) -> None:
    with server.client() as client:
        target = _study(client, "MERGE-T3", series_count=1)
        source = _study(client, "MERGE-S4", series_count=1)
        answer = client.post(f"/studies/{target['ID']}/merge",
                             json={"Resources": [source["ID"]], "Asynchronous": True,
                                   "Priority": 3})
        assert answer.status_code == 200
        assert set(answer.json()) == {"ID", "Path"}
        job = _wait_job(client, answer.json()["ID"])
        assert job["State"] == "Success" and job["Type"] == "MergeStudy"
        assert job["Priority"] == 3
        assert job["Content"]["TargetStudy"] == target["ID"]
        assert not _exists(client, "studies", source["ID"])
        assert not _exists(client, "patients", source["Patient"])


# --- split --------------------------------------------------------------------------------------

def test_split_series_and_instance_into_one_new_study(server: LiveServer) -> None:
    with server.client() as client:
        study = _study(client, "SPLIT-1", series_count=3, per_series=2,
                       StudyDescription="before", AccessionNumber="ACC-SPLIT")
        whole, partial, untouched = study["Series"]
        single = study["Instances"][partial][0]
        answer = client.post(f"/studies/{study['ID']}/split", json={
            "Series": [whole], "Instances": [single],
            "Replace": {"StudyDescription": "after", "PatientName": "SPLIT^NAME"},
            "Remove": ["AccessionNumber"]})
        assert answer.status_code == 200, answer.text
        content = answer.json()
        assert set(content) == {"Description", "FailedInstancesCount", "InstancesCount",
                                "TargetStudy", "TargetStudyUID"}
        assert content["InstancesCount"] == 3 and content["FailedInstancesCount"] == 0
        new_study = client.get(f"/studies/{content['TargetStudy']}").json()
        assert new_study["MainDicomTags"]["StudyInstanceUID"] == content["TargetStudyUID"]
        assert new_study["MainDicomTags"]["StudyDescription"] == "after"
        assert "AccessionNumber" not in new_study["MainDicomTags"]
        assert new_study["ParentPatient"] == study["Patient"]  # PatientID unchanged
        sizes = sorted(len(client.get(f"/series/{s}").json()["Instances"])
                       for s in new_study["Series"])
        assert sizes == [1, 2]  # one new series per source series
        for ds in _datasets(client, "studies", content["TargetStudy"]):
            assert ds.PatientName == "SPLIT^NAME" and "AccessionNumber" not in ds
            assert ds.StudyInstanceUID == content["TargetStudyUID"]
        # Sources are gone from the source study, the rest stays
        source = client.get(f"/studies/{study['ID']}").json()
        assert sorted(source["Series"]) == sorted([partial, untouched])
        assert not _exists(client, "instances", single)
        assert source["MainDicomTags"]["StudyDescription"] == "before"


def test_split_keep_source_and_asynchronous(server: LiveServer) -> None:
    with server.client() as client:
        study = _study(client, "SPLIT-2", series_count=2)
        before = _instance_count(client)
        answer = client.post(f"/studies/{study['ID']}/split", json={
            "Series": study["Series"], "KeepSource": True, "Asynchronous": True})
        job = _wait_job(client, answer.json()["ID"])
        assert job["State"] == "Success" and job["Type"] == "SplitStudy"
        assert job["Content"]["InstancesCount"] == 4
        assert _instance_count(client) == before + 4
        assert len(client.get(f"/studies/{study['ID']}").json()["Series"]) == 2
        assert len(client.get(f"/studies/{job['Content']['TargetStudy']}").json()["Series"]) == 2


# --- bulk ---------------------------------------------------------------------------------------

def test_bulk_modify_mixed_levels(server: LiveServer) -> None:
    with server.client() as client:
        first = _study(client, "BULK-1", series_count=2)
        second = _study(client, "BULK-2", series_count=1)
        lone = first["Instances"][first["Series"][1]][0]
        answer = client.post("/tools/bulk-modify", json={
            "Resources": [second["ID"], lone, first["Series"][0]],
            "Replace": {"SeriesDescription": "BULK"}, "Level": "Series"})
        assert answer.status_code == 200, answer.text
        content = answer.json()
        assert set(content) == {"Description", "FailedInstancesCount", "InstancesCount",
                                "IsAnonymization", "Resources"}
        assert content["InstancesCount"] == 5 and content["IsAnonymization"] is False
        kinds = [r["Type"] for r in content["Resources"]]
        assert kinds == ["Instance"] * 5 + ["Series"] * 3 + ["Study"] * 2 + ["Patient"] * 2
        for resource in content["Resources"]:
            assert resource["Path"] == f"/{_plural(resource['Type'])}/{resource['ID']}"
        by_type: dict[str, list[str]] = {}
        for resource in content["Resources"]:
            by_type.setdefault(resource["Type"], []).append(resource["ID"])
        # Series level: new series (one per source series), same studies and patients
        assert sorted(by_type["Study"]) == sorted([first["ID"], second["ID"]])
        for series_id in by_type["Series"]:
            assert series_id not in first["Series"] + second["Series"]
            meta = client.get(f"/series/{series_id}/metadata/ModifiedFrom")
            assert meta.status_code == 200
            tags = client.get(f"/series/{series_id}").json()["MainDicomTags"]
            assert tags["SeriesDescription"] == "BULK"
        assert _exists(client, "instances", lone)  # KeepSource defaults to true


def test_bulk_modify_keep_source_false_and_transcode(server: LiveServer) -> None:
    with server.client() as client:
        study = _study(client, "BULK-3", series_count=1)
        answer = client.post("/tools/bulk-modify", json={
            "Resources": [study["ID"]], "Replace": {"InstitutionName": "X"},
            "KeepSource": False, "Transcode": "1.2.840.10008.1.2"})
        assert answer.status_code == 200, answer.text
        content = answer.json()
        assert content["Transcode"] == "1.2.840.10008.1.2"
        instances = [r["ID"] for r in content["Resources"] if r["Type"] == "Instance"]
        for instance in instances:
            meta = client.get(f"/instances/{instance}/metadata/TransferSyntax").text
            assert meta == "1.2.840.10008.1.2"
        for source in study["Instances"][study["Series"][0]]:
            assert not _exists(client, "instances", source)
        # Instance level: same series, new instances only
        assert [r["ID"] for r in content["Resources"] if r["Type"] == "Series"] == \
            study["Series"]


def test_bulk_anonymize_leaves_no_identity(server: LiveServer) -> None:
    with server.client() as client:
        first = _study(client, "SECRET-ID-1", PatientName="SECRET^ONE", series_count=2)
        second = _study(client, "SECRET-ID-2", PatientName="SECRET^TWO", series_count=1)
        answer = client.post("/tools/bulk-anonymize",
                             json={"Resources": [first["Patient"], second["Series"][0]]})
        assert answer.status_code == 200, answer.text
        content = answer.json()
        assert content["IsAnonymization"] is True and content["InstancesCount"] == 6
        studies = [r["ID"] for r in content["Resources"] if r["Type"] == "Study"]
        assert len(studies) == 2
        names = set()
        for study in studies:
            meta = client.get(f"/studies/{study}/metadata/AnonymizedFrom")
            assert meta.text in (first["ID"], second["ID"])
            for ds in _datasets(client, "studies", study):
                raw = ds.to_json()
                assert "SECRET" not in raw
                names.add(str(ds.PatientName))
        assert len(names) == 1 and next(iter(names)).startswith("Anonymized")
        assert len(content["Resources"]) == 6 + 3 + 2 + 2


def _plural(level: str) -> str:
    return {"Patient": "patients", "Study": "studies", "Series": "series",
            "Instance": "instances"}[level]


# --- bad input ----------------------------------------------------------------------------------

BAD: list[tuple[str, Any, int]] = [
    ("merge", {}, 400),
    ("merge", {"Resources": "x"}, 400),
    ("merge", {"Resources": ["no-such-id"]}, 404),
    ("merge", {"Resources": ["<target>"]}, 404),
    ("merge", {"Resources": ["<target-series>"]}, 404),
    ("merge", {"Resources": ["<other-patient>"]}, 404),
    ("merge", {"Resources": ["<other-study>"], "KeepSource": "no"}, 400),
    ("merge", {"Resources": ["<other-study>"], "Asynchronous": "yes"}, 400),
    ("merge", [1, 2], 400),
    ("split", {}, 400),
    ("split", {"Series": [], "Instances": []}, 400),
    ("split", {"Series": "x"}, 400),
    ("split", {"Series": ["<other-series>"]}, 404),
    ("split", {"Instances": ["no-such-id"]}, 404),
    ("split", {"Series": ["<target-series>"], "Replace": {"InstitutionName": "X"}}, 400),
    ("split", {"Series": ["<target-series>"], "Replace": {"StudyInstanceUID": "1.2"}}, 400),
    ("split", {"Series": ["<target-series>"], "Replace": {"PatientName": 3}}, 400),
    ("split", {"Series": ["<target-series>"], "Remove": ["NoSuchTag"]}, 400),
    ("split", {"Series": ["<target-series>"], "Remove": "PatientName"}, 400),
    ("split", {"Series": ["<target-series>"], "KeepSource": 1}, 400),
    ("bulk-modify", {"Replace": {"InstitutionName": "X"}}, 400),
    ("bulk-modify", {"Resources": ["no-such-id"], "Replace": {"InstitutionName": "X"}}, 404),
    ("bulk-modify", {"Resources": ["<other-study>"], "Level": "Nope"}, 400),
    ("bulk-modify", {"Resources": ["<other-study>"], "Level": 3}, 400),
    ("bulk-modify", {"Resources": ["<other-study>"], "Level": "Patient",
                     "Replace": {"InstitutionName": "X"}}, 400),
    ("bulk-modify", {"Resources": ["<other-study>"], "Replace": {"PatientID": "X"}}, 400),
    ("bulk-modify", {"Resources": ["<other-study>"], "Transcode": "1.2.3.4"}, 400),
    ("bulk-anonymize", {"Resources": ["<other-study>"], "DicomVersion": "1999"}, 400),
    ("bulk-anonymize", {"Resources": "x"}, 400),
    ("bulk-anonymize", "not an object", 400),
]


@pytest.mark.parametrize("route,body,status", BAD)
def test_bad_requests_are_refused_and_store_nothing(server: LiveServer, route: str, body: Any,
                                                    status: int) -> None:
    with server.client() as client:
        target = _study(client, "BAD-T", series_count=1, per_series=1)
        other = _study(client, "BAD-O", series_count=1, per_series=1)
        values = {"<target>": target["ID"], "<target-series>": target["Series"][0],
                  "<other-study>": other["ID"], "<other-series>": other["Series"][0],
                  "<other-patient>": other["Patient"]}

        def fill(value: Any) -> Any:
            if isinstance(value, str):
                return values.get(value, value)
            if isinstance(value, list):
                return [fill(v) for v in value]
            if isinstance(value, dict):
                return {k: fill(v) for k, v in value.items()}
            return value

        url = f"/studies/{target['ID']}/{route}" if route in ("merge", "split") \
            else f"/tools/{route}"
        before = _instance_count(client)
        jobs_before = len(client.get("/jobs").json())
        answer = client.post(url, json=fill(body))
        assert answer.status_code == status, answer.text
        error = answer.json()
        assert error["HttpStatus"] == status and error["Uri"] == url
        assert _instance_count(client) == before
        assert len(client.get("/jobs").json()) == jobs_before


def test_unknown_target_study(server: LiveServer) -> None:
    with server.client() as client:
        other = _study(client, "BAD-U", series_count=1, per_series=1)
        for route in ("merge", "split"):
            answer = client.post(f"/studies/{other['Series'][0]}/{route}",
                                 json={"Resources": [other["ID"]], "Series": other["Series"]})
            assert answer.status_code == 404


def test_paused_and_resumed_split_never_duplicates(server: LiveServer) -> None:
    """A job restarted from its payload (pause, resume) rebuilds the same instances: the new
    UIDs are drawn at submission, so a second run finds them AlreadyStored. Whether the pause
    lands before, during or after the run, the outcome is the same."""
    with server.client() as client:
        study = _study(client, "SPLIT-PAUSE", series_count=2, per_series=12)
        answer = client.post(f"/studies/{study['ID']}/split",
                             json={"Series": study["Series"], "Asynchronous": True})
        job_id = answer.json()["ID"]
        assert client.post(f"/jobs/{job_id}/pause", json={}).status_code == 200
        for _ in range(600):
            state = client.get(f"/jobs/{job_id}").json()["State"]
            if state in ("Paused", "Success"):
                break
            time.sleep(0.05)
        client.post(f"/jobs/{job_id}/resume", json={})
        job = _wait_job(client, job_id)
        assert job["State"] == "Success", job
        target = job["Content"]["TargetStudy"]
        datasets = _datasets(client, "studies", target)
        assert len(datasets) == 24
        assert len({d.SOPInstanceUID for d in datasets}) == 24
        assert _hierarchy_sizes(client, target) == [12, 12]
        assert not _exists(client, "studies", study["ID"])


def _hierarchy_sizes(client: httpx.Client, study_id: str) -> list[int]:
    return sorted(len(s["Instances"]) for s in client.get(f"/studies/{study_id}/series").json())
