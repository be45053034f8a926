"""STOW-RS and WADO-RS against a live Pharos: dicomweb-client, and raw bodies as curl
sends them (dcm4chee's "Store objects by STOW-RS" recipes included)."""

from __future__ import annotations

import io
import socket
import urllib.parse
from pathlib import Path
from xml.etree import ElementTree

import httpx
import orjson
import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient
from PIL import Image
from pydicom.uid import generate_uid

from tests.dicomweb.conftest import (
    corpus_file,
    dicom_parts,
    multipart_body,
    parse_multipart,
    stow,
)
from tests.helpers import LiveServer, make_dicom

REFERENCED = "00081199"
FAILED = "00081198"
REASON = "00081197"


def _values(answer: dict, key: str) -> list:
    return answer.get(key, {}).get("Value", [])


# --- STOW-RS ------------------------------------------------------------------------------

def test_store_with_dicomweb_client_then_retrieve(client: DICOMwebClient) -> None:
    study, series = generate_uid(), generate_uid()
    datasets = [pydicom.dcmread(io.BytesIO(make_dicom(study_uid=study, series_uid=series,
                                                      instance_number=i)))
                for i in range(1, 4)]
    answer = client.store_instances(datasets)
    referenced = answer.ReferencedSOPSequence
    assert len(referenced) == 3
    assert {item.ReferencedSOPInstanceUID for item in referenced} == \
        {ds.SOPInstanceUID for ds in datasets}
    assert all(item.RetrieveURL.endswith(f"/instances/{item.ReferencedSOPInstanceUID}")
               for item in referenced)
    assert answer.RetrieveURL.endswith(f"/dicom-web/studies/{study}")
    assert "FailedSOPSequence" not in answer

    retrieved = client.retrieve_study(study)
    assert sorted(ds.SOPInstanceUID for ds in retrieved) == \
        sorted(ds.SOPInstanceUID for ds in datasets)
    assert retrieved[0].PixelData == datasets[0].PixelData
    assert len(client.retrieve_series(study, series)) == 3
    one = client.retrieve_instance(study, datasets[0].SeriesInstanceUID,
                                   datasets[1].SOPInstanceUID)
    assert one.SOPInstanceUID == datasets[1].SOPInstanceUID


def test_store_to_study_url_refuses_other_studies(http: httpx.Client) -> None:
    study = generate_uid()
    good = make_dicom(study_uid=study)
    stranger = make_dicom(study_uid=generate_uid())
    response = stow(http, [good, stranger], path=f"/dicom-web/studies/{study}")
    assert response.status_code == 202  # PS3.18 10.5.3: some stored, some failed
    answer = response.json()
    assert len(_values(answer, REFERENCED)) == 1
    failed = _values(answer, FAILED)
    assert len(failed) == 1
    assert _values(failed[0], REASON) == [0x0110]
    assert response.headers["warning"].startswith("299 ")
    assert "0x0110" in response.headers["warning"]
    # The stranger was not stored.
    sop = pydicom.dcmread(io.BytesIO(stranger)).SOPInstanceUID
    assert http.get("/dicom-web/instances", params={"SOPInstanceUID": sop}).json() == []


def test_store_nothing_stored_is_409_with_warning(http: httpx.Client) -> None:
    response = stow(http, [make_dicom()], path=f"/dicom-web/studies/{generate_uid()}")
    assert response.status_code == 409
    assert "FailureReason 0x0110" in response.headers["warning"]
    answer = response.json()
    # As Orthanc's plugin: no Retrieve URL, the Referenced SOP Sequence present and empty.
    assert set(answer) == {"00080005", FAILED, REFERENCED}
    assert "Value" not in answer[REFERENCED]


