"""C-FIND as Orthanc sends and answers it, through ``/modalities/self/query``: Pharos'
SCU (Normalize, numbers, the keys it adds) queries Pharos' own SCP over real sockets."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydicom.uid import generate_uid

from tests.helpers import free_port, live_server, make_dicom


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    port = free_port()
    config = {"DicomPort": port, "DicomAet": "SELFTEST",
              "DicomModalities": {"self": ["SELFTEST", "127.0.0.1", port]}}
    with live_server(tmp_path_factory.mktemp("query"), config) as live, \
            live.client() as client:
        stored = client.post("/instances", content=make_dicom(
            patient_id="QS-1", study_uid="1.2.3.4", series_uid=generate_uid(),
            size=16, ProtocolName="", SeriesDescription="STL model: intraop Report"))
        assert stored.status_code == 200, stored.text
        yield client


def _answers(http: httpx.Client, query: dict[str, Any]) -> list[dict[str, Any]]:
    answer = http.post("/modalities/self/query", json=query)
    assert answer.status_code == 200, answer.text
    return http.get(answer.json()["Path"] + "/answers", params={"expand": "",
                                                               "simplify": ""}).json()


def test_normalize_drops_what_the_level_cannot_ask(http: httpx.Client) -> None:
    kept = _answers(http, {"Level": "Instance", "Query": {"Rows": "42"}})
    assert len(kept) == 1 and "Rows" not in kept[0]  # Rows is in no module: dropped
    # Orthanc's SCU adds the identifiers of the level and of the levels above it.
    assert {"PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID",
            "AccessionNumber"} <= set(kept[0])
    study = _answers(http, {"Level": "Study", "Query": {"SeriesDescription": "NOPE"}})
    assert len(study) == 1 and set(study[0]) >= {"PatientID", "StudyInstanceUID"}


def test_without_normalize_numbers_are_sent_and_matched_on_the_file(
        http: httpx.Client) -> None:
    query: dict[str, Any] = {"Level": "Instance", "Normalize": False}
    assert _answers(http, {**query, "Query": {"Rows": "42"}}) == []
    found = _answers(http, {**query, "Query": {"Rows": "16"}})
    assert len(found) == 1 and found[0]["Rows"] == "16"
    universal = _answers(http, {**query, "Query": {"Rows": ""}})
    assert universal[0]["Rows"] == "16"
    bad = http.post("/modalities/self/query", json={**query, "Query": {"Rows": "*"}})
    assert bad.status_code == 400


def test_the_scp_matches_as_orthanc(http: httpx.Client) -> None:
    def count(level: str, keys: dict[str, str]) -> int:
        return len(_answers(http, {"Level": level, "Query": keys, "Normalize": False}))

    # A key of a lower level is matched on the series below the study.
    assert count("Study", {"SeriesDescription": "NOPE"}) == 0
    assert count("Study", {"SeriesDescription": "*model*"}) == 1
    # "*" is wild card matching, which an absent attribute never satisfies (Orthanc).
    assert count("Study", {"ImageComments": "*"}) == 0
    assert count("Study", {"ImageComments": ""}) == 1
    assert count("Series", {"SeriesDescription": "*"}) == 1
    assert count("Series", {"ProtocolName": "*"}) == 1  # present, empty: "*" matches
    assert count("Series", {"BodyPartExamined": "*"}) == 0  # absent
    assert count("Study", {"StudyInstanceUID": "1.2.3.4"}) == 1
    # No wildcard on a UID: the SCP refuses the query, the SCU reports the failure.
    refused = http.post("/modalities/self/query", json={
        "Level": "Study", "Query": {"StudyInstanceUID": "*"}})
    assert refused.status_code >= 400


def test_deprecated_find_routes(http: httpx.Client) -> None:
    patients = http.post("/modalities/self/find-patient", json={"PatientID": "QS-*"}).json()
    assert [p["PatientID"] for p in patients] == ["QS-1"]
    assert {"PatientName", "PatientBirthDate", "PatientSex"} <= set(patients[0])
    # A study search needs a PatientID or AccessionNumber of more than two characters.
    assert http.post("/modalities/self/find-study", json={}).json() == []
    studies = http.post("/modalities/self/find-study", json={"PatientID": "QS-1"}).json()
    assert [s["StudyInstanceUID"] for s in studies] == ["1.2.3.4"]
    series = http.post("/modalities/self/find-series", json={
        "PatientID": "QS-1", "StudyInstanceUID": "1.2.3.4"}).json()
    assert len(series) == 1 and series[0]["Modality"] == "CT"
    instances = http.post("/modalities/self/find-instance", json={
        "PatientID": "QS-1", "StudyInstanceUID": "1.2.3.4",
        "SeriesInstanceUID": series[0]["SeriesInstanceUID"]}).json()
    assert len(instances) == 1 and instances[0]["InstanceNumber"] == "1"
    tree = http.post("/modalities/self/find", json={"PatientID": "QS-1"}).json()
    assert len(tree) == 1 and tree[0]["PatientID"] == "QS-1"
    assert tree[0]["Studies"][0]["StudyInstanceUID"] == "1.2.3.4"
    assert tree[0]["Studies"][0]["Series"][0]["Modality"] == "CT"
    assert http.post("/modalities/self/find-patient", content=b"[1]").status_code == 400
    assert {"find", "find-patient", "find-study", "find-series", "find-instance"} <= set(
        http.get("/modalities/self").json())
