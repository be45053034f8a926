"""Orthanc's Lua callbacks over real sockets: filters, auto-routing to a real storescp,
stable resources, jobs, C-FIND filters, and errors that never take the server down."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pydicom
import pytest

from tests.helpers import LiveServer, free_port, live_server, make_dicom
from tests.scripting.dicom_peers import (
    StoreScp,
    findscu,
    require_dcmtk,
    storescu,
    wait_until,
)

FILTERS = """
-- Loaded from LuaScripts: filters run in Orthanc's second Lua state, which only
-- LuaScripts reach (not /tools/execute-script).
function ReceivedInstanceFilter(dicom, origin, info)
   if dicom.PatientID == 'REFUSED' then
      return false
   elseif dicom.PatientID == 'BROKEN' then
      error('this filter is broken')
   elseif dicom.PatientID == 'NOT-A-PREDICATE' then
      return 'yes'
   end
   seen = info.TransferSyntaxUID .. ' ' .. tostring(info.HasPixelData) .. ' ' ..
      origin.RequestOrigin
   return true
end

function ReceivedCStoreInstanceFilter(dicom, origin, info)
   if dicom.PatientID == 'CSTORE-REFUSED' then
      return 0xA700
   end
   return 0
end

function IncomingHttpRequestFilter(method, uri, ip, username, headers)
   if headers['x-lua-deny'] == 'yes' then
      return false
   end
   if uri == '/lua-filter-fails' then
      error('the HTTP filter fails')
   end
   return true
end

function IncomingFindRequestFilter(query, origin)
   -- The calling AET is known here; a manufacturer quirk fixed: '*' means "any".
   if query['0010,0020'] == 'ALIAS' then
      query['0010,0020'] = 'FOUND-BY-LUA'
   end
   lastFindOrigin = origin.RemoteAet .. '/' .. origin.CalledAet
   return query
end

beats = 0
function OnHeartBeat()
   beats = beats + 1
end

function OutgoingFindRequestFilter(query, modality)
   if query['0010,0020'] == 'OUTGOING' then
      query['0010,0020'] = 'FOUND-BY-LUA'
   end
   return query
