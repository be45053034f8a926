"""No 5xx for client input (issue 13): each case a hostile client sent, and its class.

Integers beyond 2^63 on every paged route, file names outside Latin-1 or with NULs in
``Content-Disposition``, wildcard patterns SQLite calls "too complex", nesting deep enough
to overflow recursive code, a peer URL without scheme, a C-FIND identifier that cannot be
encoded, a stray sequence delimiter after a valid file, 16-bit images asked as JPEG, a
modification of 100,000 keys, and child lists documented as what they answer. From the
fuzz campaign (``make fuzz``) on PostgreSQL: sequence numbers beyond its 32-bit columns,
NUL characters its text cannot hold; and answers the OpenAPI document did not describe.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, unquote

import httpx
import pytest
from pydicom.uid import generate_uid

from tests.helpers import LiveServer, free_port, live_server, make_dicom

HUGE = str(2**63)
HUGER = "9" * 40
REPO = Path(__file__).resolve().parent.parent.parent


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    dicom_port = free_port()
    config = {"DicomPort": dicom_port, "DicomAet": "PHAROS",
              "DicomModalities": {"self": ["PHAROS", "127.0.0.1", dicom_port]}}
    with live_server(tmp_path_factory.mktemp("hostile"), config) as live:
        yield live


@pytest.fixture(scope="module")
def stored(server: LiveServer) -> dict[str, str]:
    with server.client() as http:
        return http.post("/instances", content=make_dicom(patient_id="HOSTILE")).json()


def _not_5xx(answer: httpx.Response) -> httpx.Response:
    assert answer.status_code < 500, (answer.request.url, answer.status_code, answer.text)
    return answer


def test_integers_beyond_int64(server: LiveServer, stored: dict[str, str]) -> None:
    with server.client() as http:
        for route in ("/patients", "/studies", "/series", "/instances", "/changes",
                      "/exports", "/dicom-web/studies", "/dicom-web/series",
                      "/dicom-web/instances"):
            for name in ("limit", "since", "offset"):
                for value in (HUGE, HUGER, "-1", "1e3", "0x10"):
                    answer = _not_5xx(http.get(route, params={name: value}))
                    if name in ("limit", "since") and not route.startswith("/dicom-web") \
                            or name in ("limit", "offset") and route.startswith("/dicom-web"):
                        assert answer.status_code == 400, (route, name, value)
            assert http.get(route, params={"limit": str(2**63 - 1)}).status_code == 200
        for field in ("Limit", "Since"):
            for value in (2**63, 2**64, 10**30, -1):
                answer = _not_5xx(http.post("/tools/find", json={
                    "Level": "Study", "Query": {}, field: value}))
                assert answer.status_code == 400
        for route in (f"/instances/{stored['ID']}/preview",
                      f"/instances/{stored['ID']}/rendered"):
            for query in ({"quality": "1e400"}, {"width": "inf"}, {"height": "nan"},
                          {"window-width": "-inf"}, {"quality": HUGER}, {"width": HUGER}):
                # The image routes answer bad arguments as Orthanc does (4xx), or ignore
                # the ones they do not read (/preview has no width).
                _not_5xx(http.get(route, params=query))


def test_download_names_per_rfc_6266(server: LiveServer, stored: dict[str, str]) -> None:
    study = stored["ParentStudy"]
    with server.client() as http:
        for route in (f"/studies/{study}/archive", f"/studies/{study}/media"):
            answer = _not_5xx(http.get(route, params={"filename": "étude 日本.zip"}))
            assert answer.status_code == 200
            header = answer.headers["content-disposition"]
            assert header.isascii()
            encoded = header.split("filename*=UTF-8''", 1)[1]
            assert unquote(encoded) == "étude 日本.zip"
            hostile = quote("a\x00b\r\nX: y.zip")
            answer = _not_5xx(http.get(f"{route}?filename={hostile}"))
            assert answer.status_code == 200
            assert answer.headers["content-disposition"] == 'filename="abX: y.zip"'
            assert "x" not in answer.headers
            plain = http.get(route, params={"filename": '"toto".zip'})
            assert plain.headers["content-disposition"] == 'filename="toto.zip"'


def test_pattern_and_list_complexity(server: LiveServer) -> None:
    with server.client() as http:
        for value in ("?" * 60000, "*a" * 30000, "A\\" * 20000):
            answer = _not_5xx(http.post("/tools/find", json={
                "Level": "Patient", "Query": {"PatientName": value}}))
            assert answer.status_code == 400, answer.text
            qido = _not_5xx(http.get("/dicom-web/studies",
                                     params={"PatientName": value[:3000]}))
            assert qido.status_code == 400
        started = time.monotonic()
        answer = http.post("/tools/find", json={"Level": "Patient",
                                                "Query": {"PatientName": "*A" * 200 + "B"}})
        assert answer.status_code == 200 and time.monotonic() - started < 60


def _nested(depth: int) -> str:
    """``"ReferencedStudySequence": [{... depth times ...}]`` as JSON text (json.dumps
    itself would overflow the stack)."""
    return ('"ReferencedStudySequence":[{' * depth + '"CodeValue":"X"' + "}]" * depth)


def test_recursion_depth(server: LiveServer, stored: dict[str, str]) -> None:
    with server.client() as http:
        for depth in (100, 400, 3000):  # past our limit, orjson's, Python's stack
            body = '{"Tags":{"PatientName":"DEEP",' + _nested(depth) + "}}"
            answer = _not_5xx(http.post("/tools/create-dicom", content=body))
            assert answer.status_code == 400
            answer = _not_5xx(http.post(f"/instances/{stored['ID']}/modify",
                                        content='{"Replace":{' + _nested(depth) + "}}"))
            assert answer.status_code == 400
        ok = http.post("/tools/create-dicom",
                       content='{"Tags":{"PatientName":"SHALLOW",' + _nested(5) + "}}")
        assert ok.status_code == 200, ok.text


def _png_claiming(width: int, height: int) -> bytes:
    """A valid PNG header (signature, IHDR with its CRC) claiming *width* x *height* pixels,
    followed by one tiny IDAT: a few dozen bytes announcing gigapixels."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + \
            struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b""))


