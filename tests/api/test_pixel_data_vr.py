"""``PixelDataVR`` metadata (Orthanc 1.12.1) and ``/file`` answered as DICOM JSON/XML."""

from __future__ import annotations

import base64
import io

import pydicom
import pytest

from tests.helpers import LiveServer, make_dicom


def _file(bits: int, vr: str, implicit: bool = False) -> bytes:
    ds = pydicom.dcmread(io.BytesIO(make_dicom(patient_id=f"VR{bits}{vr}{implicit}")))
    ds.BitsAllocated = bits
    ds.BitsStored = ds.HighBit = bits if bits == 8 else 12
    ds.HighBit = ds.BitsStored - 1
    ds.PixelData = bytes(range(64)) * (bits // 8)
    ds["PixelData"].VR = vr
    if implicit:
        ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


@pytest.mark.parametrize(("bits", "vr", "implicit", "expected"), [
    (8, "OW", False, "OW"),    # 8-bit pixels should be OB in explicit VR: noted
    (8, "OB", False, None),
    (16, "OW", False, None),
    (16, "OB", False, "OB"),   # more than 8 bits should be OW
    (8, "OW", True, None),     # implicit VR: always OW
])
def test_pixel_data_vr_metadata(server: LiveServer, bits: int, vr: str, implicit: bool,
                                expected: str | None) -> None:
    with server.client() as client:
        instance = client.post("/instances", content=_file(bits, vr, implicit)).json()["ID"]
        metadata = client.get(f"/instances/{instance}/metadata?expand").json()
        assert "PixelDataOffset" in metadata
        assert metadata.get("PixelDataVR") == expected
        document = client.get(f"/instances/{instance}/file",
                              headers={"Accept": "application/dicom+json"})
        assert document.headers["content-type"].startswith("application/dicom+json")
        pixels = document.json()["7FE00010"]
        assert pixels["vr"] == (expected or ("OW" if bits > 8 or implicit else "OB"))
        assert base64.b64decode(pixels["InlineBinary"]) == bytes(range(64)) * (bits // 8)


def test_file_as_dicom_json_and_xml(server: LiveServer) -> None:
    with server.client() as client:
        instance = client.post("/instances", content=make_dicom(
            patient_id="JSONFILE", patient_name="JSON^FILE")).json()["ID"]
        document = client.get(f"/instances/{instance}/file",
                              headers={"Accept": "application/dicom+json"}).json()
        assert document["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": "JSON^FILE"}]}
        assert not [key for key in document if key.endswith("0000")]  # no group lengths
        xml = client.get(f"/instances/{instance}/file",
                         headers={"Accept": "application/dicom+xml"})
        assert xml.headers["content-type"].startswith("application/dicom+xml")
        assert '<DicomAttribute tag="00100020" vr="LO" keyword="PatientID">' in xml.text
        assert client.get(f"/instances/{instance}/file").content.startswith(b"\0" * 128)
