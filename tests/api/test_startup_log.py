"""The start-up log of ``pharos serve``: where it listens and who may connect, the index and
the storage, once, without the libraries' chatter."""

from __future__ import annotations

import re

from app.config import Settings
from app.startup import where_it_listens
from tests.helpers import live_server


def lines_of(log: str) -> list[str]:
    """The messages of the log lines ("date time LEVEL logger: message")."""
    return [line.split(": ", 1)[1] for line in log.splitlines() if ": " in line]


def test_the_log_says_where_and_to_whom_and_nothing_else(tmp_path):
    config = {"Name": "Ward7", "DicomAet": "WARD7", "RemoteAccessAllowed": True,
              "RegisteredUsers": {"alice": "secret", "bob": "pass"},
              "DicomAlwaysAllowStore": False, "DicomCheckCalledAet": True,
              "DicomModalities": {"ct": ["CT1", "10.0.0.5", 104]}}
    with live_server(tmp_path, config) as live:
        with live.client(auth=("alice", "secret")) as http:
            assert http.get("/system").status_code == 200
        port = live.url.rsplit(":", 1)[1]
        log = (tmp_path / "server.log").read_text(errors="replace")
    messages = lines_of(log)
    started = [m for m in messages if m.startswith("Pharos ")]
    assert len(started) == 1 and '"Ward7" started (1 HTTP process)' in started[0]
    assert f"HTTP: http://127.0.0.1:{port}/; any client (RemoteAccessAllowed); HTTP Basic " \
           "authentication, 2 registered users" in messages
    assert f"DICOM: port {live.dicom_port}, AET WARD7; C-ECHO from any AE; the rest from " \
           "the 1 DicomModalities; called AET checked" in messages
    index = next(m for m in messages if m.startswith("Index: "))
    assert index.startswith(("Index: sqlite:///", "Index: postgresql+psycopg://"))
    storage = next(m for m in messages if m.startswith("Storage: "))
    assert str(live.storage) in storage or "s3://" in storage or "bucket" in storage
    assert "Index schema created at" in log  # one line for the migrations
    # No library noise: Alembic's plugin and per-revision lines, uvicorn's start-up lines.
    for noise in ("alembic", "Running upgrade", "botocore", "Found credentials", "Waiting for application startup",
                  "Application startup complete", "Uvicorn running", "Started server process",
                  "Traceback"):
        assert noise not in log, noise
    # Every line in one format.
    assert all(re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ [\w.]+: ", line)
               for line in log.splitlines() if line.strip()), log


def test_the_defaults_and_a_password_in_the_index_url():
    settings = Settings.from_document({
        "Pharos": {"DatabaseUrl": "postgresql+psycopg://pacs:hunter2@db.example/archive"}})
    lines = where_it_listens(settings, "the filesystem under /data", 2)
    assert lines[0].endswith('"Pharos" started (2 HTTP processes)')
    assert lines[1] == "HTTP: http://0.0.0.0:8042/ (all interfaces); clients on this " \
                       "machine only (RemoteAccessAllowed false); no authentication"
    assert lines[2] == "DICOM: port 4242, AET ORTHANC; C-ECHO, C-STORE from any AE; the " \
                       "rest from the 0 DicomModalities"
    assert lines[3] == "Index: postgresql+psycopg://pacs:***@db.example/archive"
    assert "hunter2" not in "".join(lines)
    assert lines[4] == "Storage: the filesystem under /data"
