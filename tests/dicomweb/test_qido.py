"""QIDO-RS against a live Pharos: matching, includefield, limit/offset, default and
computed attributes (PS3.18 10.6), with dicomweb-client and raw requests."""

from __future__ import annotations

import httpx
import pytest
from dicomweb_client.api import DICOMwebClient
from pydicom.uid import generate_uid

from tests.dicomweb.conftest import stow
from tests.helpers import make_dicom


@pytest.fixture(scope="module")
def archive(http: httpx.Client) -> dict[str, str]:
    """Two patients: one CT+MR study (2 series, 3 instances), one US study."""
    uids = {"study1": generate_uid(), "ct": generate_uid(), "mr": generate_uid(),
            "study2": generate_uid(), "us": generate_uid()}
    files = [
        make_dicom(patient_id="QIDO-1", patient_name="Müller^Hans", study_uid=uids["study1"],
                   series_uid=uids["ct"], modality="CT", instance_number=1,
                   StudyID="S1", StudyDate="20210315", ReferringPhysicianName="WHO^DOCTOR"),
        make_dicom(patient_id="QIDO-1", patient_name="Müller^Hans", study_uid=uids["study1"],
                   series_uid=uids["ct"], modality="CT", instance_number=2,
                   StudyID="S1", StudyDate="20210315", ReferringPhysicianName="WHO^DOCTOR"),
        make_dicom(patient_id="QIDO-1", patient_name="Müller^Hans", study_uid=uids["study1"],
                   series_uid=uids["mr"], modality="MR", instance_number=1,
                   StudyID="S1", StudyDate="20210315", ReferringPhysicianName="WHO^DOCTOR"),
        make_dicom(patient_id="QIDO-2", patient_name="SMITH^JANE", study_uid=uids["study2"],
                   series_uid=uids["us"], modality="US", StudyDate="20190101",
                   StudyDescription="Abdomen"),
    ]
    assert stow(http, files).status_code == 200
    return uids


def _uids(answers: list[dict], key: str = "0020000D") -> list[str]:
    return [a[key]["Value"][0] for a in answers]


