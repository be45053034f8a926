"""Real DIMSE peers for the scripting tests: dcmtk's storescp, storescu and findscu."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pydicom
import pydicom.errors
import pytest

from tests.helpers import free_port


def require_dcmtk() -> None:
    for tool in ("storescp", "storescu", "findscu"):
        if shutil.which(tool) is None:
            pytest.skip(f"dcmtk's {tool} is not installed (Debian package dcmtk)")


class StoreScp:
    """dcmtk's storescp on a free port, writing what it receives to a folder."""

    def __init__(self, directory: Path, aet: str = "SINK") -> None:
        self.directory = directory / "files"
        self.directory.mkdir(parents=True, exist_ok=True)
        self.callers = directory / "callers"  # one empty file per calling AET seen
        self.callers.mkdir(exist_ok=True)
        self.port = free_port()
        self.aet = aet
        self.process = subprocess.Popen(
            ["storescp", "--aetitle", aet, "--output-directory", str(self.directory),
             "--exec-on-reception", f"touch {self.callers}/#a", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_for_port(self.port)

    def files(self) -> list[Path]:
        return sorted(p for p in self.directory.iterdir() if p.is_file())

    def calling_aets(self) -> set[str]:
        return {path.name for path in self.callers.iterdir()}

    def datasets(self) -> list[pydicom.Dataset]:
        """The files received so far (one being written is left for the next look)."""
        answer = []
        for path in self.files():
            try:
                answer.append(pydicom.dcmread(path))
            except (pydicom.errors.InvalidDicomError, EOFError, OSError, ValueError):
                continue
        return answer

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def wait_for_port(port: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


def storescu(port: int, path: Path, aet: str = "STORESCU",
             called: str = "ORTHANC") -> subprocess.CompletedProcess[str]:
    """Send one file; the result's output tells the C-STORE status dcmtk received."""
    return subprocess.run(["storescu", "-v", "-aet", aet, "-aec", called, "127.0.0.1",
                           str(port), str(path)], capture_output=True, text=True, timeout=60)


def findscu(port: int, keys: list[str], aet: str = "FINDSCU") -> str:
    """A study-root C-FIND; answers dcmtk's output (the answers' dumps)."""
    arguments = ["findscu", "-v", "-S", "-aet", aet, "-aec", "ORTHANC", "127.0.0.1", str(port)]
    for key in keys:
        arguments += ["-k", key]
    completed = subprocess.run(arguments, capture_output=True, text=True, timeout=60)
    return completed.stdout + completed.stderr


def wait_until(condition: Callable[[], object], timeout: float = 30.0) -> object:
    """Poll until *condition* is truthy (callbacks run asynchronously, as in Orthanc)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.1)
