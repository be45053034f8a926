"""What Orthanc 1.12.2-1.13 changed that clients see, on a live server (Pharos answers as
Orthanc 1.13.0): archive folder names and ``Utf8``, the GET forms of ``/tools/create-*``,
``?filename=`` and ``?transcode=`` on downloads, ``?whole`` tags, ``KeepLabels``,
create-dicom ``Encapsulate``, OF/OD/OL values, the series ``MainDicomSequences``, error
headers."""

from __future__ import annotations

import base64
import io
import struct
import zipfile

import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from app import orthanc_api_at_least
from tests.helpers import live_server, make_dicom


def since(major: int, minor: int, revision: int) -> pytest.MarkDecorator:
    """Behaviour of an Orthanc version: Pharos has it only when it answers as that version
    (``app.ORTHANC_API_VERSION``), as Orthanc's suite expects."""
    return pytest.mark.skipif(not orthanc_api_at_least(major, minor, revision),
                              reason=f"Pharos answers as an Orthanc older than "
                                     f"{major}.{minor}.{revision}")


def _zip_names(answer) -> list[str]:
    assert answer.status_code == 200, answer.text
    return sorted(zipfile.ZipFile(io.BytesIO(answer.content)).namelist())


@since(1, 13, 0)
def test_system_reports_orthanc_1_13(server):
    with server.client() as http:
        system = http.get("/system").json()
    assert system["Version"] == "1.13.0"
    assert system["ApiVersion"] >= 30
    assert system["Capabilities"] == {
        "HasExtendedChanges": True, "HasExtendedFind": True, "HasKeyValueStores": False,
        "HasQueues": False, "HasReserveQueueValue": False}
    # Orthanc 1.12.6-1.12.11's fields (the Book's OpenAPI of 1.12.11)
    assert system["DicomDefaultRetrieveMethod"] == "C-MOVE"
    assert system["PatientLevelEnabled"] is True and system["IngestTranscoding"] == ""
    identifier = system["DatabaseServerIdentifier"]
    assert len(identifier) == 44 and identifier.count("-") == 4


@since(1, 13, 0)
def test_database_server_identifier_option(tmp_path):
    """``DatabaseServerIdentifier`` given in the configuration is what /system shows;
    without it each node (host, ports, AET) gets its own."""
    with live_server(tmp_path / "a", {"DatabaseServerIdentifier": "node-a"}) as a, \
            live_server(tmp_path / "b") as b, live_server(tmp_path / "c") as c:
        shown = [server.client().get("/system").json()["DatabaseServerIdentifier"]
                 for server in (a, b, c)]
    assert shown[0] == "node-a" and shown[1] != shown[2]  # other HTTP/DICOM ports


@since(1, 13, 0)
def test_archive_folders_as_orthanc_1_13(fresh_server):
    study_uid = generate_uid()
    with fresh_server.client() as http:
        for series_number, description, number in ((301, "T1/fast", 1), (601, "T2", 3)):
            stored = http.post("/instances", content=make_dicom(
                patient_id="887", patient_name="KNEE", study_uid=study_uid,
                AccessionNumber="A1", StudyDescription="IRM cérébrale, neuro-crâne",
                SpecificCharacterSet="ISO_IR 192", modality="MR", SeriesNumber=series_number,
                SeriesDescription=description, instance_number=number)).json()
        study = stored["ParentStudy"]
        names = _zip_names(http.get(f"/studies/{study}/archive"))
        assert names == ["887 - KNEE/A1 - IRM cérébrale, neuro-crâne/301 - MR - T1 fast/MR000001.dcm",
                         "887 - KNEE/A1 - IRM cérébrale, neuro-crâne/601 - MR - T2/MR000003.dcm"]
        ascii_names = _zip_names(http.post("/tools/create-archive",
                                           json={"Resources": [study], "Utf8": False}))
        assert ascii_names[0] == "887 - KNEE/A1 - IRM crbrale, neuro-crne/301 - MR - T1 fast/MR000001.dcm"
        refused = http.post("/tools/create-archive", json={"Resources": [study], "Utf8": "no"})
        assert refused.status_code == 400


