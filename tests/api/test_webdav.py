"""The WebDAV share at ``/webdav/`` (Orthanc 1.8.0+), against live servers: the virtual
folders and their names as Orthanc builds them, PROPFIND at depth 0 and 1, files as
stored, uploads through the one ingest path, deletions only when allowed, ReadOnly and
authentication as on every route, and a real WebDAV client (webdav4)."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, unquote
from xml.etree import ElementTree

import httpx
import pytest

from tests.helpers import CORPUS, LiveServer, live_server, make_dicom, pinned_database

DAV = "{DAV:}"


def propfind(client: httpx.Client, path: str, depth: int | str) -> dict[str, dict[str, object]]:
    """``{href: properties}`` of a 207 answer, as Orthanc's suite (DoPropFind) reads it."""
    answer = client.request("PROPFIND", quote(path), headers={"Depth": str(depth)})
    assert answer.status_code == 207, (path, answer.status_code, answer.text)
    assert answer.headers["content-type"].startswith("application/xml")
    root = ElementTree.fromstring(answer.content)
    assert root.tag == DAV + "multistatus"
    result: dict[str, dict[str, object]] = {}
    for response in root:
        assert response.tag == DAV + "response"
        href = unquote(response.findtext(DAV + "href") or "")
        assert response.findtext(f"{DAV}propstat/{DAV}status") == "HTTP/1.1 200 OK"
        prop = response.find(f"{DAV}propstat/{DAV}prop")
        assert prop is not None
        kind = prop.find(DAV + "resourcetype")
        assert kind is not None
        info: dict[str, object] = {
            "displayname": prop.findtext(DAV + "displayname") or "",
            "folder": kind.find(DAV + "collection") is not None,
            "creationdate": prop.findtext(DAV + "creationdate"),
            "lastmodified": prop.findtext(DAV + "getlastmodified")}
        if not info["folder"]:
            info["size"] = int(prop.findtext(DAV + "getcontentlength") or "-1")
            info["mime"] = prop.findtext(DAV + "getcontenttype")
        assert str(info["creationdate"]).endswith("Z") and str(info["lastmodified"]).endswith("Z")
        result[href] = info
    return result


def children(client: httpx.Client, path: str) -> dict[str, dict[str, object]]:
    """The entries of a folder (its depth-1 listing less itself), by display name."""
    listing = propfind(client, path, 1)
    this = path.rstrip("/") + "/"
    assert listing.pop(this)["folder"] is True
    for href, info in listing.items():
        assert href == this + str(info["displayname"])
    return {str(info["displayname"]): info for info in listing.values()}


def only(names: dict[str, dict[str, object]]) -> str:
    assert len(names) == 1, names
    return next(iter(names))


@pytest.fixture(scope="module")
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60) as http:
        yield http


@pytest.fixture(scope="module")
def stored(client: httpx.Client) -> dict[str, str]:
    """Two patients named alike (one with accents) and one instance of each."""
    first = make_dicom(patient_id="P1", patient_name="Müller^Zoë", study_uid="1.2.3.1",
                       series_uid="1.2.3.1.1", sop_uid="1.2.3.1.1.1",
                       StudyDescription="Head/Neck")
    second = make_dicom(patient_id="P1", patient_name="Müller^Zoë", study_uid="1.2.3.2",
                        series_uid="1.2.3.2.1", sop_uid="1.2.3.2.1.1", StudyDate="20191231")
    ids = {}
    for name, data in (("first", first), ("second", second)):
        answer = client.post("/instances", content=data)
        assert answer.status_code == 200
        ids[name] = answer.json()["ID"]
        ids[name + "_study"] = answer.json()["ParentStudy"]
        ids[name + "_series"] = answer.json()["ParentSeries"]
    return ids


def test_root_at_both_depths(client: httpx.Client) -> None:
    for suffix in ("", "/"):
        listing = propfind(client, "/webdav" + suffix, 0)
        assert list(listing) == ["/webdav/"]
        assert listing["/webdav/"] == {**listing["/webdav/"], "folder": True,
                                       "displayname": "webdav"}
        entries = children(client, "/webdav" + suffix)
        assert sorted(entries) == ["by-dates", "by-patients", "by-studies", "by-uids", "uploads"]
        assert all(info["folder"] for info in entries.values())
    for name in ("by-dates", "by-patients", "by-studies", "by-uids", "uploads"):
        for suffix in ("", "/"):
            assert list(propfind(client, f"/webdav/{name}{suffix}", 0)) == [f"/webdav/{name}/"]


