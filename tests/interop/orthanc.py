"""A real Orthanc (Debian's package) for interoperability and differential tests.

``running_orthanc`` starts ``Orthanc CONFIG.json`` on free ports with temporary storage and
index, waits until ``/system`` answers, and stops it afterwards. The ``orthanc`` fixture
(module scoped) wraps it and skips, with the reason, when the binary is not installed (CI
installs it through ``.ci/run``).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest

from tests.helpers import free_port

ORTHANC_BINARY = "Orthanc"
PLUGINS_DIR = Path("/usr/share/orthanc/plugins")
DICOMWEB_PLUGIN = PLUGINS_DIR / "libOrthancDicomWeb.so"
START_TIMEOUT = 60


@dataclass
class RunningOrthanc:
    url: str
    dicom_port: int
    aet: str
    storage: Path
    process: subprocess.Popen

    def client(self, **kwargs: object) -> httpx.Client:
        """A client opening a connection per request: Orthanc 1.10.1 closes an idle
        keep-alive connection after about a second (``KeepAliveTimeout`` only came in
        1.11.3), and a request sent on it as it closes fails with "Server disconnected
        without sending a response" (seen on a loaded machine, between two uploads)."""
        kwargs.setdefault("limits", httpx.Limits(max_keepalive_connections=0))
        return httpx.Client(base_url=self.url, timeout=60, **kwargs)


def orthanc_available() -> bool:
    return shutil.which(ORTHANC_BINARY) is not None


def skip_unless_orthanc() -> None:
    if not orthanc_available():
        pytest.skip(f"the {ORTHANC_BINARY!r} binary (Debian package 'orthanc') is not on PATH; "
                    "CI installs it through .ci/run")


@contextmanager
def running_orthanc(directory: Path, *, dicomweb: bool = False, aet: str = "ORTHANCTEST",
                    config: dict | None = None) -> Iterator[RunningOrthanc]:
    """Run a throw-away Orthanc in *directory* (storage, index, log, configuration)."""
    binary = shutil.which(ORTHANC_BINARY)
    if binary is None:
        raise RuntimeError(f"{ORTHANC_BINARY} is not installed")
    storage = directory / "storage"
    storage.mkdir(parents=True, exist_ok=True)
    http_port, dicom_port = free_port(), free_port()
    plugins = [str(DICOMWEB_PLUGIN)] if dicomweb and DICOMWEB_PLUGIN.exists() else []
    document = {
        "Name": "OrthancTest", "DicomAet": aet,
        "HttpPort": http_port, "DicomPort": dicom_port,
        "StorageDirectory": str(storage), "IndexDirectory": str(storage),
        # 1.10.1 binds every interface: allow remote access, but never ask for a password.
        "RemoteAccessAllowed": True, "AuthenticationEnabled": False,
        "Plugins": plugins, "DicomWeb": {"Enable": bool(plugins)},
        "StableAge": 2, "HttpTimeout": 60, "ConcurrentJobs": 1,
        **(config or {}),
    }
    config_path = directory / "orthanc.json"
    config_path.write_bytes(orjson.dumps(document))
    log_path = directory / "orthanc.log"
    log = open(log_path, "wb")
    process = subprocess.Popen([binary, str(config_path)], cwd=directory,
                               stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{http_port}"
    try:
        _wait_until_up(url, process, log_path)
        yield RunningOrthanc(url, dicom_port, aet, storage, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


def _wait_until_up(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    with httpx.Client(timeout=1) as client:  # one client: httpx.get() builds one per call
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"Orthanc exited ({process.returncode}): "
                                   f"{log.read_text(errors='replace')[-3000:]}")
            try:
                if client.get(f"{url}/system").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
    raise RuntimeError(f"Orthanc did not start: {log.read_text(errors='replace')[-3000:]}")


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningOrthanc]:
    """A real Orthanc 1.x with the DICOMweb plugin, shared by one test module."""
    skip_unless_orthanc()
    with running_orthanc(tmp_path_factory.mktemp("orthanc"), dicomweb=True) as live:
        yield live
