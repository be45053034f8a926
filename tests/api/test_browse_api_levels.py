"""Browsing as Orthanc 1.11/1.12 answers it: RequestedTags, /system, metadata, labels,
the change log, /tools/lookup and paging (one live server for the module)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from app import orthanc_api_at_least
from tests.helpers import live_server, make_dicom


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    # No Stable* change during the module: the change log tests count changes.
    config = {"UserMetadata": {"my-note": 1100}, "StableAge": 3600}
    with live_server(tmp_path_factory.mktemp("browse"), config) as live, live.client() as client:
        yield client


def _code_item(value: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, "DCM", meaning
    return item


def _store(http: httpx.Client, **tags: object) -> dict:
    answer = http.post("/instances", content=make_dicom(**tags))
    assert answer.status_code == 200, answer.text
    return answer.json()


def _changes_of(http: httpx.Client, public_id: str) -> list[str]:
    changes = http.get("/changes", params={"limit": 10000}).json()["Changes"]
    return [c["ChangeType"] for c in changes if c["ID"] == public_id]


# --- RequestedTags --------------------------------------------------------------------------

def test_requested_tags_on_every_browsing_route(http: httpx.Client) -> None:
    stored = _store(http, patient_id="RT-1", patient_name="REQ^TAGS", RepetitionTime="2800",
                    DerivationCodeSequence=[_code_item("121327", "Full fidelity image")])
    wanted = "PatientID;StudyDescription;SeriesDescription;SOPClassUID;RepetitionTime;" \
             "DerivationCodeSequence"
    routes = [f"/patients/{stored['ParentPatient']}", f"/studies/{stored['ParentStudy']}",
              f"/series/{stored['ParentSeries']}", f"/instances/{stored['ID']}"]
    for route in routes:
        for name in ("requested-tags", "requestedTags"):  # 1.12.4 and 1.11 spellings
            tags = http.get(route, params={name: wanted}).json()["RequestedTags"]
            # Main tags of the level and its parents from the index, the others (a lower
            # level's main tags too) from the first instance, sequences included.
            assert tags == {"PatientID": "RT-1", "StudyDescription": "Test study",
                            "SeriesDescription": "Test series", "SOPClassUID":
                            "1.2.840.10008.5.1.4.1.1.2", "RepetitionTime": "2800",
                            "DerivationCodeSequence": [{
                                "CodeMeaning": "Full fidelity image", "CodeValue": "121327",
                                "CodingSchemeDesignator": "DCM"}]}, route
    assert "RequestedTags" not in http.get(routes[0]).json()
    listed = http.get(f"/patients/{stored['ParentPatient']}/instances",
                      params={"requestedTags": "PatientName;Rows;InstanceAvailability"}).json()
    assert listed[0]["RequestedTags"] == {"InstanceAvailability": "ONLINE",
                                          "PatientName": "REQ^TAGS", "Rows": "8"}
    parent = http.get(f"/instances/{stored['ID']}/study",
                      params={"requestedTags": "PatientName;ModalitiesInStudy"}).json()
    assert parent["ID"] == stored["ParentStudy"]
    assert parent["RequestedTags"] == {"ModalitiesInStudy": "CT", "PatientName": "REQ^TAGS"}
    everything = http.get("/series", params={"expand": "", "requestedTags": "StudyDate"}).json()
    assert {s["ID"]: s["RequestedTags"] for s in everything}[stored["ParentSeries"]] == {
        "StudyDate": "20200102"}
    assert http.get(routes[0], params={"requestedTags": "NoSuchTag"}).status_code == 400


def test_requested_tags_leave_out_absent_and_other_levels_computed_tags(
        http: httpx.Client) -> None:
    stored = _store(http, patient_id="RT-2")
    series = http.get(f"/series/{stored['ParentSeries']}", params={
        "requestedTags": "NumberOfSeriesRelatedInstances;NumberOfStudyRelatedSeries;"
                         "InstitutionName;ImageComments"}).json()
    # InstitutionName is a study main tag this study lacks; ImageComments is in no file.
    assert series["RequestedTags"] == {"NumberOfSeriesRelatedInstances": "1"}
    study = http.get(f"/studies/{stored['ParentStudy']}", params={
        "requestedTags": "0008,0061;0008,0062;0020,1206;0020,1208"}).json()
    assert study["RequestedTags"] == {
        "ModalitiesInStudy": "CT", "NumberOfStudyRelatedInstances": "1",
        "NumberOfStudyRelatedSeries": "1", "SOPClassesInStudy": "1.2.840.10008.5.1.4.1.1.2"}


def test_requested_tags_follow_short_and_full(http: httpx.Client) -> None:
    stored = _store(http, patient_id="RT-3",
                    DerivationCodeSequence=[_code_item("1", "One")])
    params = {"requestedTags": "PatientID;DerivationCodeSequence"}
    short = http.get(f"/series/{stored['ParentSeries']}", params={**params, "short": ""}).json()
    assert short["RequestedTags"]["0010,0020"] == "RT-3"
    assert short["RequestedTags"]["0008,9215"][0]["0008,0100"] == "1"
    assert short["MainDicomTags"]["0008,0060"] == "CT"
    full = http.post("/tools/find", json={
        "Level": "Series", "Query": {"PatientID": "RT-3"}, "Expand": True, "Full": True,
        "RequestedTags": ["PatientID", "DerivationCodeSequence"]}).json()[0]
    assert full["RequestedTags"]["0010,0020"] == {"Name": "PatientID", "Type": "String",
                                                  "Value": "RT-3"}
    sequence = full["RequestedTags"]["0008,9215"]
    assert sequence["Type"] == "Sequence" and sequence["Name"] == "DerivationCodeSequence"
    assert sequence["Value"][0]["0008,0104"] == {"Name": "CodeMeaning", "Type": "String",
                                                  "Value": "One"}


# --- /system, metadata ----------------------------------------------------------------------

def test_system_lists_main_dicom_tags(http: httpx.Client) -> None:
    system = http.get("/system").json()
    signatures = system["MainDicomTags"]
    assert set(signatures) == {"Patient", "Study", "Series", "Instance"}
    assert signatures["Patient"] == "0010,0010;0010,0020;0010,0030;0010,0040;0010,1000"
    assert "0020,000d" in signatures["Study"].split(";")


def test_metadata_signature_numbers_and_names(http: httpx.Client) -> None:
    stored = _store(http, patient_id="MD-1")
    study = stored["ParentStudy"]
    names = http.get(f"/studies/{study}/metadata").json()
    assert names == ["LastUpdate", "MainDicomTagsSignature"]
    assert http.get(f"/studies/{study}/metadata", params={"numeric": ""}).json() == [7, 15]
    expanded = http.get(f"/studies/{study}/metadata", params={"expand": "", "numeric": ""})
    assert set(expanded.json()) == {"7", "15"}
    assert http.get(f"/studies/{study}/metadata/7").text == \
        http.get(f"/studies/{study}/metadata/LastUpdate").text
    assert http.get(f"/studies/{study}/metadata/15").text == \
        http.get("/system").json()["MainDicomTags"]["Study"]
    instance = http.get(f"/instances/{stored['ID']}/metadata").json()
    assert instance[-1] == "MainDicomTagsSignature" and "PixelDataOffset" in instance
    assert http.put(f"/studies/{study}/metadata/my-note", content=b"hello").status_code == 200
    assert http.get(f"/studies/{study}/metadata").json() == [
        "LastUpdate", "MainDicomTagsSignature", "my-note"]
    assert http.get(f"/studies/{study}/metadata/1100").text == "hello"
    assert http.get(f"/studies/{study}/metadata", params={"numeric": ""}).json() == [
        7, 15, 1100]


def test_deleting_a_child_updates_the_ancestors_last_update(http: httpx.Client) -> None:
    study_uid, series_uid = generate_uid(), generate_uid()
    first = _store(http, patient_id="LU-1", study_uid=study_uid, series_uid=series_uid)
    second = _store(http, patient_id="LU-1", study_uid=study_uid, series_uid=series_uid,
                    instance_number=2)
    before = {level: http.get(f"/{level}/{first[key]}/metadata/LastUpdate").text
              for level, key in (("series", "ParentSeries"), ("studies", "ParentStudy"),
                                 ("patients", "ParentPatient"))}
    time.sleep(1.1)  # LastUpdate has a resolution of one second
    assert http.delete(f"/instances/{second['ID']}").json()["RemainingAncestor"]["Type"] == \
        "Series"
    for level, stamp in before.items():
        key = {"series": "ParentSeries", "studies": "ParentStudy",
               "patients": "ParentPatient"}[level]
        assert http.get(f"/{level}/{first[key]}/metadata/LastUpdate").text > stamp, level


# --- labels ---------------------------------------------------------------------------------

def test_label_routes_answer_empty_bodies(http: httpx.Client) -> None:
    stored = _store(http, patient_id="LB-1")
    base = f"/series/{stored['ParentSeries']}"
    assert http.get(f"{base}/labels/hello").status_code == 404
    answer = http.delete(f"{base}/labels/hello")  # absent: no error
    assert (answer.status_code, answer.text) == (200, "")
    answer = http.put(f"{base}/labels/hello")
    assert (answer.status_code, answer.text) == (200, "")
    answer = http.get(f"{base}/labels/hello")
    assert (answer.status_code, answer.text) == (200, "")
    assert http.get(base).json()["Labels"] == ["hello"]
    assert http.put(f"{base}/labels/not%20valid").status_code == 400
    assert http.delete(f"{base}/labels/hello").text == ""
    assert http.get(f"{base}/labels/hello").status_code == 404


# --- /tools/lookup, paging ------------------------------------------------------------------

def test_lookup_ignores_case_but_find_can_respect_it(http: httpx.Client) -> None:
    stored = _store(http, patient_id="loOKup7aBcDeFgH")  # many letters: the upper() path
    for text in ("loOKup7aBcDeFgH", "LOOKUP7ABCDEFGH", " lookup7abcdefgh\n"):
        found = http.post("/tools/lookup", content=text.encode()).json()
        assert found == [{"ID": stored["ParentPatient"], "Path":
                          f"/patients/{stored['ParentPatient']}", "Type": "Patient"}], text
    find = {"Level": "Patient", "Query": {"PatientID": "LOOKUP7ABCDEFGH"}}
    assert http.post("/tools/find", json={**find, "CaseSensitive": True}).json() == []
    assert http.post("/tools/find", json={**find, "CaseSensitive": False}).json() == [
        stored["ParentPatient"]]


def test_listing_pages_with_since_and_limit(http: httpx.Client) -> None:
    _store(http, patient_id="PG-1")
    _store(http, patient_id="PG-2")
    everything = http.get("/patients").json()
    assert len(everything) >= 2
    # limit=0: nothing up to Orthanc 1.12.4, no limit from 1.12.5 (the reported version)
    assert http.get("/patients", params={"since": 0, "limit": 0}).json() == (
        everything if orthanc_api_at_least(1, 12, 5) else [])
    pages, since = [], 0
    while page := http.get("/patients", params={"since": since, "limit": 1}).json():
        pages += page
        since += len(page)
    assert pages == everything
    assert http.get("/patients", params={"limit": 1}).json() == everything[:1]
    assert http.get("/patients", params={"since": 1}).json() == everything[1:]


# --- the change log -------------------------------------------------------------------------

def test_changes_of_a_deleted_resource_are_deleted(http: httpx.Client) -> None:
    stored = _store(http, patient_id="CH-1")
    kept = _store(http, patient_id="CH-2")
    assert _changes_of(http, stored["ID"]) == ["NewInstance"]
    assert _changes_of(http, stored["ParentPatient"])[0] == "NewPatient"
    assert http.delete(f"/patients/{stored['ParentPatient']}").status_code == 200
    for key in ("ID", "ParentSeries", "ParentStudy", "ParentPatient"):
        assert _changes_of(http, stored[key]) == [], key
    assert _changes_of(http, kept["ID"]) == ["NewInstance"]


def test_sequence_numbers_are_never_reused(http: httpx.Client) -> None:
    _store(http, patient_id="SQ-1")
    last = http.get("/changes").json()["Last"]
    assert http.delete("/changes").status_code == 200
    empty = http.get("/changes").json()
    # An empty page answers the last number given, so that polling resumes from it.
    assert (empty["Changes"], empty["Done"], empty["Last"]) == ([], True, last)
    assert http.get("/changes", params={"last": ""}).json() == {
        "Changes": [], "Done": True, "Last": last}
    assert http.get("/changes", params={"since": last + 1000}).json()["Last"] == last
    stored = _store(http, patient_id="SQ-2")
    changes = http.get("/changes").json()["Changes"]
    assert changes[0]["Seq"] == last + 1 and changes[0]["ID"] == stored["ID"]
    newest = http.get("/changes", params={"last": ""}).json()
    assert newest["Changes"][0]["Seq"] == newest["Last"] == changes[-1]["Seq"]


def test_completed_series_is_logged_when_the_last_instance_arrives(
        http: httpx.Client) -> None:
    study_uid, series_uid = generate_uid(), generate_uid()
    stored = {}
    for number in (1, 2, 3):
        stored = _store(http, patient_id="CS-1", study_uid=study_uid, series_uid=series_uid,
                        instance_number=number, CardiacNumberOfImages=3)
        expected = ["NewSeries"] + (["CompletedSeries"] if number == 3 else [])
        assert _changes_of(http, stored["ParentSeries"]) == expected
        assert http.get(f"/series/{stored['ParentSeries']}").json()["Status"] == (
            "Complete" if number == 3 else "Missing")
    _store(http, patient_id="CS-1", study_uid=study_uid, series_uid=series_uid,
           instance_number=4, CardiacNumberOfImages=3)
    assert http.get(f"/series/{stored['ParentSeries']}").json()["Status"] == "Inconsistent"
    assert _changes_of(http, stored["ParentSeries"]).count("CompletedSeries") == 1

