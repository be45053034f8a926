"""DICOMweb answered as Orthanc's DICOMweb plugin answers it, where its clients (and its
release tests) rely on it: /plugins, Allow on 405, negotiation, QIDO-RS attributes and
XML, bulk data paths, forwarded headers, code-extension character sets."""

from __future__ import annotations

import io
import urllib.parse
from xml.dom import minidom

import httpx
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

from tests.dicomweb.conftest import parse_multipart, stow
from tests.helpers import live_server, make_dicom


def _with(data: bytes, **changes: object) -> bytes:
    ds = pydicom.dcmread(io.BytesIO(data))
    for keyword, value in changes.items():
        setattr(ds, keyword, value)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def instance(http: httpx.Client) -> pydicom.Dataset:
    """An instance with a private sequence of bulk data, a short UN element and a
    code-extension character set."""
    first, second = Dataset(), Dataset()
    first.add_new(0x00091010, "LO", "PHAROS")
    first.add_new(0x00091011, "OB", b"\x01\x02" * 3000)
    second.add_new(0x00091010, "LO", "PHAROS")
    second.add_new(0x00091011, "OB", b"\x03\x04" * 10)
    data = make_dicom(patient_name="Yamada^Tarou", size=16)
    ds = pydicom.dcmread(io.BytesIO(data))
    ds.SpecificCharacterSet = ["", "ISO 2022 IR 87"]
    ds.add_new(0x00090010, "LO", "PHAROS")
    ds.add_new(0x00091020, "SQ", Sequence([first, second]))
    ds.add_new(0x00211010, "UN", b"\x42\x00")
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    assert stow(http, [buffer.getvalue()]).status_code == 200
    return pydicom.dcmread(io.BytesIO(buffer.getvalue()))


def _path(ds: pydicom.Dataset) -> str:
    return (f"/dicom-web/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
            f"/instances/{ds.SOPInstanceUID}")


def test_plugins_describe_dicomweb(http: httpx.Client) -> None:
    assert http.get("/plugins").json() == ["explorer.js", "dicom-web"]
    plugin = http.get("/plugins/dicom-web").json()
    assert plugin["ID"] == "dicom-web"
    major, minor = (int(x) for x in plugin["Version"].split(".")[:2])
    assert (major, minor) >= (1, 20)
    assert "DICOMweb" in plugin["Description"]
    assert http.get("/plugins/gdcm").status_code == 404
    explorer = http.get("/plugins/explorer.js")
    assert explorer.status_code == 200
    assert explorer.headers["content-type"].startswith("application/javascript")
    assert http.get("/system").json()["PluginsEnabled"] is True


def test_method_not_allowed_lists_every_method_of_the_path(http: httpx.Client) -> None:
    for method in ("PUT", "DELETE"):
        answer = http.request(method, "/dicom-web/studies")
        assert answer.status_code == 405
        assert answer.headers["allow"] == "GET,POST"


def test_unusable_accept_is_400(http: httpx.Client, instance: pydicom.Dataset) -> None:
    metadata = _path(instance) + "/metadata"
    for accept in ("application/nope", "multipart/related",
                   'multipart/related; type="application/nope"',
                   "multipart/related; type=application/dicom+xml; transfer-syntax=nope",
                   "toto, tata"):
        assert http.get(metadata, headers={"Accept": accept}).status_code == 400, accept
    for accept in ("multipart/nope", "multipart/related; type=application/nope",
                   "multipart/related; transfer-syntax=nope"):
        assert http.get(_path(instance), headers={"Accept": accept}).status_code == 400
    bulk = _path(instance) + "/bulk/00100010"
    for accept in ('multipart/related;   type =  "  application/octet-stream"',
                   "multipart/related;range=", "multipart/related;type=application/nope"):
        assert http.get(bulk, headers={"Accept": accept}).status_code == 400, accept
    # Anything usable in the list is enough; JSON is always typed application/dicom+json.
    for accept in ("toto, application/dicom+json", "application/json, tata",
                   "application/json, application/dicom+xml",
                   "application/dicom+xml, application/json",
                   "text/html, application/xhtml+xml, application/xml;q=0.9, */*;q=0.8"):
        answer = http.get(metadata, headers={"Accept": accept})
        assert answer.status_code == 200, accept
        assert answer.headers["content-type"] == "application/dicom+json"


