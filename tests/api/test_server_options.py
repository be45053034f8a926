"""``OverwriteInstances: "IfChanged"`` and ``MaximumRequestBodySizeMB`` (Orthanc 1.13) on a
live server: a re-sent identical file is "AlreadyStored" (the stored file untouched), a
changed one replaces it, through REST and C-STORE; bodies over the limit answer 413."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydicom.uid import generate_uid

from tests.helpers import LiveServer, live_server, make_dicom


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    config = {"OverwriteInstances": "IfChanged", "MaximumRequestBodySizeMB": 1}
    with live_server(tmp_path_factory.mktemp("pharos-options"), config) as live:
        yield live


@pytest.fixture()
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as http:
        yield http


def _uuid(client: httpx.Client, instance: str) -> str:
    return client.get(f"/instances/{instance}/attachments/dicom/uuid").text


def test_if_changed_over_rest(client: httpx.Client) -> None:
    assert client.get("/system").json()["OverwriteInstances"] == "IfChanged"
    uids = {"sop_uid": generate_uid(), "study_uid": generate_uid(), "series_uid": generate_uid()}
    first = make_dicom(patient_id="IFCHANGED", **uids)
    stored = client.post("/instances", content=first).json()
    assert stored["Status"] == "Success"
    instance = stored["ID"]
    key = _uuid(client, instance)
    last_change = client.get("/changes", params={"last": ""}).json()["Last"]

    again = client.post("/instances", content=first).json()
    assert again["Status"] == "AlreadyStored" and again["ID"] == instance
    assert _uuid(client, instance) == key  # the stored file is kept
    assert client.get("/changes", params={"last": ""}).json()["Last"] == last_change

    changed = make_dicom(patient_id="IFCHANGED", StudyDescription="Changed", **uids)
    replaced = client.post("/instances", content=changed).json()
    assert replaced["Status"] == "Success" and replaced["ID"] == instance
    assert _uuid(client, instance) != key
    assert client.get(f"/instances/{instance}/file").content == changed
    study = client.get(f"/studies/{replaced['ParentStudy']}").json()
    assert study["MainDicomTags"]["StudyDescription"] == "Changed"


def test_if_changed_over_cstore(client: httpx.Client, server: LiveServer,
                                tmp_path: Path) -> None:
    uids = {"sop_uid": generate_uid(), "study_uid": generate_uid(), "series_uid": generate_uid()}
    path = tmp_path / "one.dcm"
    path.write_bytes(make_dicom(patient_id="IFCHANGED-DIMSE", **uids))

    def send() -> None:
        subprocess.run(["storescu", "127.0.0.1", str(server.dicom_port), str(path)],
                       check=True, capture_output=True, timeout=60)

    send()
    instance = client.post("/tools/lookup", content=uids["sop_uid"]).json()[0]["ID"]
    key = _uuid(client, instance)
    send()  # identical: kept
    assert _uuid(client, instance) == key
    path.write_bytes(make_dicom(patient_id="IFCHANGED-DIMSE", SeriesDescription="New", **uids))
    send()  # changed: replaced
    assert _uuid(client, instance) != key
    series = client.get(f"/instances/{instance}/series").json()
    assert series["MainDicomTags"]["SeriesDescription"] == "New"


def test_request_body_limit(client: httpx.Client) -> None:
    big = make_dicom(patient_id="TOO-BIG", size=768)  # 768 x 768 x 2 bytes > 1 MB
    assert len(big) > 1024 * 1024
    declared = client.post("/instances", content=big)
    assert declared.status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while reading
        for start in range(0, len(big), 65536):
            yield big[start:start + 65536]

    streamed = client.post("/instances", content=chunks())
    assert streamed.status_code == 413
    assert client.post("/tools/find", content=b" " * (1024 * 1024 + 1)).status_code == 413
    small = make_dicom(patient_id="SMALL-ENOUGH", size=512)  # 512 KB
    assert client.post("/instances", content=small).status_code == 200
    assert client.get("/patients").status_code == 200
    assert client.post("/tools/find", json={
        "Level": "Patient", "Query": {"PatientID": "TOO-BIG"}}).json() == []
