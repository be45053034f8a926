"""Orthanc 1.12.5's extended find on a live Pharos: ``OrderBy``, ``ResponseContent``,
``ParentPatient|ParentStudy|ParentSeries``, ``MetadataQuery``, ``/tools/count-resources``,
``Since`` refused on tags the index does not hold, ``response-content`` on lists, and
pages that stay consistent while instances arrive.

Shapes and messages follow Orthanc 1.13's ``OrthancRestResources.cpp`` and
``ResourceFinder.cpp``; Orthanc's own suite (``test_extended_find_*``, ``test_rest_find``,
``test_order_by_*``) checks the same against a server that reports 1.12.5 or later.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import live_server, make_dicom

USER_METADATA = {"my-metadata": 1098}

# (patient, study, series, instance number, extra tags of the series)
PATIENTS = {"PA": ("ALPHA^A", "19800101", "1.5.1", "20200101"),
            "PB": ("BRAVO^B", "19700101", "1.5.2", "20190101")}
SERIES = {"1.5.1.1": ("PA", "MR", "101010", "HEAD", "T1 head"),
          "1.5.1.2": ("PA", "CT", "090000", None, "T2 chest"),
          "1.5.2.1": ("PB", "CT", "120000", "CHEST", "T3 chest")}
INSTANCES = [("1.5.1.1", 1), ("1.5.1.1", 2), ("1.5.1.1", 10), ("1.5.1.2", 3),
             ("1.5.2.1", 5), ("1.5.2.1", 20)]


def _instance(series_uid: str, number: int) -> bytes:
    patient, modality, time, body_part, description = SERIES[series_uid]
    name, birth, study_uid, study_date = PATIENTS[patient]
    extra: dict[str, Any] = {"SeriesTime": time, "SeriesDescription": description,
                             "StudyDate": study_date}
    if body_part:
        extra["BodyPartExamined"] = body_part
    return make_dicom(patient_id=patient, patient_name=name, study_uid=study_uid,
                      series_uid=series_uid, sop_uid=f"{series_uid}.{number}",
                      instance_number=number, modality=modality, PatientBirthDate=birth,
                      **extra)


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    with live_server(tmp_path_factory.mktemp("extended"),
                     {"UserMetadata": USER_METADATA}) as live, live.client() as client:
        for series_uid, number in INSTANCES:
            assert client.post("/instances", content=_instance(series_uid, number)
                               ).status_code == 200
        for uid, value in (("1.5.1.1", "b"), ("1.5.1.2", "a"), ("1.5.2.1", "c")):
            assert client.put(f"/series/{ids(client, 'Series', uid)}/metadata/my-metadata",
                              content=value).status_code == 200
        for (uid, number), value in zip(INSTANCES, ("10.5", "9.25", "100", "1e1", "-3", "7"),
                                        strict=True):
            instance = ids(client, "Instance", f"{uid}.{number}")
            assert client.put(f"/instances/{instance}/metadata/1234",
                              content=value).status_code == 200
        yield client


_UID_KEY = {"Patient": "PatientID", "Study": "StudyInstanceUID",
            "Series": "SeriesInstanceUID", "Instance": "SOPInstanceUID"}


def ids(client: httpx.Client, level: str, uid: str) -> str:
    (found,) = client.post("/tools/find", json={"Level": level,
                                                "Query": {_UID_KEY[level]: uid}}).json()
    return found


def find(client: httpx.Client, **body: Any) -> Any:
    response = client.post("/tools/find", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def error(client: httpx.Client, route: str, body: Any) -> tuple[int, int, str]:
    response = client.post(route, json=body)
    answer = response.json()
    return response.status_code, answer["OrthancStatus"], answer.get("Details", "")


def uids(client: httpx.Client, level: str, answer: list[str]) -> list[str]:
    key = _UID_KEY[level]
    found = {a["ID"]: a["MainDicomTags"][key] for a in find(
        client, Level=level, Query={}, ResponseContent=["MainDicomTags"])}
    return [found[i] for i in answer]


def order(client: httpx.Client, level: str, *keys: tuple[str, str, str],
          **extra: Any) -> list[str]:
    body = {"Level": level, "Query": {}, "OrderBy": [
        {"Type": kind, "Key": key, "Direction": direction} for kind, key, direction in keys],
        **extra}
    return uids(client, level, find(client, **body))


# --- OrderBy ---------------------------------------------------------------------------------

def test_order_by_tags_of_the_level_and_its_ancestors(http: httpx.Client) -> None:
    assert order(http, "Study", ("DicomTag", "PatientName", "ASC")) == ["1.5.1", "1.5.2"]
    assert order(http, "Study", ("DicomTag", "PatientName", "DESC")) == ["1.5.2", "1.5.1"]
    assert order(http, "Series", ("DicomTag", "StudyDate", "ASC"),
                 ("DicomTag", "SeriesTime", "ASC")) == ["1.5.2.1", "1.5.1.2", "1.5.1.1"]
    assert order(http, "Series", ("dicomtag", "PatientBirthDate", "desc"),
                 ("DicomTag", "SeriesTime", "DESC")) == ["1.5.1.1", "1.5.1.2", "1.5.2.1"]
    assert order(http, "Instance", ("DicomTag", "0010,0030", "ASC"),
                 ("DicomTagAsInt", "InstanceNumber", "ASC"))[:2] == ["1.5.2.1.5", "1.5.2.1.20"]


def test_order_by_as_integer_or_as_text(http: httpx.Client) -> None:
    numbers = [uid.rsplit(".", 1)[1] for uid in order(
        http, "Instance", ("DicomTagAsInt", "InstanceNumber", "ASC"))]
    assert numbers == ["1", "2", "3", "5", "10", "20"]
    numbers = [uid.rsplit(".", 1)[1] for uid in order(
        http, "Instance", ("DicomTag", "InstanceNumber", "ASC"))]
    assert numbers == ["1", "10", "2", "20", "3", "5"]
    numbers = [uid.rsplit(".", 1)[1] for uid in order(
        http, "Instance", ("DicomTagAsFloat", "InstanceNumber", "DESC"))]
    assert numbers == ["20", "10", "5", "3", "2", "1"]


def test_missing_values_come_last_in_both_directions(http: httpx.Client) -> None:
    # 1.5.1.2 has no BodyPartExamined; Rows is no main tag; 9876 no metadata of anyone.
    assert order(http, "Series", ("DicomTag", "BodyPartExamined", "ASC")) == \
        ["1.5.2.1", "1.5.1.1", "1.5.1.2"]
    assert order(http, "Series", ("DicomTag", "BodyPartExamined", "DESC")) == \
        ["1.5.1.1", "1.5.2.1", "1.5.1.2"]
    everything = order(http, "Instance")
    assert order(http, "Instance", ("DicomTag", "Rows", "ASC")) == everything
    assert order(http, "Instance", ("Metadata", "9876", "DESC")) == everything
    assert order(http, "Instance", ("Metadata", "LastUpdate", "ASC")) == everything


def test_order_by_metadata(http: httpx.Client) -> None:
    assert order(http, "Series", ("Metadata", "my-metadata", "ASC")) == \
        ["1.5.1.2", "1.5.1.1", "1.5.2.1"]
    assert order(http, "Series", ("Metadata", "1098", "DESC")) == \
        ["1.5.2.1", "1.5.1.1", "1.5.1.2"]
    as_float = order(http, "Instance", ("MetadataAsFloat", "1234", "ASC"))
    assert as_float == ["1.5.2.1.5", "1.5.2.1.20", "1.5.1.1.2", "1.5.1.2.3", "1.5.1.1.1",
                        "1.5.1.1.10"]  # -3, 7, 9.25, 1e1, 10.5, 100
    as_text = order(http, "Instance", ("Metadata", "1234", "ASC"))
    assert as_text[0] == "1.5.2.1.5" and as_text[1] == "1.5.1.1.1"  # "-3", "10.5"...
    # Automatic metadata kept in columns order too (arrival order, then the pk); one of
    # another level is missing everywhere.
    assert order(http, "Instance", ("Metadata", "ReceptionDate", "ASC")) == \
        order(http, "Instance")
    assert order(http, "Series", ("MetadataAsInt", "IndexInSeries", "DESC")) == \
        order(http, "Series")
    # Combined with a tag, and with the metadata as the tie-break.
    assert order(http, "Series", ("DicomTag", "PatientName", "ASC"),
                 ("Metadata", "my-metadata", "DESC")) == ["1.5.1.1", "1.5.1.2", "1.5.2.1"]


def test_order_by_with_paging_and_expand(http: httpx.Client) -> None:
    keys = [{"Type": "DicomTagAsInt", "Key": "InstanceNumber", "Direction": "DESC"}]
    pages = [find(http, Level="Instance", Query={}, OrderBy=keys, Since=since, Limit=4)
             for since in (0, 4, 8)]
    assert [len(p) for p in pages] == [4, 2, 0]
    whole = find(http, Level="Instance", Query={}, OrderBy=keys)
    assert pages[0] + pages[1] == whole
    expanded = find(http, Level="Instance", Query={}, OrderBy=keys, Expand=True, Limit=2,
                    RequestedTags=["InstanceNumber"])
    assert [a["RequestedTags"]["InstanceNumber"] for a in expanded] == ["20", "10"]


@pytest.mark.parametrize("order_by,status,code,details", [
    ({}, 400, 8, 'Field "OrderBy" must be an array'),
    (["x"], 400, 8, 'Field "OrderBy" must contain objects'),
    ([{"Type": "DicomTag", "Direction": "ASC"}], 400, 8, 'Field "Key" must be a string'),
    ([{"Type": "DicomTag", "Key": "StudyDate"}], 400, 8,
     'Field "Direction" must be "ASC" or "DESC"'),
    ([{"Type": "DicomTag", "Key": "StudyDate", "Direction": "UP"}], 400, 8,
     'Field "Direction" must be "ASC" or "DESC"'),
    ([{"Key": "StudyDate", "Direction": "ASC"}], 400, 8,
     'Field "Type" must be "DicomTag" or "Metadata"'),
    ([{"Type": "Label", "Key": "StudyDate", "Direction": "ASC"}], 400, 8, None),
    ([{"Type": "DicomTag", "Key": "NoSuchTag", "Direction": "ASC"}], 400, 27, None),
    ([{"Type": "Metadata", "Key": "no-such-metadata", "Direction": "ASC"}], 404, 7, None),
    ([{"Type": "DicomTag", "Key": "StudyDate", "Direction": "ASC"}] * 33, 400, 3,
     'At most 32 items in "OrderBy"'),
])
def test_bad_order_by(http: httpx.Client, order_by: Any, status: int, code: int,
                      details: str | None) -> None:
    got = error(http, "/tools/find", {"Level": "Study", "Query": {}, "OrderBy": order_by})
    assert got[:2] == (status, code)
    if details:
        assert got[2] == details


# --- ResponseContent ------------------------------------------------------------------------

def test_response_content_picks_parts(http: httpx.Client) -> None:
    series = ids(http, "Series", "1.5.1.1")
    study = ids(http, "Study", "1.5.1")
    body = {"Level": "Series", "Query": {"SeriesInstanceUID": "1.5.1.1"}}
    (minimal,) = find(http, **body, ResponseContent=[])
    assert minimal == {"ID": series, "Type": "Series"}
    (tags,) = find(http, **body, ResponseContent=["MainDicomTags"], RequestedTags=["StudyDate"])
    assert set(tags) == {"ID", "Type", "MainDicomTags", "RequestedTags"}
    assert tags["RequestedTags"] == {"StudyDate": "20200101"}
    (parts,) = find(http, **body, ResponseContent=["Parent", "Children", "Status",
                                                   "IsStable", "Labels", "Metadata"])
    assert set(parts) == {"ID", "Type", "ParentStudy", "Instances", "Status", "IsStable",
                          "Labels", "Metadata"}
    assert parts["ParentStudy"] == study and len(parts["Instances"]) == 3
    assert parts["Status"] == "Unknown" and parts["Labels"] == []
    assert parts["Metadata"]["my-metadata"] == "b" and "LastUpdate" in parts["Metadata"]
    assert parts["Metadata"] == http.get(f"/series/{series}/metadata?expand").json()
    (legacy,) = find(http, **body, Expand=True)
    assert legacy == http.get(f"/series/{series}").json()
    assert "Metadata" not in legacy and "Attachments" not in legacy


def test_response_content_attachments_and_protection(http: httpx.Client) -> None:
    instance = ids(http, "Instance", "1.5.1.2.3")
    body = {"Level": "Instance", "Query": {"SOPInstanceUID": "1.5.1.2.3"}}
    (before,) = find(http, **body, ResponseContent=["Attachments"])
    resource = http.get(f"/instances/{instance}").json()
    assert before["Attachments"] == [{
        "Uuid": resource["FileUuid"], "ContentType": 1,
        "UncompressedSize": resource["FileSize"], "CompressedSize": resource["FileSize"],
        "UncompressedMD5": http.get(f"/instances/{instance}/attachments/dicom/md5").text,
        "CompressedMD5": http.get(f"/instances/{instance}/attachments/dicom/md5").text}]
    assert http.put(f"/instances/{instance}/attachments/1025", content=b"hello").status_code \
        == 200
    (after,) = find(http, **body, ResponseContent=["Attachments"])
    assert [a["ContentType"] for a in after["Attachments"]] == [1, 1025]
    assert after["Attachments"][1]["UncompressedSize"] == 5
    patient = ids(http, "Patient", "PB")
    assert http.put(f"/patients/{patient}/protected", content=b"1").status_code == 200
    protected = {a["ID"]: a["IsProtected"] for a in find(
        http, Level="Patient", Query={}, ResponseContent=["IsProtected"])}
    assert protected == {patient: True, ids(http, "Patient", "PA"): False}
    assert http.put(f"/patients/{patient}/protected", content=b"0").status_code == 200


def test_response_content_errors_and_ids_only(http: httpx.Client) -> None:
    assert error(http, "/tools/find", {"Level": "Study", "Query": {},
                                       "ResponseContent": ["Foo"]})[:2] == (400, 3)
    assert error(http, "/tools/find", {"Level": "Study", "Query": {},
                                       "ResponseContent": "Labels"})[:2] == (400, 8)
    # Without Expand nor ResponseContent: IDs, even with RequestedTags.
    answer = find(http, Level="Study", Query={}, RequestedTags=["StudyDate"])
    assert all(isinstance(a, str) for a in answer)


def test_response_content_on_lists(http: httpx.Client) -> None:
    listed = http.get("/series", params={"response-content": "Parent;Children"}).json()
    assert {frozenset(a) for a in listed} == {frozenset({"ID", "Type", "ParentStudy",
                                                        "Instances"})}
    assert http.get("/series", params={"response-content": "Nope"}).status_code == 400
    assert http.get("/studies?expand=false").json() == http.get("/studies").json()
    assert http.get("/studies?expand=true").json() == http.get("/studies?expand").json()


# --- ParentPatient / ParentStudy / ParentSeries --------------------------------------------

def test_parents(http: httpx.Client) -> None:
    patient_a, patient_b = ids(http, "Patient", "PA"), ids(http, "Patient", "PB")
    study_a, study_b = ids(http, "Study", "1.5.1"), ids(http, "Study", "1.5.2")
    series = ids(http, "Series", "1.5.1.1")
    assert len(find(http, Level="Instance", Query={}, ParentPatient=patient_a)) == 4
    assert len(find(http, Level="Instance", Query={}, ParentStudy=study_b)) == 2
    assert len(find(http, Level="Instance", Query={}, ParentSeries=series)) == 3
    assert find(http, Level="Study", Query={}, ParentPatient=patient_b) == [study_b]
    assert find(http, Level="Study", Query={}, ParentStudy=study_a) == [study_a]
    assert find(http, Level="Series", Query={"Modality": "CT"}, ParentPatient=patient_a) == \
        [ids(http, "Series", "1.5.1.2")]
    # ParentPatient wins over ParentStudy; a parent below the level is ignored (Orthanc).
    assert len(find(http, Level="Instance", Query={}, ParentPatient=patient_b,
                    ParentStudy=study_a)) == 2
    assert len(find(http, Level="Study", Query={}, ParentSeries=series)) == 2
    assert find(http, Level="Series", Query={}, ParentStudy="no-such-study") == []
    assert error(http, "/tools/find", {"Level": "Series", "Query": {}, "ParentStudy": 3}) == \
        (400, 8, 'Field "ParentStudy" must be a string')


# --- MetadataQuery --------------------------------------------------------------------------

def test_metadata_query(http: httpx.Client) -> None:
    def series(query: dict[str, str], **extra: Any) -> list[str]:
        body = {"Level": "Series", "Query": {}, "MetadataQuery": query, **extra}
        return sorted(uids(http, "Series", find(http, **body)))
    assert series({"my-metadata": "b"}) == ["1.5.1.1"]
    assert series({"my-metadata": "B"}) == ["1.5.1.1"]  # CaseSensitive is false by default
    assert series({"my-metadata": "B"}, CaseSensitive=True) == []
    assert series({"my-metadata": "a\\c"}) == ["1.5.1.2", "1.5.2.1"]
    assert series({"1098": "?"}) == ["1.5.1.1", "1.5.1.2", "1.5.2.1"]
    assert series({"my-metadata": ""}) == ["1.5.1.1", "1.5.1.2", "1.5.2.1"]
    assert series({"my-metadata": "*"}, Query={"Modality": "CT"}) == ["1.5.1.2", "1.5.2.1"]
    instances = find(http, Level="Instance", Query={}, MetadataQuery={
        "Origin": "RestApi", "TransferSyntax": "1.2.840.10008.1.2.1", "1234": "1*"})
    assert sorted(uids(http, "Instance", instances)) == ["1.5.1.1.1", "1.5.1.1.10",
                                                          "1.5.1.2.3"]
    assert find(http, Level="Instance", Query={}, MetadataQuery={"RemoteIP": "*"}) != []
    assert find(http, Level="Instance", Query={}, MetadataQuery={"CalledAET": "*"}) == []
    assert error(http, "/tools/find", {"Level": "Series", "Query": {},
                                       "MetadataQuery": {"nope": "x"}})[:2] == (404, 7)
    assert error(http, "/tools/find", {"Level": "Series", "Query": {},
                                       "MetadataQuery": {"my-metadata": 1}}) == \
        (400, 8, 'Tag "my-metadata" must be associated with a string')
    assert error(http, "/tools/find", {"Level": "Series", "Query": {},
                                       "MetadataQuery": []})[:2] == (400, 8)
    assert error(http, "/tools/find", {"Level": "Series", "Query": {}, "MetadataQuery": {
        "my-metadata": "*" * 2000}})[:2] == (400, 3)


# --- Since, Limit and the index --------------------------------------------------------------

def test_since_refused_on_tags_the_index_does_not_hold(http: httpx.Client) -> None:
    body = {"Level": "Instance", "Query": {"PhotometricInterpretation": "MONOCHROME*"}}
    assert len(find(http, **body)) == 6
    assert len(find(http, **body, Limit=2)) == 2
    assert len(find(http, **body, Since=0, Limit=3)) == 3
    assert error(http, "/tools/find", {**body, "Since": 2}) == (
        400, 8, "Unable to use 'Since' in tools/find when querying tags that are not "
        "stored as MainDicomTags in the Database")
    # Orthanc's index keeps its identifiers upper-cased: no Since with CaseSensitive.
    names = {"Level": "Study", "Query": {"PatientName": "ALPHA*"}, "CaseSensitive": True}
    assert len(find(http, **names)) == 1
    assert error(http, "/tools/find", {**names, "Since": 1})[:2] == (400, 8)
    # Other tags, and ModalitiesInStudy at study level, are in the index.
    assert len(find(http, Level="Series", Query={"Modality": "CT"}, CaseSensitive=True,
                    Since=1)) == 1
    assert len(find(http, Level="Study", Query={"ModalitiesInStudy": "CT"}, Since=1)) == 1


def test_count_resources(http: httpx.Client) -> None:
    def count(**body: Any) -> int:
        response = http.post("/tools/count-resources", json=body)
        assert response.status_code == 200, response.text
        assert set(response.json()) == {"Count"}
        return response.json()["Count"]
    assert count(Level="Instance", Query={}) == 6
    assert count(Level="Instance", Query={}, Limit=1, Since=3) == 6  # both ignored
    assert count(Level="Series", Query={"Modality": "ct"}) == 2
    assert count(Level="Study", Query={"ModalitiesInStudy": "MR\\US"}) == 1
    assert count(Level="Instance", Query={"SeriesDescription": "T*"},
                 ParentPatient=ids(http, "Patient", "PA")) == 4
    assert count(Level="Series", Query={}, MetadataQuery={"my-metadata": "[ab]"}) == 0
    assert count(Level="Series", Query={}, MetadataQuery={"my-metadata": "a\\b"}) == 2
    assert count(Level="Series", Query={}, ParentStudy="unknown") == 0
    assert error(http, "/tools/count-resources", {"Level": "Study", "Query": {},
                                                  "CaseSensitive": True}) == (
        400, 3, 'Setting "CaseSensitive" to "true" is not supported by '
        "/tools/count-resources")
    assert error(http, "/tools/count-resources", {
        "Level": "Instance", "Query": {"PhotometricInterpretation": "*"}}) == (
        400, 8, "Unable to count resources when querying tags that are not stored as "
        "MainDicomTags in the Database or when using case sensitive queries.")
    assert error(http, "/tools/count-resources", {"Level": "Study"})[:2] == (400, 8)


def test_requested_tags_of_the_lookup_from_orthanc_1_12_5(http: httpx.Client) -> None:
    """Orthanc 1.12.5+ answers the tags it matched outside its index as RequestedTags."""
    (series,) = find(http, Level="Series", Query={"SeriesInstanceUID": "1.5.1.1",
                                                  "PhotometricInterpretation": "*"},
                     ResponseContent=[])
    if _version(http) >= (1, 12, 5):
        assert series["RequestedTags"] == {"PhotometricInterpretation": "MONOCHROME2"}
    else:
        assert "RequestedTags" not in series


# --- what depends on the Orthanc version Pharos reports -----------------------------------

def _version(client: httpx.Client) -> tuple[int, ...]:
    return tuple(int(x) for x in client.get("/system").json()["Version"].split("."))


def test_list_limit_zero_follows_the_reported_version(http: httpx.Client) -> None:
    answer = http.get("/instances", params={"since": 1, "limit": 0}).json()
    assert len(answer) == (5 if _version(http) >= (1, 12, 5) else 0)
    assert len(http.get("/instances", params={"since": 1, "limit": 2}).json()) == 2


def test_is_protected_in_patients_from_orthanc_1_12_8(http: httpx.Client) -> None:
    patient = http.get(f"/patients/{ids(http, 'Patient', 'PA')}").json()
    assert ("IsProtected" in patient) == (_version(http) >= (1, 12, 8))


def test_capabilities(http: httpx.Client) -> None:
    assert http.get("/system").json()["Capabilities"] == {
        "HasExtendedChanges": True, "HasExtendedFind": True, "HasKeyValueStores": False,
        "HasQueues": False, "HasReserveQueueValue": False}


# --- pages while instances arrive ------------------------------------------------------------

def test_pages_stay_consistent_while_instances_arrive(tmp_path: Path) -> None:
    """Paging with Since/Limit while instances are stored: equal keys keep the order in
    which resources arrived (the pk follows every OrderBy), and resources stored later
    come after them, so no page repeats a resource and none of the resources stored
    before the first page is skipped. Keys that sort new resources before the pages
    already read shift the pages, as with any offset paging (Orthanc's too)."""
    with live_server(tmp_path) as live, live.client() as client:
        serials = iter(range(10_000))

        def store(number: int, study: str, date: str) -> None:
            data = make_dicom(patient_id=f"P{study}", study_uid=f"1.7.{study}",
                              series_uid=f"1.7.{study}.1", sop_uid=f"1.7.{next(serials)}",
                              instance_number=number, StudyDate=date)
            assert client.post("/instances", content=data).status_code == 200

        for number in range(30):
            store(100 + number, str(number % 3), "20200101")
        before = set(find(client, Level="Instance", Query={}))
        scenarios = [  # (OrderBy, the study of the arrivals and its date)
            ([{"Type": "DicomTag", "Key": "StudyDate", "Direction": "ASC"}], "90", "20200101"),
            ([{"Type": "DicomTag", "Key": "StudyDate", "Direction": "DESC"}], "91",
             "20190101"),
            ([{"Type": "DicomTagAsInt", "Key": "InstanceNumber", "Direction": "DESC"}],
             "92", "20200101"),
            ([], "93", "20210101"),
        ]
        arrivals = iter(range(99, -10_000, -1))  # ever lower instance numbers
        for order_by, arriving_study, arriving_date in scenarios:
            seen: list[str] = []
            since = 0
            while True:
                page = find(client, Level="Instance", Query={}, OrderBy=order_by,
                            Since=since, Limit=7)
                seen += page
                since += len(page)
                if len(page) < 7:
                    break
                for _ in range(2):  # new instances between two pages
                    store(next(arrivals), arriving_study, arriving_date)
            assert len(seen) == len(set(seen)), order_by
            assert before <= set(seen), order_by
        listed: list[str] = []
        since = 0
        while len(page := client.get("/instances", params={"since": since,
                                                           "limit": 5}).json()) == 5:
            listed += page
            since += len(page)
            store(next(arrivals), "8", "20220101")
        listed += page
        assert len(listed) == len(set(listed)) and before <= set(listed)
