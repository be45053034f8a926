"""What the Lua scripts of Orthanc's release suite and of the Orthanc Book do, run on
Pharos with scripts of our own: auto-routing (plain, conditional, with another calling
AET), recompressing on arrival through the REST API and a shell tool while C-STOREs
arrive, and the HTTP client functions against a local web service."""

from __future__ import annotations

import base64
import json
import shutil
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pydicom
import pytest

from tests.helpers import LiveServer, free_port, live_server, make_dicom
from tests.scripting.dicom_peers import StoreScp, require_dcmtk, storescu, wait_until


@pytest.fixture(scope="module")
def sink(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreScp]:
    require_dcmtk()
    scp = StoreScp(tmp_path_factory.mktemp("samples-sink"))
    yield scp
    scp.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, sink: StoreScp) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("samples")
    dicom_port = free_port()
    config = {"ExecuteLuaEnabled": True, "DicomPort": dicom_port,
              "DicomModalities": {"sink": [sink.aet, "127.0.0.1", sink.port]}}
    with live_server(root, config) as live:
        live.dicom_port = dicom_port
        yield live


@pytest.fixture()
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as http:
        yield http
        lua(http, "function OnStoredInstance() end")  # what the suite's DropOrthanc does
        for patient in http.get("/patients").json():
            http.delete(f"/patients/{patient}")


def lua(client: httpx.Client, code: str) -> str:
    answer = client.post("/tools/execute-script", content=code,
                         headers={"Content-Type": "application/lua"})
    assert answer.status_code == 200, answer.text
    return answer.text


def received(sink: StoreScp, patient_id: str) -> list[pydicom.Dataset]:
    return [ds for ds in sink.datasets() if ds.get("PatientID") == patient_id]


def test_autorouting_everything(client: httpx.Client, sink: StoreScp) -> None:
    lua(client, "function OnStoredInstance(instanceId, tags, metadata)\n"
                "   Delete(SendToModality(instanceId, 'sink'))\nend")
    for index in range(3):  # one patient each: see test_recompress_on_arrival...
        client.post("/instances", content=make_dicom(patient_id=f"AUTO-ALL-{index}"))
    wait_until(lambda: all(received(sink, f"AUTO-ALL-{index}") for index in range(3)))
    wait_until(lambda: client.get("/instances").json() == [])


def test_conditional_autorouting(client: httpx.Client, sink: StoreScp) -> None:
    lua(client, """
function OnStoredInstance(instanceId, tags, metadata, origin)
   PrintRecursive(origin)
   if string.find(string.lower(tags['PatientName']), 'knee') ~= nil then
      Delete(SendToModality(instanceId, 'sink'))
   else
      Delete(instanceId)
   end
end""")
    client.post("/instances", content=make_dicom(patient_id="COND-1", patient_name="KNEE^LEFT"))
    client.post("/instances", content=make_dicom(patient_id="COND-2", patient_name="Knee^Right"))
    client.post("/instances", content=make_dicom(patient_id="COND-3", patient_name="BRAIN"))
    wait_until(lambda: client.get("/instances").json() == [])
    assert received(sink, "COND-1") and received(sink, "COND-2")
    assert received(sink, "COND-3") == []


def test_autorouting_with_a_calling_aet_from_a_global(client: httpx.Client,
                                                       sink: StoreScp) -> None:
    lua(client, "function OnStoredInstance(instanceId, tags, metadata)\n"
                "   Delete(SendToModality(instanceId, 'sink', aet))\nend")
    lua(client, 'aet = "HELLO"')
    client.post("/instances", content=make_dicom(patient_id="AET-1"))
    wait_until(lambda: received(sink, "AET-1"))
    assert "HELLO" in sink.calling_aets()
    lua(client, "aet = nil")  # back to DicomAet
    client.post("/instances", content=make_dicom(patient_id="AET-2"))
    wait_until(lambda: received(sink, "AET-2"))
    assert "ORTHANC" in sink.calling_aets()