def test_store_answers_as_orthanc_plugin(http: httpx.Client) -> None:
    """Orthanc's plugin (1.19): no Failed SOP Sequence when nothing failed; 400 when
    nothing was stored because parts are not DICOM instances; unidentifiable parts are
    not listed (their Referenced SOP UIDs are Type 1), identifiable ones with 0xC000."""
    ok = stow(http, [make_dicom()], accept="application/json")
    assert ok.status_code == 200
    assert set(ok.json()) == {"00080005", "00081190", REFERENCED}
    assert ok.headers["content-type"] == "application/dicom+json"
    garbage = stow(http, [b"this is not DICOM" * 20])
    assert garbage.status_code == 400
    assert set(garbage.json()) == {"00080005", REFERENCED}
    ds = pydicom.dcmread(io.BytesIO(make_dicom()))
    del ds.StudyInstanceUID
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    no_study = stow(http, [buffer.getvalue()])
    assert no_study.status_code == 400
    (item,) = _values(no_study.json(), FAILED)
    assert _values(item, REASON) == [0xC000]
    assert _values(item, "00081155") == [ds.SOPInstanceUID]
    # Without SOPClassUID, not stored either (REST POST /instances would take it).
    ds = pydicom.dcmread(io.BytesIO(make_dicom(patient_id="NO-SOP-CLASS")))
    del ds.SOPClassUID
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    assert stow(http, [buffer.getvalue()]).status_code == 400
    assert http.get("/dicom-web/studies", params={"PatientID": "NO-SOP-CLASS"}).json() == []
    # dcm4chee's clients type their parts with the transfer syntax.
    body, boundary = multipart_body([({"Content-Type": "application/dicom;transfer-syntax="
                                       "1.2.840.10008.1.2.1"}, make_dicom())])
    typed = http.post("/dicom-web/studies", content=body, headers={
        "Content-Type": f"multipart/related; type=application/dicom; boundary={boundary}"})
    assert typed.status_code == 200 and FAILED not in typed.json()


def test_store_garbage_part_is_a_failure_not_a_500(http: httpx.Client) -> None:
    response = stow(http, [b"this is not DICOM" * 20, make_dicom()])
    assert response.status_code == 202
    answer = response.json()
    assert len(_values(answer, REFERENCED)) == 1
    assert FAILED not in answer  # nothing identifies the garbage part
    assert "0xC000" in response.headers["warning"]


@pytest.mark.parametrize("content_type", [
    "application/dicom",  # not multipart
    'multipart/related; type="application/dicom+xml"; boundary=abc',  # XML metadata
    'multipart/related; type="image/png"; boundary=abc',
    "application/json",
])
def test_store_wrong_media_type_is_415(http: httpx.Client, content_type: str) -> None:
    body, _ = multipart_body(dicom_parts([make_dicom()]), boundary="abc")
    response = http.post("/dicom-web/studies", content=body,
                         headers={"Content-Type": content_type})
    assert response.status_code == 415


def test_store_malformed_multipart_is_400_and_stores_nothing(http: httpx.Client) -> None:
    data = make_dicom(patient_id="TRUNCATED-BODY")
    body, boundary = multipart_body(dicom_parts([data, make_dicom(patient_id="TRUNCATED-BODY")]))
    truncated = body[: len(body) - 200]  # no closing delimiter
    response = http.post("/dicom-web/studies", content=truncated, headers={
        "Content-Type": f"multipart/related; type=application/dicom; boundary={boundary}"})
    assert response.status_code == 400
    assert http.get("/dicom-web/studies", params={"PatientID": "TRUNCATED-BODY"}).json() == []
    # No boundary parameter at all, a body without any delimiter: 400 too.
    for content_type, content in (("multipart/related; type=application/dicom", body),
                                  (f"multipart/related; boundary={boundary}", b"garbage")):
        response = http.post("/dicom-web/studies", content=content,
                             headers={"Content-Type": content_type})
        assert response.status_code == 400, content_type


def test_store_bare_and_quoted_parameters_chunked_many_parts(server: LiveServer) -> None:
    """Bare type=, an unusual boundary, a chunked body (no Content-Length), 60 parts."""
    study = generate_uid()
    files = [make_dicom(study_uid=study, instance_number=i) for i in range(60)]
    body, boundary = multipart_body(dicom_parts(files), boundary="a'b()+_,-./:=?Z")

    def chunks():  # httpx sends an iterator with Transfer-Encoding: chunked
        for start in range(0, len(body), 7001):
            yield body[start:start + 7001]

    with httpx.Client(base_url=server.url, timeout=60) as http:
        response = http.post("/rs/studies", content=chunks(), headers={
            "Content-Type": f'multipart/related; type=application/dicom; '
                            f'boundary="{boundary}"'})
        assert response.status_code == 200, response.text
        assert len(_values(response.json(), REFERENCED)) == 60
        found = http.get(f"/dicom-web/studies/{study}/instances").json()
        assert len(found) == 60