def test_xml_answers_are_multipart(http: httpx.Client, instance: pydicom.Dataset) -> None:
    for path, accept in (
            (_path(instance) + "/metadata", 'multipart/related; type="application/dicom+xml"'),
            ("/dicom-web/studies?StudyInstanceUID=" + instance.StudyInstanceUID,
             "application/dicom+xml")):
        answer = http.get(path, headers={"Accept": accept})
        assert answer.status_code == 200
        (headers, content), = parse_multipart(answer)
        assert headers["content-type"] == "application/dicom+xml"
        minidom.parseString(content)


def test_qido_study_attributes_follow_the_study_query_parameter(
        http: httpx.Client, instance: pydicom.Dataset) -> None:
    study, series = instance.StudyInstanceUID, instance.SeriesInstanceUID
    scoped = http.get(f"/dicom-web/studies/{study}/series").json()
    assert "00100010" in scoped[0]  # a UID of the path still brings the study's attributes
    queried = http.get("/dicom-web/series", params={"0020000D": study}).json()
    assert "00100010" not in queried[0] and queried[0]["0020000E"]["Value"] == [series]
    asked = http.get("/dicom-web/series", params=[("0020000D", study),
                                                   ("includefield", "00100010")]).json()
    assert "00100010" in asked[0]
    instances = http.get("/dicom-web/instances", params={"0020000E": series}).json()
    assert "00080060" not in instances[0] and "00100010" in instances[0]


def test_bulk_data_uris_name_the_path_in_sequences(http: httpx.Client,
                                                  instance: pydicom.Dataset) -> None:
    metadata = http.get(_path(instance) + "/metadata").json()[0]
    items = metadata["00091020"]["Value"]
    base = "http://" + http.base_url.netloc.decode() + _path(instance) + "/bulk/"
    assert items[0]["00091011"] == {"vr": "OB", "BulkDataURI": base + "00091020/1/00091011"}
    # Every binary value is bulk data, however short (as Orthanc's plugin writes it).
    assert items[1]["00091011"]["BulkDataURI"] == base + "00091020/2/00091011"
    assert metadata["00211010"] == {"vr": "UN", "BulkDataURI": base + "00211010"}
    assert metadata["7FE00010"]["BulkDataURI"] == base + "7fe00010"
    for uri, value in ((items[0]["00091011"]["BulkDataURI"], b"\x01\x02" * 3000),
                       (items[1]["00091011"]["BulkDataURI"], b"\x03\x04" * 10),
                       (metadata["00211010"]["BulkDataURI"], b"\x42\x00")):
        (headers, content), = parse_multipart(http.get(urllib.parse.urlsplit(uri).path))
        assert content == value
        assert headers["content-length"] == str(len(value))
    # Any element answers with its encoded value, with either tag notation.
    (_, name), = parse_multipart(http.get(_path(instance) + "/bulk/0010,0010"))
    assert name.rstrip(b" ") == b"Yamada^Tarou"
    assert http.get(_path(instance) + "/bulk/00091020/3/00091011").status_code == 404
    assert http.get(_path(instance) + "/bulk/00400275").status_code == 404
    assert http.get(_path(instance) + "/bulk/not-a-tag").status_code == 400


def test_code_extension_character_set_has_no_empty_first_value(
        http: httpx.Client, instance: pydicom.Dataset) -> None:
    metadata = http.get(_path(instance) + "/metadata").json()[0]
    assert metadata["00080005"] == {"vr": "CS", "Value": ["ISO 2022 IR 87"]}


