"""Differential test: user attachments on Pharos and on a real Orthanc 1.10.1, one script of
calls on both, answers compared (statuses, bodies, MD5 part of the ETags, headers).

Known, deliberate differences (README): Orthanc 1.10.1 on SQLite keeps attachments at
revision 0 whatever its PUT answers, so only the MD5 part of ETags is compared; it answers
PUT on an unknown resource with 200 (Pharos: 404); its 403 has no body; it lists ``uuid``
among the operations but has no such route.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.helpers import live_server, make_dicom
from tests.interop.orthanc import running_orthanc, skip_unless_orthanc

pytestmark = [pytest.mark.interop]

CONFIG = {"UserContentType": {"sample": 1024, "pdfdoc": [1025, "application/pdf"]}}


@pytest.fixture(scope="module")
def clients(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, ...]]:
    skip_unless_orthanc()
    data = make_dicom(patient_id="DIFF-ATT")
    with running_orthanc(tmp_path_factory.mktemp("orthanc"), config=CONFIG) as orthanc, \
            live_server(tmp_path_factory.mktemp("pharos"), CONFIG) as pharos, \
            orthanc.client() as o, pharos.client() as p:
        assert o.post("/instances", content=data).status_code == 200
        assert p.post("/instances", content=data).status_code == 200
        yield o, p


def _etag_md5(response: httpx.Response) -> str | None:
    etag = response.headers.get("etag")
    return etag.strip('"').partition("-")[2] if etag else None


def _body(response: httpx.Response) -> object:
    if response.status_code >= 400:
        return None  # error bodies: statuses (and Orthanc codes below) are compared
    if response.headers.get("content-type", "").startswith("application/json"):
        return response.json()
    return response.content


SCRIPT = [
    ("GET", "attachments", None),
    ("PUT", "attachments/sample", b"hello world"),
    ("PUT", "attachments/1030", b"x" * 1000),
    ("PUT", "attachments/pdfdoc", b"%PDF-1.4"),
    ("PUT", "attachments/foo", b"x"),
    ("PUT", "attachments/SAMPLE", b"x"),
    ("PUT", "attachments/1023", b"x"),
    ("PUT", "attachments/dicom", b"x"),
    ("PUT", "attachments/65536", b"x"),
    ("GET", "attachments", None),
    ("GET", "attachments?full", None),
    ("GET", "attachments/sample/data", None),
    ("GET", "attachments/pdfdoc/data", None),
    ("GET", "attachments/sample/size", None),
    ("GET", "attachments/sample/md5", None),
    ("GET", "attachments/sample/compressed-md5", None),
    ("GET", "attachments/sample/is-compressed", None),
    ("POST", "attachments/1030/compress", None),
    ("GET", "attachments/1030/is-compressed", None),
    ("GET", "attachments/1030/compressed-size", None),
    ("GET", "attachments/1030/compressed-data", None),
    ("GET", "attachments/1030/compressed-md5", None),
    ("GET", "attachments/1030/data", None),
    ("POST", "attachments/1030/verify-md5", None),
    ("POST", "attachments/1030/uncompress", None),
    ("GET", "attachments/1030/compressed-data", None),
    ("GET", "attachments/nothere/size", None),
    ("GET", "attachments/1500/size", None),
    ("DELETE", "attachments/1030", None),
    ("DELETE", "attachments/1030", None),
    ("DELETE", "attachments/dicom", None),
    ("GET", "attachments", None),
]


@pytest.mark.parametrize("level", ["patients", "studies", "series", "instances"])
def test_attachments_like_orthanc(clients: tuple[httpx.Client, ...], level: str) -> None:
    orthanc, pharos = clients
    resource = orthanc.get(f"/{level}").json()[0]
    assert resource in pharos.get(f"/{level}").json()  # same identifiers
    for method, path, content in SCRIPT:
        url = f"/{level}/{resource}/{path}"
        expected = orthanc.request(method, url, content=content)
        actual = pharos.request(method, url, content=content)
        where = f"{method} {url}"
        assert actual.status_code == expected.status_code, where
        assert _body(actual) == _body(expected), where
        assert _etag_md5(actual) == _etag_md5(expected), where
        if expected.status_code >= 400 and expected.content:
            assert actual.json()["OrthancStatus"] == expected.json()["OrthancStatus"], where
        if method == "GET" and path.endswith("/data") and expected.status_code == 200:
            assert actual.headers["content-type"] == expected.headers["content-type"], where
    # the same content: the same metadata
    info_o = orthanc.get(f"/{level}/{resource}/attachments/sample/info").json()
    info_p = pharos.get(f"/{level}/{resource}/attachments/sample/info").json()
    assert {k: v for k, v in info_p.items() if k != "Uuid"} == \
        {k: v for k, v in info_o.items() if k != "Uuid"}


def test_revision_conflicts_like_orthanc(clients: tuple[httpx.Client, ...]) -> None:
    orthanc, pharos = clients
    patient = orthanc.get("/patients").json()[0]
    url = f"/patients/{patient}/attachments/1040"
    for client in (orthanc, pharos):
        client.put(url, content=b"a")
    for headers in ({"If-Match": "1"}, {"If-Match": "bad"}, {"If-Match": '"7-xyz"'}):
        expected = orthanc.put(url, content=b"b", headers=headers)
        actual = pharos.put(url, content=b"b", headers=headers)
        assert actual.status_code == expected.status_code, headers
    etags = [c.get(f"{url}/info").headers["etag"] for c in (orthanc, pharos)]
    assert [c.get(f"{url}/data", headers={"If-None-Match": e}).status_code
            for c, e in zip((orthanc, pharos), etags, strict=True)] == [304, 304]
    assert [c.delete(url, headers={"If-Match": e}).status_code
            for c, e in zip((orthanc, pharos), etags, strict=True)] == [200, 200]