def test_depth_infinity_and_bad_depths_refused(client: httpx.Client) -> None:
    answer = client.request("PROPFIND", "/webdav/", headers={"Depth": "infinity"})
    assert answer.status_code == 403
    assert b"propfind-finite-depth" in answer.content
    for depth in ("2", "one", ""):
        assert client.request("PROPFIND", "/webdav/", headers={"Depth": depth}).status_code \
            == 400, depth
    # no Depth (webdav4 asking whether a path exists): depth 1, as SabreDAV answers
    answer = client.request("PROPFIND", "/webdav/by-uids")
    assert answer.status_code == 207


def test_options_announce_dav(client: httpx.Client) -> None:
    for path in ("/webdav", "/webdav/", "/webdav/by-uids"):
        answer = client.request("OPTIONS", path)
        assert answer.status_code == 200
        assert answer.headers["dav"] == "1,2"
        assert "PROPFIND" in answer.headers["allow"] and "MKCOL" in answer.headers["allow"]


def _get_same_as_rest(client: httpx.Client, path: str, instance_id: str) -> None:
    expected = client.get(f"/instances/{instance_id}/file").content
    answer = client.get(quote(path))
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/dicom"
    assert answer.headers["last-modified"].endswith("Z")
    assert answer.content == expected
    head = client.head(quote(path))
    assert head.status_code == 200 and int(head.headers["content-length"]) == len(expected)
    # PROPFIND of the file itself: that file alone, with its size and type
    listing = propfind(client, path, 0)
    assert list(listing) == [path]
    assert listing[path]["size"] == len(expected)
    assert listing[path]["mime"] == "application/dicom"


def test_by_patients(client: httpx.Client, stored: dict[str, str]) -> None:
    # Orthanc's names: accents dropped (ASCII only), "{{PatientID}} - {{PatientName}}"
    patients = children(client, "/webdav/by-patients")
    assert list(patients) == ["P1 - Mller^Zo"]
    studies = children(client, "/webdav/by-patients/P1 - Mller^Zo")
    # "{{StudyDate}} - {{StudyDescription}}", slashes removed, missing tags blank
    assert sorted(studies) == ["20191231 - Test study", "20200102 - HeadNeck"]
    base = "/webdav/by-patients/P1 - Mller^Zo/20200102 - HeadNeck"
    series = children(client, base)
    assert list(series) == ["CT - Test series"]
    files = children(client, base + "/CT - Test series")
    name = f"{stored['first']}.dcm"  # the Orthanc ID, as Orthanc names them here
    assert list(files) == [name]
    assert files[name]["mime"] == "application/dicom" and not files[name]["folder"]
    _get_same_as_rest(client, f"{base}/CT - Test series/{name}", stored["first"])
    for depth in (0, 1):
        listing = propfind(client, base, depth)
        assert listing[base + "/"]["displayname"] == "20200102 - HeadNeck"


def test_by_studies_names_alike_get_a_suffix(client: httpx.Client, stored: dict[str, str]) -> None:
    studies = children(client, "/webdav/by-studies")
    # "{{PatientID}} - {{PatientName}} - {{StudyDescription}}": two studies, one name
    assert sorted(studies) == ["P1 - Mller^Zo - HeadNeck", "P1 - Mller^Zo - Test study"]
    base = "/webdav/by-studies/P1 - Mller^Zo - HeadNeck"
    series = only(children(client, base))
    files = children(client, f"{base}/{series}")
    assert list(files) == [f"{stored['first']}.dcm"]


