"""Modification as Orthanc 1.11.3+ runs it: parents' main tags rebuilt from the results,
patient tags changed through a study only when that cannot split a patient, ``Force``
lifting the per-level identifier checks, resources of any level behind a route."""

from __future__ import annotations

from pydicom.uid import generate_uid

from tests.helpers import LiveServer, make_dicom


def _upload(client, **kwargs) -> dict:  # noqa: ANN001 — an httpx.Client
    answer = client.post("/instances", content=make_dicom(**kwargs))
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_parents_main_tags_follow_the_modified_instances(server: LiveServer) -> None:
    with server.client() as client:
        source = _upload(client, patient_id="RECON1", StudyDescription="Before")
        modified = client.post(f"/studies/{source['ParentStudy']}/modify", json={
            "Replace": {"StudyDescription": "hello", "SeriesDescription": "world",
                        "SOPInstanceUID": "1.2.3.999"},
            "Keep": ["StudyInstanceUID", "SeriesInstanceUID"], "Force": True})
        assert modified.status_code == 200, modified.text
        assert modified.json()["ID"] == source["ParentStudy"]  # same study, a new instance
        assert modified.json()["ParentResources"] == [source["ParentStudy"]]
        study = client.get(f"/studies/{source['ParentStudy']}").json()
        assert study["MainDicomTags"]["StudyDescription"] == "hello"
        series = client.get(f"/series/{source['ParentSeries']}").json()
        assert series["MainDicomTags"]["SeriesDescription"] == "world"
        assert len(series["Instances"]) == 2


def test_series_route_accepts_a_study_id(server: LiveServer) -> None:
    with server.client() as client:
        study_uid = generate_uid()
        first = _upload(client, patient_id="RECON2", study_uid=study_uid)
        modified = client.post(f"/series/{first['ParentStudy']}/modify", json={
            "Replace": {"SeriesDescription": "TOTO", "SeriesInstanceUID": "1.2.3.1000",
                        "StudyInstanceUID": study_uid}, "Force": True})
        assert modified.status_code == 200, modified.text
        answer = modified.json()
        assert answer["Type"] == "Series" and answer["ParentResources"] == [first["ParentStudy"]]
        series = client.get(f"/series/{answer['ID']}").json()
        assert series["MainDicomTags"]["SeriesDescription"] == "TOTO"
        assert series["ParentStudy"] == first["ParentStudy"]
        assert client.post("/series/nope/modify", json={}).status_code == 404


def test_patient_tags_through_a_study(server: LiveServer) -> None:
    with server.client() as client:
        one = _upload(client, patient_id="RECON3", patient_name="Test", PatientSex="M",
                      PatientBirthDate="19000101")
        _upload(client, patient_id="RECON3", patient_name="Test", PatientSex="M",
                PatientBirthDate="19000101")  # a second study of the same patient
        lonely = _upload(client, patient_id="RECON3B", patient_name="Alone")

        def modify(study: str, replace: dict, **extra: object) -> int:
            return client.post(f"/studies/{study}/modify", json={
                "Replace": replace, "Force": True, **extra}).status_code

        # the patient has another study: renaming it from one study would split it
        assert modify(one["ParentStudy"], {"PatientName": "TOTO"}) == 400
        # attaching a study to an existing patient needs all of its tags, with its values
        assert modify(lonely["ParentStudy"], {"PatientID": "RECON3"}) == 400
        full = {"PatientID": "RECON3", "PatientName": "Test", "PatientBirthDate": "19000101",
                "PatientSex": "F"}
        assert modify(lonely["ParentStudy"], full) == 400
        assert modify(lonely["ParentStudy"], {**full, "PatientSex": "M",
                                              "OtherPatientIDs": "X"}) == 400
        assert modify(lonely["ParentStudy"], {**full, "PatientSex": "M"},
                      KeepSource=False) == 200
        patient = client.get(f"/patients/{one['ParentPatient']}").json()
        assert len(patient["Studies"]) == 3 and patient["MainDicomTags"]["PatientName"] == "Test"
        # a patient's only study may change every patient tag
        alone = _upload(client, patient_id="RECON3C", patient_name="Before")
        assert modify(alone["ParentStudy"], {"PatientName": "After"}, KeepSource=False,
                      Keep=["StudyInstanceUID"]) == 200
        renamed = client.get(f"/patients/{alone['ParentPatient']}").json()
        assert renamed["MainDicomTags"]["PatientName"] == "After"


def test_force_renames_a_patient_without_new_patient_id(server: LiveServer) -> None:
    with server.client() as client:
        first = _upload(client, patient_id="RECON4", patient_name="Test")
        _upload(client, patient_id="RECON4", patient_name="Test")
        patient = first["ParentPatient"]
        # without Force, a patient modification must give a new PatientID
        assert client.post(f"/patients/{patient}/modify", json={
            "Replace": {"PatientName": "TOTO"}}).status_code == 400
        answer = client.post(f"/patients/{patient}/modify", json={
            "Replace": {"PatientName": "TOTO"}, "Force": True, "KeepSource": False})
        assert answer.status_code == 200, answer.text
        renamed = client.get(f"/patients/{answer.json()['ID']}").json()
        assert renamed["ID"] == patient
        assert renamed["MainDicomTags"]["PatientName"] == "TOTO"
        assert len(renamed["Studies"]) == 2
        for study in renamed["Studies"]:
            assert client.get(f"/studies/{study}").json()[
                "PatientMainDicomTags"]["PatientName"] == "TOTO"
