"""Study archives and DICOM media, streamed as ZIPs."""

from __future__ import annotations

import io
import shutil
import subprocess
import time
import zipfile

import numpy as np
import pydicom
import pytest
from pydicom.fileset import FileSet
from pydicom.uid import generate_uid

from app import orthanc_api_at_least
from tests.helpers import make_dicom


@pytest.fixture(scope="module")
def study_files() -> list[bytes]:
    study_uid, series_uid = generate_uid(), generate_uid()
    return [make_dicom(study_uid=study_uid, series_uid=series_uid, instance_number=n)
            for n in (1, 2)]


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
                                  SeriesDescription=f"Series ({modality})",
                                  size=32,  # openjpeg needs 32 pixels for its 6 resolutions
                                  pixels=(np.arange(1024, dtype="<u2") * 3 + number).tobytes())
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
        # Orthanc's names (app.services.archive.archive_layout), as of the version we answer as
        assert names[0] == (
            "ARCH-1 - ZIP^ME/ACC1 - Test study/1 - CT - Series (CT)/CT000001.dcm"
            if orthanc_api_at_least(1, 13, 0) else
            "ARCH-1 ZIPME/ACC1 Test study/CT Series CT/CT000000.dcm")
        assert len(names) == 6
        assert sorted(archive.read(n) for n in names) == sorted(files.values())
        named = http.get(f"/studies/{study_id}/archive?filename=mine.zip")
        assert 'filename="mine.zip"' in named.headers["content-disposition"]


def test_media_has_a_valid_dicomdir(server, study, tmp_path):
    """Orthanc's media: IMAGES/IM0, IMAGES/IM1... and a DICOMDIR (last) whose records
    point at them; ?extended adds the series descriptions."""
    study_id, files = study
    with server.client() as http:
        answer = http.get(f"/studies/{study_id}/media")
        assert answer.status_code == 200
        extended = http.get(f"/studies/{study_id}/media?extended")
    archive = zipfile.ZipFile(io.BytesIO(answer.content))
    assert archive.namelist() == [f"IMAGES/IM{i}" for i in range(6)] + ["DICOMDIR"]
    archive.extractall(tmp_path)
    dicomdir = pydicom.dcmread(tmp_path / "DICOMDIR")
    assert dicomdir.FileSetID == "ORTHANC_MEDIA"
    records = {r.DirectoryRecordType: r for r in reversed(dicomdir.DirectoryRecordSequence)}
    assert records["PATIENT"].PatientID == "ARCH-1" and records["SERIES"].Modality == "CT"
    assert records["IMAGE"].ReferencedFileID == ["IMAGES", "IM0"]
    assert "SeriesDescription" not in records["SERIES"]
    fileset = FileSet(dicomdir)
    assert len(fileset) == 6
    for instance in fileset:
        assert instance.path and (tmp_path / instance.path).read_bytes() in files.values()
    if shutil.which("dcmdump"):
        subprocess.run(["dcmdump", str(tmp_path / "DICOMDIR")], check=True, capture_output=True)
    series = [r for r in pydicom.dcmread(io.BytesIO(zipfile.ZipFile(io.BytesIO(
        extended.content)).read("DICOMDIR"))).DirectoryRecordSequence
        if r.DirectoryRecordType == "SERIES"]
    assert sorted(r.SeriesDescription for r in series) == ["Series (CT)", "Series (MR)"]


def test_media_archive_size_and_deleted_outputs(tmp_path, study_files):
    """MediaArchiveSize outputs are kept (Orthanc's default: 1): a finished job makes the
    older outputs unavailable; DELETE /jobs/{id}/archive removes one, the job stays."""
    from tests.helpers import live_server
    for size in (1, 2):
        with live_server(tmp_path / str(size), {"MediaArchiveSize": size}) as live, \
                live.client() as http:
            stored = [http.post("/instances", content=data).json() for data in study_files]
            jobs = []
            for kind in ("archive", "media"):
                job_id = http.post(f"/studies/{stored[0]['ParentStudy']}/{kind}",
                                   json={"Synchronous": False}).json()["ID"]
                assert _wait_for_job(http, job_id)["State"] == "Success"
                jobs.append(job_id)
            first = http.get(f"/jobs/{jobs[0]}/archive")
            assert first.status_code == (404 if size == 1 else 200)
            assert http.get(f"/jobs/{jobs[1]}/archive").status_code == 200
            assert http.delete(f"/jobs/{jobs[1]}/archive").status_code == 200
            assert http.get(f"/jobs/{jobs[1]}/archive").status_code == 404
            assert http.delete(f"/jobs/{jobs[1]}/archive").status_code == 404
            assert http.get(f"/jobs/{jobs[1]}").json()["State"] == "Success"


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


