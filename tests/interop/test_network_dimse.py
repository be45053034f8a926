"""DIMSE through the REST API against real peers: dcmtk's storescp (echo, store,
store-straight) and Debian's Orthanc as a remote modality (query, move, retrieve, get).

The ChRIS/pfdcm workflow end to end: query Orthanc by PatientID, move a series from it
into Pharos (Pharos is in Orthanc's DicomModalities; TargetAet is Pharos' AET), watch the
job until Success, then fetch the series' files by SeriesInstanceUID.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydicom.uid import generate_uid

from tests.api.test_jobs import wait_job
from tests.helpers import LiveServer, free_port, live_server, make_dicom
from tests.interop.orthanc import RunningOrthanc, running_orthanc, skip_unless_orthanc

pytest.importorskip("app.protocols.dimse_scu", reason="the DICOM SCU (app/protocols/dimse_scu.py) is not in this "
                                            "build yet")

PHAROS_AET = "PHAROS"


class StoreScp:
    """dcmtk's storescp on a free port, writing what it receives to a folder."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.aet = "STORESCP"
        self.process = subprocess.Popen(
            ["storescp", "--aetitle", self.aet, "--output-directory", str(directory),
             str(self.port)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        _wait_for_port(self.port)

    def files(self) -> list[Path]:
        return sorted(p for p in self.directory.iterdir() if p.is_file())

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def _wait_for_port(port: int) -> None:
    import socket
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


@pytest.fixture()
def storescp(tmp_path: Path) -> Iterator[StoreScp]:
    if shutil.which("storescp") is None:
        pytest.skip("dcmtk's storescp is not installed (Debian package dcmtk)")
    scp = StoreScp(tmp_path / "received")
    yield scp
    scp.stop()


def _upload_series(client: httpx.Client, patient_id: str, count: int) -> dict[str, str]:
    study_uid, series_uid = generate_uid(), generate_uid()
    for number in range(count):
        answer = client.post("/instances", content=make_dicom(
            patient_id=patient_id, study_uid=study_uid, series_uid=series_uid,
            instance_number=number + 1))
        assert answer.status_code == 200, answer.text
    return {"StudyInstanceUID": study_uid, "SeriesInstanceUID": series_uid,
            "Study": answer.json()["ParentStudy"], "Series": answer.json()["ParentSeries"]}


def test_echo_store_and_store_straight_to_storescp(tmp_path: Path, storescp: StoreScp) -> None:
    config = {"DicomAet": PHAROS_AET, "LogExportedResources": True, "DicomModalities": {
        "scp": [storescp.aet, "127.0.0.1", storescp.port],
        "dead": ["DEAD", "127.0.0.1", free_port()]}}
    with live_server(tmp_path / "pharos", config) as pharos, pharos.client() as client:
        assert client.post("/modalities/scp/echo", json={"Timeout": 5}).json() == {}
        dead = client.post("/modalities/dead/echo")
        assert dead.status_code == 500 and dead.json()["OrthancStatus"] == 9

        series = _upload_series(client, "SCU1", 3)
        sync = client.post("/modalities/scp/store", content=series["Study"])
        assert sync.status_code == 200, sync.text
        assert sync.json() == {"Description": "REST API", "FailedInstancesCount": 0,
                               "InstancesCount": 3, "LocalAet": PHAROS_AET,
                               "ParentResources": [series["Study"]], "RemoteAet": "STORESCP"}
        assert len(storescp.files()) == 3

        job = client.post("/modalities/scp/store", json={
            "Resources": [series["Series"]], "Synchronous": False,
            "LocalAet": "OTHERAET"}).json()
        done = wait_job(client, job["ID"])
        assert done["State"] == "Success" and done["Type"] == "DicomModalityStore"
        assert done["Content"]["LocalAet"] == "OTHERAET"

        straight = client.post("/modalities/scp/store-straight",
                               content=make_dicom(patient_id="STRAIGHT"))
        assert straight.status_code == 200 and set(straight.json()) == {
            "SOPClassUID", "SOPInstanceUID"}
        failed = client.post("/modalities/dead/store", json={
            "Resources": [series["Study"]], "Synchronous": False}).json()
        assert wait_job(client, failed["ID"])["ErrorCode"] == 9
        exports = client.get("/exports").json()["Exports"]
        assert [e["RemoteModality"] for e in exports] == ["scp", "scp", "dead"]


@pytest.fixture()
def pair(tmp_path: Path) -> Iterator[tuple[LiveServer, RunningOrthanc]]:
    """A Pharos and an Orthanc that know each other as DICOM modalities."""
    skip_unless_orthanc()
    pharos_dicom_port = free_port()
    orthanc_dir = tmp_path / "orthanc"
    orthanc_dir.mkdir()
    with running_orthanc(orthanc_dir, config={"DicomModalities": {
            "pharos": [PHAROS_AET, "127.0.0.1", pharos_dicom_port]}}) as orthanc:
        config = {"DicomAet": PHAROS_AET, "DicomPort": pharos_dicom_port,
                  "DicomModalities": {"orthanc": [orthanc.aet, "127.0.0.1",
                                                  orthanc.dicom_port]}}
        with live_server(tmp_path / "pharos", config) as pharos:
            yield pharos, orthanc


def _series_files(client: httpx.Client, series_uid: str) -> dict[str, dict]:
    """Orthanc ID -> the dataset of each file of the series (the files' meta headers name
    the application that wrote them, so they differ between archives)."""
    found = client.post("/tools/find", json={"Level": "Instance", "Query": {
        "SeriesInstanceUID": series_uid}}).json()
    answer = {}
    for public_id in found:
        data = client.get(f"/instances/{public_id}/file").content
        assert data[128:132] == b"DICM"
        answer[public_id] = client.get(f"/instances/{public_id}/tags?simplify").json()
    return answer


def test_pfdcm_query_move_then_fetch_by_series_uid(pair: tuple[LiveServer, RunningOrthanc]) -> None:
    pharos, orthanc = pair
    with pharos.client() as client, orthanc.client() as remote:
        wanted = _upload_series(remote, "PFDCM", 4)
        _upload_series(remote, "OTHER", 1)
        assert client.post("/modalities/orthanc/echo").json() == {}

        query = client.post("/modalities/orthanc/query", json={
            "Level": "Series", "Query": {"PatientID": "PFDCM", "SeriesDescription": "",
                                         "StudyInstanceUID": "", "Modality": ""}})
        assert query.status_code == 200, query.text
        query_id = query.json()["ID"]
        assert query.json()["Path"] == f"/queries/{query_id}"
        assert client.get(f"/queries/{query_id}/level").text == "Series"
        assert client.get(f"/queries/{query_id}/modality").text == "orthanc"
        assert client.get(f"/queries/{query_id}/query?simplify").json()["PatientID"] == "PFDCM"
        assert client.get(f"/queries/{query_id}/answers").json() == ["0"]
        answer = client.get(f"/queries/{query_id}/answers/0/content?simplify").json()
        assert answer["SeriesInstanceUID"] == wanted["SeriesInstanceUID"]
        assert answer["QueryRetrieveLevel"] == "SERIES"
        full = client.get(f"/queries/{query_id}/answers/0/content").json()
        assert full["0020,000e"]["Value"] == wanted["SeriesInstanceUID"]
        assert client.get(f"/queries/{query_id}/answers/1/content").status_code == 400

        move = client.post("/modalities/orthanc/move", json={
            "Level": "Series", "TargetAet": PHAROS_AET, "Synchronous": False,
            "Resources": [{"StudyInstanceUID": answer["StudyInstanceUID"],
                           "SeriesInstanceUID": answer["SeriesInstanceUID"]}]})
        assert move.status_code == 200, move.text
        job = wait_job(client, move.json()["ID"])
        assert job["State"] == "Success", job
        assert job["Type"] == "DicomMoveScu"
        assert job["Content"]["RemoteAet"] == orthanc.aet

        ours = _series_files(client, wanted["SeriesInstanceUID"])
        theirs = _series_files(remote, wanted["SeriesInstanceUID"])
        assert ours == theirs and len(ours) == 4  # same Orthanc IDs, same datasets


def test_retrieve_query_answers_and_get(pair: tuple[LiveServer, RunningOrthanc]) -> None:
    pharos, orthanc = pair
    with pharos.client() as client, orthanc.client() as remote:
        first = _upload_series(remote, "RETR", 2)
        query_id = client.post("/modalities/orthanc/query", json={
            "Level": "Study", "Query": {"PatientID": "RETR"}}).json()["ID"]
        sync = client.post(f"/queries/{query_id}/answers/0/retrieve", content=PHAROS_AET)
        assert sync.status_code == 200, sync.text
        assert sync.json()["Query"][0]["0020,000d"] == first["StudyInstanceUID"]
        assert len(_series_files(client, first["SeriesInstanceUID"])) == 2

        client.delete(f"/studies/{first['Study']}")
        job = client.post(f"/queries/{query_id}/retrieve",
                          json={"TargetAet": PHAROS_AET, "Synchronous": False}).json()
        assert wait_job(client, job["ID"])["State"] == "Success"
        assert len(_series_files(client, first["SeriesInstanceUID"])) == 2


def test_get_series_from_orthanc(pair: tuple[LiveServer, RunningOrthanc]) -> None:
    """C-GET: the instances come back on the same association (no SCP needed here)."""
    pharos, orthanc = pair
    with pharos.client() as client, orthanc.client() as remote:
        second = _upload_series(remote, "GETME", 3)
        got = client.post("/modalities/orthanc/get", json={
            "Level": "Series", "Resources": [{
                "StudyInstanceUID": second["StudyInstanceUID"],
                "SeriesInstanceUID": second["SeriesInstanceUID"]}]})
        assert got.status_code == 200, got.text
        assert got.json()["InstancesCount"] == 3
        assert _series_files(client, second["SeriesInstanceUID"]) == _series_files(
            remote, second["SeriesInstanceUID"])