def test_by_dates(client: httpx.Client, stored: dict[str, str]) -> None:
    assert sorted(children(client, "/webdav/by-dates")) == ["2019", "2020"]
    assert list(children(client, "/webdav/by-dates/2020")) == ["2020-01"]
    study = only(children(client, "/webdav/by-dates/2020/2020-01"))
    assert study == "P1 - Mller^Zo - HeadNeck"
    series = only(children(client, f"/webdav/by-dates/2020/2020-01/{study}"))
    path = f"/webdav/by-dates/2020/2020-01/{study}/{series}/{stored['first']}.dcm"
    _get_same_as_rest(client, path, stored["first"])
    assert list(children(client, "/webdav/by-dates/2019")) == ["2019-12"]


def test_by_uids_with_json_files(client: httpx.Client, stored: dict[str, str]) -> None:
    studies = children(client, "/webdav/by-uids")
    assert sorted(studies) == ["1.2.3.1", "1.2.3.2"]
    study = children(client, "/webdav/by-uids/1.2.3.1")
    assert sorted(study) == ["1.2.3.1.1", "study.json"]
    assert study["study.json"]["mime"] == "application/json"
    document = client.get("/webdav/by-uids/1.2.3.1/study.json")
    assert document.status_code == 200
    assert len(document.content) == study["study.json"]["size"]
    assert document.json() == client.get(f"/studies/{stored['first_study']}").json()
    assert b"\r\n" in document.content  # Orthanc's DOS newlines
    series = children(client, "/webdav/by-uids/1.2.3.1/1.2.3.1.1")
    assert sorted(series) == ["1.2.3.1.1.1.dcm", "series.json"]
    assert client.get("/webdav/by-uids/1.2.3.1/1.2.3.1.1/series.json").json() == \
        client.get(f"/series/{stored['first_series']}").json()
    _get_same_as_rest(client, "/webdav/by-uids/1.2.3.1/1.2.3.1.1/1.2.3.1.1.1.dcm",
                      stored["first"])


def test_missing_paths_are_404(client: httpx.Client, stored: dict[str, str]) -> None:
    for path in ("/webdav/nope", "/webdav/by-uids/9.9.9", "/webdav/by-uids/1.2.3.1/9.9",
                 "/webdav/by-patients/nobody", "/webdav/by-dates/1999",
                 "/webdav/by-dates/2020/2021-01", "/webdav/by-dates/2020/nope",
                 "/webdav/by-uids/1.2.3.1/1.2.3.1.1/9.dcm"):
        answer = client.request("PROPFIND", quote(path), headers={"Depth": "1"})
        assert answer.status_code == 404, path
        assert client.get(quote(path)).status_code == 404, path
    # a folder is no file
    assert client.get("/webdav/by-uids/1.2.3.1").status_code == 404


def test_delete_refused_by_default(client: httpx.Client, stored: dict[str, str]) -> None:
    for path in ("/webdav/by-uids/1.2.3.1", "/webdav/by-uids/1.2.3.1/1.2.3.1.1/1.2.3.1.1.1.dcm",
                 "/webdav/by-patients/P1 - Mller^Zo", "/webdav/by-dates/2020"):
        assert client.delete(quote(path)).status_code == 403, path
    assert client.get(f"/instances/{stored['first']}").status_code == 200
    # writes outside uploads/ are refused
    assert client.put("/webdav/by-uids/x.dcm", content=b"x").status_code == 403
    assert client.request("MKCOL", "/webdav/by-uids/x").status_code == 403
    assert client.request("MOVE", "/webdav/by-uids/1.2.3.1",
                          headers={"Destination": "/webdav/uploads/x"}).status_code == 403


