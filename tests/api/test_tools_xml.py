"""``/tools`` listing, ``/tools/dicom-conformance``, ``/tools/invalidate-tags`` and JSON
answers converted to XML on ``Accept: application/xml`` (as Orthanc's REST API)."""

from __future__ import annotations

from xml.dom import minidom

from app.api.xml_answers import json_to_xml
from tests.helpers import LiveServer, make_dicom


def test_tools_lists_its_children(server: LiveServer) -> None:
    with server.client() as client:
        tools = client.get("/tools").json()
        assert tools == sorted(tools)
        assert {"find", "create-dicom", "dicom-conformance", "invalidate-tags", "now"} <= set(tools)
        statement = client.get("/tools/dicom-conformance")
        assert statement.headers["content-type"].startswith("text/plain")
        assert len(statement.text) > 1000 and "1.2.840.10008.1.1" in statement.text


def test_invalidate_tags_keeps_tags_readable(server: LiveServer) -> None:
    with server.client() as client:
        instance = client.post("/instances", content=make_dicom(patient_id="INVAL")).json()["ID"]
        answer = client.post("/tools/invalidate-tags", content=b"")
        assert answer.status_code == 200 and answer.text == ""
        assert client.get(f"/instances/{instance}/simplified-tags").json()["PatientID"] == "INVAL"
        assert client.get(f"/instances/{instance}/attachments").json() == ["dicom"]


def test_json_answers_as_xml(server: LiveServer) -> None:
    with server.client() as client:
        tools = client.get("/tools").json()
        xml = client.get("/tools", headers={"Accept": "application/xml"})
        assert xml.headers["content-type"].startswith("application/xml")
        items = minidom.parseString(xml.content).getElementsByTagName("root")[0] \
            .getElementsByTagName("item")
        assert [i.childNodes[0].data for i in items] == tools
        system = minidom.parseString(client.get("/system", headers={
            "Accept": "application/xml"}).content)
        assert system.getElementsByTagName("DicomAet")[0].childNodes[0].data == "ORTHANC"
        # the last of application/xml and application/json (split on ";") wins
        assert client.get("/tools", headers={
            "Accept": "application/xml;application/json"}).json() == tools
        # non-JSON answers are left alone
        text = client.get("/tools/dicom-conformance", headers={"Accept": "application/xml"})
        assert text.headers["content-type"].startswith("text/plain")


def test_json_to_xml_rendering() -> None:
    assert json_to_xml({"b": [1, None], "a": {"t": True}, "e": []}) == (
        '<?xml version="1.0" encoding="utf-8"?>\n<root>\n  <a>\n    <t>true</t>\n  </a>\n'
        "  <b>\n    <item>1</item>\n    <item>null</item>\n  </b>\n  <e />\n</root>\n")
    assert "<root>a &lt;b&gt;</root>" in json_to_xml("a <b>")