def test_urls_follow_the_forwarded_header(http: httpx.Client,
                                          instance: pydicom.Dataset) -> None:
    metadata = http.get(_path(instance) + "/metadata", headers={
        "Forwarded": 'for=10.0.0.1;host="pacs.example.org";proto=https, host=inner'}).json()
    assert metadata[0]["7FE00010"]["BulkDataURI"].startswith(
        "https://pacs.example.org/dicom-web/studies/")
    metadata = http.get(_path(instance) + "/metadata", headers={"Host": "my-domain"}).json()
    assert metadata[0]["7FE00010"]["BulkDataURI"].startswith("http://my-domain/dicom-web/")


def test_qido_xml_and_stow_of_another_study(http: httpx.Client) -> None:
    study = generate_uid()
    answer = stow(http, [_with(make_dicom(), StudyInstanceUID=generate_uid())],
                  path=f"/dicom-web/studies/{study}")
    assert answer.status_code == 409
    assert "00081190" not in answer.json()


def test_empty_person_name_groups_are_kept(http: httpx.Client) -> None:
    """``Wang^XiaoDong=王^小東=`` has an empty Phonetic group (Orthanc keeps it, QIDO-RS
    answers it); a name without '=' has its Alphabetic group only."""
    ds = pydicom.dcmread(io.BytesIO(make_dicom(patient_id="PN-GROUPS")))
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientName = "Wang^XiaoDong=王^小東=Q"
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    # pydicom drops a trailing '=' when it writes: the file says "...=Q", then "...= ".
    data = buffer.getvalue().replace("王^小東=Q".encode(), "王^小東= ".encode())
    assert stow(http, [data]).status_code == 200
    (study,) = http.get("/dicom-web/studies", params={"PatientID": "PN-GROUPS"}).json()
    assert study["00100010"]["Value"] == [{"Alphabetic": "Wang^XiaoDong",
                                           "Ideographic": "王^小東", "Phonetic": ""}]
    simple = make_dicom(patient_id="PN-SIMPLE", patient_name="DOE^JOHN")
    assert stow(http, [simple]).status_code == 200
    (plain,) = http.get("/dicom-web/studies", params={"PatientID": "PN-SIMPLE"}).json()
    assert plain["00100010"]["Value"] == [{"Alphabetic": "DOE^JOHN"}]


def test_plugin_side_routes(http: httpx.Client) -> None:
    assert http.get("/dicom-web/info").json() == {"DicomWebRoot": "/dicom-web/",
                                                  "OrthancApiRoot": "./../"}
    assert http.post("/studies/0123abcd-0123abcd-0123abcd-0123abcd-0123abcd/"
                     "update-dicomweb-cache").json() == {}


def test_roots_from_the_dicomweb_section(tmp_path_factory: pytest.TempPathFactory) -> None:
    """``DicomWeb.Root``, ``PublicRoot``, ``WadoRoot``, ``EnableWado``, ``Enable``."""
    config = {"DicomWeb": {"Root": "/pacs/dicomweb/", "PublicRoot": "/public/dw/",
                           "WadoRoot": "/legacy-wado"}}
    with live_server(tmp_path_factory.mktemp("roots"), config) as live, \
            live.client() as client:
        ds = pydicom.dcmread(io.BytesIO(make_dicom(patient_id="ROOTS")))
        assert stow(client, [make_dicom(patient_id="ROOTS", study_uid=ds.StudyInstanceUID)],
                    path="/pacs/dicomweb/studies").status_code == 200
        (study,) = client.get("/pacs/dicomweb/studies").json()
        assert study["00081190"]["Value"][0].endswith(
            "/public/dw/studies/" + ds.StudyInstanceUID)
        assert client.get("/dicom-web/studies").status_code == 404
        assert client.get("/pacs/dicomweb/info").json() == {
            "DicomWebRoot": "/pacs/dicomweb/", "OrthancApiRoot": "./../../"}
        assert client.get("/legacy-wado", params={"requestType": "WADO"}).status_code == 400
        assert client.get("/wado", params={"requestType": "WADO"}).status_code == 404
    config = {"DicomWeb": {"Enable": False, "EnableWado": False}}
    with live_server(tmp_path_factory.mktemp("disabled"), config) as live, \
            live.client() as client:
        assert client.get("/dicom-web/studies").status_code == 404
        assert client.get("/wado", params={"requestType": "WADO"}).status_code == 404