def test_store_raw_socket_as_curl_sends_it(server: LiveServer) -> None:
    """A hand-written HTTP/1.1 request with a chunked multipart body over a raw socket."""
    study = generate_uid()
    body, boundary = multipart_body(dicom_parts([make_dicom(study_uid=study)]))
    host, port = server.url.removeprefix("http://").split(":")
    head = (f"POST /dicom-web/studies HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Content-Type: multipart/related; type=\"application/dicom\"; boundary={boundary}\r\n"
            "Transfer-Encoding: chunked\r\nAccept: application/dicom+json\r\n"
            "Connection: close\r\n\r\n").encode()
    chunked = b"".join(f"{len(body[i:i + 999]):x}\r\n".encode() + body[i:i + 999] + b"\r\n"
                       for i in range(0, len(body), 999)) + b"0\r\n\r\n"
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head + chunked)
        received = b""
        while data := sock.recv(65536):
            received += data
    status_line = received.split(b"\r\n", 1)[0]
    assert b" 200 " in status_line, received[:500]
    assert study.encode() in received


def test_store_answer_in_xml(http: httpx.Client) -> None:
    response = stow(http, [make_dicom()], accept="application/dicom+xml")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/dicom+xml")
    assert b"NativeDicomModel" in response.content
    assert b'tag="00081199"' in response.content
    ElementTree.fromstring(response.content)


# --- STOW-RS with DICOM JSON and bulk data (dcm4chee recipes) ------------------------------

def _jpeg(width: int = 64, height: int = 48) -> bytes:
    buffer = io.BytesIO()
    image = Image.new("RGB", (width, height), (200, 40, 40))
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def _metadata(study: str, extra: dict) -> dict:
    return {
        "00080016": {"vr": "UI", "Value": [extra.pop("sop_class", "1.2.840.10008.5.1.4.1.1.7")]},
        "00080018": {"vr": "UI", "Value": [generate_uid()]},
        "00080060": {"vr": "CS", "Value": ["OT"]},
        "00100010": {"vr": "PN", "Value": [{"Alphabetic": "STOW^JSON"}]},
        "00100020": {"vr": "LO", "Value": ["STOWJSON"]},
        "0020000D": {"vr": "UI", "Value": [study]},
        "0020000E": {"vr": "UI", "Value": [generate_uid()]},
        **extra,
    }


def test_store_json_with_jpeg_pixel_data(http: httpx.Client, client: DICOMwebClient) -> None:
    """dcm4chee recipe: metadata.json with 7FE00010 BulkDataURI file1.jpg + the JPEG part."""
    study = generate_uid()
    jpeg = _jpeg()
    metadata = _metadata(study, {"7FE00010": {"vr": "OB", "BulkDataURI": "file1.jpg"}})
    body, boundary = multipart_body([
        ({"Content-Type": "application/dicom+json"}, orjson.dumps([metadata])),
        ({"Content-Type": "image/jpeg", "Content-Location": "file1.jpg"}, jpeg),
    ])
    response = http.post("/dicom-web/studies", content=body, headers={
        "Content-Type": f'multipart/related; type="application/dicom+json"; '
                        f"boundary={boundary}"})
    assert response.status_code == 200, response.text
    sop = metadata["00080018"]["Value"][0]
    series = metadata["0020000E"]["Value"][0]
    stored = client.retrieve_instance(study, series, sop)
    assert stored.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.50"
    assert (stored.Rows, stored.Columns, stored.SamplesPerPixel) == (48, 64, 3)
    frames = client.retrieve_instance_frames(
        study, series, sop, [1], media_types=(("image/jpeg", "1.2.840.10008.1.2.4.50"),))
    assert frames[0] == jpeg  # the very JPEG stream, encapsulated and given back


def test_store_json_with_pdf(http: httpx.Client, corpus: Path) -> None:
    """dcm4chee recipe: a PDF into EncapsulatedDocument (0042,0011)."""
    study = generate_uid()
    # Padded after %%EOF (a PDF comment) so that it is bulk data in the metadata (> 1 KiB).
    pdf = corpus_file(corpus, "HelloWorld.pdf") + b"\n%" + b"x" * 2048 + b"\n"
    metadata = _metadata(study, {
        "sop_class": "1.2.840.10008.5.1.4.1.1.104.1",
        "00420011": {"vr": "OB", "BulkDataURI": "http://example.com/doc.pdf"},
        "00420012": {"vr": "LO", "Value": ["application/pdf"]},
    })
    body, boundary = multipart_body([
        ({"Content-Type": "application/dicom+json; charset=utf-8"}, orjson.dumps(metadata)),
        ({"Content-Type": "application/pdf", "Content-Location": "http://example.com/doc.pdf"},
         pdf),
    ])
    response = http.post(f"/rs/studies/{study}", content=body, headers={
        "Content-Type": f"multipart/related; type=application/dicom+json; boundary={boundary}"})
    assert response.status_code == 200, response.text
    series = metadata["0020000E"]["Value"][0]
    sop = metadata["00080018"]["Value"][0]
    meta = http.get(f"/dicom-web/studies/{study}/series/{series}/instances/{sop}/metadata").json()
    uri = meta[0]["00420011"]["BulkDataURI"]
    bulk = http.get(uri, headers={"Accept": "application/octet-stream"})
    assert bulk.status_code == 200
    assert bulk.content.rstrip(b"\x00") == pdf.rstrip(b"\x00")