end
"""


@pytest.fixture(scope="module")
def sink(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreScp]:
    require_dcmtk()
    scp = StoreScp(tmp_path_factory.mktemp("sink"))
    yield scp
    scp.stop()


@pytest.fixture(scope="module")
def lua_server(tmp_path_factory: pytest.TempPathFactory, sink: StoreScp) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("lua-callbacks")
    (root / "filters.lua").write_text(FILTERS)
    dicom_port = free_port()
    config = {"ExecuteLuaEnabled": True, "LuaScripts": [str(root / "filters.lua")],
              "DicomPort": dicom_port, "StableAge": 1, "LuaHeartBeatPeriod": 1,
              "DicomModalities": {"sink": [sink.aet, "127.0.0.1", sink.port],
                                  "finder": ["FINDSCU", "127.0.0.1", 1],
                                  "self": ["ORTHANC", "127.0.0.1", dicom_port]}}
    with live_server(root, config) as live:
        live.dicom_port = dicom_port  # the configuration's, not the one live_server drew
        yield live


@pytest.fixture()
def client(lua_server: LiveServer) -> Iterator[httpx.Client]:
    with lua_server.client() as http:
        # Each test installs its own callbacks; forget the previous test's ones.
        lua(http, "OnStoredInstance = nil OnStableStudy = nil OnJobSuccess = nil "
                  "OnJobSubmitted = nil OnDeletedInstance = nil OnUpdatedInstance = nil")
        yield http


def lua(client: httpx.Client, code: str) -> str:
    answer = client.post("/tools/execute-script", content=code)
    assert answer.status_code == 200, answer.text
    return answer.text


def instance_ids(client: httpx.Client) -> list[str]:
    return client.get("/instances").json()


def write(path: Path, **tags: object) -> Path:
    path.write_bytes(make_dicom(**tags))
    return path


# --- ReceivedInstanceFilter / ReceivedCStoreInstanceFilter ------------------------------------

def test_filter_refuses_over_rest(client: httpx.Client) -> None:
    answer = client.post("/instances", content=make_dicom(patient_id="REFUSED"))
    assert answer.status_code == 200
    assert answer.json()["Status"] == "FilteredOut"  # Orthanc's answer
    assert client.get(f"/instances/{answer.json()['ID']}").status_code == 404
    assert client.post("/tools/lookup", content="REFUSED").json() == []


def test_filter_sees_info_and_origin(client: httpx.Client, lua_server: LiveServer) -> None:
    # The filter state is not the main one: its globals are not visible to execute-script.
    client.post("/instances", content=make_dicom(patient_id="ACCEPTED"))
    assert lua(client, "print(seen)") == "nil\n"
    assert client.post("/tools/lookup", content="ACCEPTED").json() != []


def test_failing_filter_answers_500_and_stores_nothing(client: httpx.Client,
                                                        tmp_path: Path,
                                                        lua_server: LiveServer) -> None:
    before = len(instance_ids(client))
    answer = client.post("/instances", content=make_dicom(patient_id="BROKEN"))
    assert answer.status_code == 500
    assert answer.json()["OrthancStatus"] == 2031
    assert "this filter is broken" in answer.json()["Details"]
    answer = client.post("/instances", content=make_dicom(patient_id="NOT-A-PREDICATE"))
    assert answer.status_code == 500
    assert answer.json()["OrthancStatus"] == 2034  # NotLuaPredicate
    # Over DIMSE: a failure status, never a half-stored instance.
    result = storescu(lua_server.dicom_port, write(tmp_path / "b.dcm", patient_id="BROKEN"))
    output = result.stdout + result.stderr
    assert "Store Response" in output and "Success" not in output
    assert len(instance_ids(client)) == before
    assert client.get("/system").status_code == 200


def test_filters_over_dimse(client: httpx.Client, lua_server: LiveServer,
                            tmp_path: Path) -> None:
    # ReceivedInstanceFilter: refused, yet C-STORE succeeds (Orthanc keeps old
    # modalities from retrying forever).
    result = storescu(lua_server.dicom_port, write(tmp_path / "r.dcm", patient_id="REFUSED"))
    assert "Received Store Response (Success)" in result.stdout + result.stderr
    # ReceivedCStoreInstanceFilter: refused with the status the script chose.
    result = storescu(lua_server.dicom_port,
                      write(tmp_path / "c.dcm", patient_id="CSTORE-REFUSED"))
    output = result.stdout + result.stderr
    assert "Success" not in output and "Store Response" in output
    assert client.post("/tools/lookup", content="REFUSED").json() == []
    assert client.post("/tools/lookup", content="CSTORE-REFUSED").json() == []
    storescu(lua_server.dicom_port, write(tmp_path / "ok.dcm", patient_id="DIMSE-OK"))
    assert client.post("/tools/lookup", content="DIMSE-OK").json() != []


# --- OnStoredInstance: auto-routing ---------------------------------------------------------

def test_auto_routing_to_a_real_storescp(client: httpx.Client, lua_server: LiveServer,
                                         sink: StoreScp, tmp_path: Path) -> None:
    lua(client, """
function OnStoredInstance(instanceId, tags, metadata, origin)
   if tags.PatientID == 'ROUTE-ME' and origin.RequestOrigin == 'DicomProtocol'
      and origin.RemoteAet == 'MODALITY' and metadata.RemoteAET == 'MODALITY' then
      Delete(SendToModality(instanceId, 'sink'))
   end
end""")
    sop = pydicom.uid.generate_uid()
    storescu(lua_server.dicom_port, write(tmp_path / "a.dcm", patient_id="ROUTE-ME",
                                          sop_uid=sop), aet="MODALITY")
    wait_until(lambda: any(ds.SOPInstanceUID == sop for ds in sink.datasets()))
    # ...then deleted here by the same job.
    wait_until(lambda: client.post("/tools/lookup", content=sop).json() == [])
    jobs = [client.get(f"/jobs/{job}").json() for job in client.get("/jobs").json()]
    lua_jobs = [job for job in jobs if job["Type"] == "SequenceOfOperations"]
    assert lua_jobs and lua_jobs[-1]["Content"]["Description"] == "Lua"


def test_conditional_routing_modification_chain(client: httpx.Client, sink: StoreScp) -> None:
    """The book's sample: modify, send the modified copy, delete both; the loop guard on
    ModifiedFrom holds."""
    lua(client, """
