"""Store and browse through a live server, as an Orthanc user would with curl."""

from __future__ import annotations

import io
import zipfile

from pydicom.uid import generate_uid

from app.dicom.identifiers import ResourceIds
from tests.helpers import make_dicom


def test_store_answers_like_orthanc_and_ids_are_orthancs(server):
    study, series, sop = generate_uid(), generate_uid(), generate_uid()
    data = make_dicom(patient_id="P-STORE", study_uid=study, series_uid=series, sop_uid=sop)
    ids = ResourceIds.compute("P-STORE", study, series, sop)
    with server.client() as http:
        first = http.post("/instances", content=data)
        assert first.status_code == 200
        assert first.json() == {"ID": ids.instance, "ParentPatient": ids.patient,
                                "ParentStudy": ids.study, "ParentSeries": ids.series,
                                "Path": f"/instances/{ids.instance}", "Status": "Success"}
        again = http.post("/instances", content=data)
        assert again.json()["Status"] == "AlreadyStored"
        instance = http.get(f"/instances/{ids.instance}").json()
        assert instance["ParentSeries"] == ids.series
        assert instance["MainDicomTags"]["SOPInstanceUID"] == sop
        assert instance["IndexInSeries"] == 1
        assert instance["FileSize"] == len(data)
        study_json = http.get(f"/studies/{ids.study}").json()
        assert study_json["PatientMainDicomTags"] == {
            "PatientBirthDate": "19700101", "PatientID": "P-STORE", "PatientName": "DOE^JOHN",
            "PatientSex": "M"}
        assert study_json["Series"] == [ids.series]
        assert http.get(f"/instances/{ids.instance}/file").content == data
        assert http.get(f"/instances/{ids.instance}/patient").json()["ID"] == ids.patient
        assert [s["ID"] for s in http.get(f"/patients/{ids.patient}/series").json()] == [ids.series]


def test_zip_upload_stores_every_file(server):
    study = generate_uid()
    files = [make_dicom(patient_id="P-ZIP", study_uid=study, instance_number=i) for i in range(3)]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for i, data in enumerate(files):
            archive.writestr(f"dir/file{i}.dcm", data)
        archive.writestr("DICOMDIR", b"not really a dicomdir")
    with server.client() as http:
        answer = http.post("/instances", content=buffer.getvalue())
        assert answer.status_code == 200, answer.text
        assert [a["Status"] for a in answer.json()] == ["Success"] * 3


def test_delete_cascades_and_reports_remaining_ancestor(server):
    study, series = generate_uid(), generate_uid()
    with server.client() as http:
        first = http.post("/instances", content=make_dicom(
            patient_id="P-DEL", study_uid=study, series_uid=series, instance_number=1)).json()
        second = http.post("/instances", content=make_dicom(
            patient_id="P-DEL", study_uid=study, series_uid=series, instance_number=2)).json()
        answer = http.delete(f"/instances/{first['ID']}").json()
        assert answer == {"RemainingAncestor": {"ID": first["ParentSeries"],
                                                "Path": f"/series/{first['ParentSeries']}",
                                                "Type": "Series"}}
        assert http.get(f"/instances/{first['ID']}").status_code == 404
        answer = http.delete(f"/instances/{second['ID']}").json()
        assert answer == {"RemainingAncestor": None}
        for path in (f"/series/{first['ParentSeries']}", f"/studies/{first['ParentStudy']}",
                     f"/patients/{first['ParentPatient']}"):
            assert http.get(path).status_code == 404


def test_unknown_resource_is_an_orthanc_error(server):
    with server.client() as http:
        answer = http.get("/studies/00000000-00000000-00000000-00000000-00000000")
        assert answer.status_code == 404
        assert answer.json()["OrthancStatus"] == 17
        assert answer.json()["Method"] == "GET"
