"""Request URIs as Orthanc reads them: repeated slashes collapsed, a trailing slash
ignored (answered, not redirected), PUT/DELETE faked through GET/POST."""

from __future__ import annotations

from app.api.uri import normalize_path
from tests.helpers import make_dicom


def test_normalize_path_rules():
    assert normalize_path("/") == "/"
    assert normalize_path("//instances") == "/instances"
    assert normalize_path("/instances/") == "/instances"
    assert normalize_path("//dicom-web//studies/") == "/dicom-web/studies"
    assert normalize_path("/ohif/") == "/ohif/"
    assert normalize_path("/ohif//viewer") == "/ohif/viewer"


def test_double_and_trailing_slashes_reach_the_route(server):
    with server.client() as http:
        stored = http.post(server.url + "//instances", content=make_dicom(patient_id="P-URI"))
        assert stored.status_code == 200, stored.text
        instance = stored.json()["ID"]
        # full URLs, as Orthanc's suite builds them ("http://host:8042/" + "/route")
        for path in (f"//instances/{instance}", f"/instances/{instance}/",
                     f"/instances//{instance}//"):
            answer = http.get(server.url + path)
            assert answer.status_code == 200, path
            assert answer.json()["ID"] == instance
        assert http.get(server.url + "//system/").json()["DicomAet"]
        studies = http.get(server.url + "/dicom-web//studies/", params={"PatientID": "P-URI"})
        assert studies.status_code == 200
        assert len(studies.json()) == 1
        # never a redirect: a client that does not follow 307 still gets its answer
        assert http.get("/patients/", follow_redirects=False).status_code == 200


def test_faked_put_and_delete(server):
    with server.client() as http:
        instance = http.post("/instances", content=make_dicom(patient_id="P-FAKE")).json()["ID"]
        put = http.post(f"/instances/{instance}/metadata/1024", content=b"hello",
                        headers={"X-HTTP-Method-Override": "PUT"})
        assert put.status_code == 200, put.text
        assert http.get(f"/instances/{instance}/metadata/1024").text == "hello"
        deleted = http.get(f"/instances/{instance}", params={"_method": "delete"})
        assert deleted.status_code == 200
        assert http.get(f"/instances/{instance}").status_code == 404
        bad = http.post(f"/instances/{instance}", headers={"X-HTTP-Method-Override": "PATCH"})
        assert bad.status_code == 400
