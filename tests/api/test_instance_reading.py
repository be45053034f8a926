"""Reading one instance: /file, /content through sequences, /header, metadata; overwrite."""

from __future__ import annotations

import io

import pydicom
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

from tests.helpers import live_server, make_dicom


def _with_sequence_and_pdf() -> bytes:
    ds = pydicom.dcmread(io.BytesIO(make_dicom(study_uid=generate_uid())))
    item = Dataset()
    item.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    item.ReferencedSOPInstanceUID = "1.2.3.4.5"
    ds.ReferencedImageSequence = Sequence([item, Dataset()])
    ds.EncapsulatedDocument = b"%PDF-1.4 fake pdf bytes\n"
    out = io.BytesIO()
    ds.save_as(out)
    return out.getvalue()


def test_content_walks_sequences_and_answers_raw_values(server):
    with server.client() as http:
        instance = http.post("/instances", content=_with_sequence_and_pdf()).json()["ID"]
        top = http.get(f"/instances/{instance}/content").json()
        assert "0008-1140" in top and "0042-0011" in top
        assert http.get(f"/instances/{instance}/content/0008,1140").json() == ["0", "1"]
        assert http.get(f"/instances/{instance}/content/0008-1140/0").json() == [
            "0008-1150", "0008-1155"]
        leaf = http.get(f"/instances/{instance}/content/0008,1140/0/0008,1155")
        assert leaf.content == b"1.2.3.4.5\0"  # as stored, padding included (Orthanc)
        pdf = http.get(f"/instances/{instance}/content/0042,0011")
        assert pdf.content.startswith(b"%PDF-1.4 fake pdf bytes")
        assert http.get(f"/instances/{instance}/content/0008,1140/7").status_code == 404
        assert http.get(f"/instances/{instance}/content/0011,0011").status_code == 404


def test_file_header_and_metadata(server):
    data = make_dicom(study_uid=generate_uid())
    with server.client() as http:
        stored = http.post("/instances", content=data).json()
        instance = stored["ID"]
        file = http.get(f"/instances/{instance}/file")
        assert file.content == data
        assert file.headers["content-type"] == "application/dicom"
        uuid = http.get(f"/instances/{instance}").json()["FileUuid"]
        assert f'filename="{uuid}.dcm"' in file.headers["content-disposition"]
        header = http.get(f"/instances/{instance}/header").json()
        assert header["0002,0010"]["Value"] == "1.2.840.10008.1.2.1"
        assert http.get(f"/instances/{instance}/header?simplify").json()[
            "TransferSyntaxUID"] == "1.2.840.10008.1.2.1"
        metadata = http.get(f"/instances/{instance}/metadata?expand").json()
        assert metadata["Origin"] == "RestApi" and metadata["RemoteIP"] == "127.0.0.1"
        assert metadata["TransferSyntax"] == "1.2.840.10008.1.2.1"
        assert metadata["SopClassUid"] == "1.2.840.10008.5.1.4.1.1.2"
        assert metadata["IndexInSeries"] == "1"
        assert http.get(f"/instances/{instance}/metadata/Origin").text == "RestApi"
        assert http.get(f"/instances/{instance}/attachments").json() == ["dicom"]
        assert http.get(f"/instances/{instance}/attachments/dicom/size").text == str(len(data))
        assert http.post(f"/instances/{instance}/attachments/dicom/verify-md5").status_code == 200


def test_overwrite_instances(tmp_path):
    study, series, sop = generate_uid(), generate_uid(), generate_uid()
    first = make_dicom(study_uid=study, series_uid=series, sop_uid=sop, StationName="FIRST")
    second = make_dicom(study_uid=study, series_uid=series, sop_uid=sop, StationName="SECOND")
    with live_server(tmp_path / "keep") as live, live.client() as http:
        instance = http.post("/instances", content=first).json()["ID"]
        assert http.post("/instances", content=second).json()["Status"] == "AlreadyStored"
        assert http.get(f"/instances/{instance}/file").content == first
    with live_server(tmp_path / "overwrite", {"OverwriteInstances": True}) as live, \
            live.client() as http:
        instance = http.post("/instances", content=first).json()["ID"]
        assert http.post("/instances", content=second).json()["Status"] == "Success"
        assert http.get(f"/instances/{instance}/file").content == second
        assert http.get("/statistics").json()["CountInstances"] == 1
        assert len(live.blob_keys()) == 1  # the replaced file is gone
