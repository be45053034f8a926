"""Query/Retrieve and echo as Orthanc runs them, on a live Pharos that is its own remote
(modality ``self``) and with dcmtk's findscu, movescu and storescp as peers.

What is checked: ``/tools/dicom-echo`` and ``CheckFind``; the C-FIND answers (the keys
asked, the default encoding, RetrieveAETitle, QueryRetrieveLevel) and the SCU's
normalization; a query that cannot be encoded is a 400 before any association;
``query-studies``/``-series``/``-instances``; the ``Query`` of retrieve jobs in each
format; C-GET ``Details``; incoming C-MOVE as Orthanc reads it (AccessionNumber at the
study level, no QueryRetrieveLevel, no match) served by a job (``SynchronousCMove``
false); ``AllowTranscoding``; the registry's validation; ``/exports?last``.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pydicom
import pytest
from pydicom.uid import RLELossless, generate_uid

from tests.helpers import LiveServer, live_server, make_dicom
from tests.interop.test_network_dimse import StoreScp

pytestmark = pytest.mark.skipif(shutil.which("storescp") is None,
                                reason="dcmtk is not installed (Debian package dcmtk)")

AET = "PHAROSQR"
STUDY = "1.2.826.0.1.3680043.10.1234.77.1"
SERIES = "1.2.826.0.1.3680043.10.1234.77.2"


@pytest.fixture(scope="module")
def destination(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreScp]:
    scp = StoreScp(tmp_path_factory.mktemp("storescp"))
    yield scp
    scp.stop()


@pytest.fixture(scope="module")
def pharos(tmp_path_factory: pytest.TempPathFactory,
           destination: StoreScp) -> Iterator[LiveServer]:
    config = {"DicomAet": AET, "SynchronousCMove": False, "LogExportedResources": True,
              "DicomModalities": {"storescp": [destination.aet, "127.0.0.1",
                                               destination.port]}}
    with live_server(tmp_path_factory.mktemp("qr"), config) as server:
        with server.client() as client:
            assert client.put("/modalities/self", json=[AET, "127.0.0.1",
                                                        server.dicom_port]).status_code == 200
            for n in (1, 2):
                data = make_dicom(patient_id="QR1", patient_name="DOE^JANE", study_uid=STUDY,
                                  series_uid=SERIES, instance_number=n, AccessionNumber="ACC77")
                assert client.post("/instances", content=data).status_code == 200
        yield server


def _client(server: LiveServer) -> httpx.Client:
    return server.client()


# --- echo --------------------------------------------------------------------------------

def test_echo_forms_and_check_find(pharos: LiveServer, destination: StoreScp) -> None:
    with _client(pharos) as client:
        assert client.post("/modalities/self/echo").json() == {}
        assert client.post("/modalities/self/echo", content="").json() == {}
        assert client.post("/modalities/self/echo", json={"CheckFind": True}).json() == {}
        assert client.post("/modalities/self/echo", content="nope").status_code == 400
        assert client.post("/tools/dicom-echo",
                           json=[AET, "127.0.0.1", pharos.dicom_port]).json() == {}
        assert client.post("/tools/dicom-echo", json={
            "AET": AET, "Host": "127.0.0.1", "Port": pharos.dicom_port,
            "CheckFind": True}).json() == {}
        # storescp answers C-ECHO but serves no C-FIND: CheckFind reveals it
        remote = [destination.aet, "127.0.0.1", destination.port]
        assert client.post("/tools/dicom-echo", json=remote).json() == {}
        checked = client.post("/tools/dicom-echo", json={
            "AET": destination.aet, "Host": "127.0.0.1", "Port": destination.port,
            "CheckFind": True})
        assert checked.status_code == 500
        assert client.post("/tools/dicom-echo", json={"AET": "X"}).status_code == 400


# --- C-FIND ------------------------------------------------------------------------------

def _answers(client: httpx.Client, query: dict, suffix: str = "?expand") -> list[dict]:
    created = client.post("/modalities/self/query", json=query)
    assert created.status_code == 200, created.text
    return client.get(f"{created.json()['Path']}/answers{suffix}").json()


def test_query_answers_as_orthanc(pharos: LiveServer) -> None:
    with _client(pharos) as client:
        [answer] = _answers(client, {"Level": "Study", "Query": {}}, "?expand&short")
        # the level's keys the SCU adds, the encoding and RetrieveAETitle the SCP adds
        assert answer == {"0008,0005": "ISO_IR 100", "0008,0050": "ACC77",
                          "0008,0052": "STUDY", "0008,0054": AET, "0010,0020": "QR1",
                          "0020,000d": STUDY}
        tags = {"NumberOfPatientRelatedInstances": "", "NumberOfStudyRelatedInstances": "",
                "PatientID": "QR1"}
        [patient] = _answers(client, {"Level": "Patient", "Query": tags}, "?expand&simplify")
        assert patient["NumberOfPatientRelatedInstances"] == "2"
        assert "NumberOfStudyRelatedInstances" not in patient  # normalized away
        [raw] = _answers(client, {"Level": "Patient", "Query": tags, "Normalize": False},
                         "?expand&simplify")
        assert raw["NumberOfStudyRelatedInstances"] == ""  # asked, meaningless here


def test_query_values_are_encoded_in_the_default_encoding(pharos: LiveServer) -> None:
    with _client(pharos) as client:
        query = {"Level": "Patient", "Query": {"PatientName": "王^小明"}}
        refused = client.post("/modalities/self/query", json=query)
        assert refused.status_code == 400 and "Latin1" in refused.json()["Details"]
        assert client.post("/modalities/self/query", json={
            "Level": "Series", "Query": {"SeriesNumber": "abc"}}).status_code == 200
        assert client.post("/modalities/self/query", json={
            "Level": "Instance", "Query": {"Rows": "many"}, "Normalize": False}
        ).status_code == 400  # US cannot hold it
        assert client.post("/modalities/self/query", json={
            "Level": "Patient", "Query": {"PatientID": ["a"]}}).status_code == 400
        try:
            client.put("/tools/default-encoding", content="Utf8")
            assert client.post("/modalities/self/query", json=query).status_code == 200
        finally:
            client.put("/tools/default-encoding", content="Latin1")


def test_query_children_of_an_answer(pharos: LiveServer) -> None:
    with _client(pharos) as client:
        patient = client.post("/modalities/self/query", json={
            "Level": "Patient", "Query": {"PatientID": "QR1"}}).json()["ID"]
        series = client.post("/modalities/self/query", json={
            "Level": "Series", "Query": {"PatientID": "QR1"}}).json()["ID"]
        child = client.post(f"/queries/{patient}/answers/0/query-series", json={"Query": {}})
        assert child.status_code == 200, child.text
        assert (client.get(f"{child.json()['Path']}/answers?expand&simplify").json()
                == client.get(f"/queries/{series}/answers?expand&simplify").json())
        instances = client.post(f"/queries/{series}/answers/0/query-instances", json={})
        assert len(client.get(f"{instances.json()['Path']}/answers").json()) == 2
        assert client.post(f"/queries/{series}/answers/0/query-studies",
                           json={}).status_code == 404  # not below a series
        assert client.post(f"/queries/{series}/answers/7/query-instances",
                           json={}).status_code == 400
        listing = client.get(f"/queries/{series}/answers/0").json()
        assert listing == ["content", "query-instances", "query-series", "query-studies",
                           "retrieve"]


def test_retrieve_formats_and_get_details(pharos: LiveServer, destination: StoreScp) -> None:
    with _client(pharos) as client:
        study = client.post("/modalities/self/query", json={
            "Level": "Study", "Query": {"PatientID": "QR1"}}).json()["ID"]
        short = client.post(f"/queries/{study}/retrieve", json={"TargetAet": "STORESCP"})
        assert short.status_code == 200, short.text
        assert short.json()["Query"] == [{"0008,0050": "ACC77", "0008,0052": "STUDY",
                                          "0010,0020": "QR1", "0020,000d": STUDY}]
        assert short.json()["LocalAet"] == AET and short.json()["RemoteAet"] == AET
        full = client.post(f"/queries/{study}/retrieve", json={
            "TargetAet": "STORESCP", "Full": True}).json()["Query"][0]
        assert full["0020,000d"] == {"Name": "StudyInstanceUID", "Type": "String",
                                     "Value": STUDY}
        simple = client.post(f"/queries/{study}/retrieve", json={
            "TargetAet": "STORESCP", "Simplify": True}).json()["Query"][0]
        assert simple["AccessionNumber"] == "ACC77"
        got = client.post("/modalities/self/get", json={
            "Level": "Study", "Resources": [{"StudyInstanceUID": STUDY}]})
        assert got.status_code == 200, got.text
        [detail] = got.json()["Details"]
        assert detail["DimseErrorStatus"] == 0 and len(detail["ReceivedInstancesIds"]) == 2


# --- incoming C-MOVE ---------------------------------------------------------------------

def _movescu(server: LiveServer, destination: StoreScp, *keys: str) -> int:
    args = ["movescu", "-S", "-aet", destination.aet, "-aec", AET, "--move", destination.aet]
    for key in keys:
        args += ["-k", key]
    done = subprocess.run([*args, "127.0.0.1", str(server.dicom_port)], capture_output=True,
                          text=True, timeout=60)
    return done.returncode


def _jobs(client: httpx.Client) -> set[str]:
    return set(client.get("/jobs").json())


def _wait(client: httpx.Client, job: str) -> dict:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = client.get(f"/jobs/{job}").json()
        if state["State"] in ("Success", "Failure"):
            return state
        time.sleep(0.1)
    raise AssertionError(f"job {job} did not finish")


def _received(destination: StoreScp) -> int:
    return len(destination.files())


def _empty(destination: StoreScp) -> None:
    for path in destination.files():
        path.unlink()


@pytest.mark.parametrize("keys", [
    ("QueryRetrieveLevel=STUDY", "AccessionNumber=ACC77", "StudyInstanceUID="),
    ("AccessionNumber=ACC77",),  # no QueryRetrieveLevel (Tudor DICOM): guessed
    ("QueryRetrieveLevel=SERIES", f"StudyInstanceUID={STUDY}", f"SeriesInstanceUID={SERIES}"),
])
def test_incoming_move_as_a_job(pharos: LiveServer, destination: StoreScp,
                                keys: tuple[str, ...]) -> None:
    _empty(destination)
    with _client(pharos) as client:
        before = _jobs(client)
        assert _movescu(pharos, destination, *keys) == 0
        [job] = _jobs(client) - before
        state = _wait(client, job)
        assert state["State"] == "Success" and state["Content"]["Description"] == "C-MOVE"
        assert _received(destination) == 2


def test_incoming_move_without_match_creates_nothing(pharos: LiveServer,
                                                     destination: StoreScp) -> None:
    with _client(pharos) as client:
        before = _jobs(client)
        assert _movescu(pharos, destination, "QueryRetrieveLevel=STUDY",
                        "AccessionNumber=NOPE") == 0  # success, no sub-operation
        assert _movescu(pharos, destination, "QueryRetrieveLevel=STUDY",
                        "StudyInstanceUID=") == 0
        assert _jobs(client) == before


# --- C-STORE SCU: AllowTranscoding ---------------------------------------------------------

def test_allow_transcoding(pharos: LiveServer, destination: StoreScp) -> None:
    ds = pydicom.dcmread(io.BytesIO(make_dicom(patient_id="RLE1", sop_uid=generate_uid())))
    ds.compress(RLELossless)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    with _client(pharos) as client:
        stored = client.post("/instances", content=buffer.getvalue()).json()["ID"]
        remote = {"AET": destination.aet, "Host": "127.0.0.1", "Port": destination.port}
        client.put("/modalities/strict", json=remote | {"AllowTranscoding": False})
        client.put("/modalities/lenient", json=remote)
        # storescp accepts no RLE: sending needs decompression
        _empty(destination)
        assert client.post("/modalities/strict/store", content=stored).status_code == 500
        assert _received(destination) == 0
        assert client.post("/modalities/lenient/store", content=stored).status_code == 200
        assert _received(destination) == 1
        client.delete(f"/instances/{stored}")


# --- registry and exports --------------------------------------------------------------

def test_registry_validation_and_shapes(pharos: LiveServer) -> None:
    with _client(pharos) as client:
        assert client.put("/modalities/m1", json=["A", "h", 104, "Nope"]).status_code == 400
        assert client.put("/modalities/m1", json=["A", "h", 104, "MedInria"]).status_code == 200
        assert client.get("/modalities/m1/configuration").json()["Manufacturer"] == "Generic"
        assert client.put("/modalities/m1", json=["A", "h", 70000]).status_code == 400
        client.delete("/modalities/m1")
        assert client.put("/peers/p1", json={"Url": "http://x:1", "Username": "u",
                                             "Password": "secret", "Site": "north",
                                             "Flag": True}).status_code == 200
        shown = client.get("/peers?expand").json()["p1"]
        assert shown == {"HttpHeaders": [], "Password": None, "Pkcs11": False, "Timeout": 0,
                         "Url": "http://x:1/", "Username": "u", "Site": "north", "Flag": "1"}
        assert client.get("/peers/p1/configuration").json() == shown
        assert client.put("/peers/p1", json=["http://x:1", "a"]).status_code == 400
        assert client.put("/peers/p1", json={"Url": "ftp://x"}).status_code == 400
        assert client.put("/peers/p1", json={"Url": "http://x", "Other": [1]}).status_code == 400
        client.delete("/peers/p1")


def test_exports_last(pharos: LiveServer) -> None:
    with _client(pharos) as client:
        client.delete("/exports")
        patient = client.get("/patients").json()[0]
        instance = client.get("/instances").json()[0]
        assert client.post("/modalities/storescp/store", content=instance).status_code == 200
        assert client.post("/modalities/storescp/store", content=patient).status_code == 200
        every = client.get("/exports").json()["Exports"]
        last = client.get("/exports?last").json()
        assert len(every) == 2 and last["Done"] is True
        assert last["Exports"] == every[-1:] and last["Last"] == every[-1]["Seq"]


# --- C-GET SCP: conversion for a requestor without compressed syntaxes -------------------

def _jpeg_baseline(sop_uid: str) -> bytes:
    """An 8-bit image encapsulated as JPEG Baseline (Pillow encodes the frame)."""
    from PIL import Image
    from pydicom.encaps import encapsulate
    ds = pydicom.dcmread(io.BytesIO(make_dicom(patient_id="JPEG1", sop_uid=sop_uid, size=16)))
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    frame = io.BytesIO()
    Image.frombytes("L", (16, 16), bytes(range(256))).save(frame, format="JPEG")
    ds.PixelData = encapsulate([frame.getvalue()])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.50"
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def test_getscu_receives_a_decompressed_copy_of_the_same_instance(
        pharos: LiveServer, tmp_path: Path) -> None:
    sop_uid = generate_uid()
    with _client(pharos) as client:
        stored = client.post("/instances", content=_jpeg_baseline(sop_uid))
        assert stored.status_code == 200, stored.text
        client.put("/modalities/getscu", json=["GETSCU", "127.0.0.1", 104])
    out = tmp_path / "get"
    out.mkdir()
    done = subprocess.run(["getscu", "-aet", "GETSCU", "-aec", AET, "-k",
                           "QueryRetrieveLevel=IMAGE", "-k", f"SOPInstanceUID={sop_uid}",
                           "--output-directory", str(out), "127.0.0.1",
                           str(pharos.dicom_port)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    [received] = list(out.iterdir())
    assert received.name.endswith(sop_uid)  # the same instance (Orthanc keeps the UID)
    copy = pydicom.dcmread(received)
    assert copy.SOPInstanceUID == sop_uid
    assert copy.file_meta.TransferSyntaxUID in ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2")


# --- storage commitment (PS3.4 J) --------------------------------------------------------

def _report(client: httpx.Client, transaction: str) -> dict:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        report = client.get(f"/storage-commitment/{transaction}").json()
        if report["Status"] != "Pending":
            return report
        time.sleep(0.05)
    raise AssertionError(f"storage commitment {transaction} still pending")


def test_storage_commitment_with_itself(pharos: LiveServer) -> None:
    """Pharos asks its own SCP (N-ACTION), which checks and reports back (N-EVENT-REPORT
    on a new association): both roles over real sockets."""
    data = make_dicom(patient_id="COMMIT", sop_uid=generate_uid())
    with _client(pharos) as client:
        stored = client.post("/instances", content=data).json()
        tags = client.get(f"/instances/{stored['ID']}/simplified-tags").json()
        wanted = [tags["SOPClassUID"], tags["SOPInstanceUID"]]
        asked = client.post("/modalities/self/storage-commitment", json={
            "DicomInstances": [["1.2.3", "4.5.6"], wanted,
                               {"SOPClassUID": "1.2.840.10008.5.1.4.1.1.7",
                                "SOPInstanceUID": wanted[1]}]})
        assert asked.status_code == 200, asked.text
        transaction = asked.json()["ID"]
        assert transaction.startswith("2.25.")
        assert asked.json()["Path"] == f"/storage-commitment/{transaction}"
        report = _report(client, transaction)
        assert report["Status"] == "Failure" and report["RemoteAET"] == AET
        assert report["Success"] == [{"SOPClassUID": wanted[0], "SOPInstanceUID": wanted[1]}]
        assert [(f["SOPInstanceUID"], f["FailureReason"]) for f in report["Failures"]] == [
            ("4.5.6", 0x0112), (wanted[1], 0x0119)]  # no such instance, class conflict
        assert client.post(f"/storage-commitment/{transaction}/remove").status_code == 400

        # chained to a C-STORE, then the committed instances removed here
        sent = client.post("/modalities/self/store", json={
            "Resources": [stored["ID"]], "StorageCommitment": True}).json()
        transaction = sent["StorageCommitmentTransactionUID"]
        report = _report(client, transaction)
        assert report["Status"] == "Success" and report["Failures"] == []
        assert client.post(f"/storage-commitment/{transaction}/remove").json() == {}
        assert client.get(f"/instances/{stored['ID']}").status_code == 404
        assert client.get("/storage-commitment/2.25.1").status_code == 404
        assert client.post("/modalities/self/storage-commitment",
                           json={"Other": 1}).status_code == 400
