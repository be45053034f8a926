"""Curation on a live Pharos: user metadata with revisions, patient protection."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest

from tests.helpers import LiveServer, live_server, make_dicom


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    config = {"UserMetadata": {"Sample": 1024, "Other": 1025}, "CheckRevisions": True,
              "MaximumPatientCount": 2}
    with live_server(tmp_path_factory.mktemp("pharos-curation"), config) as live:
        yield live


def _etag(revision: int, value: bytes) -> str:
    return f'"{revision}-{hashlib.md5(value).hexdigest()}"'


def test_user_metadata_with_revisions(server: LiveServer) -> None:
    with server.client() as client:
        study = client.post("/instances", content=make_dicom(patient_id="META")).json()[
            "ParentStudy"]
        url = f"/studies/{study}/metadata/Sample"
        first = client.put(url, content=b"hello")
        assert first.status_code == 200, first.text
        assert first.headers["etag"] == _etag(0, b"hello")
        assert client.get(url).text == "hello"
        assert "Sample" in client.get(f"/studies/{study}/metadata").json()
        # CheckRevisions: updating needs If-Match with the current revision and MD5
        assert client.put(url, content=b"x").status_code == 409
        assert client.put(url, content=b"x", headers={"If-Match": '"7-abc"'}).status_code == 409
        assert client.put(url, content=b"x", headers={"If-Match": "0-abc"}).status_code == 409
        second = client.put(url, content=b"world", headers={"If-Match": _etag(0, b"hello")})
        assert second.status_code == 200 and second.headers["etag"] == _etag(1, b"world")
        assert client.get(url).text == "world"
        # by number too
        assert client.put(f"/studies/{study}/metadata/1025", content=b"n").status_code == 200
        assert client.get(f"/studies/{study}/metadata/Other").text == "n"
        # automatic metadata and numbers below 1024 are Orthanc's 403, unknown names 400
        for name in ("LastUpdate", "12"):
            assert client.put(f"/studies/{study}/metadata/{name}", content=b"x").status_code \
                == 403, name
        for name in ("pharos:PatientMainDicomTags", "Undeclared"):
            assert client.put(f"/studies/{study}/metadata/{name}", content=b"x").status_code \
                == 400, name
        assert client.delete(url).status_code == 409
        assert client.delete(url, headers={"If-Match": _etag(1, b"world")}).status_code == 200
        assert client.get(url).status_code == 404
        assert client.delete(url, headers={"If-Match": _etag(1, b"world")}).status_code == 404
        assert client.put("/studies/nope/metadata/Sample", content=b"x").status_code == 404


def test_protected_patient_is_not_recycled(server: LiveServer) -> None:
    with server.client() as client:
        first = client.post("/instances", content=make_dicom(patient_id="KEEPME")).json()[
            "ParentPatient"]
        assert client.get(f"/patients/{first}/protected").text == "0"
        assert client.put(f"/patients/{first}/protected", content=b"1").status_code == 200
        assert client.get(f"/patients/{first}/protected").text == "1"
        assert client.put(f"/patients/{first}/protected", content=b"yes").status_code == 400
        for index in range(4):  # MaximumPatientCount is 2: others are recycled
            client.post("/instances", content=make_dicom(patient_id=f"P{index}"))
        assert client.get(f"/patients/{first}").status_code == 200
        assert client.delete(f"/patients/{first}/protected").status_code == 200
        assert client.get(f"/patients/{first}/protected").text == "0"
        for index in range(4, 7):
            client.post("/instances", content=make_dicom(patient_id=f"P{index}"))
        assert client.get(f"/patients/{first}").status_code == 404
        assert client.get("/patients/nope/protected").status_code == 404