def test_image_declaring_gigapixels(server: LiveServer) -> None:
    """Orthanc's suite sends such a PNG to /tools/create-dicom: Pillow refuses it as a
    decompression bomb, which is the client's error (400), not the server's."""
    import base64
    content = "data:image/png;base64," + base64.b64encode(_png_claiming(40000, 40000)).decode()
    with server.client() as http:
        answer = _not_5xx(http.post("/tools/create-dicom", json={
            "Tags": {"PatientName": "BOMB"}, "Content": content}))
        assert answer.status_code == 400, answer.text
        assert "too large" in answer.json()["Message"] + answer.json().get("Details", "")
        assert http.get("/system").status_code == 200


def test_peer_and_modality_definitions(server: LiveServer) -> None:
    with server.client() as http:
        for url in ("localhost:8042", "ftp://host/", "http://", "http://host:99999/", "x" * 500):
            answer = _not_5xx(http.put("/peers/bad", json={"Url": url}))
            assert answer.status_code == 400, (url, answer.text)
        for body in (["AET", "host", 0], ["A" * 17, "host", 104], ["", "host", 104],
                     ["AET", "", 104], {"AET": "AET", "Host": "h", "Port": "x"}):
            answer = _not_5xx(http.put("/modalities/bad", json=body))
            assert answer.status_code == 400, (body, answer.text)
        assert "bad" not in http.get("/peers").json()
        assert "bad" not in http.get("/modalities").json()


def test_query_that_cannot_be_encoded(server: LiveServer) -> None:
    with server.client() as http:
        for query in ({"Rows": "not a number"}, {"ReferencedStudySequence": ["not an item"]},
                      {"NotATag": "x"}):
            answer = _not_5xx(http.post("/modalities/self/query",
                                        json={"Level": "Study", "Query": query}))
            assert answer.status_code == 400, answer.text
        fine = http.post("/modalities/self/query", json={"Level": "Study",
                                                         "Query": {"PatientID": "*"}})
        assert fine.status_code == 200, fine.text


def test_stray_sequence_delimiter_after_a_valid_file(server: LiveServer) -> None:
    data = make_dicom(patient_id="STRAY") + b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
    boundary = "STRAYBOUNDARY"
    body = (f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + data
            + f"\r\n--{boundary}--\r\n".encode())
    with server.client() as http:
        answer = _not_5xx(http.post("/instances", content=data))
        assert answer.status_code == 200
        instance = answer.json()["ID"]
        assert http.get(f"/instances/{instance}/tags").status_code == 200
        assert http.get(f"/instances/{instance}/preview").status_code == 200
        http.delete(f"/instances/{instance}")
        stow = _not_5xx(http.post("/dicom-web/studies", content=body, headers={
            "Content-Type": f"multipart/related; type=application/dicom; boundary={boundary}"}))
        assert stow.status_code == 200


