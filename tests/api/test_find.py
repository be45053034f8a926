"""/tools/find, /tools/lookup, labels and RequestedTags on a live Pharos.

Orthanc 1.10.1 (the differential oracle) has neither labels nor RequestedTags: these
follow Orthanc 1.12's documented semantics (``/tools/find`` "Labels",
"LabelsConstraint" All/Any/None, "RequestedTags" with the computed tags of PS3.4
C.6.1.1/C.6.2.1, "Full"/"Short" formats).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import LiveServer, live_server, make_dicom

STUDY, OTHER_STUDY = "1.2.3.1", "1.2.3.2"


@pytest.fixture(scope="module")
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as http:
        files = [make_dicom(patient_id="P1", patient_name="Doe^Jane", study_uid=STUDY,
                            series_uid="1.2.3.1.1", sop_uid=f"1.2.3.1.1.{i}", instance_number=i,
                            modality="CT") for i in (1, 2)]
        files.append(make_dicom(patient_id="P1", patient_name="Doe^Jane", study_uid=STUDY,
                                series_uid="1.2.3.1.2", sop_uid="1.2.3.1.2.1", modality="MR",
                                SOPClassUID="1.2.840.10008.5.1.4.1.1.4"))
        files.append(make_dicom(patient_id="P1", patient_name="Doe^Jane", study_uid=OTHER_STUDY,
                                series_uid="1.2.3.2.1", sop_uid="1.2.3.2.1.1", modality="US"))
        files.append(make_dicom(patient_id="P2", patient_name="Roe^Rick", study_uid="1.2.4.1",
                                series_uid="1.2.4.1.1", sop_uid="1.2.4.1.1.1", modality="CT"))
        for data in files:
            assert http.post("/instances", content=data).status_code == 200
        yield http


def find(client: httpx.Client, body: dict) -> httpx.Response:
    return client.post("/tools/find", json=body)


def study_id(client: httpx.Client, uid: str) -> str:
    (answer,) = find(client, {"Level": "Study", "Query": {"StudyInstanceUID": uid}}).json()
    return answer


@pytest.mark.parametrize("body,status,code,details", [
    ([], 400, 8, "The body must contain a JSON object"),
    ({"Query": {}}, 400, 8, 'Field "Level" is missing, or should be a string'),
    ({"Level": "Study"}, 400, 8, 'Field "Query" is missing, or should be a JSON object'),
    ({"Level": "Study", "Query": {}, "CaseSensitive": 1}, 400, 8,
     'Field "CaseSensitive" should be a Boolean'),
    ({"Level": "Study", "Query": {}, "Limit": "1"}, 400, 8, 'Field "Limit" should be an integer'),
    ({"Level": "Study", "Query": {}, "Since": 1.5}, 400, 8, 'Field "Since" should be an integer'),
    ({"Level": "Study", "Query": {}, "Limit": -1}, 400, 3,
     'Field "Limit" should be a positive integer'),
    ({"Level": "Study", "Query": {}, "Since": -2}, 400, 3,
     'Field "Since" should be a positive integer'),
    ({"Level": "Stuff", "Query": {}}, 400, 3, None),
    ({"Level": "Study", "Query": {"PatientName": 1}}, 400, 8,
     'Tag "PatientName" should be associated with a string'),
    ({"Level": "Study", "Query": {"StudyDate": "2020*"}}, 400, 3,
     "Wildcards are not allowed on tag 0008,0020"),
    ({"Level": "Study", "Query": {"NoSuchKeyword": "x"}}, 400, 27, None),
    ({"Level": "Study", "Query": {}, "Expand": "yes"}, 400, 8, None),
    ({"Level": "Study", "Query": {}, "Labels": "x"}, 400, 8, None),
    ({"Level": "Study", "Query": {}, "LabelsConstraint": "Some"}, 400, 8, None),
])
def test_bad_bodies_answer_like_orthanc(client: httpx.Client, body: object, status: int,
                                        code: int, details: str | None) -> None:
    response = client.post("/tools/find", json=body)
    assert response.status_code == status
    error = response.json()
    assert error["OrthancStatus"] == code and error["HttpStatus"] == status
    if details:
        assert error["Details"] == details


def test_not_json_and_wrong_method(client: httpx.Client) -> None:
    assert client.post("/tools/find", content=b"{not json").status_code == 400
    assert client.get("/tools/find").status_code == 405
    assert client.get("/tools/lookup").status_code == 405


def test_case_insensitive_by_default_on_every_vr(client: httpx.Client) -> None:
    assert len(find(client, {"Level": "Series", "Query": {"Modality": "ct"}}).json()) == 2
    assert find(client, {"Level": "Series", "Query": {"Modality": "ct"},
                         "CaseSensitive": True}).json() == []
    assert len(find(client, {"Level": "Patient", "Query": {"PatientID": "p1"}}).json()) == 1
    assert len(find(client, {"Level": "Study", "Query": {"PatientName": "DOE^*"}}).json()) == 2


def test_limit_since_and_levels(client: httpx.Client) -> None:
    everything = find(client, {"Level": "instances", "Query": {}}).json()
    assert len(everything) == 5
    pages = [find(client, {"Level": "Instance", "Query": {}, "Since": s, "Limit": 2}).json()
             for s in (0, 2, 4)]
    assert [len(p) for p in pages] == [2, 2, 1]
    assert sorted(sum(pages, [])) == sorted(everything)


def test_lower_level_tags_match_nothing_but_modalities_in_study_works(
        client: httpx.Client) -> None:
    assert find(client, {"Level": "Study", "Query": {"Modality": "CT"}}).json() == []
    studies = find(client, {"Level": "Study", "Query": {"ModalitiesInStudy": "MR\\US"}}).json()
    assert sorted(studies) == sorted([study_id(client, STUDY), study_id(client, OTHER_STUDY)])


def test_expand_is_the_resource_json(client: httpx.Client) -> None:
    (expanded,) = find(client, {"Level": "Study", "Query": {"StudyInstanceUID": STUDY},
                                "Expand": True}).json()
    assert expanded == client.get(f"/studies/{study_id(client, STUDY)}").json()


def test_requested_tags_with_computed_tags(client: httpx.Client) -> None:
    tags = ["ModalitiesInStudy", "SOPClassesInStudy", "NumberOfStudyRelatedSeries",
            "NumberOfStudyRelatedInstances", "StudyDate", "PatientName"]
    (study,) = find(client, {"Level": "Study", "Query": {"StudyInstanceUID": STUDY},
                             "Expand": True, "RequestedTags": tags}).json()
    assert study["RequestedTags"] == {
        "ModalitiesInStudy": "CT\\MR",
        "SOPClassesInStudy": "1.2.840.10008.5.1.4.1.1.2\\1.2.840.10008.5.1.4.1.1.4",
        "NumberOfStudyRelatedSeries": "2", "NumberOfStudyRelatedInstances": "3",
        "StudyDate": "20200102", "PatientName": "Doe^Jane"}
    (patient,) = find(client, {"Level": "Patient", "Query": {"PatientID": "P1"},
                               "Expand": True, "RequestedTags": [
                                   "NumberOfPatientRelatedStudies",
                                   "NumberOfPatientRelatedSeries",
                                   "NumberOfPatientRelatedInstances"]}).json()
    assert patient["RequestedTags"] == {"NumberOfPatientRelatedStudies": "2",
                                        "NumberOfPatientRelatedSeries": "3",
                                        "NumberOfPatientRelatedInstances": "4"}
    series = find(client, {"Level": "Series", "Query": {"Modality": "CT"}, "Expand": True,
                           "CaseSensitive": True,
                           "RequestedTags": ["NumberOfSeriesRelatedInstances"]}).json()
    assert sorted(s["RequestedTags"]["NumberOfSeriesRelatedInstances"] for s in series) == \
        ["1", "2"]


def test_full_and_short_formats(client: httpx.Client) -> None:
    body = {"Level": "Series", "Query": {"SeriesInstanceUID": "1.2.3.1.2"}, "Expand": True,
            "RequestedTags": ["Modality"]}
    (short,) = find(client, {**body, "Short": True}).json()
    assert short["MainDicomTags"]["0008,0060"] == "MR"
    assert short["RequestedTags"] == {"0008,0060": "MR"}
    (full,) = find(client, {**body, "Full": True}).json()
    assert full["MainDicomTags"]["0008,0060"] == {"Name": "Modality", "Type": "String",
                                                  "Value": "MR"}


def test_requested_tags_on_list_routes(client: httpx.Client) -> None:
    studies = client.get("/studies", params={"expand": "", "requestedTags":
                                             "ModalitiesInStudy;StudyDate"}).json()
    by_uid = {s["MainDicomTags"]["StudyInstanceUID"]: s["RequestedTags"] for s in studies}
    assert by_uid[STUDY] == {"ModalitiesInStudy": "CT\\MR", "StudyDate": "20200102"}


def test_lookup(client: httpx.Client) -> None:
    answer = client.post("/tools/lookup", content=b"1.2.3.1.2.1").json()
    assert [(a["Type"], a["Path"].split("/")[1]) for a in answer] == [("Instance", "instances")]
    assert client.post("/tools/lookup", content=b"unknown").json() == []
    (patient,) = client.post("/tools/lookup", content=b"P2").json()
    assert patient["Type"] == "Patient" and patient["Path"] == f"/patients/{patient['ID']}"


def test_labels_routes_and_find(client: httpx.Client) -> None:
    study, other = study_id(client, STUDY), study_id(client, OTHER_STUDY)
    assert client.get(f"/studies/{study}/labels").json() == []
    assert client.put(f"/studies/{study}/labels/urgent").status_code == 200
    assert client.put(f"/studies/{study}/labels/urgent").status_code == 200  # idempotent
    assert client.put(f"/studies/{study}/labels/teaching").status_code == 200
    assert client.put(f"/studies/{other}/labels/teaching").status_code == 200
    assert client.put(f"/studies/{study}/labels/not ok!").status_code == 400
    assert client.put("/studies/nope/labels/urgent").status_code == 404
    assert sorted(client.get(f"/studies/{study}/labels").json()) == ["teaching", "urgent"]
    assert client.get("/tools/labels").json() == ["teaching", "urgent"]
    assert "urgent" in client.get(f"/studies/{study}").json()["Labels"]

    def labelled(labels: list[str], mode: str) -> list[str]:
        return sorted(find(client, {"Level": "Study", "Query": {}, "Labels": labels,
                                    "LabelsConstraint": mode}).json())
    everything = find(client, {"Level": "Study", "Query": {}}).json()
    assert labelled(["urgent", "teaching"], "All") == [study]
    assert labelled(["urgent", "teaching"], "Any") == sorted([study, other])
    assert labelled(["urgent"], "None") == sorted(set(everything) - {study})
    assert client.delete(f"/studies/{study}/labels/urgent").status_code == 200
    assert client.get(f"/studies/{study}/labels").json() == ["teaching"]
    assert labelled(["urgent"], "All") == []
    assert client.delete(f"/studies/{other}/labels/teaching").status_code == 200
    assert client.delete(f"/studies/{study}/labels/teaching").status_code == 200
    assert client.get("/tools/labels").json() == []


def test_limit_find_results_configuration(tmp_path: Path) -> None:
    """LimitFindResults / LimitFindInstances as Orthanc 1.12.5+ applies them with an
    ExtendedFind index: at most that many answers when the index answers the whole query
    (a larger Limit included; Since pages past them), else that many resources read from
    the index before their DICOM JSON is checked."""
    config = {"LimitFindResults": 1, "LimitFindInstances": 2}
    with live_server(tmp_path, config) as live, live.client() as http:
        for i in range(4):
            http.post("/instances", content=make_dicom(
                patient_id=f"P{i}", study_uid=f"1.9.{i}", series_uid=f"1.9.{i}.1",
                PhotometricInterpretation="RGB" if i == 0 else "MONOCHROME2"))
        studies = find(http, {"Level": "Study", "Query": {}}).json()
        assert len(studies) == 1
        assert len(find(http, {"Level": "Instance", "Query": {}}).json()) == 2
        assert len(find(http, {"Level": "Instance", "Query": {}, "Limit": 1}).json()) == 1
        assert len(find(http, {"Level": "Instance", "Query": {}, "Limit": 5}).json()) == 2
        third = find(http, {"Level": "Study", "Query": {}, "Since": 2}).json()
        assert len(third) == 1 and third != studies
        assert find(http, {"Level": "Study", "Query": {}, "Since": 4}).json() == []
        # Two instances read, the first of which is RGB: one answer.
        assert len(find(http, {"Level": "Instance", "Query": {
            "PhotometricInterpretation": "MONOCHROME2"}}).json()) == 1
        assert len(http.get("/studies").json()) == 4  # lists are not capped