def test_recompress_on_arrival_while_c_stores_arrive(client: httpx.Client, server: LiveServer,
                                                     tmp_path: Path) -> None:
    """Orthanc's deadlock report (2018): OnStoredInstance reads the file, rewrites it with
    a command-line tool, deletes the original and uploads the result, while storescu
    sends more. dcmodify stands for gdcmconv here."""
    if shutil.which("dcmodify") is None:
        pytest.skip("dcmtk's dcmodify is not installed")
    lua(client, f"""
function OnStoredInstance(instanceId, tags, metadata, origin)
   if origin['RequestOrigin'] ~= 'Lua' then
      local dicom = RestApiGet('/instances/' .. instanceId .. '/file')
      local path = '{tmp_path}/' .. instanceId .. '.dcm'
      local target = assert(io.open(path, 'wb'))
      target:write(dicom)
      target:close()
      os.execute('dcmodify --no-backup -i "StationName=CONVERTED" ' .. path)
      local source = assert(io.open(path, 'rb'))
      local converted = source:read('*all')
      source:close()
      RestApiDelete('/instances/' .. instanceId)
      RestApiPost('/instances', converted)
      os.remove(path)
   end
end""")
    files = []
    for index in range(2):
        files.append(tmp_path / f"in{index}.dcm")
        # One patient per file: deleting a patient's last instance while another of
        # that patient arrives is the concurrency case of tests/api/test_races.py.
        files[-1].write_bytes(make_dicom(patient_id=f"CONVERT-ME-{index}"))
        result = storescu(server.dicom_port, files[-1])
        assert "Received Store Response (Success)" in result.stdout + result.stderr

    def converted() -> bool:
        ids = client.get("/instances").json()
        return len(ids) == 2 and all(
            client.get(f"/instances/{i}/simplified-tags").json().get("StationName")
            == "CONVERTED" for i in ids)
    wait_until(converted)
    for instance in client.get("/instances").json():
        assert client.get(f"/instances/{instance}/metadata/Origin").text == "Lua"


class _Echo(BaseHTTPRequestHandler):
    """A web service answering what it received, as httpbin.org does for Orthanc's suite."""

    def _answer(self) -> None:
        if self.path.startswith("/slow"):
            time.sleep(3)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        document = {"method": self.command, "path": self.path, "data": body.decode(),
                    "headers": {k: v for k, v in self.headers.items()}}
        data = json.dumps(document).encode()
        self.send_response(404 if self.path.startswith("/missing") else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            self.wfile.write(data)
        except BrokenPipeError:
            pass  # the /slow caller gave up (SetHttpTimeout), as it should

    do_GET = do_POST = do_PUT = do_DELETE = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def echo() -> Iterator[str]:
    service = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=service.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{service.server_address[1]}"
    service.shutdown()


def test_http_client_functions(client: httpx.Client, echo: str) -> None:
    output = lua(client, f"""
local headers = {{}}
headers['Content-Type'] = 'application/json'
headers['Toto'] = 'Tutu'
local r = ParseJson(HttpPost('{echo}/post', DumpJson({{intMember = 2}}), headers))
print(r.method, r.headers['Toto'], r.headers['Content-Type'], ParseJson(r.data).intMember)
r = ParseJson(HttpPost('{echo}/post', nil, headers))
print(r.method, r.data == '')
r = ParseJson(HttpPut('{echo}/put', 'abc', headers))
print(r.method, r.data)
print(HttpDelete('{echo}/delete', headers))
SetHttpCredentials('alice', 'secret')
r = ParseJson(HttpGet('{echo}/get', headers))
print(r.method, r.headers['Authorization'])
print(ParseJson(HttpGet('{echo}/missing')).path)
print(HttpDelete('{echo}/missing'))
print(HttpGet('http://127.0.0.1:1/nothing-listens'))
SetHttpTimeout(1)
print(HttpGet('{echo}/slow'))
""")
    basic = "Basic " + base64.b64encode(b"alice:secret").decode()
    assert output.splitlines() == [
        "POST, Tutu, application/json, 2", "POST, true", "PUT, abc", "SUCCESS",
        f"GET, {basic}",
        "/missing",  # Http* give the body whatever the status...
        "nil",  # ...but HttpDelete wants a 2xx
        "nil", "nil"]