def _wait_for_job(http, job_id: str) -> dict:
    for _ in range(600):
        job = http.get(f"/jobs/{job_id}").json()
        if job["State"] in ("Success", "Failure"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish: {job}")


@pytest.mark.parametrize("route,kind", [("archive", "Archive"), ("media", "Media")])
def test_asynchronous_archive_job_and_its_output(server, study, route, kind):
    study_id, files = study
    with server.client() as http:
        answer = http.post(f"/studies/{study_id}/{route}", json={"Asynchronous": True})
        assert answer.status_code == 200
        job_id = answer.json()["ID"]
        assert answer.json()["Path"] == f"/jobs/{job_id}"
        job = _wait_for_job(http, job_id)
        assert job["Type"] == kind and job["State"] == "Success", job
        content = job["Content"]
        assert content["Description"] == "REST API" and content["InstancesCount"] == 6
        output = http.get(f"/jobs/{job_id}/archive")
        assert output.status_code == 200
        assert output.headers["content-type"] == "application/zip"
        assert 'filename="archive.zip"' in output.headers["content-disposition"]
        assert int(content["ArchiveSize"]) == len(output.content)
        archive = zipfile.ZipFile(io.BytesIO(output.content))
        assert archive.testzip() is None
        dicoms = [n for n in archive.namelist() if n != "DICOMDIR"]
        assert sorted(archive.read(n) for n in dicoms) == sorted(files.values())
        assert ("DICOMDIR" in archive.namelist()) == (route == "media")


def test_batch_jobs_filename_and_missing_outputs(server, study):
    study_id, _ = study
    with server.client() as http:
        series = http.get(f"/studies/{study_id}").json()["Series"]
        job_id = http.post("/tools/create-archive", json={
            "Resources": series[:1], "Asynchronous": True, "Filename": "one.zip"}).json()["ID"]
        assert _wait_for_job(http, job_id)["Content"]["InstancesCount"] == 3
        output = http.get(f"/jobs/{job_id}/archive")
        assert 'filename="one.zip"' in output.headers["content-disposition"]
        assert len(zipfile.ZipFile(io.BytesIO(output.content)).namelist()) == 3
        media = http.post("/tools/create-media", json={"Resources": series,
                                                      "Synchronous": False}).json()["ID"]
        assert _wait_for_job(http, media)["Type"] == "Media"
        assert "DICOMDIR" in zipfile.ZipFile(
            io.BytesIO(http.get(f"/jobs/{media}/archive").content)).namelist()
        assert http.get("/jobs/nope/archive").status_code == 404
        assert http.post("/tools/create-archive", json={
            "Resources": ["nope"], "Asynchronous": True}).status_code == 404
        # A job of another kind has no such output.
        modified = http.post(f"/studies/{study_id}/modify", json={
            "Replace": {"StudyDescription": "x"}, "Asynchronous": True}).json()["ID"]
        _wait_for_job(http, modified)
        assert http.get(f"/jobs/{modified}/archive").status_code == 404


def test_post_synchronous_forms_answer_the_zip(server, study):
    study_id, files = study
    with server.client() as http:
        for body in ({}, {"Synchronous": True}, {"Asynchronous": False}):
            answer = http.post(f"/studies/{study_id}/archive", json=body)
            assert answer.status_code == 200 and answer.headers["content-type"] == "application/zip"
            assert f'filename="{study_id}.zip"' in answer.headers["content-disposition"]
            assert len(zipfile.ZipFile(io.BytesIO(answer.content)).namelist()) == 6
        named = http.post(f"/studies/{study_id}/media", json={"Filename": "cd.zip"})
        assert 'filename="cd.zip"' in named.headers["content-disposition"]
        assert "DICOMDIR" in zipfile.ZipFile(io.BytesIO(named.content)).namelist()
        assert http.post(f"/studies/{study_id}/archive",
                         json={"Synchronous": "yes"}).status_code == 400
        assert http.post("/studies/unknown/archive", json={}).status_code == 404


def _members(content: bytes) -> list[pydicom.Dataset]:
    archive = zipfile.ZipFile(io.BytesIO(content))
    return [pydicom.dcmread(io.BytesIO(archive.read(n))) for n in sorted(archive.namelist())
            if n != "DICOMDIR"]


@pytest.mark.parametrize("syntax", [
    "1.2.840.10008.1.2", "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.2",
    "1.2.840.10008.1.2.5", "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.57",
    "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.80"])
def test_lossless_transcoding_keeps_the_pixels(server, study, syntax):
    study_id, files = study
    originals = {ds.SOPInstanceUID: ds.pixel_array
                 for ds in (pydicom.dcmread(io.BytesIO(f)) for f in files.values())}
    with server.client() as http:
        answer = http.get(f"/studies/{study_id}/archive?transcode={syntax}")
        assert answer.status_code == 200
        members = _members(answer.content)
        assert len(members) == 6
        for ds in members:
            assert ds.file_meta.TransferSyntaxUID == syntax
            assert np.array_equal(ds.pixel_array, originals[ds.SOPInstanceUID])


def test_transcoding_corpus_files_in_async_media(fresh_server, corpus, tmp_path):
    """Compressed sources (JPEG, JPEG-LS, J2K, RLE) decoded and written as J2K lossless."""
    sources = ["1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.80",
               "1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.5"]
    lossy: set[str] = set()
    with fresh_server.client() as http:
        ids, expected = [], {}
        for name in sources:
            data = (corpus / "TransferSyntaxes" / f"{name}.dcm").read_bytes()
            ids.append(http.post("/instances", content=data).json()["ID"])
            ds = pydicom.dcmread(io.BytesIO(data))
            expected[ds.SOPInstanceUID] = ds.pixel_array
            if name == "1.2.840.10008.1.2.4.50":
                lossy.add(ds.SOPInstanceUID)
        job_id = http.post("/tools/create-media", json={
            "Resources": ids, "Asynchronous": True,
            "Transcode": "1.2.840.10008.1.2.4.90"}).json()["ID"]
        job = _wait_for_job(http, job_id)
        assert job["State"] == "Success" and job["Content"]["Transcode"] == "1.2.840.10008.1.2.4.90"
        zipfile.ZipFile(io.BytesIO(http.get(f"/jobs/{job_id}/archive").content)).extractall(tmp_path)
    fileset = FileSet(pydicom.dcmread(tmp_path / "DICOMDIR"))
    assert len(fileset) == len(sources)
    for instance in fileset:
        ds = instance.load()
        assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.90"
        assert instance.ReferencedTransferSyntaxUIDInFile == "1.2.840.10008.1.2.4.90"
        # The lossy JPEG source decodes as DCMTK decodes it (libjpeg's YCbCr conversion,
        # from which pydicom's differs by a unit here and there); the others exactly.
        difference = np.abs(ds.pixel_array.astype(int) - expected[ds.SOPInstanceUID].astype(int))
        assert difference.max() <= (2 if ds.SOPInstanceUID in lossy else 0)


def test_lossy_transcoding_and_refused_targets(server, study):
    study_id, _ = study
    with server.client() as http:
        series = http.get(f"/studies/{study_id}").json()["Series"][0]
        stored = {i["MainDicomTags"]["SOPInstanceUID"]
                  for i in http.get(f"/series/{series}/instances").json()}
        # Lossy targets (JPEG 2000, near-lossless JPEG-LS): a new SOP Instance UID each
        # (as Orthanc's transcoder gives), the loss recorded.
        for syntax in ("1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.4.81"):
            answer = http.post(f"/series/{series}/archive", json={"Transcode": syntax})
            for ds in _members(answer.content):
                assert ds.file_meta.TransferSyntaxUID == syntax
                assert ds.LossyImageCompression == "01" and ds.pixel_array.shape == (32, 32)
                assert ds.SOPInstanceUID not in stored
        # 12-bit lossy JPEG cannot be written: the files are archived as they are stored.
        kept = _members(http.get(f"/series/{series}/archive?transcode=1.2.840.10008.1.2.4.51")
                        .content)
        assert {ds.file_meta.TransferSyntaxUID for ds in kept} == {"1.2.840.10008.1.2.1"}
        # A syntax without an encoder: a clear 400 before any byte is streamed.
        refused = http.get(f"/series/{series}/archive?transcode=1.2.840.10008.1.2.4.100")
        assert refused.status_code == 400 and "supported targets" in refused.json()["Details"]
        assert http.get(f"/series/{series}/archive?transcode=1.2.3").status_code == 400
        assert http.post("/tools/create-archive", json={
            "Resources": [series], "Transcode": 12}).status_code == 400


def test_jpeg_baseline_transcoding_of_8_bit_images(fresh_server, corpus):
    data = (corpus / "TransferSyntaxes" / "1.2.840.10008.1.2.1.dcm").read_bytes()
    original = pydicom.dcmread(io.BytesIO(data))
    with fresh_server.client() as http:
        instance = http.post("/instances", content=data).json()
        answer = http.get(f"/series/{instance['ParentSeries']}/archive",
                          params={"transcode": "1.2.840.10008.1.2.4.50"})
    (ds,) = _members(answer.content)
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.50"
    assert ds.PhotometricInterpretation == "YBR_FULL_422" and ds.LossyImageCompression == "01"
    error = np.abs(ds.pixel_array.astype(int) - original.pixel_array.astype(int))
    assert error.mean() < 3  # lossy, but the same picture