@since(1, 13, 0)
def test_archive_of_a_study_shows_its_own_patient_name(fresh_server):
    """Two studies of one PatientID with two PatientNames (Orthanc 1.12.2+): the archive of
    each study shows the name of that study; nothing named is an empty ``Unknown`` level."""
    with fresh_server.client() as http:
        ids = []
        for name in ("HELLO", "WORLD"):
            data = make_dicom(patient_id="COMMON", patient_name=name, modality="",
                              StudyDescription=f"{name}^STUDY", AccessionNumber="",
                              SeriesDescription="", SeriesNumber=None, instance_number=None)
            ids.append(http.post("/instances", content=data).json()["ParentStudy"])
        for study, name in zip(ids, ("HELLO", "WORLD"), strict=True):
            assert _zip_names(http.get(f"/studies/{study}/archive")) == [
                f"COMMON - {name}/{name}^STUDY/Unknown Series/00000000.dcm"]


def test_get_forms_of_create_archive_and_media(fresh_server):
    with fresh_server.client() as http:
        first = http.post("/instances", content=make_dicom(size=32)).json()
        second = http.post("/instances", content=make_dicom(patient_id="P2", size=32)).json()
        both = f"{first['ParentStudy']},{second['ParentPatient']}"
        assert len(_zip_names(http.get(f"/tools/create-archive?resources={both}"))) == 2
        media = http.get(f"/tools/create-media-extended?resources={first['ID']}"
                         "&transcode=1.2.840.10008.1.2.4.70&filename=toto.zip")
        assert media.headers["content-disposition"] == 'filename="toto.zip"'
        archive = zipfile.ZipFile(io.BytesIO(media.content))
        assert sorted(archive.namelist()) == ["DICOMDIR", "IMAGES/IM0"]
        image = pydicom.dcmread(io.BytesIO(archive.read("IMAGES/IM0")))
        assert image.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.70"
        assert http.get("/tools/create-archive?resources=nope").status_code == 404
        assert http.get("/tools/create-archive").status_code == 400


def _color_instance(size: int = 64) -> bytes:
    pixels = bytes((x * 4 + y) % 256 for y in range(size) for x in range(size) for _ in range(3))
    return make_dicom(size=size, pixels=pixels, SamplesPerPixel=3, PhotometricInterpretation="RGB",
                      PlanarConfiguration=0, BitsAllocated=8, BitsStored=8, HighBit=7)


def test_file_download_transcoded_and_named(server):
    with server.client() as http:
        stored = http.post("/instances", content=_color_instance()).json()
        file_url = f"/instances/{stored['ID']}/file"
        named = http.get(f'{file_url}?filename="toto".dcm')
        assert named.headers["content-disposition"] == 'filename="toto.dcm"'
        sizes = {}
        for quality in (40, 95):
            answer = http.get(f"{file_url}?transcode=1.2.840.10008.1.2.4.50&lossy-quality={quality}")
            assert answer.status_code == 200
            ds = pydicom.dcmread(io.BytesIO(answer.content))
            assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.50"
            sizes[quality] = len(answer.content)
        assert sizes[40] < sizes[95]
        assert http.get(f"{file_url}?transcode=1.2.3").status_code == 400
        data = http.get(f"/instances/{stored['ID']}/attachments/dicom/data?filename=toto.dcm")
        assert data.headers["content-disposition"] == 'filename="toto.dcm"'