def test_lock_unlock_proppatch(client: httpx.Client) -> None:
    answer = client.request("LOCK", "/webdav/uploads/new.dcm")
    assert answer.status_code == 201
    token = answer.headers["lock-token"].strip("<>")
    body = ElementTree.fromstring(answer.content)
    assert body.findtext(f".//{DAV}locktoken/{DAV}href") == token
    assert token.startswith("opaquelocktoken:")
    assert client.request("UNLOCK", "/webdav/uploads/new.dcm",
                          headers={"Lock-Token": f"<{token}>"}).status_code == 204
    answer = client.request("PROPPATCH", "/webdav/uploads/new.dcm", content=b"<x/>")
    assert answer.status_code == 207


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_uploads(fresh_server: LiveServer) -> None:
    with httpx.Client(base_url=fresh_server.url, timeout=60) as http:
        assert http.request("MKCOL", "/webdav/uploads/scans").status_code == 201
        assert http.request("MKCOL", "/webdav/uploads/scans").status_code == 403  # exists
        assert http.request("MKCOL", "/webdav/uploads/none/deeper").status_code == 403
        assert children(http, "/webdav/uploads")["scans"]["folder"] is True
        # an empty file (clients create one, then write it) stays
        assert http.put("/webdav/uploads/scans/a.dcm", content=b"").status_code == 201
        assert children(http, "/webdav/uploads/scans")["a.dcm"]["size"] == 0
        # a DICOM file: stored as POST /instances stores it, then gone from uploads/
        data = make_dicom(sop_uid="1.2.9.1")
        assert http.put("/webdav/uploads/scans/a.dcm", content=data).status_code == 201
        [instance] = http.get("/instances").json()
        assert http.get(f"/instances/{instance}/file").content == data
        assert http.get(f"/instances/{instance}/metadata/Origin").text == "WebDav"
        assert children(http, "/webdav/uploads/scans") == {}
        # not DICOM: accepted and dropped (Orthanc logs a warning)
        assert http.put("/webdav/uploads/notes.txt", content=b"hello").status_code == 201
        assert "notes.txt" not in children(http, "/webdav/uploads")
        assert len(http.get("/instances").json()) == 1
        # a ZIP: every DICOM file in it, the rest skipped
        archive = _zip({"x/one.dcm": make_dicom(sop_uid="1.2.9.2"), "x/readme.txt": b"hi",
                        "two.dcm": make_dicom(sop_uid="1.2.9.3")})
        assert http.put("/webdav/uploads/batch.zip", content=archive).status_code == 201
        assert len(http.get("/instances").json()) == 3
        # a file larger than what is answered in one read: streamed from the store
        large = make_dicom(study_uid="1.2.9.9", series_uid="1.2.9.9.1", sop_uid="1.2.9.9.1.1",
                           size=1500)
        assert len(large) > 4 * 1024 * 1024
        assert http.put("/webdav/uploads/large.dcm", content=large).status_code == 201
        path = "/webdav/by-uids/1.2.9.9/1.2.9.9.1/1.2.9.9.1.1.dcm"
        assert children(http, "/webdav/by-uids/1.2.9.9/1.2.9.9.1")["1.2.9.9.1.1.dcm"]["size"] \
            == len(large)
        with http.stream("GET", path) as answer:
            assert answer.status_code == 200
            assert b"".join(answer.iter_bytes()) == large
        # into a folder that does not exist, or over a folder: refused
        assert http.put("/webdav/uploads/none/a.dcm", content=data).status_code == 403
        assert http.put("/webdav/uploads/scans", content=data).status_code == 403
        # deletions in uploads/ are allowed
        assert http.put("/webdav/uploads/scans/b.dcm", content=b"").status_code == 201
        assert http.delete("/webdav/uploads/scans/b.dcm").status_code == 204
        assert http.delete("/webdav/uploads/scans").status_code == 204
        assert "scans" not in children(http, "/webdav/uploads")
        assert http.delete("/webdav/uploads/scans").status_code == 403  # gone


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server with authentication and WebDavDeleteAllowed."""
    folder = tmp_path_factory.mktemp("webdav-guarded")
    (folder / "filter.lua").write_text(FILTER)
    config = {"AuthenticationEnabled": True, "RegisteredUsers": {"alice": "secret"},
              "WebDavDeleteAllowed": True, "LuaScripts": [str(folder / "filter.lua")]}
    with live_server(folder, config) as live:
        yield live


# WebDAV's methods reach the filter as the one Orthanc maps them to: PROPFIND as GET,
# MKCOL/LOCK/UNLOCK/PROPPATCH as PUT.
FILTER = """
function IncomingHttpRequestFilter(method, uri, ip, username, headers)
   if uri == '/webdav/by-studies' and method == 'GET' then
      return false
   end
   if uri == '/webdav/uploads/locked' and method == 'PUT' then
      return false
   end
   return true