def test_sixteen_bit_images_as_jpeg(server: LiveServer, stored: dict[str, str]) -> None:
    with server.client() as http:
        for route in ("image-int16", "image-uint16"):
            answer = _not_5xx(http.get(f"/instances/{stored['ID']}/{route}",
                                       params={"accept": "image/jpeg"}))
            # Orthanc: ExtractJpegImage throws ParameterOutOfRange, which its decoded
            # frame handler answers as "no such image" (404).
            assert 400 <= answer.status_code < 500
            png = http.get(f"/instances/{stored['ID']}/{route}")
            assert png.status_code == 200 and png.headers["content-type"] == "image/png"


def test_modification_of_100000_keys(server: LiveServer, stored: dict[str, str]) -> None:
    replace = {f"0009,{0x1000 + i % 0xEFFF:04x}": "v" for i in range(100_000)}
    replace.update({f"0011,{0x1000 + i:04x}": "v" for i in range(40_000)})
    with server.client() as http:
        started = time.monotonic()
        answer = _not_5xx(http.post(f"/instances/{stored['ID']}/modify",
                                    json={"Replace": replace, "Force": True}))
        assert answer.status_code == 400
        assert time.monotonic() - started < 60


def test_child_lists_match_the_openapi_document(server: LiveServer,
                                                stored: dict[str, str]) -> None:
    from jsonschema import Draft202012Validator
    document = json.loads((REPO / "openapi" / "openapi.json").read_text())
    with server.client() as http:
        for path, resource in (("/patients/{id}/studies", stored["ParentPatient"]),
                               ("/studies/{id}/series", stored["ParentStudy"]),
                               ("/series/{id}/instances", stored["ParentSeries"])):
            schema = document["paths"][path]["get"]["responses"]["200"]["content"][
                "application/json"]["schema"]
            schema = {**schema, "components": document["components"]}
            validator = Draft202012Validator(schema)
            for expand in ("false", "true"):
                answer = http.get(path.replace("{id}", resource), params={"expand": expand})
                assert answer.status_code == 200
                errors = list(validator.iter_errors(answer.json()))
                assert not errors, (path, expand, errors[:1])
            assert all(isinstance(i, str) for i in http.get(
                path.replace("{id}", resource), params={"expand": "false"}).json())


def test_malformed_zip_entry_names(server: LiveServer) -> None:
    import zipfile
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("../../etc/é\x00.dcm", make_dicom(sop_uid=generate_uid()))
    with server.client() as http:
        assert _not_5xx(http.post("/instances", content=archive.getvalue())).status_code == 200


def test_digits_outside_ascii_and_endless_numbers(server: LiveServer,
                                                  stored: dict[str, str]) -> None:
    """``str.isdigit`` accepts "³" and "١", which ``int`` refuses or misreads; ``int``
    refuses more than 4,300 digits: neither may reach a 500."""
    instance = stored["ID"]
    with server.client() as http:
        for name in ("³", "١٠٢٤", "9" * 5000):
            for route in (f"/instances/{instance}/attachments/{name}/compressed-size",
                          f"/instances/{instance}/metadata/{name}",
                          f"/instances/{instance}/content/0008,1140/{name}"):
                assert _not_5xx(http.get(route)).status_code in (400, 404)


def test_sequence_numbers_beyond_the_index_columns(server: LiveServer,
                                                   stored: dict[str, str]) -> None:
    """``since``/``to`` up to 2^63 are valid (Orthanc's int64); PostgreSQL's ``seq``
    columns are 32-bit: beyond them is an empty page, never "integer out of range"."""
    big = str(2**62)
    with server.client() as http:
        answer = _not_5xx(http.get("/changes", params={"since": big}))
        assert answer.status_code == 200 and answer.json()["Changes"] == []
        answer = _not_5xx(http.get("/changes", params={"to": big, "limit": "5"}))
        assert answer.status_code == 200 and answer.json()["Changes"]
        answer = _not_5xx(http.get("/changes", params={"since": big, "to": big}))
        assert answer.status_code == 200 and answer.json()["Changes"] == []
        answer = _not_5xx(http.get("/exports", params={"since": big}))
        assert answer.status_code == 200 and answer.json()["Exports"] == []