def _with_tags_after_pixel_data() -> bytes:
    ds = pydicom.dcmread(io.BytesIO(make_dicom()))
    ds.add_new(0x8E050010, "LO", "XEOS_Attributes")
    ds.add_new(0x8E051000, "LO", "acquisition")
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def test_whole_tags_include_those_after_the_pixel_data(server):
    with server.client() as http:
        instance = http.post("/instances", content=_with_tags_after_pixel_data()).json()["ID"]
        assert "8e05,1000" not in http.get(f"/instances/{instance}/tags").json()
        whole = http.get(f"/instances/{instance}/tags?whole").json()
        assert whole["8e05,1000"]["Value"] == "acquisition"
        short = http.get(f"/instances/{instance}/tags?short&whole").json()
        assert short["8e05,0010"] == "XEOS_Attributes"
        assert "Unknown Tag & Data" not in http.get(
            f"/instances/{instance}/simplified-tags").json()
        assert "Unknown Tag & Data" in http.get(
            f"/instances/{instance}/simplified-tags?whole").json()


def test_keep_labels_in_a_modification_in_place(tmp_path):
    with live_server(tmp_path, {"OverwriteInstances": True}) as live, live.client() as http:
        stored = http.post("/instances", content=make_dicom()).json()
        ids = {"patients": stored["ParentPatient"], "studies": stored["ParentStudy"],
               "series": stored["ParentSeries"], "instances": stored["ID"]}
        for plural, public_id in ids.items():
            assert http.put(f"/{plural}/{public_id}/labels/l-{plural}").status_code == 200
        request = {"Keep": ["StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"],
                   "Replace": {"PatientName": "modified"}, "Force": True}
        assert http.post(f"/studies/{ids['studies']}/modify", json=request).status_code == 200
        assert http.get(f"/studies/{ids['studies']}").json()["Labels"] == []
        for plural, public_id in ids.items():
            http.put(f"/{plural}/{public_id}/labels/l-{plural}")
        kept = http.post(f"/studies/{ids['studies']}/modify",
                         json={**request, "KeepLabels": True,
                               "Replace": {"PatientName": "modified2"}})
        assert kept.status_code == 200
        for plural, public_id in ids.items():
            assert http.get(f"/{plural}/{public_id}").json()["Labels"] == [f"l-{plural}"]
        study = http.get(f"/studies/{ids['studies']}").json()
        assert study["PatientMainDicomTags"]["PatientName"] == "modified2"
        bad = http.post(f"/studies/{ids['studies']}/modify", json={**request, "KeepLabels": 1})
        assert bad.status_code == 400


def _jpeg(mode: str) -> bytes:
    image = Image.new(mode, (24, 16))
    image.putdata([(x * 10 % 256, y * 15 % 256, 100) if mode == "RGB" else x * 10 % 256
                   for y in range(16) for x in range(24)])
    buffer = io.BytesIO()
    image.save(buffer, format="jpeg")
    return buffer.getvalue()


@pytest.mark.parametrize(("mode", "photometric", "samples"),
                         [("RGB", "YBR_FULL_422", "3"), ("L", "MONOCHROME2", "1")])
def test_create_dicom_encapsulates_a_jpeg(server, mode, photometric, samples):
    jpeg = _jpeg(mode)
    with server.client() as http:
        answer = http.post("/tools/create-dicom", json={
            "Content": "data:image/jpeg;base64," + base64.b64encode(jpeg).decode(),
            "Encapsulate": True, "Tags": {"SOPClassUID": "1.2.840.10008.5.1.4.1.1.7"}})
        assert answer.status_code == 200, answer.text
        instance = answer.json()["ID"]
        tags = http.get(f"/instances/{instance}/tags?simplify").json()
        assert (tags["PhotometricInterpretation"], tags["SamplesPerPixel"]) == (photometric, samples)
        assert (tags["Rows"], tags["Columns"], tags["BitsStored"]) == ("16", "24", "8")
        assert http.get(f"/instances/{instance}/content/7fe0,0010").json() == ["0", "1"]
        fragment = http.get(f"/instances/{instance}/content/7fe0,0010/1").content
        assert fragment == jpeg + (b"\0" if len(jpeg) % 2 else b"")
        metadata = http.get(f"/instances/{instance}/metadata/TransferSyntax").text
        assert metadata == "1.2.840.10008.1.2.4.50"
        png = http.post("/tools/create-dicom", json={
            "Content": "data:image/png;base64,", "Encapsulate": True, "Tags": {}})
        assert png.status_code == 400
        not_jpeg = http.post("/tools/create-dicom", json={
            "Content": "data:image/jpeg;base64," + base64.b64encode(b"GIF89a").decode(),
            "Encapsulate": True, "Tags": {}})
        assert not_jpeg.status_code == 400