def test_store_json_with_missing_bulk_part_fails_cleanly(http: httpx.Client) -> None:
    study = generate_uid()
    metadata = _metadata(study, {"7FE00010": {"vr": "OB", "BulkDataURI": "absent.jpg"}})
    body, boundary = multipart_body([
        ({"Content-Type": "application/dicom+json"}, orjson.dumps([metadata]))])
    response = http.post("/dicom-web/studies", content=body, headers={
        "Content-Type": f"multipart/related; type=application/dicom+json; boundary={boundary}"})
    assert response.status_code == 400
    assert "absent.jpg" in response.headers["warning"]
    assert http.get("/dicom-web/studies", params={"StudyInstanceUID": study}).json() == []


# --- WADO-RS ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def stored_study(http: httpx.Client) -> tuple[str, str, list[str]]:
    study, series = generate_uid(), generate_uid()
    sops = [generate_uid() for _ in range(3)]
    files = [make_dicom(study_uid=study, series_uid=series, sop_uid=sop, instance_number=i,
                        size=600) for i, sop in enumerate(sops, 1)]  # big enough for bulk data
    assert stow(http, files).status_code == 200
    return study, series, sops


def test_metadata_with_absolute_bulk_uris(client: DICOMwebClient, http: httpx.Client,
                                          stored_study: tuple[str, str, list[str]]) -> None:
    study, series, sops = stored_study
    metadata = client.retrieve_series_metadata(study, series)
    assert sorted(m["00080018"]["Value"][0] for m in metadata) == sorted(sops)
    pixel = metadata[0]["7FE00010"]
    # dicomweb-client sends "Host: 127.0.0.1" (no port): URLs follow the Host header.
    assert pixel["BulkDataURI"].startswith("http://127.0.0.1")
    assert "/dicom-web/studies/" in pixel["BulkDataURI"]
    assert len(client.retrieve_study_metadata(study)) == 3
    one = client.retrieve_instance_metadata(study, series, sops[0])
    assert one["00080018"]["Value"] == [sops[0]]
    # The pixel data BulkDataURI answers with the uncompressed pixels.
    response = http.get(urllib.parse.urlsplit(pixel["BulkDataURI"]).path, headers={
        "Accept": 'multipart/related; type="application/octet-stream"'})
    assert response.status_code == 200
    parts = parse_multipart(response)
    assert len(parts[0][1]) == 600 * 600 * 2


def test_urls_follow_forwarded_headers(http: httpx.Client,
                                       stored_study: tuple[str, str, list[str]]) -> None:
    study, series, _ = stored_study
    metadata = http.get(f"/dicom-web/studies/{study}/series/{series}/metadata", headers={
        "X-Forwarded-Host": "pacs.example.org", "X-Forwarded-Proto": "https"}).json()
    assert metadata[0]["7FE00010"]["BulkDataURI"].startswith(
        "https://pacs.example.org/dicom-web/studies/")
    metadata = http.get(f"/rs/studies/{study}/series/{series}/metadata",
                        headers={"Host": "archive:8080"}).json()
    assert metadata[0]["7FE00010"]["BulkDataURI"].startswith("http://archive:8080/rs/studies/")


def test_retrieve_multipart_shape(http: httpx.Client,
                                  stored_study: tuple[str, str, list[str]]) -> None:
    study, _, sops = stored_study
    first = http.get(f"/dicom-web/studies/{study}",
                     headers={"Accept": 'multipart/related; type="application/dicom"'})
    second = http.get(f"/dicom-web/studies/{study}",
                      headers={"Accept": "multipart/related; type=application/dicom"})
    assert first.status_code == second.status_code == 200
    assert first.headers["content-type"] != second.headers["content-type"]  # fresh boundary
    parts = parse_multipart(first)
    assert len(parts) == 3
    for headers, content in parts:
        # As Orthanc's plugin: Content-Length in each part, the type without its syntax.
        assert set(headers) == {"content-type", "content-length", "content-location"}
        assert headers["content-type"] == "application/dicom"
        assert int(headers["content-length"]) == len(content)
        assert pydicom.dcmread(io.BytesIO(content)).SOPInstanceUID in sops