def test_nul_characters_in_searches_and_identifiers(server: LiveServer,
                                                    stored: dict[str, str]) -> None:
    """A NUL in a searched value or an identifier finds nothing (SQLite) or is refused as
    a bad request (PostgreSQL's text cannot hold it): never a 500 "cannot contain NUL"."""
    nul = "HOST\x00ILE"
    with server.client() as http:
        for method, route, body in (
                ("POST", "/tools/lookup", nul.encode()),
                ("POST", "/tools/find", {"Level": "Patient", "Query": {"PatientID": nul}}),
                ("POST", "/tools/find", {"Level": "Study", "Query": {"PatientName": "*\x00*"}}),
                ("POST", "/tools/find", {"Level": "Study", "Query": {}, "Labels": ["a\x00"]}),
                ("GET", "/dicom-web/studies?PatientID=HOST%00ILE", None),
                ("GET", "/dicom-web/studies/1.2%00/metadata", None),
                ("GET", "/instances/ab%00cd", None),
                ("GET", "/queries/ab%00cd", None),
                ("GET", "/jobs/ab%00cd", None),
                ("GET", "/storage-commitment/ab%00cd", None),
                ("GET", "/changes?type=New%00Instance", None)):
            if isinstance(body, dict):
                answer = http.request(method, route, json=body)
            else:
                answer = http.request(method, route, content=body)
            _not_5xx(answer)
            if answer.status_code == 200:
                found = answer.json()
                assert (found.get("Changes") if isinstance(found, dict) else found) == [], \
                    (route, found)
            else:
                assert answer.status_code in (400, 404), (route, answer.status_code)
        # Writing one: stored as sent (SQLite) or refused with nothing written (PostgreSQL).
        route = f"/instances/{stored['ID']}/metadata/1030"
        answer = _not_5xx(http.put(route, content=b"A\x00B"))
        if answer.status_code == 200:
            assert http.get(route).content == b"A\x00B"
        else:
            assert answer.status_code == 400
            assert http.get(route).status_code == 404


def test_resource_answers_match_the_openapi_document(server: LiveServer,
                                                     stored: dict[str, str]) -> None:
    """What the fuzz campaign checks (schemathesis' response_schema_conformance), for the
    answers it found off the document: tags in full format, resources reduced by
    ``?response-content``, metadata by number."""
    from jsonschema import Draft202012Validator
    document = json.loads((REPO / "openapi" / "openapi.json").read_text())

    def check(path: str, url: str, params: dict[str, str]) -> None:
        schema = document["paths"][path]["get"]["responses"]["200"]["content"][
            "application/json"]["schema"]
        validator = Draft202012Validator({**schema, "components": document["components"]})
        answer = http.get(url, params=params)
        assert answer.status_code == 200, (url, params, answer.text)
        errors = list(validator.iter_errors(answer.json()))
        assert not errors, (url, params, errors[:1])

    with server.client() as http:
        http.put(f"/instances/{stored['ID']}/metadata/1024", content=b"x").raise_for_status()
        for level, key in (("patients", "ParentPatient"), ("studies", "ParentStudy"),
                           ("series", "ParentSeries"), ("instances", "ID")):
            for params in ({"expand": "true", "full": "true"}, {"expand": "true", "short": ""},
                           {"response-content": ""}, {"response-content": "Labels;Status"},
                           {"response-content": "MainDicomTags;Metadata"}):
                check(f"/{level}", f"/{level}", params)
            check(f"/{level}/{{id}}", f"/{level}/{stored[key]}", {"full": "true"})
            for params in ({"numeric": "true"}, {"numeric": "true", "expand": "true"}, {}):
                check(f"/{level}/{{id}}/metadata", f"/{level}/{stored[key]}/metadata", params)
        check("/series/{id}/study", f"/series/{stored['ParentSeries']}/study", {"full": "true"})
        check("/studies/{id}/series", f"/studies/{stored['ParentStudy']}/series",
              {"full": "true"})


def test_store_straight_of_a_body_the_peer_refuses_is_a_400(tmp_path: Path) -> None:
    """A peer's 4xx is the client's error (Orthanc's HttpClient::ThrowException): found by
    the fuzz campaign (POST /peers/self/store-straight with bytes that are not DICOM)."""
    from tests.helpers import free_port, live_server
    port = free_port()
    config = {"HttpPort": port,
              "OrthancPeers": {"self": [f"http://127.0.0.1:{port}/"]}}
    with live_server(tmp_path, config) as server, server.client() as http:
        answer = http.post("/peers/self/store-straight", content=b"\x00\x10oH\xff",
                           headers={"Content-Type": "application/octet-stream"})
        assert answer.status_code == 400, answer.text
        assert http.get("/instances").json() == []
        stored = http.post("/peers/self/store-straight", content=make_dicom())
        assert stored.status_code == 200, stored.text
        assert len(http.get("/instances").json()) == 1