def test_search_studies_default_attributes(http: httpx.Client, archive: dict[str, str]) -> None:
    response = http.get("/dicom-web/studies", params={"PatientID": "QIDO-1"},
                        headers={"Accept": "application/dicom+json"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/dicom+json"
    (study,) = response.json()
    assert study["0020000D"]["Value"] == [archive["study1"]]
    assert study["00080061"] == {"vr": "CS", "Value": ["CT", "MR"]}  # ModalitiesInStudy
    assert study["00201206"] == {"vr": "IS", "Value": [2]}  # NumberOfStudyRelatedSeries
    assert study["00201208"] == {"vr": "IS", "Value": [3]}  # NumberOfStudyRelatedInstances
    assert study["00100010"]["Value"] == [{"Alphabetic": "Müller^Hans"}]
    assert study["00080005"]["Value"] == ["ISO_IR 192"]  # the JSON is UTF-8
    assert study["00081190"]["Value"][0].endswith(f"/dicom-web/studies/{archive['study1']}")
    for key in ("00080020", "00080030", "00080050", "00080090", "00100020", "00100030",
                "00100040", "00200010"):
        assert key in study, key
    assert all("Value" in element or element["vr"] in ("PN", "SQ")
               for key, element in study.items() if key in ("00080061", "00201206"))


def test_matching_by_keyword_or_tag(http: httpx.Client, archive: dict[str, str]) -> None:
    by_keyword = http.get("/dicom-web/studies", params={"PatientName": "müller*"}).json()
    by_tag = http.get("/dicom-web/studies", params={"00100010": "MÜLLER^HANS"}).json()
    assert _uids(by_keyword) == _uids(by_tag) == [archive["study1"]]
    assert _uids(http.get("/dicom-web/studies",
                          params={"StudyDate": "20210101-20211231",
                                  "PatientID": "QIDO-*"}).json()) == [archive["study1"]]
    assert _uids(http.get("/dicom-web/studies", params={
        "ModalitiesInStudy": "US", "PatientID": "QIDO-*"}).json()) == [archive["study2"]]
    uid_list = f"{archive['study1']},{archive['study2']}"  # PS3.18 8.3.4.1: comma list
    assert sorted(_uids(http.get("/dicom-web/studies",
                                 params={"StudyInstanceUID": uid_list}).json())) == \
        sorted([archive["study1"], archive["study2"]])
    assert http.get("/dicom-web/studies", params={"PatientID": "NOBODY"}).json() == []


def test_fuzzy_matching(http: httpx.Client, archive: dict[str, str]) -> None:
    assert http.get("/dicom-web/studies", params={"PatientName": "hans"}).json() == []
    fuzzy = http.get("/dicom-web/studies",
                     params={"PatientName": "hans", "fuzzymatching": "true"}).json()
    assert _uids(fuzzy) == [archive["study1"]]


def test_includefield_list_and_all(http: httpx.Client, archive: dict[str, str]) -> None:
    answer = http.get("/dicom-web/studies", params={
        "PatientID": "QIDO-2", "includefield": "StudyDescription,00081030"}).json()
    assert answer[0]["00081030"]["Value"] == ["Abdomen"]
    repeated = http.get("/dicom-web/studies?PatientID=QIDO-2&includefield=StudyDescription"
                        "&includefield=00100040").json()
    assert repeated[0]["00081030"]["Value"] == ["Abdomen"] and "00100040" in repeated[0]
    everything = http.get("/dicom-web/studies",
                          params={"PatientID": "QIDO-2", "includefield": "all"}).json()
    assert "00081030" in everything[0] and "00100010" in everything[0]
    assert http.get("/dicom-web/studies", params={"includefield": "NoSuchKeyword"}
                    ).status_code == 400


def test_limit_and_offset(http: httpx.Client, archive: dict[str, str]) -> None:
    everything = _uids(http.get("/dicom-web/studies", params={"PatientID": "QIDO-*"}).json())
    assert len(everything) == 2
    first = _uids(http.get("/dicom-web/studies",
                           params={"PatientID": "QIDO-*", "limit": 1}).json())
    second = _uids(http.get("/dicom-web/studies",
                            params={"PatientID": "QIDO-*", "limit": 1, "offset": 1}).json())
    assert first + second == everything
    assert http.get("/dicom-web/studies", params={"limit": "many"}).status_code == 400
    assert http.get("/dicom-web/studies", params={"offset": "-1"}).status_code == 400


def test_series_and_instances(http: httpx.Client, client: DICOMwebClient,
                              archive: dict[str, str]) -> None:
    series = client.search_for_series(archive["study1"])
    assert sorted(_uids(series, "0020000E")) == sorted([archive["ct"], archive["mr"]])
    ct = next(s for s in series if s["0020000E"]["Value"] == [archive["ct"]])
    assert ct["00201209"] == {"vr": "IS", "Value": [2]}  # NumberOfSeriesRelatedInstances
    assert ct["00080060"]["Value"] == ["CT"]
    assert ct["00081190"]["Value"][0].endswith(
        f"/studies/{archive['study1']}/series/{archive['ct']}")
    all_series = client.search_for_series(search_filters={"Modality": "US"})
    assert archive["us"] in _uids(all_series, "0020000E")
    instances = client.search_for_instances(archive["study1"], archive["ct"])
    assert len(instances) == 2
    for instance in instances:
        for key in ("00080016", "00080018", "00200013", "00280010", "00280011", "00280100"):
            assert key in instance, key
    assert len(client.search_for_instances(archive["study1"])) == 3
    assert len(client.search_for_instances(search_filters={"PatientID": "QIDO-2"})) == 1
    studies = client.search_for_studies(search_filters={"PatientID": "QIDO-1"})
    assert _uids(studies) == [archive["study1"]]


def test_ohif_request_set(http: httpx.Client, archive: dict[str, str]) -> None:
    """The requests OHIF v3 sends to list studies, series and open a series."""
    json_accept = {"Accept": "application/dicom+json"}
    base = ("/dicom-web/studies?limit=101&offset=0&fuzzymatching=false"
            "&includefield=00081030%2C00080060%2C00080090%2C00100030")
    studies = http.get(base, headers=json_accept)
    assert studies.status_code == 200
    assert archive["study1"] in _uids(studies.json())
    for answer in studies.json():
        for element in answer.values():  # an empty computed attribute crashes OHIF
            assert "Value" in element or element["vr"] not in ("CS", "IS"), answer
    one = http.get(f"{base}&StudyInstanceUID={archive['study1']}", headers=json_accept).json()
    assert _uids(one) == [archive["study1"]]
    assert one[0]["00081030"]["Value"] == ["Test study"]
    by_mrn = http.get(f"{base}&00100020=QIDO-2", headers=json_accept).json()
    assert _uids(by_mrn) == [archive["study2"]]
    series = http.get(f"/dicom-web/studies/{archive['study1']}/series?"
                      "includefield=00080021%2C00080031%2C0008103E%2C00200011",
                      headers=json_accept)
    assert series.status_code == 200 and len(series.json()) == 2
    metadata = http.get(f"/dicom-web/studies/{archive['study1']}/series/{archive['ct']}"
                        "/metadata", headers=json_accept)
    assert metadata.status_code == 200 and len(metadata.json()) == 2


def test_not_acceptable_and_bad_keys(http: httpx.Client) -> None:
    assert http.get("/dicom-web/studies", headers={"Accept": "image/png"}).status_code == 400
    assert http.get("/dicom-web/studies", headers={
        "Accept": "application/dicom+json;q=0, image/png"}).status_code == 400
    assert http.get("/dicom-web/studies", headers={
        "Accept": "text/html, */*;q=0.1"}).status_code == 200
    # JSON is always typed application/dicom+json, as Orthanc's plugin types it.
    assert http.get("/dicom-web/studies", headers={"Accept": "application/json"}
                    ).headers["content-type"] == "application/dicom+json"
    assert http.get("/dicom-web/studies", params={"NotAKeyword": "x"}).status_code == 400
    assert http.get("/dicom-web/studies", params={"00400275.00321060": "x"}).status_code == 400


def test_gzip_when_accepted(http: httpx.Client, archive: dict[str, str]) -> None:
    with httpx.Client(base_url=str(http.base_url), timeout=30) as plain:
        compressed = plain.get("/dicom-web/studies", params={"PatientID": "QIDO-*"},
                               headers={"Accept-Encoding": "gzip"})
        assert compressed.headers.get("content-encoding") == "gzip"
        assert len(compressed.json()) == 2  # httpx inflates it
        identity = plain.get("/dicom-web/studies", params={"PatientID": "QIDO-*"},
                             headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in identity.headers
