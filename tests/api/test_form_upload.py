"""``POST /instances`` with ``multipart/form-data``: HTML form uploads, as Orthanc accepts
them (Orthanc Explorer's upload button, jQuery File Upload's chunks)."""

from __future__ import annotations

import io
import zipfile

import httpx
import pytest

from tests.helpers import LiveServer, make_dicom

BOUNDARY = "----WebKitFormBoundarypJDNQqJPoXiorRmQ"


def _form(*files: tuple[str, bytes], closed: bool = True, sloppy: bool = False) -> bytes:
    """A form body written by hand (browsers' shape; *sloppy*: the spaces Orthanc's suite
    puts around separators)."""
    body = b""
    for name, data in files:
        disposition = (f'Content-Disposition  :   form-data  ; name ="files[]"   ; '
                       f'filename = "{name}"  ' if sloppy else
                       f'Content-Disposition: form-data; name="files[]"; filename="{name}"')
        body += f"--{BOUNDARY}\r\n{disposition}\r\n".encode()
        body += b"Content-Type: application/octet-stream\r\n\r\n" + data + b"\r\n"
    return body + f"--{BOUNDARY}{'--' if closed else ''}".encode()


def _count(http: httpx.Client) -> int:
    return len(http.get("/instances").json())


def _clear(http: httpx.Client) -> None:
    for patient in http.get("/patients").json():
        http.delete(f"/patients/{patient}")


def test_form_with_files_and_a_zip_stores_them_all(server: LiveServer) -> None:
    first, second, zipped = make_dicom(patient_id="F1"), make_dicom(patient_id="F2"), make_dicom()
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as writer:
        writer.writestr("inside/one.dcm", zipped)
    with server.client() as http:
        _clear(http)
        answer = http.post("/instances", content=_form(
            ("a.dcm", first), ("b.dcm", second), ("c.zip", archive.getvalue()), ("", b"")),
            headers={"Content-Type": f"multipart/form-data   ;    boundary  =  {BOUNDARY}",
                     "X-Requested-With": "XMLHttpRequest"})
        assert answer.status_code == 200, answer.text
        stored = answer.json()
        assert [item["Status"] for item in stored] == ["Success"] * 3
        assert _count(http) == 3
        # The same form again: already stored, said so per instance.
        again = http.post("/instances", content=_form(("a.dcm", first), sloppy=True),
                          headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
        assert [item["Status"] for item in again.json()] == ["AlreadyStored"]


def test_browser_style_form_through_httpx_files(server: LiveServer) -> None:
    """httpx (as requests, as a browser's FormData) writes its own boundary and headers."""
    with server.client() as http:
        _clear(http)
        answer = http.post("/instances", files=[("files", ("x.dcm", make_dicom(), "application/dicom")),
                                                ("files", ("y.dcm", make_dicom(), "application/dicom"))])
        assert answer.status_code == 200, answer.text
        assert len(answer.json()) == 2 and _count(http) == 2


def test_a_bad_part_stores_nothing(server: LiveServer) -> None:
    with server.client() as http:
        _clear(http)
        answer = http.post("/instances", content=_form(("good.dcm", make_dicom()),
                                                       ("bad.txt", b"not DICOM at all")),
                           headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
        assert answer.status_code == 400
        assert answer.json()["OrthancError"] == "Bad file format"
        assert _count(http) == 0


@pytest.mark.parametrize("content_type, body", [
    ("multipart/form-data", b"whatever"),  # no boundary
    (f"multipart/form-data; boundary={BOUNDARY}", b"no delimiter at all"),
    (f"multipart/form-data; boundary={BOUNDARY}", f"--{BOUNDARY}\r\nX: y\r\n\r\ntruncated".encode()),
])
def test_malformed_forms_answer_400(server: LiveServer, content_type: str, body: bytes) -> None:
    answer = httpx.post(f"{server.url}/instances", content=body,
                        headers={"Content-Type": content_type})
    assert answer.status_code == 400, answer.text


def test_jquery_file_upload_chunks_are_gathered(server: LiveServer) -> None:
    """``maxChunkSize``: one file in slices named by X-File-Name, complete at X-File-Size."""
    whole, other = make_dicom(size=64), make_dicom(patient_id="OTHER")
    with server.client() as http:
        _clear(http)

        def send(name: str, piece: bytes, size: int) -> httpx.Response:
            return http.post("/instances", content=_form((name, piece), closed=False), headers={
                "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
                "X-Requested-With": "XMLHttpRequest", "X-File-Name": name,
                "X-File-Size": str(size)})

        assert send("ct.dcm", whole[:1000], len(whole)).json() == []
        assert send("ct.dcm", whole[1000:2000], len(whole)).json() == []
        assert _count(http) == 0
        # Another file, whole in one slice, while the first one is pending.
        assert len(send("other.dcm", other, len(other)).json()) == 1
        assert _count(http) == 1
        last = send("ct.dcm", whole[2000:], len(whole))
        assert [item["Status"] for item in last.json()] == ["Success"]
        assert _count(http) == 2
        stored = http.get(f"/instances/{last.json()[0]['ID']}/file").content
        assert stored == whole
        # More bytes than announced: the slices are dropped, nothing stored.
        assert send("big.dcm", other, len(other) - 1).json() == []
        assert _count(http) == 2


@pytest.mark.parametrize("headers, message", [
    ({"X-File-Name": "a.dcm"}, "X-File-Size"),
    ({"X-File-Size": "12"}, "X-File-Name"),
    ({"X-File-Name": "a.dcm", "X-File-Size": "twelve"}, "not an integer"),
    ({"X-File-Name": "a.dcm", "X-File-Size": "-3"}, "negative"),
    ({"X-Requested-With": "fetch"}, "XMLHttpRequest"),
])
def test_bad_upload_headers_answer_400(server: LiveServer, headers: dict[str, str],
                                       message: str) -> None:
    answer = httpx.post(f"{server.url}/instances", content=_form(("a.dcm", make_dicom())),
                        headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
                                 **headers})
    assert answer.status_code == 400
    assert message in answer.json()["Details"]
