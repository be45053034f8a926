"""Orthanc's REST tree: GET on an inner node lists its children; 405 has no body."""

from __future__ import annotations

from tests.helpers import LiveServer, make_dicom


def test_get_on_an_inner_node_lists_its_fixed_children(server: LiveServer) -> None:
    with server.client() as http:
        instance = http.post("/instances", content=make_dicom(patient_id="TREE")).json()["ID"]
        tools = http.get("/tools").json()
        assert {"find", "lookup", "labels", "now"} <= set(tools) and tools == sorted(tools)
        frames = http.get(f"/instances/{instance}/frames/0").json()
        assert {"preview", "rendered", "image-uint8"} <= set(frames)
        # Any value of a {parameter} segment leads to the same children, as in Orthanc.
        assert http.get("/instances/whatever/frames/7").json() == frames
        put = http.put("/modalities/tree", json={"AET": "TREE", "Host": "127.0.0.1",
                                                  "Port": 104})
        assert put.status_code == 200
        modality = http.get("/modalities/tree").json()
        assert {"echo", "store", "query", "configuration"} <= set(modality)
        assert http.delete("/modalities/tree").status_code == 200
        for missing in ("/nope", "/tools/nope", "/nope/nope.html"):
            answer = http.get(missing)
            assert answer.status_code == 404, missing
            assert answer.json()["OrthancStatus"] == 17


def test_method_not_allowed_has_an_allow_header_and_no_body(server: LiveServer) -> None:
    with server.client() as http:
        answer = http.put("/system", content=b"hello")
        assert answer.status_code == 405
        assert answer.headers["allow"] == "GET"
        assert answer.content == b"" and "content-type" not in answer.headers
        assert http.get("/tools/find").headers["allow"] == "POST"