function OnStoredInstance(instanceId, tags, metadata, origin)
   if tags.PatientID ~= 'MODIFY-ME' then
      return
   end
   if metadata['ModifiedFrom'] == nil and metadata['AnonymizedFrom'] == nil then
      local replace = {}
      replace['StationName'] = 'LUA DEVICE'
      replace['PatientName'] = '0123'
      Delete(SendToModality(ModifyInstance(instanceId, replace, { 'InstitutionName' }, true),
                            'sink'))
      Delete(instanceId)
   else
      modifiedSeen = metadata['ModifiedFrom'] .. ' ' .. origin['RequestOrigin']
   end
end""")
    sop = pydicom.uid.generate_uid()
    answer = client.post("/instances", content=make_dicom(
        patient_id="MODIFY-ME", sop_uid=sop, InstitutionName="Somewhere"))
    original = answer.json()["ID"]

    def received() -> pydicom.Dataset | None:
        return next((ds for ds in sink.datasets() if ds.get("PatientID") == "MODIFY-ME"
                     and ds.get("StationName") == "LUA DEVICE"), None)
    ds = wait_until(received)
    assert ds.PatientName == "0123"  # kept a string: Orthanc would have sent "123"
    assert "InstitutionName" not in ds
    wait_until(lambda: client.post("/tools/lookup", content="MODIFY-ME").json() == [])
    assert lua(client, "print(modifiedSeen)") == f"{original} Lua\n"


def test_rest_api_from_callbacks_and_lua_origin(client: httpx.Client) -> None:
    """The sample that recompresses in OnStoredInstance: RestApiGet the file, RestApiPost
    a copy (origin Lua, which the guard skips), RestApiDelete the original."""
    lua(client, """
function OnStoredInstance(instanceId, tags, metadata, origin)
   if tags.PatientID ~= 'REST-ME' then return end
   if origin['RequestOrigin'] ~= 'Lua' then
      local dicom = RestApiGet('/instances/' .. instanceId .. '/file')
      local modified = RestApiPost('/instances/' .. instanceId .. '/modify',
                                   DumpJson({ Replace = { StationName = 'COPY' },
                                              Force = true, Keep = { 'SOPInstanceUID' } }, true))
      RestApiDelete('/instances/' .. instanceId)
      copy = ParseJson(RestApiPost('/instances', modified))['ID']
      copySize = #dicom
   else
      copyOrigin = origin['RequestOrigin']
   end
end""")
    client.post("/instances", content=make_dicom(patient_id="REST-ME"))
    wait_until(lambda: lua(client, "print(copyOrigin)") == "Lua\n")
    copy = lua(client, "print(copy)").strip()
    assert client.get(f"/instances/{copy}/metadata/Origin").text == "Lua"
    assert client.get(f"/instances/{copy}/simplified-tags").json()["StationName"] == "COPY"
    assert len(client.post("/tools/lookup", content="REST-ME").json()) == 1


# --- stable resources, deletions, updates, jobs ----------------------------------------------

def test_on_stable_study_deleted_updated_and_jobs(client: httpx.Client) -> None:
    lua(client, """
stableStudies = {}
function OnStableStudy(studyId, tags, metadata)
   stableStudies[studyId] = tags.StudyDescription .. '|' .. tostring(tags.PatientName) ..
      '|' .. tostring(metadata.LastUpdate ~= nil)
