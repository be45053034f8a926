"""Orthanc's run-time settings routes and their effects, on a live two-process Pharos.

``/tools/default-encoding``, ``/tools/accepted-transfer-syntaxes``,
``/tools/unknown-sop-class-accepted``, ``/tools/log-level*`` and ``/tools/metrics``:
answers as Orthanc gives them, the same value seen by every HTTP process, the values
configured at start given back after a restart, and their real effects: the C-STORE SCP
(dcmtk's storescu as the peer) accepts exactly the accepted transfer syntaxes and, when
asked, unknown SOP classes; strings without SpecificCharacterSet are decoded with the
default encoding; the DICOM category's log level drives the SCP's log lines.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import RLELossless, generate_uid

from tests.helpers import LiveServer, live_server, make_dicom, pinned_database

pytestmark = pytest.mark.skipif(shutil.which("storescu") is None,
                                reason="dcmtk is not installed (Debian package dcmtk)")

UNCOMPRESSED = ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"]
PRIVATE_SOP_CLASS = "1.2.826.0.1.3680043.10.1234.1.2.3"
# The configuration's start values (the tests put them back when they change them).
CONFIG = {"DefaultEncoding": "Latin1",
          "AcceptedTransferSyntaxes": ["1.2.840.10008.1.*"],
          "RleTransferSyntaxAccepted": False,
          "UnknownSopClassAccepted": False,
          "MetricsEnabled": False,
          "Pharos": {"HttpWorkers": 2}}


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("runtime"), CONFIG) as server:
        yield server


def _texts(server: LiveServer, path: str, times: int = 8) -> set[str]:
    """The answers of several GETs (the two processes answer in turn)."""
    with server.client() as client:
        return {client.get(path).text for _ in range(times)}


def test_configured_values_at_start(two_processes: LiveServer) -> None:
    with two_processes.client() as client:
        accepted = client.get("/tools/accepted-transfer-syntaxes").json()
        assert "1.2.840.10008.1.2.5" not in accepted  # RleTransferSyntaxAccepted: false
        assert accepted[:4] == ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1",
                                "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.2"]
        assert "1.2.840.10008.1.2.4.50" in accepted
    assert _texts(two_processes, "/tools/default-encoding") == {"Latin1"}
    assert _texts(two_processes, "/tools/unknown-sop-class-accepted") == {"0"}
    assert _texts(two_processes, "/tools/metrics") == {"0"}
    assert _texts(two_processes, "/tools/log-level") == {"default"}


def test_changes_are_seen_by_every_process(two_processes: LiveServer) -> None:
    with two_processes.client() as client:
        answer = client.put("/tools/default-encoding", content="utf8")
        assert (answer.status_code, answer.text) == (200, "Utf8")
        assert _texts(two_processes, "/tools/default-encoding") == {"Utf8"}
        assert client.put("/tools/default-encoding", content="Klingon").status_code == 400
        assert client.put("/tools/default-encoding", content="Latin1").text == "Latin1"

        assert client.put("/tools/unknown-sop-class-accepted", content="true").text == ""
        assert _texts(two_processes, "/tools/unknown-sop-class-accepted") == {"1"}
        assert client.put("/tools/unknown-sop-class-accepted",
                          content="nope").status_code == 400
        client.put("/tools/unknown-sop-class-accepted", content="0")
        assert _texts(two_processes, "/tools/unknown-sop-class-accepted") == {"0"}

        client.put("/tools/metrics", content="1")
        assert _texts(two_processes, "/tools/metrics") == {"1"}
        client.put("/tools/metrics", content="0")


def test_accepted_transfer_syntaxes_forms(two_processes: LiveServer) -> None:
    with two_processes.client() as client:
        assert client.put("/tools/accepted-transfer-syntaxes",
                          json=UNCOMPRESSED).json() == UNCOMPRESSED
        # one pattern as plain text (wildcards ? and *), or as a JSON string
        every = client.put("/tools/accepted-transfer-syntaxes", content="*",
                           headers={"Content-Type": "text/plain"}).json()
        assert len(every) == 42 and every[-1] == "1.2.840.10008.1.2.6.2"
        jpeg_ls = client.put("/tools/accepted-transfer-syntaxes",
                             json="1.2.840.10008.1.2.4.8?").json()
        assert jpeg_ls == ["1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"]
        assert client.put("/tools/accepted-transfer-syntaxes", json=[1, 2]).status_code == 400
        assert client.put("/tools/accepted-transfer-syntaxes",
                          json={"a": 1}).status_code == 400
        assert client.get("/tools/accepted-transfer-syntaxes").json() == jpeg_ls
        client.put("/tools/accepted-transfer-syntaxes", json=["1.2.840.10008.1.*"])


def test_log_levels(two_processes: LiveServer) -> None:
    with two_processes.client() as client:
        assert client.put("/tools/log-level", content="verbose").status_code == 200
        assert _texts(two_processes, "/tools/log-level") == {"verbose"}
        assert _texts(two_processes, "/tools/log-level-http") == {"verbose"}
        assert client.put("/tools/log-level", content="nope").status_code == 400
        client.put("/tools/log-level", content="default")
        client.put("/tools/log-level-jobs", content="trace")
        assert _texts(two_processes, "/tools/log-level") == {"trace"}  # the highest
        assert _texts(two_processes, "/tools/log-level-generic") == {"default"}
        client.put("/tools/log-level-jobs", content="default")
        for category in ("generic", "plugins", "http", "sqlite", "dicom", "jobs", "lua"):
            assert client.get(f"/tools/log-level-{category}").text == "default"
        assert client.put("/tools/log-level-nope", content="default").status_code in (404, 405)


# --- effects on the C-STORE SCP -------------------------------------------------------

def _storescu(server: LiveServer, *options: str, file: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["storescu", *options, "127.0.0.1", str(server.dicom_port), str(file)],
                          capture_output=True, text=True, timeout=60)


def _rle_file(folder: Path) -> Path:
    ds = pydicom.dcmread(io.BytesIO(make_dicom(patient_id="RLE")))
    ds.compress(RLELossless)
    path = folder / "rle.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def _instances(server: LiveServer) -> list[str]:
    with server.client() as client:
        return client.get("/instances").json()


def _clear(server: LiveServer) -> None:
    with server.client() as client:
        for patient in client.get("/patients").json():
            client.delete(f"/patients/{patient}")


def test_accepted_transfer_syntaxes_decide_what_storescu_may_send(
        tmp_path: Path, two_processes: LiveServer) -> None:
    _clear(two_processes)
    rle = _rle_file(tmp_path)
    with two_processes.client() as client:
        client.put("/tools/accepted-transfer-syntaxes", json=UNCOMPRESSED)
        # -xr proposes RLE (and uncompressed, which storescu cannot convert RLE to)
        refused = _storescu(two_processes, "-xr", file=rle)
        assert refused.returncode != 0 and "unable to convert" in refused.stderr
        assert _instances(two_processes) == []
        client.put("/tools/accepted-transfer-syntaxes", content="1.2.840.10008.1.2.5",
                   headers={"Content-Type": "text/plain"})
        assert _storescu(two_processes, "-xr", file=rle).returncode == 0
        assert len(_instances(two_processes)) == 1
        client.put("/tools/accepted-transfer-syntaxes", json=["1.2.840.10008.1.*"])
    _clear(two_processes)


def _private_file(folder: Path) -> Path:
    ds = pydicom.dcmread(io.BytesIO(make_dicom(patient_id="PRIVATE")))
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = PRIVATE_SOP_CLASS
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    path = folder / "private.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def _profile(folder: Path) -> Path:
    """A dcmtk association profile proposing the private SOP class (storescu -xf)."""
    path = folder / "private.cfg"
    path.write_text("[[TransferSyntaxes]]\n[Uncompressed]\n"
                    "TransferSyntax1 = LittleEndianExplicit\n"
                    "TransferSyntax2 = LittleEndianImplicit\n\n"
                    "[[PresentationContexts]]\n[Private]\n"
                    f"PresentationContext1 = {PRIVATE_SOP_CLASS}\\Uncompressed\n\n"
                    "[[Profiles]]\n[Default]\nPresentationContexts = Private\n")
    return path


def test_unknown_sop_classes_only_when_accepted(tmp_path: Path,
                                                two_processes: LiveServer) -> None:
    _clear(two_processes)
    sent, profile = _private_file(tmp_path), _profile(tmp_path)
    with two_processes.client() as client:
        client.put("/tools/unknown-sop-class-accepted", content="0")
        refused = _storescu(two_processes, "-xf", str(profile), "Default", file=sent)
        assert refused.returncode != 0 and "presentation context" in refused.stderr.lower()
        assert _instances(two_processes) == []
        client.put("/tools/unknown-sop-class-accepted", content="1")
        done = _storescu(two_processes, "-xf", str(profile), "Default", file=sent)
        assert done.returncode == 0, done.stderr
        [instance] = _instances(two_processes)
        tags = client.get(f"/instances/{instance}/simplified-tags").json()
        assert tags["SOPClassUID"] == PRIVATE_SOP_CLASS
        client.put("/tools/unknown-sop-class-accepted", content="0")
    _clear(two_processes)


# --- effect on decoding ---------------------------------------------------------------

def test_default_encoding_decodes_files_without_character_set(
        two_processes: LiveServer) -> None:
    _clear(two_processes)
    name = "Жуков^Иван"
    data = make_dicom(patient_id="CYR", patient_name=name)
    ds = pydicom.dcmread(io.BytesIO(data))
    assert "SpecificCharacterSet" not in ds
    ds["PatientName"].value = name.encode("iso8859_5")  # raw bytes, no declared charset
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    with two_processes.client() as client:
        client.put("/tools/default-encoding", content="Cyrillic")
        stored = client.post("/instances", content=buffer.getvalue()).json()
        patient = client.get(f"/patients/{stored['ParentPatient']}").json()
        assert patient["MainDicomTags"]["PatientName"] == name
        client.delete(f"/patients/{stored['ParentPatient']}")
        client.put("/tools/default-encoding", content="Latin1")
        stored = client.post("/instances", content=buffer.getvalue()).json()
        patient = client.get(f"/patients/{stored['ParentPatient']}").json()
        latin1 = name.encode("iso8859_5").decode("latin_1")
        assert patient["MainDicomTags"]["PatientName"] == latin1
    _clear(two_processes)


# --- effect on logging, and restart ---------------------------------------------------

def test_dicom_log_level_drives_the_scp_log(tmp_path: Path) -> None:
    with pinned_database(tmp_path) as database:
        config = {**database, "LogExportedResources": False}
        with live_server(tmp_path, config) as server:
            log = tmp_path / "server.log"
            subprocess.run(["echoscu", "-aet", "QUIET", "127.0.0.1", str(server.dicom_port)],
                           check=True, timeout=60)
            with server.client() as client:
                client.put("/tools/log-level-dicom", content="verbose")
                client.put("/tools/default-encoding", content="Greek")
            subprocess.run(["echoscu", "-aet", "CHATTY", "127.0.0.1", str(server.dicom_port)],
                           check=True, timeout=60)
            text = log.read_text(errors="replace")
            assert "Association from CHATTY" in text
            assert "Association from QUIET" not in text
        # a restart gives the configured values back, as Orthanc's
        with live_server(tmp_path, config) as server:
            assert _texts(server, "/tools/log-level-dicom", 2) == {"default"}
            assert _texts(server, "/tools/default-encoding", 2) == {"Latin1"}
