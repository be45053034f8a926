"""Python hooks (``"Pharos": {"Hooks": ...}``): Orthanc's callbacks as Python functions,
over real sockets, with a real storescp as the routing destination."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pydicom
import pytest

from tests.helpers import LiveServer, live_server, make_dicom
from tests.scripting.dicom_peers import StoreScp, require_dcmtk, storescu, wait_until

HOOKS = '''
"""Site hooks: auto-routing, filters."""
from app.scripting import api

def ReceivedInstanceFilter(tags, origin, info):
    if tags.get("PatientID") == "PY-CRASH-FILTER":
        raise ValueError("a bug in the filter")
    return tags.get("PatientID") != "PY-REFUSED"

def ReceivedCStoreInstanceFilter(tags, origin, info):
    return 0xA700 if tags.get("PatientID") == "PY-CSTORE-REFUSED" else 0

def IncomingHttpRequestFilter(method, uri, ip, username, headers):
    return headers.get("x-python-deny") != "yes"

def OnStoredInstance(instance_id, tags, metadata, origin):
    patient = tags.get("PatientID")
    if patient == "PY-ROUTE":
        # The Lua way: operations become one job when the hook returns.
        api.delete(api.send_to_modality(instance_id, "sink"))
    elif patient == "PY-REST-ROUTE" and origin["RequestOrigin"] == "RestApi":
        # The REST way, as the Orthanc Book recommends for anything more evolved.
        api.rest_api_post("/modalities/sink/store", instance_id)
        api.rest_api_delete(f"/instances/{instance_id}")
    elif patient == "PY-CRASH":
        raise RuntimeError("a bug in the hook")

def OnStableStudy(study_id, tags, metadata):
    api.rest_api_put(f"/studies/{study_id}/labels/stable-python")
'''


@pytest.fixture(scope="module")
def sink(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreScp]:
    require_dcmtk()
    scp = StoreScp(tmp_path_factory.mktemp("py-sink"))
    yield scp
    scp.stop()


@pytest.fixture(scope="module")
def hooked(tmp_path_factory: pytest.TempPathFactory, sink: StoreScp) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("py-hooks")
    (root / "site_hooks.py").write_text(HOOKS)
    # Relative to the configuration file's folder; no Lua at all (execute-script off).
    config = {"StableAge": 1, "Pharos": {"Hooks": "site_hooks.py"},
              "DicomModalities": {"sink": [sink.aet, "127.0.0.1", sink.port]}}
    with live_server(root, config) as live:
        yield live


@pytest.fixture()
def client(hooked: LiveServer) -> Iterator[httpx.Client]:
    with hooked.client() as http:
        yield http


def test_lua_stays_off(client: httpx.Client) -> None:
    """Without ExecuteLuaEnabled, /tools/execute-script is refused as Orthanc refuses it."""
    answer = client.post("/tools/execute-script", content="print(1)")
    assert answer.status_code == 403
    assert answer.content == b""


def test_routing_with_queued_operations(client: httpx.Client, hooked: LiveServer,
                                        sink: StoreScp, tmp_path: Path) -> None:
    sop = pydicom.uid.generate_uid()
    path = tmp_path / "route.dcm"
    path.write_bytes(make_dicom(patient_id="PY-ROUTE", sop_uid=sop))
    result = storescu(hooked.dicom_port, path)
    assert "Received Store Response (Success)" in result.stdout + result.stderr
    wait_until(lambda: any(ds.SOPInstanceUID == sop for ds in sink.datasets()))
    wait_until(lambda: client.post("/tools/lookup", content=sop).json() == [])


def test_routing_through_the_rest_api(client: httpx.Client, sink: StoreScp) -> None:
    sop = pydicom.uid.generate_uid()
    client.post("/instances", content=make_dicom(patient_id="PY-REST-ROUTE", sop_uid=sop))
    wait_until(lambda: any(ds.SOPInstanceUID == sop for ds in sink.datasets()))
    wait_until(lambda: client.post("/tools/lookup", content=sop).json() == [])


def test_filters(client: httpx.Client, hooked: LiveServer, tmp_path: Path) -> None:
    answer = client.post("/instances", content=make_dicom(patient_id="PY-REFUSED"))
    assert answer.json()["Status"] == "FilteredOut"
    path = tmp_path / "c.dcm"
    path.write_bytes(make_dicom(patient_id="PY-CSTORE-REFUSED"))
    result = storescu(hooked.dicom_port, path)
    output = result.stdout + result.stderr
    assert "Store Response" in output and "Success" not in output
    answer = client.post("/instances", content=make_dicom(patient_id="PY-CRASH-FILTER"))
    assert answer.status_code == 500
    assert "a bug in the filter" in answer.json()["Details"]
    for patient in ("PY-REFUSED", "PY-CSTORE-REFUSED", "PY-CRASH-FILTER"):
        assert client.post("/tools/lookup", content=patient).json() == []
    assert client.get("/system", headers={"X-Python-Deny": "yes"}).status_code == 403
    assert client.get("/system").status_code == 200


def test_stable_study_and_a_failing_hook(client: httpx.Client) -> None:
    client.post("/instances", content=make_dicom(patient_id="PY-CRASH"))
    study = client.post("/instances", content=make_dicom(patient_id="PY-STABLE")).json()
    wait_until(lambda: "stable-python" in
               client.get(f"/studies/{study['ParentStudy']}/labels").json())
    assert client.get("/system").status_code == 200
