"""Overwriting instances and modifying in place, as Orthanc does (issue 13).

* ``OverwriteInstances: true``: re-sending an instance replaces it as if it had been
  deleted then stored: its index entries (main tags, DICOM JSON, metadata), and those of
  the parents it leaves empty, come from the new file; the old file is removed; the
  changes of the deleted resources go with them and the new ones are logged.
* A modification that keeps every identifier (``Keep`` the three UIDs) replaces the
  instances in place, then rebuilds the parents' tags from the new files; with
  ``OverwriteInstances: false`` it is refused (400), never a silent 200.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from pydicom.uid import generate_uid

from tests.helpers import LiveServer, live_server, make_dicom


@pytest.fixture(scope="module")
def overwriting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("overwrite"),
                     {"OverwriteInstances": True, "StableAge": 1}) as live:
        yield live


@pytest.fixture(scope="module")
def keeping(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("no-overwrite"),
                     {"OverwriteInstances": False}) as live:
        yield live


def _drop(client: httpx.Client) -> None:
    for patient in client.get("/patients").json():
        client.delete(f"/patients/{patient}")
    client.delete("/changes")


def test_overwrite_updates_index_and_removes_old_file(overwriting: LiveServer) -> None:
    uids = {"study_uid": generate_uid(), "series_uid": generate_uid(), "sop_uid": generate_uid()}
    with overwriting.client() as http:
        _drop(http)
        first = http.post("/instances", content=make_dicom(
            **uids, StudyDescription="BEFORE", SeriesDescription="OLD SERIES",
            InstitutionName="OLD HOSPITAL")).json()
        assert first["Status"] == "Success"
        assert len(overwriting.blob_keys()) == 1
        old_seqs = {c["Seq"] for c in http.get("/changes").json()["Changes"]}
        second = http.post("/instances", content=make_dicom(
            **uids, StudyDescription="AFTER", SeriesDescription="NEW SERIES",
            InstitutionName="NEW HOSPITAL")).json()
        assert second["Status"] == "Success"
        assert second["ID"] == first["ID"] and second["ParentStudy"] == first["ParentStudy"]

        study = http.get(f"/studies/{first['ParentStudy']}").json()
        assert study["MainDicomTags"]["StudyDescription"] == "AFTER"
        assert study["MainDicomTags"]["InstitutionName"] == "NEW HOSPITAL"
        series = http.get(f"/series/{first['ParentSeries']}").json()
        assert series["MainDicomTags"]["SeriesDescription"] == "NEW SERIES"
        assert series["Instances"] == [first["ID"]]
        found = http.post("/tools/find", json={"Level": "Study",
                                               "Query": {"StudyDescription": "AFTER"}}).json()
        assert found == [first["ParentStudy"]]
        assert http.post("/tools/find", json={"Level": "Study", "Query": {
            "StudyDescription": "BEFORE"}}).json() == []
        tags = http.get(f"/instances/{first['ID']}/simplified-tags").json()
        assert tags["InstitutionName"] == "NEW HOSPITAL"
        qido = http.get("/dicom-web/studies", params={"StudyDescription": "AFTER"}).json()
        assert len(qido) == 1
        metadata = http.get(f"/dicom-web/studies/{uids['study_uid']}/metadata").json()
        assert metadata[0]["00080080"]["Value"] == ["NEW HOSPITAL"]
        # The old file is gone, the new one is served.
        assert len(overwriting.blob_keys()) == 1
        assert b"NEW HOSPITAL" in http.get(f"/instances/{first['ID']}/file").content
        # The changes of the replaced resources went with them; the new ones are logged.
        changes = http.get("/changes").json()["Changes"]
        assert not old_seqs & {c["Seq"] for c in changes}
        # (Stable* changes follow when the run is slower than StableAge: not checked.)
        assert [c["ChangeType"] for c in changes if not c["ChangeType"].startswith(
            "Stable")] == ["NewInstance", "NewSeries", "NewStudy", "NewPatient"]
        assert http.get("/statistics").json()["CountInstances"] == 1


def test_overwrite_in_a_larger_series_keeps_the_parents(overwriting: LiveServer) -> None:
    """Orthanc only re-creates the parents an overwrite leaves empty: the series of an
    overwritten instance that has other instances keeps its tags (and its ID)."""
    study_uid, series_uid = generate_uid(), generate_uid()
    sops = [generate_uid() for _ in range(3)]
    with overwriting.client() as http:
        _drop(http)
        for number, sop in enumerate(sops, 1):
            http.post("/instances", content=make_dicom(
                study_uid=study_uid, series_uid=series_uid, sop_uid=sop,
                instance_number=number, ImageComments="first")).raise_for_status()
        again = http.post("/instances", content=make_dicom(
            study_uid=study_uid, series_uid=series_uid, sop_uid=sops[1], instance_number=2,
            ImageComments="second", SeriesDescription="IGNORED")).json()
        assert again["Status"] == "Success"
        series = http.get(f"/series/{again['ParentSeries']}").json()
        assert len(series["Instances"]) == 3
        assert series["MainDicomTags"]["SeriesDescription"] == "Test series"
        tags = http.get(f"/instances/{again['ID']}/simplified-tags").json()
        assert tags["ImageComments"] == "second"
        assert len(overwriting.blob_keys()) == 3


def _in_place(**extra: object) -> dict:
    return {"Replace": {"StudyDescription": "FIXED", "SeriesDescription": "FIXED SERIES"},
            "Keep": ["StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"],
            "Force": True, **extra}


def _upload_study(http: httpx.Client, series: int = 2, per_series: int = 2) -> str:
    study_uid = generate_uid()
    study = ""
    for _ in range(series):
        series_uid = generate_uid()
        for i in range(per_series):
            study = http.post("/instances", content=make_dicom(
                study_uid=study_uid, series_uid=series_uid, instance_number=i + 1,
                StudyDescription="WRONG")).json()["ParentStudy"]
    return study


def test_modify_in_place_rebuilds_the_index(overwriting: LiveServer) -> None:
    with overwriting.client() as http:
        _drop(http)
        study = _upload_study(http)
        before = sorted(http.get(f"/studies/{study}/instances").json(), key=lambda i: i["ID"])
        answer = http.post(f"/studies/{study}/modify", json=_in_place())
        assert answer.status_code == 200, answer.text
        assert answer.json()["ID"] == study
        after = sorted(http.get(f"/studies/{study}/instances").json(), key=lambda i: i["ID"])
        assert [i["ID"] for i in after] == [i["ID"] for i in before]
        assert http.get(f"/studies/{study}").json()["MainDicomTags"]["StudyDescription"] \
            == "FIXED"
        for series in http.get(f"/studies/{study}/series").json():
            assert series["MainDicomTags"]["SeriesDescription"] == "FIXED SERIES"
            assert len(series["Instances"]) == 2
        found = http.post("/tools/find", json={"Level": "Study",
                                               "Query": {"StudyDescription": "FIXED"}}).json()
        assert found == [study]
        assert len(overwriting.blob_keys()) == 4  # the old files are gone
        for instance in after:
            assert b"FIXED SERIES" in http.get(f"/instances/{instance['ID']}/file").content
        kinds = [c["ChangeType"] for c in http.get("/changes?limit=1000").json()["Changes"]]
        assert "ModifiedStudy" in kinds
        # KeepSource false would delete the results with their sources: refused.
        refused = http.post(f"/studies/{study}/modify", json=_in_place(KeepSource=False))
        assert refused.status_code == 400
        assert "KeepSource" in refused.json()["Details"]


def test_bulk_modify_in_place(overwriting: LiveServer) -> None:
    with overwriting.client() as http:
        _drop(http)
        study = _upload_study(http, series=1, per_series=3)
        answer = http.post("/tools/bulk-modify", json=_in_place(Resources=[study],
                                                                Level="Study"))
        assert answer.status_code == 200, answer.text
        assert http.get(f"/studies/{study}").json()["MainDicomTags"]["StudyDescription"] \
            == "FIXED"
        assert len(http.get(f"/studies/{study}/instances").json()) == 3
        assert len(overwriting.blob_keys()) == 3


def test_modify_in_place_without_overwrite_is_an_error(keeping: LiveServer) -> None:
    with keeping.client() as http:
        study = _upload_study(http, series=1, per_series=1)
        for route, body in ((f"/studies/{study}/modify", _in_place()),
                            ("/tools/bulk-modify", _in_place(Resources=[study],
                                                             Level="Study"))):
            answer = http.post(route, json=body)
            assert answer.status_code == 400, answer.text
            assert "OverwriteInstances" in answer.json()["Details"]
        series = http.get(f"/studies/{study}/series").json()[0]
        # A series-level modification keeping its UIDs cannot succeed either.
        answer = http.post(f"/series/{series['ID']}/modify", json={
            "Replace": {"SeriesDescription": "X"}, "Force": True,
            "Keep": ["SeriesInstanceUID", "SOPInstanceUID"]})
        assert answer.status_code == 400, answer.text
        assert http.get(f"/studies/{study}").json()["MainDicomTags"]["StudyDescription"] \
            == "WRONG"
