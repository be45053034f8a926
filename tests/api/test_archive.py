"""Study archives and DICOM media, streamed as ZIPs."""

from __future__ import annotations

import io
import shutil
import subprocess
import zipfile

import pydicom
import pytest
from pydicom.fileset import FileSet
from pydicom.uid import generate_uid

from tests.helpers import make_dicom


@pytest.fixture(scope="module")
def study(server):
    study_uid = generate_uid()
    files = {}
    with server.client() as http:
        for series_number, modality in ((1, "CT"), (2, "MR")):
            series_uid = generate_uid()
            for number in (1, 2, 3):
                data = make_dicom(patient_id="ARCH-1", patient_name="ZIP^ME", study_uid=study_uid,
                                  series_uid=series_uid, instance_number=number, modality=modality,
                                  SeriesNumber=series_number,
                                  SeriesDescription=f"Series ({modality})")
                stored = http.post("/instances", content=data).json()
                files[stored["ID"]] = data
    return stored["ParentStudy"], files


def test_study_archive_has_orthanc_folders_and_the_stored_bytes(server, study):
    study_id, files = study
    with server.client() as http:
        answer = http.get(f"/studies/{study_id}/archive")
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "application/zip"
        archive = zipfile.ZipFile(io.BytesIO(answer.content))
        assert archive.testzip() is None
        names = sorted(archive.namelist())
        assert names[0] == "ARCH-1 ZIPME/ACC1 Test study/CT Series CT/CT000000.dcm"
        assert len(names) == 6
        assert sorted(archive.read(n) for n in names) == sorted(files.values())
        named = http.get(f"/studies/{study_id}/archive?filename=mine.zip")
        assert 'filename="mine.zip"' in named.headers["content-disposition"]


def test_media_has_a_valid_dicomdir(server, study, tmp_path):
    study_id, files = study
    with server.client() as http:
        answer = http.get(f"/studies/{study_id}/media")
        assert answer.status_code == 200
    zipfile.ZipFile(io.BytesIO(answer.content)).extractall(tmp_path)
    fileset = FileSet(pydicom.dcmread(tmp_path / "DICOMDIR"))
    assert len(fileset) == 6
    for instance in fileset:
        assert instance.path and (tmp_path / instance.path).read_bytes() in files.values()
    if shutil.which("dcmdump"):
        subprocess.run(["dcmdump", str(tmp_path / "DICOMDIR")], check=True, capture_output=True)


def test_create_archive_of_several_resources(server, study):
    study_id, _ = study
    with server.client() as http:
        series = http.get(f"/studies/{study_id}").json()["Series"]
        answer = http.post("/tools/create-archive", json={"Resources": series[:1]})
        assert len(zipfile.ZipFile(io.BytesIO(answer.content)).namelist()) == 3
        media = http.post("/tools/create-media", json=series)
        assert "DICOMDIR" in zipfile.ZipFile(io.BytesIO(media.content)).namelist()
        assert http.post("/tools/create-archive", json={"Resources": ["nope"]}).status_code == 404
        assert http.get("/studies/unknown/archive").status_code == 404
