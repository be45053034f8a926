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


def test_store_to_another_called_aet_host_and_port(tmp_path: Path) -> None:
    """``CalledAet``, ``Host`` and ``Port`` in the body of ``/modalities/{id}/store``
    override the modality's for that call only: dcmtk's storescp sees the called AET."""
    if shutil.which("storescp") is None:
        pytest.skip("dcmtk's storescp is not installed (Debian package dcmtk)")
    received = tmp_path / "received"
    received.mkdir()
    port = free_port()
    scp = subprocess.Popen(
        ["storescp", "--aetitle", "REALSCP", "--output-directory", str(received),
         "--exec-on-reception", f"sh -c 'echo #c >> {tmp_path}/called.txt'", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        _wait_for_port(port)
        config = {"DicomAet": PHAROS_AET, "DicomModalities": {
            "nowhere": ["NOWHERE", "127.0.0.1", free_port()]}}
        with live_server(tmp_path / "pharos", config) as pharos, pharos.client() as client:
            series = _upload_series(client, "CALLED", 2)
            body = {"Resources": [series["Series"]], "CalledAet": "OVERRIDDEN",
                    "Host": "127.0.0.1", "Port": port}
            sync = client.post("/modalities/nowhere/store", json=body)
            assert sync.status_code == 200, sync.text
            assert sync.json()["InstancesCount"] == 2
            assert sync.json()["RemoteAet"] == "OVERRIDDEN"
            job = client.post("/modalities/nowhere/store",
                              json=body | {"CalledAet": "ASYNCAET", "Asynchronous": True})
            assert wait_job(client, job.json()["ID"])["State"] == "Success"
            # the modality itself is unchanged: without the overrides, nothing listens
            failed = client.post("/modalities/nowhere/store", json={
                "Resources": [series["Series"]]})
            assert failed.status_code == 500
            bad = client.post("/modalities/nowhere/store", json=body | {"Port": "4242"})
            assert bad.status_code == 400
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(
                (tmp_path / "called.txt").read_text().split() if
                (tmp_path / "called.txt").exists() else []) < 4:
            time.sleep(0.1)
        assert (tmp_path / "called.txt").read_text().split() == ["OVERRIDDEN"] * 2 + \
            ["ASYNCAET"] * 2
    finally:
        scp.terminate()
        scp.wait(timeout=10)


def test_asynchronous_move_from_orthanc(pair: tuple[LiveServer, RunningOrthanc]) -> None:
    """``"Asynchronous": true`` on ``/modalities/{id}/move`` answers a job at once; the
    job moves the series from a real Orthanc into Pharos."""
    pharos, orthanc = pair
    with pharos.client() as client, orthanc.client() as remote:
        wanted = _upload_series(remote, "ASYNCMOVE", 2)
        answer = client.post("/modalities/orthanc/move", json={
            "Level": "Series", "TargetAet": PHAROS_AET, "Asynchronous": True,
            "Resources": [{"StudyInstanceUID": wanted["StudyInstanceUID"],
                           "SeriesInstanceUID": wanted["SeriesInstanceUID"]}]})
        assert answer.status_code == 200, answer.text
        assert set(answer.json()) == {"ID", "Path"}
        job = wait_job(client, answer.json()["ID"])
        assert job["State"] == "Success" and job["Type"] == "DicomMoveScu"
        assert len(_series_files(client, wanted["SeriesInstanceUID"])) == 2


@pytest.fixture()
def get_pair(tmp_path: Path, request: pytest.FixtureRequest,
             ) -> Iterator[tuple[LiveServer, RunningOrthanc]]:
    """A Pharos (its configuration and its modality's extra keys, ``"Modality"``, given
    by indirect parametrization) and an Orthanc that knows it as a modality."""
    skip_unless_orthanc()
    extra = dict(getattr(request, "param", {}))
    pharos_dicom_port = free_port()
    orthanc_dir = tmp_path / "orthanc"
    orthanc_dir.mkdir()
    with running_orthanc(orthanc_dir, config={"DicomModalities": {
            "pharos": [PHAROS_AET, "127.0.0.1", pharos_dicom_port]}}) as orthanc:
        modality = {"AET": orthanc.aet, "Host": "127.0.0.1", "Port": orthanc.dicom_port,
                    **extra.pop("Modality", {})}
        config = {"DicomAet": PHAROS_AET, "DicomPort": pharos_dicom_port,
                  "DicomModalities": {"orthanc": modality}, **extra}
        with live_server(tmp_path / "pharos", config) as pharos:
            yield pharos, orthanc


@pytest.mark.parametrize("get_pair", [{"DicomDefaultRetrieveMethod": "C-GET"}], indirect=True)
def test_retrieve_answers_by_c_get_by_default(get_pair: tuple[LiveServer, RunningOrthanc],
                                              ) -> None:
    """``DicomDefaultRetrieveMethod: "C-GET"`` (Orthanc 1.12.6): ``/queries/{id}/retrieve``
    gets the answers on the query's association (no TargetAet); a request's
    ``RetrieveMethod`` still chooses C-MOVE."""
    pharos, orthanc = get_pair
    with pharos.client() as client, orthanc.client() as remote:
        assert client.get("/system").json()["DicomDefaultRetrieveMethod"] == "C-GET"
        first = _upload_series(remote, "BYGET", 2)
        query = client.post("/modalities/orthanc/query", json={
            "Level": "Study", "Query": {"PatientID": "BYGET"}}).json()["ID"]
        got = client.post(f"/queries/{query}/retrieve", content=b"")
        assert got.status_code == 200, got.text
        assert got.json()["InstancesCount"] == 2 and "TargetAet" not in got.json()
        assert len(got.json()["Details"][0]["ReceivedInstancesIds"]) == 2
        assert len(_series_files(client, first["SeriesInstanceUID"])) == 2
        client.delete(f"/studies/{first['Study']}")
        job = client.post(f"/queries/{query}/answers/0/retrieve", json={
            "RetrieveMethod": "C-MOVE", "TargetAet": PHAROS_AET, "Asynchronous": True}).json()
        done = wait_job(client, job["ID"])
        assert done["State"] == "Success" and done["Type"] == "DicomMoveScu"
        assert len(_series_files(client, first["SeriesInstanceUID"])) == 2
        assert client.post(f"/queries/{query}/retrieve",
                           json={"RetrieveMethod": "C-STORE"}).status_code == 400


@pytest.mark.parametrize("get_pair", [{"Modality": {"RetrieveMethod": "C-GET"}}], indirect=True)
def test_retrieve_method_of_the_modality(get_pair: tuple[LiveServer, RunningOrthanc]) -> None:
    """A modality's ``RetrieveMethod`` wins over ``DicomDefaultRetrieveMethod`` (C-MOVE)."""
    pharos, orthanc = get_pair
    with pharos.client() as client, orthanc.client() as remote:
        assert client.get("/modalities/orthanc/configuration").json()["RetrieveMethod"] == \
            "C-GET"
        wanted = _upload_series(remote, "MODGET", 1)
        query = client.post("/modalities/orthanc/query", json={
            "Level": "Series", "Query": {"PatientID": "MODGET"}}).json()["ID"]
        job = client.post(f"/queries/{query}/retrieve", json={"Asynchronous": True}).json()
        done = wait_job(client, job["ID"])
        assert done["State"] == "Success" and done["Type"] == "DicomGetScu", done
        assert len(_series_files(client, wanted["SeriesInstanceUID"])) == 1


@pytest.mark.parametrize("get_pair", [{"RejectedSopClasses": ["1.2.840.10008.5.1.4.1.1.*"]}],
                         indirect=True)
def test_c_get_proposes_only_accepted_classes(get_pair: tuple[LiveServer, RunningOrthanc],
                                              ) -> None:
    """The C-GET SCU proposes the accepted storage classes (Orthanc 1.12.6): with every
    image class rejected, the CT series cannot come back; naming a class in
    ``SOPClassesInStudy`` that is not accepted leaves nothing to propose (Orthanc's
    error 2015)."""
    pharos, orthanc = get_pair
    with pharos.client() as client, orthanc.client() as remote:
        wanted = _upload_series(remote, "NOCT", 1)
        resource = {"StudyInstanceUID": wanted["StudyInstanceUID"],
                    "SeriesInstanceUID": wanted["SeriesInstanceUID"]}
        refused = client.post("/modalities/orthanc/get", json={
            "Level": "Series", "Resources": [resource]})
        assert refused.status_code == 500
        assert "C-GET" in refused.json()["Details"] and refused.json()["OrthancStatus"] == 9
        assert _series_files(client, wanted["SeriesInstanceUID"]) == {}
        none_left = client.post("/modalities/orthanc/get", json={
            "Level": "Series", "Resources": [
                resource | {"SOPClassesInStudy": "1.2.840.10008.5.1.4.1.1.2"}]})
        assert none_left.status_code == 500
        assert none_left.json()["OrthancStatus"] == 2015
