"""Orthanc's tag formats (1.9.4+) on every route that answers tags: ``?short``/``?full`` on
resources, ``instances-tags``, ``module``, ``?ignore-length`` and ``/tools/bulk-content``."""

from __future__ import annotations

import pytest

from tests.helpers import LiveServer, make_dicom

LONG = "Lorem ipsum " * 30  # more than 256 bytes: "TooLong" unless ignore-length


@pytest.fixture(scope="module")
def uploaded(server: LiveServer) -> dict[str, str]:
    with server.client() as client:
        answer = client.post("/instances", content=make_dicom(
            patient_id="FMT1", patient_name="FORMAT^ONE", SoftwareVersions=LONG,
            InstitutionName="HOSP")).json()
    return {"instance": answer["ID"], "series": answer["ParentSeries"],
            "study": answer["ParentStudy"], "patient": answer["ParentPatient"]}


def test_resources_short_and_full(server: LiveServer, uploaded: dict[str, str]) -> None:
    with server.client() as client:
        patient = uploaded["patient"]
        assert client.get(f"/patients/{patient}").json()["MainDicomTags"]["PatientID"] == "FMT1"
        assert client.get(f"/patients/{patient}?short").json()["MainDicomTags"]["0010,0020"] == "FMT1"
        full = client.get(f"/patients/{patient}?full").json()["MainDicomTags"]["0010,0010"]
        assert full == {"Name": "PatientName", "Type": "String", "Value": "FORMAT^ONE"}
        study = client.get(f"/studies/{uploaded['study']}?short").json()
        assert study["PatientMainDicomTags"]["0010,0020"] == "FMT1"
        listed = client.get("/studies?expand&short").json()
        assert any(s["MainDicomTags"].get("0008,1030") == "Test study" for s in listed)
        child = client.get(f"/patients/{patient}/instances?full").json()[0]
        assert child["MainDicomTags"]["0020,0013"]["Name"] == "InstanceNumber"
        parent = client.get(f"/instances/{uploaded['instance']}/series?short").json()
        assert parent["MainDicomTags"]["0008,0060"] == "CT"


def test_instances_tags_and_modules(server: LiveServer, uploaded: dict[str, str]) -> None:
    with server.client() as client:
        instance = uploaded["instance"]
        for level, key in (("patients", "patient"), ("studies", "study"), ("series", "series")):
            tags = client.get(f"/{level}/{uploaded[key]}/instances-tags?short").json()
            assert tags[instance]["0010,0020"] == "FMT1"
        full = client.get(f"/series/{uploaded['series']}/instances-tags").json()
        assert full[instance]["0010,0010"]["Name"] == "PatientName"
        module = client.get(f"/patients/{uploaded['patient']}/module").json()
        assert set(module) == {"0010,0010", "0010,0020", "0010,0030", "0010,0040"}
        assert client.get(f"/studies/{uploaded['study']}/module-patient?simplify").json()[
            "PatientID"] == "FMT1"
        assert client.get(f"/studies/{uploaded['study']}/module?short").json()[
            "0008,1030"] == "Test study"
        series = client.get(f"/series/{uploaded['series']}/module?simplify").json()
        assert series["Modality"] == "CT" and "PatientID" not in series
        assert "0008,0018" in client.get(f"/instances/{instance}/module?short").json()


def test_ignore_length(server: LiveServer, uploaded: dict[str, str]) -> None:
    with server.client() as client:
        instance = uploaded["instance"]
        assert client.get(f"/instances/{instance}/tags").json()["0018,1020"]["Type"] == "TooLong"
        for name in ("0018-1020", "SoftwareVersions", "PatientName,0018-1020"):
            tags = client.get(f"/instances/{instance}/tags?ignore-length={name}").json()
            assert tags["0018,1020"] == {"Name": "SoftwareVersions", "Type": "String",
                                         "Value": LONG.rstrip()}
        simplified = client.get(f"/instances/{instance}/simplified-tags"
                                "?ignore-length=SoftwareVersions").json()
        assert simplified["SoftwareVersions"] == LONG.rstrip()
        below = client.get(f"/series/{uploaded['series']}/instances-tags"
                           "?ignore-length=SoftwareVersions").json()
        assert below[instance]["0018,1020"]["Type"] == "String"
        assert client.get(f"/instances/{instance}/tags?ignore-length=NoSuchTag").status_code == 400


def test_bulk_content(server: LiveServer, uploaded: dict[str, str]) -> None:
    hierarchy = [uploaded[k] for k in ("patient", "study", "series", "instance")]
    with server.client() as client:
        answer = client.post("/tools/bulk-content", json={"Resources": ["nope", *hierarchy]}).json()
        assert [a["ID"] for a in answer] == hierarchy
        assert answer[3]["Metadata"]["Origin"] == "RestApi"
        assert answer[1]["PatientMainDicomTags"]["PatientID"] == "FMT1"
        short = client.post("/tools/bulk-content", json={"Resources": hierarchy, "Short": True,
                                                         "Metadata": False}).json()
        assert short[0]["MainDicomTags"]["0010,0020"] == "FMT1" and "Metadata" not in short[0]
        full = client.post("/tools/bulk-content", json={"Resources": hierarchy, "Full": True}).json()
        assert full[2]["MainDicomTags"]["0008,0060"] == {"Name": "Modality", "Type": "String",
                                                         "Value": "CT"}
        up = client.post("/tools/bulk-content", json={"Resources": [uploaded["instance"]],
                                                      "Level": "Patient"}).json()
        assert [a["ID"] for a in up] == [uploaded["patient"]]
        down = client.post("/tools/bulk-content", json={"Resources": [uploaded["patient"]],
                                                        "Level": "Instance"}).json()
        assert [a["ID"] for a in down] == [uploaded["instance"]]
        bad = client.post("/tools/bulk-content", json={"Resources": "x"})
        assert bad.status_code == 400