end
"""


def test_request_filter_sees_orthanc_methods(guarded: LiveServer) -> None:
    with httpx.Client(base_url=guarded.url, timeout=60, auth=("alice", "secret")) as http:
        assert http.request("PROPFIND", "/webdav/by-studies",
                            headers={"Depth": "1"}).status_code == 403
        assert http.request("PROPFIND", "/webdav/by-dates", headers={"Depth": "1"}).status_code \
            == 207
        assert http.request("MKCOL", "/webdav/uploads/locked").status_code == 403
        assert http.request("LOCK", "/webdav/uploads/locked").status_code == 403
        assert http.request("MKCOL", "/webdav/uploads/free").status_code == 201


def test_authentication_applies(guarded: LiveServer) -> None:
    with httpx.Client(base_url=guarded.url, timeout=60) as anonymous:
        for method in ("PROPFIND", "GET", "PUT", "MKCOL", "LOCK", "DELETE"):
            answer = anonymous.request(method, "/webdav/uploads/x", headers={"Depth": "1"})
            assert answer.status_code == 401, method
            assert answer.headers["www-authenticate"].startswith("Basic")
    with httpx.Client(base_url=guarded.url, timeout=60, auth=("alice", "secret")) as http:
        assert len(children(http, "/webdav")) == 5


def test_delete_when_allowed(guarded: LiveServer) -> None:
    with httpx.Client(base_url=guarded.url, timeout=60, auth=("alice", "secret")) as http:
        for sop in ("1.2.7.1.1.1", "1.2.7.1.1.2"):
            http.post("/instances", content=make_dicom(
                study_uid="1.2.7.1", series_uid="1.2.7.1.1", sop_uid=sop)).raise_for_status()
        http.post("/instances", content=make_dicom(study_uid="1.2.7.2", patient_id="P7",
                                                   sop_uid="1.2.7.2.1.1")).raise_for_status()
        assert http.delete("/webdav/by-uids/1.2.7.1/1.2.7.1.1/1.2.7.1.1.1.dcm").status_code == 204
        assert len(http.get("/instances").json()) == 2
        assert http.delete("/webdav/by-uids/1.2.7.1/study.json").status_code == 204
        assert http.delete("/webdav/by-uids/1.2.7.1").status_code == 204
        assert len(http.get("/instances").json()) == 1
        # a whole tree is never deleted at once
        assert http.delete("/webdav/by-patients").status_code == 403
        patient = only(children(http, "/webdav/by-patients"))
        assert http.delete(quote(f"/webdav/by-patients/{patient}")).status_code == 204
        assert http.get("/instances").json() == []
        # a folder that went away meanwhile (a client's recursive delete): success
        assert http.delete(quote(f"/webdav/by-patients/{patient}")).status_code == 204


def test_with_a_webdav_client(guarded: LiveServer, tmp_path: Path) -> None:
    """webdav4, a maintained WebDAV client: list, read, and upload into uploads/."""
    from webdav4.client import Client

    dav = Client(guarded.url + "/webdav", auth=("alice", "secret"), timeout=60)
    data = make_dicom(study_uid="1.2.8.1", series_uid="1.2.8.1.1", sop_uid="1.2.8.1.1.1")
    source = tmp_path / "upload.dcm"
    source.write_bytes(data)
    dav.upload_file(source, "uploads/upload.dcm")
    with httpx.Client(base_url=guarded.url, timeout=60, auth=("alice", "secret")) as http:
        [instance] = [i for i in http.get("/instances").json()
                      if http.get(f"/instances/{i}").json()["MainDicomTags"]["SOPInstanceUID"]
                      == "1.2.8.1.1.1"]
        expected = http.get(f"/instances/{instance}/file").content
    names = {entry["name"].rstrip("/").rsplit("/", 1)[-1]: entry for entry in dav.ls("")}
    assert {"by-dates", "by-patients", "by-studies", "by-uids", "uploads"} <= set(names)
    assert dav.isdir("by-uids/1.2.8.1")
    [entry] = [e for e in dav.ls("by-uids/1.2.8.1/1.2.8.1.1") if e["name"].endswith(".dcm")]
    assert entry["type"] == "file" and entry["content_length"] == len(expected)
    target = tmp_path / "download.dcm"
    dav.download_file("by-uids/1.2.8.1/1.2.8.1.1/1.2.8.1.1.1.dcm", target)
    assert target.read_bytes() == expected
    assert "uploads/upload.dcm" not in dav.ls("uploads", detail=False)  # stored, then gone


def test_read_only(tmp_path: Path) -> None:
    data = make_dicom(study_uid="1.2.6.1", series_uid="1.2.6.1.1", sop_uid="1.2.6.1.1.1")
    with pinned_database(tmp_path) as pinned:
        with live_server(tmp_path, pinned) as writer, writer.client() as http:
            http.post("/instances", content=data).raise_for_status()
        with live_server(tmp_path, {**pinned, "ReadOnly": True}) as live, \
                httpx.Client(base_url=live.url, timeout=60) as http:
            # the archive reads as ever; no uploads/ folder: nothing can be stored
            assert sorted(children(http, "/webdav")) == ["by-dates", "by-patients",
                                                         "by-studies", "by-uids"]
            assert http.get("/webdav/by-uids/1.2.6.1/1.2.6.1.1/1.2.6.1.1.1.dcm").content == data
            for method in ("PUT", "MKCOL", "DELETE", "LOCK"):
                for path in ("/webdav/uploads/a.dcm", "/webdav/by-uids/1.2.6.1"):
                    answer = http.request(method, path, content=make_dicom())
                    assert answer.status_code == 403, (method, path)
                    assert answer.json()["OrthancStatus"] == 22
            assert len(http.get("/instances").json()) == 1


def test_disabled(tmp_path: Path) -> None:
    with live_server(tmp_path, {"WebDavEnabled": False}) as live, \
            httpx.Client(base_url=live.url, timeout=60) as http:
        assert http.request("PROPFIND", "/webdav/", headers={"Depth": "1"}).status_code == 404
        assert http.get("/system").status_code == 200


@pytest.mark.skipif(not CORPUS.is_dir(), reason="sample corpus not found")
def test_corpus_file_through_webdav(client: httpx.Client) -> None:
    data = (CORPUS / "DummyCT.dcm").read_bytes()
    stored = client.post("/instances", content=data).json()
    tags = client.get(f"/instances/{stored['ID']}/simplified-tags").json()
    path = (f"/webdav/by-uids/{tags['StudyInstanceUID']}/{tags['SeriesInstanceUID']}/"
            f"{tags['SOPInstanceUID']}.dcm")
    assert client.get(path).content == data


def _raw(server: LiveServer, method: str, path: str, body: bytes = b"") -> int:
    """One request sent as written (an HTTP client would normalize ``..`` away)."""
    import socket
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: "
                     f"{len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return int(answer.split(b" ", 2)[1])


def test_dot_dot_never_leaves_uploads(tmp_path: Path) -> None:
    """``uploads/`` is a real folder: ``..`` (plain or percent-encoded) must not reach the
    files beside it (found in review: DELETE removed a file outside, MKCOL made one)."""
    with live_server(tmp_path, {"WebDavDeleteAllowed": True}) as server:
        with httpx.Client(base_url=server.url) as http:
            assert http.request("MKCOL", "/webdav/uploads/inside").status_code == 201
        root = tmp_path / "outside-root"
        root.mkdir()
        victim = root / "victim.txt"
        victim.write_text("precious")
        # However deep uploads/ is, enough '..' reach '/', then the victim's absolute path.
        up = "/".join([".."] * 40) + str(victim)
        encoded = "/".join(["%2e%2e"] * 40) + quote(str(victim))
        for method, path in [("DELETE", f"/webdav/uploads/{up}"),
                             ("DELETE", f"/webdav/uploads/{encoded}"),
                             ("DELETE", f"/webdav/uploads/inside/{encoded}"),
                             ("PUT", f"/webdav/uploads/{encoded}.new"),
                             ("MKCOL", f"/webdav/uploads/{encoded}.dir")]:
            assert _raw(server, method, path, b"x" if method == "PUT" else b"") == 400, path
        assert victim.read_text() == "precious"
        assert sorted(p.name for p in root.iterdir()) == ["victim.txt"]
