"""The ``Dictionary`` and ``DefaultPrivateCreator`` options, raw ``/content`` values and the
documents ``/tools/create-dicom`` encapsulates (Orthanc's behaviour, checked on 1.10.1/1.12)."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.uid import generate_uid

from tests.helpers import LiveServer, live_server, make_dicom

DICTIONARY = {
    "00e1,10c2": ["UI", "PET-CT Multi Modality Name", 1, 1, "ELSCINT1"],
    "4321,1012": ["LO", "RadioButton3", 1, 1, "RadioLogic"],
    "0009,1001": ["DS", "Abnormality score", 1, 1, "Lunit"],
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("dictionary"),
                     {"Dictionary": DICTIONARY, "DefaultPrivateCreator": "Lunit"}) as running:
        yield running


def _implicit_private_file() -> bytes:
    """No meta header, implicit VR: the VR of private elements comes from the dictionary."""
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.128"
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientID = "DICT1"
    ds.add_new(0x00E10010, "LO", "ELSCINT1")
    ds.add_new(0x00E110C2, "UI", "1.2.3.4.5")
    ds.add_new(0x00E110C3, "UI", "1.2.3")  # not registered
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, implicit_vr=True, little_endian=True)
    return buffer.getvalue()


def test_registered_private_tag_is_named_and_typed(server: LiveServer) -> None:
    with server.client() as client:
        instance = client.post("/instances", content=_implicit_private_file()).json()["ID"]
        full = client.get(f"/instances/{instance}/tags").json()
        assert full["00e1,10c2"] == {"Name": "PET-CT Multi Modality Name",
                                     "PrivateCreator": "ELSCINT1", "Type": "String",
                                     "Value": "1.2.3.4.5"}
        assert full["00e1,10c3"]["Type"] == "Null"  # implicit VR, unknown: UN
        simplified = client.get(f"/instances/{instance}/tags?simplify").json()
        assert simplified["PET-CT Multi Modality Name"] == "1.2.3.4.5"
        # the registered name works as a tag in /content
        raw = client.get(f"/instances/{instance}/content/PET-CT Multi Modality Name")
        assert raw.content == b"1.2.3.4.5\0"


def test_modify_private_tag_by_name_keeps_its_vr(server: LiveServer) -> None:
    ds = pydicom.dcmread(io.BytesIO(make_dicom(patient_id="DICT2")))
    ds.add_new(0x43210010, "LO", "RadioLogic")
    ds.add_new(0x43211012, "LO", "jklmopq")
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    with server.client() as client:
        source = client.post("/instances", content=buffer.getvalue()).json()
        modified = client.post(f"/series/{source['ParentSeries']}/modify", json={
            "Replace": {"RadioButton3": "aaabbbccc"}, "PrivateCreator": "RadioLogic"})
        assert modified.status_code == 200, modified.text
        instance = client.get(f"/series/{modified.json()['ID']}/instances").json()[0]["ID"]
        tag = client.get(f"/instances/{instance}/tags").json()["4321,1012"]
        assert tag == {"Name": "RadioButton3", "PrivateCreator": "RadioLogic",
                       "Type": "String", "Value": "aaabbbccc"}
        written = pydicom.dcmread(io.BytesIO(client.get(f"/instances/{instance}/file").content))
        assert written[0x43211012].VR == "LO"


def test_create_dicom_private_tags_default_creator(server: LiveServer) -> None:
    with server.client() as client:
        created = client.post("/tools/create-dicom", json={"Tags": {
            "PatientName": "PRIVATE^TOP", "0009,1001": "-12",
            "MappingResourceIdentificationSequence": [{"0009,1001": "-1234", "CodeMeaning": "M"}],
        }})
        assert created.status_code == 200, created.text
        instance = created.json()["ID"]
        ds = pydicom.dcmread(io.BytesIO(client.get(f"/instances/{instance}/file").content))
        # top level: the block is reserved by DefaultPrivateCreator, the VR is the registered one
        assert ds[0x00090010].value == "Lunit"
        assert ds[0x00091001].VR == "DS"
        # inside an item given as JSON, as Orthanc: the registered VR, no reservation
        item = ds[0x00080124][0]
        assert item[0x00091001].VR == "DS" and 0x00090010 not in item
        short = client.get(f"/instances/{instance}/tags?short").json()
        assert len(short["0008,0124"][0]) == 2
        time = client.get(f"/instances/{instance}/content/InstanceCreationTime").content
        assert len(time) == 14 and time.endswith(b".000000 ")  # HHMMSS.000000, padded


def test_content_answers_stored_bytes(server: LiveServer) -> None:
    data = make_dicom(patient_id="RAW1", patient_name="RAW^ODD", InstitutionName="ABC")
    with server.client() as client:
        instance = client.post("/instances", content=data).json()["ID"]
        assert client.get(f"/instances/{instance}/content/PatientName").content == b"RAW^ODD "
        assert client.get(f"/instances/{instance}/content/0008-0080").content == b"ABC "
        assert client.get(f"/instances/{instance}/content/Rows").content == b"\x08\x00"
        uid = client.get(f"/instances/{instance}/content/SOPInstanceUID").content
        assert len(uid) % 2 == 0
        assert client.get(f"/instances/{instance}/content/7fe0-0010").json() == ["0"]
        pixels = client.get(f"/instances/{instance}/content/7fe0-0010/0").content
        assert pixels == pydicom.dcmread(io.BytesIO(data)).PixelData
        assert client.get(f"/instances/{instance}/content/7fe0-0010/1").status_code == 404


def test_content_of_encapsulated_pixel_data(server: LiveServer) -> None:
    ds = pydicom.dcmread(io.BytesIO(make_dicom(patient_id="ENC1")))
    frames = [b"\xff\xd8frame-one\xff\xd9", b"\xff\xd8frame-two!\xff\xd9"]
    ds.PixelData = encapsulate(frames)
    ds["PixelData"].VR = "OB"
    ds.NumberOfFrames = 2
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.50"
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    with server.client() as client:
        instance = client.post("/instances", content=buffer.getvalue()).json()["ID"]
        assert client.get(f"/instances/{instance}/content/7fe0-0010").json() == ["0", "1", "2"]
        assert len(client.get(f"/instances/{instance}/content/7fe0-0010/0").content) == 8
        assert client.get(f"/instances/{instance}/content/7fe0-0010/2").content == frames[1]


@pytest.mark.parametrize(("mime", "sop_class"), [
    ("model/stl", "1.2.840.10008.5.1.4.1.1.104.3"),
    ("model/obj", "1.2.840.10008.5.1.4.1.1.104.4"),
    ("model/mtl", "1.2.840.10008.5.1.4.1.1.104.5")])
def test_create_dicom_encapsulates_3d_models(server: LiveServer, mime: str,
                                             sop_class: str) -> None:
    model = b"solid x\nendsolid x"
    with server.client() as client:
        created = client.post("/tools/create-dicom", json={
            "Content": f"data:{mime};base64,{base64.b64encode(model).decode()}",
            "Tags": {"PatientName": "Model"}})
        assert created.status_code == 200, created.text
        tags = client.get(f"/instances/{created.json()['ID']}/tags?simplify").json()
        assert tags["Modality"] == "M3D"
        assert tags["MIMETypeOfEncapsulatedDocument"] == mime
        assert tags["SOPClassUID"] == sop_class


def test_create_dicom_without_content_is_secondary_capture(server: LiveServer) -> None:
    with server.client() as client:
        created = client.post("/tools/create-dicom", json={"Tags": {"PatientName": "Empty"}})
        tags = client.get(f"/instances/{created.json()['ID']}/tags?simplify").json()
        assert tags["SOPClassUID"] == "1.2.840.10008.5.1.4.1.1.7"


def test_invalid_dictionary_refuses_to_start(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="dictionary entry is invalid"):
        with live_server(tmp_path, {"Dictionary": {"0009,1001": ["DS"]}}):
            pass




def test_create_dicom_uses_the_default_encoding(fresh_server: LiveServer) -> None:
    with fresh_server.client() as client:
        assert client.put("/tools/default-encoding", content=b"Utf8").status_code == 200
        created = client.post("/tools/create-dicom", json={"Tags": {"PatientName": "Sébastien"}})
        instance = created.json()["ID"]
        assert client.get(f"/instances/{instance}/content/SpecificCharacterSet").content == \
            b"ISO_IR 192"
        assert client.get(f"/instances/{instance}/content/PatientName").content.rstrip() == \
            "Sébastien".encode()
        # a request's own SpecificCharacterSet wins
        latin = client.post("/tools/create-dicom", json={"Tags": {
            "SpecificCharacterSet": "ISO_IR 100", "PatientName": "Sébastien"}}).json()["ID"]
        assert client.get(f"/instances/{latin}/content/PatientName").content.rstrip() == \
            "Sébastien".encode("latin-1")
        assert client.get(f"/instances/{latin}/simplified-tags").json()[
            "PatientName"] == "Sébastien"
