"""Modify and anonymize on a live Pharos: re-identification checks on the stored bytes,
hierarchy and UID consistency, asynchronous runs, transcoding, bad input."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

from app import ORTHANC_API_VERSION, orthanc_api_at_least
from app.dicom.anonymize import default_version
from tests.helpers import LiveServer, live_server, make_dicom

SECRETS = ["SECRET^NAME", "SECRETID", "19551231", "SECRET HOSPITAL"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("pharos-modify")) as live:
        yield live


def _identified_study(client: httpx.Client, series_count: int = 2,
                      per_series: int = 3) -> tuple[str, list[bytes]]:
    study_uid = generate_uid()
    frame_uid = generate_uid()
    files = []
    sop_uids = [generate_uid() for _ in range(series_count * per_series)]
    for s in range(series_count):
        series_uid = generate_uid()
        for i in range(per_series):
            nested = Dataset()
            nested.PatientName = "SECRET^NAME"
            nested.PatientID = "SECRETID"
            nested.CodeValue = "X"
            reference = Dataset()
            reference.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
            reference.ReferencedSOPInstanceUID = sop_uids[0]
            index = s * per_series + i
            data = make_dicom(
                patient_id="SECRETID", patient_name="SECRET^NAME", study_uid=study_uid,
                series_uid=series_uid, sop_uid=sop_uids[index], instance_number=i + 1,
                PatientBirthDate="19551231", InstitutionName="SECRET HOSPITAL",
                FrameOfReferenceUID=frame_uid,
                ProcedureCodeSequence=Sequence([nested]),
                ReferencedImageSequence=Sequence([reference]))
            ds = pydicom.dcmread(io.BytesIO(data))
            block = ds.private_block(0x0009, "ACME", create=True)
            block.add_new(0x01, "LO", "SECRETID in a private tag")
            buffer = io.BytesIO()
            ds.save_as(buffer, enforce_file_format=True)
            files.append(buffer.getvalue())
    study = None
    for data in files:
        answer = client.post("/instances", content=data)
        assert answer.status_code == 200, answer.text
        study = answer.json()["ParentStudy"]
    assert study is not None
    return study, files


def _files_of(client: httpx.Client, level: str, public_id: str) -> list[bytes]:
    return [client.get(f"/instances/{i['ID']}/file").content
            for i in client.get(f"/{level}/{public_id}/instances").json()]


def test_anonymized_study_keeps_no_identity_anywhere(server: LiveServer) -> None:
    with server.client() as client:
        study, originals = _identified_study(client)
        answer = client.post(f"/studies/{study}/anonymize", json={})
        assert answer.status_code == 200, answer.text
        new = answer.json()
        assert new["Type"] == "Study" and new["Path"] == f"/studies/{new['ID']}"
        files = _files_of(client, "studies", new["ID"])
        assert len(files) == len(originals)
        for data in files:
            for secret in SECRETS:
                assert secret.encode() not in data, secret
        datasets = [pydicom.dcmread(io.BytesIO(d)) for d in files]
        source = pydicom.dcmread(io.BytesIO(originals[0]))
        # One new patient, one new study, one new UID per series, consistent references
        assert len({d.PatientID for d in datasets}) == 1
        assert len({d.StudyInstanceUID for d in datasets}) == 1
        assert len({d.SeriesInstanceUID for d in datasets}) == 2
        assert len({d.FrameOfReferenceUID for d in datasets}) == 1
        assert datasets[0].StudyInstanceUID != source.StudyInstanceUID
        assert datasets[0].FrameOfReferenceUID != source.FrameOfReferenceUID
        new_sops = {d.SOPInstanceUID for d in datasets}
        referenced = {d.ReferencedImageSequence[0].ReferencedSOPInstanceUID for d in datasets}
        assert len(referenced) == 1 and referenced <= new_sops
        assert all(d.PatientIdentityRemoved == "YES" for d in datasets)
        assert all(default_version() in d.DeidentificationMethod for d in datasets)
        assert all(d.PatientName.family_name.startswith("Anonymized") for d in datasets)
        assert all(d.file_meta.MediaStorageSOPInstanceUID == d.SOPInstanceUID
                   for d in datasets)
        # The source is kept, and the new study says where it comes from
        assert client.get(f"/studies/{study}").status_code == 200
        metadata = client.get(f"/studies/{new['ID']}/metadata?expand").json()
        assert metadata["AnonymizedFrom"] == study
        patient = client.get(f"/patients/{new['PatientID']}").json()
        assert patient["Studies"] == [new["ID"]]


@pytest.mark.skipif(not orthanc_api_at_least(1, 12, 7),
                    reason="Pharos answers as an Orthanc older than 1.12.7")
def test_profile_2023b_by_default_and_plain_method_when_changed(server: LiveServer) -> None:
    """Orthanc 1.12.1+ anonymizes with PS3.15-2023b (InstanceCreationDate goes, which
    2021b keeps); a Replace makes DeidentificationMethod ``Orthanc <version>`` (1.12.7)."""
    with server.client() as client:
        instance = client.post("/instances", content=make_dicom(
            patient_id="ANON-2023B", InstanceCreationDate="20200101",
            StationName="ROOM1")).json()["ID"]

        def anonymized(body: dict) -> Dataset:
            answer = client.post(f"/instances/{instance}/anonymize", json=body)
            assert answer.status_code == 200, answer.text
            return pydicom.dcmread(io.BytesIO(answer.content))

        default, older = anonymized({}), anonymized({"DicomVersion": "2021b"})
        replaced = anonymized({"Replace": {"StationName": "tutu"}})
    assert default.DeidentificationMethod == \
        f"Orthanc {ORTHANC_API_VERSION} - PS 3.15-2023b Table E.1-1 Basic Profile"
    assert "InstanceCreationDate" not in default and older.InstanceCreationDate == "20200101"
    assert "2021b" in older.DeidentificationMethod
    assert replaced.DeidentificationMethod == f"Orthanc {ORTHANC_API_VERSION}"
    assert replaced.StationName == "tutu" and "InstanceCreationDate" not in replaced


def test_private_tags_are_kept_when_asked(server: LiveServer) -> None:
    with server.client() as client:
        study, _ = _identified_study(client, 1, 1)
        answer = client.post(f"/studies/{study}/anonymize", json={"KeepPrivateTags": True})
        assert answer.status_code == 200
        data = _files_of(client, "studies", answer.json()["ID"])[0]
        assert b"SECRETID in a private tag" in data
        ds = pydicom.dcmread(io.BytesIO(data))
        # Orthanc: not its own profile any more (1.12.7+: just "Orthanc <version>")
        if orthanc_api_at_least(1, 12, 7):
            assert ds.DeidentificationMethod == f"Orthanc {ORTHANC_API_VERSION}"
        else:
            assert "DeidentificationMethod" not in ds


def test_modify_study_without_source(server: LiveServer) -> None:
    with server.client() as client:
        study, _ = _identified_study(client, 2, 2)
        answer = client.post(f"/studies/{study}/modify",
                             json={"Replace": {"StudyDescription": "NEW"}, "KeepSource": False})
        assert answer.status_code == 200, answer.text
        new = answer.json()
        assert new["InstancesCount"] == 4 and new["FailedInstancesCount"] == 0
        assert client.get(f"/studies/{study}").status_code == 404
        assert client.get(f"/studies/{new['ID']}").json()["MainDicomTags"]["StudyDescription"] \
            == "NEW"
        # Same patient: a modified study stays with its patient
        assert client.get(f"/studies/{new['ID']}").json()["PatientMainDicomTags"]["PatientID"] \
            == "SECRETID"


def test_instance_modify_answers_a_file_and_stores_nothing(server: LiveServer) -> None:
    with server.client() as client:
        instance = client.post("/instances", content=make_dicom()).json()["ID"]
        before = client.get("/statistics").json()["CountInstances"]
        answer = client.post(f"/instances/{instance}/modify",
                             json={"Replace": {"PatientName": "X^Y"}, "Remove": ["AccessionNumber"]})
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "application/dicom"
        ds = pydicom.dcmread(io.BytesIO(answer.content))
        assert ds.PatientName == "X^Y" and "AccessionNumber" not in ds
        assert client.get("/statistics").json()["CountInstances"] == before


def test_transcode(server: LiveServer, tmp_path: Path) -> None:
    with server.client() as client:
        instance = client.post("/instances", content=make_dicom(size=16)).json()["ID"]
        for syntax in ("1.2.840.10008.1.2", "1.2.840.10008.1.2.5"):
            answer = client.post(f"/instances/{instance}/modify", json={"Transcode": syntax})
            assert answer.status_code == 200, answer.text
            ds = pydicom.dcmread(io.BytesIO(answer.content))
            assert ds.file_meta.TransferSyntaxUID == syntax
            assert ds.pixel_array.shape == (16, 16)
        bad = client.post(f"/instances/{instance}/modify", json={"Transcode": "1.2.3.nope"})
        assert bad.status_code == 400


@pytest.mark.parametrize("body", [
    "not json", b"[1, 2]", b'{"Replace": {"PatientID": "X"}}', b'{"Remove": ["SOPInstanceUID"]}',
    b'{"Replace": {"NoSuchTag": "x"}}', b'{"Replace": {"PatientName": 12}}',
    b'{"Keep": "StudyDescription"}', b'{"Replace": {"Rows": "many"}}',
    b'{"Replace": {"ReferencedStudySequence[x].Foo": "1"}}',
])
def test_bad_modify_requests_are_4xx(server: LiveServer, body: bytes | str) -> None:
    with server.client() as client:
        instance = client.post("/instances", content=make_dicom()).json()["ID"]
        study = client.get(f"/instances/{instance}/study").json()["ID"]
        for url in (f"/instances/{instance}/modify", f"/studies/{study}/modify"):
            answer = client.post(url, content=body)
            assert 400 <= answer.status_code < 500, (url, body, answer.text)
        assert client.post("/studies/nope/modify", json={}).status_code == 404
        assert client.post("/instances/nope/anonymize", json={}).status_code == 404


def test_asynchronous_modification_does_not_block(server: LiveServer) -> None:
    with server.client() as client:
        study, _ = _identified_study(client, 2, 5)
        answer = client.post(f"/studies/{study}/anonymize",
                             json={"Asynchronous": True, "Priority": 3})
        assert answer.status_code == 200, answer.text
        job = answer.json()
        assert job["Path"] == f"/jobs/{job['ID']}"
        # Other requests are served while the job runs
        assert client.get("/system").status_code == 200
        deadline = time.monotonic() + 120
        state = {}
        while time.monotonic() < deadline:
            state = client.get(f"/jobs/{job['ID']}").json()
            if state.get("State") in ("Success", "Failure"):
                break
            time.sleep(0.2)
        assert state.get("State") == "Success", state
        content = state["Content"]
        assert content["Type"] == "Study" and content["IsAnonymization"] is True
        assert client.get(f"/studies/{content['ID']}").status_code == 200


# --- /tools/create-dicom ------------------------------------------------------------------

def _png_data_uri(mode: str = "L", size: tuple[int, int] = (5, 3)) -> str:
    import base64

    from PIL import Image
    image = Image.new(mode, size, color=200 if mode == "L" else (10, 20, 30))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def test_create_dicom_with_image_and_sequence(server: LiveServer, tmp_path: Path) -> None:
    with server.client() as client:
        answer = client.post("/tools/create-dicom", json={
            "Tags": {"PatientName": "CREATED^ONE", "PatientID": "CREATED1", "Modality": "OT",
                     "ProcedureCodeSequence": [{"CodeValue": "A", "CodeMeaning": "B"}],
                     "0009,1001": "private value"},
            "PrivateCreator": "PharosTest",
            "Content": _png_data_uri("RGB")})
        assert answer.status_code == 200, answer.text
        created = answer.json()
        assert created["Path"] == f"/instances/{created['ID']}"
        data = client.get(f"/instances/{created['ID']}/file").content
        ds = pydicom.dcmread(io.BytesIO(data))
        assert ds.PatientName == "CREATED^ONE" and ds.PatientID == "CREATED1"
        assert ds.ProcedureCodeSequence[0].CodeMeaning == "B"
        assert ds.pixel_array.shape == (3, 5, 3)
        assert ds[0x00090010].value == "PharosTest"
        assert client.get(f"/instances/{created['ID']}/metadata/Origin").text == "RestApi"
        path = tmp_path / "created.dcm"
        path.write_bytes(data)
        import subprocess
        assert subprocess.run(["dcmdump", "-q", str(path)], capture_output=True,
                              check=False).returncode == 0


def test_create_dicom_pdf_attached_to_a_study(server: LiveServer) -> None:
    from tests.helpers import CORPUS
    pdf = CORPUS / "HelloWorld.pdf"
    if not pdf.exists():
        pytest.skip("HelloWorld.pdf not in the corpus")
    import base64
    with server.client() as client:
        instance = client.post("/instances", content=make_dicom(patient_id="PDFPAT")).json()
        study = instance["ParentStudy"]
        answer = client.post("/tools/create-dicom", json={
            "Tags": {"SeriesDescription": "Report"}, "Parent": study,
            "Content": "data:application/pdf;base64," + base64.b64encode(pdf.read_bytes()).decode()})
        assert answer.status_code == 200, answer.text
        created = client.get(f"/instances/{answer.json()['ID']}").json()
        series = client.get(f"/series/{created['ParentSeries']}").json()
        assert series["ParentStudy"] == study
        ds = pydicom.dcmread(io.BytesIO(client.get(f"/instances/{created['ID']}/file").content))
        assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.104.1"
        assert ds.EncapsulatedDocument.startswith(b"%PDF")
        assert ds.PatientID == "PDFPAT"


def test_create_dicom_series_from_a_content_list(server: LiveServer) -> None:
    with server.client() as client:
        answer = client.post("/tools/create-dicom", json={
            "Tags": {"PatientID": "SERIESPAT"},
            "Content": [_png_data_uri(), {"Content": _png_data_uri(), "Tags": {
                "ImageComments": "second"}}]})
        assert answer.status_code == 200, answer.text
        series = client.get(answer.json()["Path"]).json()
        assert len(series["Instances"]) == 2


@pytest.mark.parametrize("body,status", [
    ({"Tags": "x"}, 400), ({"Tags": {"PixelData": "x"}}, 400),
    ({"Tags": {}, "Content": "not a data uri"}, 400),
    ({"Tags": {}, "Content": "data:image/png;base64,AAAA"}, 400),
    ({"Tags": {}, "Content": "data:text/plain;base64,AAAA"}, 400),
    ({"Tags": {}, "Parent": "nope"}, 404), ({"Tags": {"SOPInstanceUID": "1.2"}}, 400),
    ({"Tags": {"NotATag": "x"}}, 400), ({"Tags": {}, "Force": "yes"}, 400),
    ([1], 400),
])
def test_create_dicom_bad_input(server: LiveServer, body: object, status: int) -> None:
    with server.client() as client:
        answer = client.post("/tools/create-dicom", json=body)
        assert answer.status_code == status, answer.text