@since(1, 12, 11)
def test_of_od_ol_values_are_numbers(server):
    ds = pydicom.dcmread(io.BytesIO(make_dicom()))
    ds.add_new(0x00660016, "OF", struct.pack("<3f", 10.5, 20.25, 30.125))
    ds.add_new(0x0070150D, "OD", struct.pack("<3d", 1.1, 2.2, 3.3))
    ds.add_new(0x00660041, "OL", struct.pack("<3L", 42, 0, 15))
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    with server.client() as http:
        instance = http.post("/instances", content=buffer.getvalue()).json()["ID"]
        tags = http.get(f"/instances/{instance}/tags").json()
        assert [float(v) for v in tags["0066,0016"]["Value"].split("\\")] == [10.5, 20.25, 30.125]
        assert [float(v) for v in tags["0070,150d"]["Value"].split("\\")] == [1.1, 2.2, 3.3]
        assert tags["0066,0041"]["Value"] == "42\\0\\15"
        dicomweb = http.get(f"/instances/{instance}/file",
                            headers={"Accept": "application/dicom+json"}).json()
        assert dicomweb["00660041"] == {"vr": "OL", "Value": [42, 0, 15]}
        assert dicomweb["0070150D"]["Value"] == [1.1, 2.2, 3.3]
        modified = http.post(f"/instances/{instance}/modify", json={
            "Replace": {"0066,0016": "101.5\\102.5", "0066,0041": "20\\30"}})
        assert modified.status_code == 200
        again = pydicom.dcmread(io.BytesIO(modified.content))
        assert struct.unpack("<2f", again[0x00660016].value) == (101.5, 102.5)
        assert struct.unpack("<2L", again[0x00660041].value) == (20, 30)
        refused = http.post(f"/instances/{instance}/modify",
                            json={"Replace": {"0066,0016": "not a number"}})
        assert refused.status_code == 400


@since(1, 12, 9)
def test_shift_jis_keeps_backslashes(server):
    data = make_dicom(SpecificCharacterSet="ISO_IR 13", ImageType=["ORIGINAL", "PRIMARY", "M"])
    with server.client() as http:
        instance = http.post("/instances", content=data).json()["ID"]
        tags = http.get(f"/instances/{instance}/tags?simplify").json()
    assert tags["ImageType"] == "ORIGINAL\\PRIMARY\\M"


@since(1, 12, 5)
def test_series_main_dicom_sequences_metadata(server):
    item = Dataset()
    item.RequestedProcedureID = "92262"
    with server.client() as http:
        stored = http.post("/instances", content=make_dicom(
            RequestAttributesSequence=[item])).json()
        series = stored["ParentSeries"]
        assert "MainDicomSequences" in http.get(f"/series/{series}/metadata").json()
        value = http.get(f"/series/{series}/metadata/MainDicomSequences").json()
        assert value["Version"] == 1
        sequence = value["Sequences"]["0040,0275"]
        assert sequence["Value"][0]["0040,1001"]["Value"] == "92262"
        plain = http.post("/instances", content=make_dicom()).json()["ParentSeries"]
        assert "MainDicomSequences" not in http.get(f"/series/{plain}/metadata").json()


def test_unknown_route_and_nosniff_headers(server):
    with server.client() as http:
        unknown = http.get("/rnm94%3Cscript%3Ealert(1)%3C/script%3Ejdtkc/explorer.html")
        assert unknown.status_code == 404
        assert unknown.headers["content-type"] == "text/plain"
        assert unknown.headers["x-content-type-options"] == "nosniff"
        assert http.get("/system").headers["x-content-type-options"] == "nosniff"
        not_allowed = http.put("/system", content=b"hello")
        assert not_allowed.status_code == 405
        assert "content-type" not in not_allowed.headers