def test_retrieve_transfer_syntax_negotiation(http: httpx.Client, client: DICOMwebClient,
                                             corpus: Path) -> None:
    data = corpus_file(corpus, "TransferSyntaxes/1.2.840.10008.1.2.4.50.dcm")
    assert stow(http, [data]).status_code == 200
    ds = pydicom.dcmread(io.BytesIO(data))
    path = (f"/dicom-web/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
            f"/instances/{ds.SOPInstanceUID}")
    stored = http.get(path, headers={
        "Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'})
    (headers, content), = parse_multipart(stored)
    assert content == data
    # Without a transfer syntax: Explicit VR Little Endian (PS3.18 8.7.3.5.2).
    for accept in (None, "multipart/related", 'multipart/related; type="application/dicom"'):
        default = http.get(path, headers={"Accept": accept} if accept else {})
        (_, content), = parse_multipart(default)
        assert pydicom.dcmread(io.BytesIO(content)).file_meta.TransferSyntaxUID == \
            "1.2.840.10008.1.2.1"
    uncompressed = client.retrieve_instance(
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID,
        media_types=(("application/dicom", "1.2.840.10008.1.2.1"),))
    assert uncompressed.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert uncompressed.pixel_array.shape == ds.pixel_array.shape
    # A compressed syntax that Pharos cannot write (JPEG 2000 Part 2): 400.
    refused = http.get(path, headers={
        "Accept": 'multipart/related; type="application/dicom"; '
                  "transfer-syntax=1.2.840.10008.1.2.4.92"})
    assert refused.status_code == 400
    # ... unless something else acceptable remains (q-values, several types).
    fallback = http.get(path, headers={
        "Accept": 'multipart/related; type="application/dicom"; '
                  "transfer-syntax=1.2.840.10008.1.2.4.92, "
                  'multipart/related; type="application/dicom"; transfer-syntax=*; q=0.5'})
    assert fallback.status_code == 200


def test_unknown_resources_are_404(http: httpx.Client,
                                   stored_study: tuple[str, str, list[str]]) -> None:
    study, series, _ = stored_study
    for path in (f"/dicom-web/studies/{generate_uid()}",
                 f"/dicom-web/studies/{study}/series/{generate_uid()}",
                 f"/dicom-web/studies/{study}/series/{series}/instances/{generate_uid()}",
                 f"/dicom-web/studies/{study}/series/{series}/instances/1.2*/metadata",
                 f"/dicom-web/studies/{generate_uid()}/metadata"):
        assert http.get(path).status_code == 404, path


def test_retrieve_streams_a_big_study(http: httpx.Client) -> None:
    """100 instances of ~0.5 MB in one answer, read as a stream."""
    study = generate_uid()
    for batch in range(4):
        files = [make_dicom(study_uid=study, instance_number=batch * 25 + i, size=512)
                 for i in range(25)]
        assert stow(http, files).status_code == 200
    total = 0
    count = 0
    with http.stream("GET", f"/dicom-web/studies/{study}") as response:
        assert response.status_code == 200
        # Files sent as stored: the exact length is announced from the index.
        declared = int(response.headers["content-length"])
        needle = b"Content-Type: application/dicom"
        tail = b""
        for chunk in response.iter_bytes():
            total += len(chunk)
            # Count the headers that end in this chunk (a header may straddle two chunks).
            window = tail + chunk
            count += window.count(needle) - tail.count(needle)
            tail = window[-(len(needle) - 1):]
    assert count == 100
    assert total == declared
    assert total > 100 * 512 * 512 * 2


def test_quoted_accept_query_parameter(http: httpx.Client,
                                       stored_study: tuple[str, str, list[str]]) -> None:
    study, series, _ = stored_study
    accept = urllib.parse.quote('multipart/related; type="application/dicom"')
    response = http.get(f"/dicom-web/studies/{study}/series/{series}?accept={accept}",
                        headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert len(parse_multipart(response)) == 3


def test_metadata_as_xml(http: httpx.Client, stored_study: tuple[str, str, list[str]]) -> None:
    study, series, sops = stored_study
    response = http.get(f"/dicom-web/studies/{study}/series/{series}/metadata",
                        headers={"Accept": 'multipart/related; type="application/dicom+xml"'})
    assert response.status_code == 200
    parts = parse_multipart(response)
    assert len(parts) == 3
    for headers, content in parts:
        assert headers["content-type"] == "application/dicom+xml"
        assert content.startswith(b"<?xml") and b"NativeDicomModel" in content
        ElementTree.fromstring(content)  # well-formed
        assert b'<BulkData uri="http' in content
    assert any(sops[0].encode() in content for _, content in parts)
