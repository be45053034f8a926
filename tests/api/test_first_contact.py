"""First contact (issue 13): what a new user meets when starting ``pharos serve``.

Missing folders are created (as Orthanc creates StorageDirectory and IndexDirectory);
every configuration or environment error ends the start with a non-zero status and one
line naming the option and what to do, with one HTTP process or several: a value of the
wrong type, an unreadable file, the HTTP or the DICOM port taken, the index database
down, a hooks module that does not exist, a worker that fails on its own.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.helpers import REPO, free_port, live_server, make_dicom, on_filesystem


def _serve(tmp_path: Path, config: dict | str, env: dict[str, str] | None = None,
           timeout: float = 120) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "pharos.json"
    path.write_text(config if isinstance(config, str) else orjson.dumps(config).decode())
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PHAROS_")}
    environment.update(env or {})
    return subprocess.run([sys.executable, "-m", "app.cli", "serve", "--config", str(path)],
                          cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          env=environment)


def _one_line(result: subprocess.CompletedProcess[str], *words: str) -> str:
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Traceback" not in output, output
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("pharos: "), output
    for word in words:
        assert word in line, line
    return line


def _base(tmp_path: Path, **extra: object) -> dict:
    return {"HttpPort": free_port(), "DicomPort": free_port(),
            "StorageDirectory": str(tmp_path / "storage"), **extra}


@pytest.mark.parametrize("workers", [1, 2])
def test_wrong_values_name_the_option(tmp_path: Path, workers: int) -> None:
    pharos = {"HttpWorkers": workers}
    result = _serve(tmp_path, {**_base(tmp_path), "HttpPort": "eighty", "Pharos": pharos})
    assert result.returncode == 2
    _one_line(result, "HttpPort", "integer", "eighty")
    _one_line(_serve(tmp_path, {**_base(tmp_path), "DicomAet": "A" * 17, "Pharos": pharos}),
              "DicomAet", "16")
    _one_line(_serve(tmp_path, {**_base(tmp_path), "Pharos": {**pharos,
                                                              "MaxUploadSize": "big"}}),
              "Pharos.MaxUploadSize")
    _one_line(_serve(tmp_path, {**_base(tmp_path), "Pharos": pharos},
                     env={"PHAROS_DICOM_PORT": "forty-two"}), "PHAROS_DICOM_PORT")
    _one_line(_serve(tmp_path, {**_base(tmp_path), "DicomModalities": {
        "pacs": ["PACS", "host", 70000]}, "Pharos": pharos}), "DicomModalities", "port")
    _one_line(_serve(tmp_path, '{"HttpPort": 8042,'), "not valid JSON")


@pytest.fixture()
def taken_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("0.0.0.0", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.mark.parametrize("workers", [1, 2])
def test_ports_in_use_are_fatal(tmp_path: Path, taken_port: int, workers: int) -> None:
    pharos = {"HttpWorkers": workers}
    _one_line(_serve(tmp_path, {**_base(tmp_path), "DicomPort": taken_port,
                                "Pharos": pharos}), "DicomPort", str(taken_port), "in use")
    _one_line(_serve(tmp_path, {**_base(tmp_path), "HttpPort": taken_port,
                                "Pharos": pharos}), "HttpPort", str(taken_port), "in use")


def test_database_down_is_one_line(tmp_path: Path) -> None:
    url = f"postgresql+psycopg://pharos:secret@127.0.0.1:{free_port()}/nowhere"
    result = _serve(tmp_path, {**_base(tmp_path), "Pharos": {"HttpWorkers": 2,
                                                             "DatabaseUrl": url}})
    line = _one_line(result, "index database", "DatabaseUrl")
    assert "secret" not in line  # the password is not printed


def test_missing_hooks_module_and_failing_worker(tmp_path: Path) -> None:
    _one_line(_serve(tmp_path, {**_base(tmp_path), "Pharos": {
        "HttpWorkers": 2, "Hooks": "no_such_module_for_pharos"}}), "Pharos.Hooks")
    # A failure the checks cannot foresee (a hooks file that raises on import): each
    # worker fails to start; the server must still exit non-zero, not 0.
    hooks = tmp_path / "broken_hooks.py"
    hooks.write_text("raise RuntimeError('broken on purpose')\n")
    result = _serve(tmp_path, {**_base(tmp_path), "Pharos": {"HttpWorkers": 2,
                                                             "Hooks": str(hooks)}})
    assert result.returncode != 0, result.stdout + result.stderr


def test_missing_folders_are_created(tmp_path: Path) -> None:
    storage = tmp_path / "not" / "yet" / "storage"
    index = tmp_path / "nor" / "this" / "index"
    # The filesystem blob store even under PHAROS_TEST_BLOBSTORE=s3: the folder is the point.
    config = on_filesystem({"StorageDirectory": str(storage), "IndexDirectory": str(index)})
    with live_server(tmp_path, config) as server:
        assert httpx.get(f"{server.url}/system").status_code == 200
        assert httpx.post(f"{server.url}/instances",
                          content=make_dicom()).status_code == 200
    assert storage.is_dir()
    if not os.environ.get("PHAROS_TEST_DATABASE_URL"):  # SQLite: the index folder too
        assert (index / "pharos-index.sqlite").is_file()