end
function OnDeletedInstance(instanceId) deleted = instanceId end
function OnUpdatedInstance(instanceId) updated = instanceId end
function OnJobSubmitted(jobId) submitted = jobId end
function OnJobSuccess(jobId) succeeded = jobId end""")
    answer = client.post("/instances", content=make_dicom(patient_id="STABLE-ME")).json()
    study, instance = answer["ParentStudy"], answer["ID"]
    # StableAge is 1 s: the study becomes stable, then OnStableStudy runs (patient tags
    # are not part of a study's tags, as in Orthanc).
    wait_until(lambda: lua(client, f"print(stableStudies['{study}'])")
               == "Test study|nil|true\n")
    client.put(f"/instances/{instance}/metadata/1024", content="x")
    wait_until(lambda: lua(client, "print(updated)") == f"{instance}\n")
    job = client.post(f"/studies/{study}/modify", json={
        "Replace": {"StudyDescription": "Changed"}, "Asynchronous": True}).json()["ID"]
    wait_until(lambda: lua(client, "print(succeeded)") == f"{job}\n")
    assert lua(client, "print(submitted)") in (f"{job}\n",)
    client.delete(f"/instances/{instance}")
    wait_until(lambda: lua(client, "print(deleted)") == f"{instance}\n")


def test_callback_error_is_logged_and_events_go_on(client: httpx.Client) -> None:
    lua(client, """
function OnStoredInstance(instanceId, tags, metadata, origin)
   if tags.PatientID == 'CRASH' then error('callback failure') end
   survived = tags.PatientID
end""")
    client.post("/instances", content=make_dicom(patient_id="CRASH"))
    client.post("/instances", content=make_dicom(patient_id="AFTER-CRASH"))
    wait_until(lambda: lua(client, "print(survived)") == "AFTER-CRASH\n")
    # The failing callback stored nothing twice and left the server healthy.
    assert len(client.post("/tools/lookup", content="CRASH").json()) == 1


# --- HTTP and C-FIND filters ------------------------------------------------------------------

def test_incoming_http_request_filter(client: httpx.Client) -> None:
    answer = client.get("/system", headers={"X-Lua-Deny": "yes"})
    assert answer.status_code == 403
    assert answer.content == b""
    answer = client.get("/lua-filter-fails")
    assert answer.status_code == 500
    assert answer.json()["OrthancStatus"] == 2031
    assert client.get("/system").status_code == 200
    # The script's own REST calls are not filtered (Orthanc).
    assert lua(client, "print(RestApiGet('/system', false, {['X-Lua-Deny'] = 'yes'}) ~= nil)") \
        == "true\n"


def test_incoming_find_request_filter(client: httpx.Client, lua_server: LiveServer) -> None:
    client.post("/instances", content=make_dicom(patient_id="FOUND-BY-LUA"))
    output = findscu(lua_server.dicom_port, ["0008,0052=STUDY", "0010,0020=ALIAS"])
    assert "FOUND-BY-LUA" in output
    # IncomingFindRequestFilter runs in the main state: its globals are the script's.
    assert lua(client, "print(lastFindOrigin)") == "FINDSCU/ORTHANC\n"
    output = findscu(lua_server.dicom_port, ["0008,0052=STUDY", "0010,0020=NOBODY"])
    assert "FOUND-BY-LUA" not in output


def test_outgoing_find_request_filter(client: httpx.Client) -> None:
    client.post("/instances", content=make_dicom(patient_id="FOUND-BY-LUA"))
    query = client.post("/modalities/self/query", json={
        "Level": "Study", "Query": {"PatientID": "OUTGOING"}}).json()
    answers = client.get(f"/queries/{query['ID']}/answers?expand&simplify").json()
    assert answers and all(a["PatientID"] == "FOUND-BY-LUA" for a in answers)


def test_heart_beat(client: httpx.Client) -> None:
    # LuaHeartBeatPeriod is 1 s in this server's configuration.
    first = int(lua(client, "print(beats)"))
    wait_until(lambda: int(lua(client, "print(beats)")) > first)


def test_rest_call_reaching_a_route_that_needs_lua_does_not_deadlock(
        client: httpx.Client) -> None:
    """A script holding the main state calls a route that needs the main state again (here
    /tools/execute-script itself; Orthanc: a recursive mutex on one thread). The route runs
    in another thread of the server: its Lua work is handed back to the holding thread."""
    assert lua(client, "print(RestApiPost('/tools/execute-script', 'nested = 7 print(nested)'))"
               " print(nested)") == "7\n\n7\n"
