"""``pharos import PATH...``: folders, files and ZIPs stored through the ingest path, with
progress and a summary; files that are not DICOM are skipped, bad DICOM files refused."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import orjson

from tests.helpers import REPO, blobstore_url_for_tests, live_server, make_dicom, pinned_database


def _pharos(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app.cli", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


def test_import_folders_files_and_zips(tmp_path: Path) -> None:
    source = tmp_path / "source"
    (source / "a" / "b").mkdir(parents=True)
    (source / "a" / "one.dcm").write_bytes(make_dicom(patient_id="IMP1"))
    (source / "a" / "b" / "two").write_bytes(make_dicom(patient_id="IMP2"))  # no extension
    (source / "README.txt").write_text("not DICOM")
    (source / "DICOMDIR").write_bytes(b"\x00" * 200)
    with zipfile.ZipFile(source / "more.zip", "w") as archive:
        archive.writestr("x/three.dcm", make_dicom(patient_id="IMP3"))
        archive.writestr("x/four.dcm", make_dicom(patient_id="IMP3"))
    broken = make_dicom(patient_id="IMP4")
    (source / "broken.dcm").write_bytes(broken[:128] + b"DICM" + b"\x02\x00\x10\x00UI\xff\xff")
    lone = tmp_path / "lone.dcm"
    lone.write_bytes(make_dicom(patient_id="IMP5"))

    storage = tmp_path / "data"
    with pinned_database(tmp_path) as pinned:
        # The backends the test run uses (PostgreSQL, S3) for the import and the server alike.
        document = {**pinned, "StorageDirectory": str(storage)}
        document["Pharos"] = {**document.get("Pharos", {}),
                              "BlobstoreUrl": blobstore_url_for_tests(storage)}
        config = tmp_path / "pharos.json"
        config.write_bytes(orjson.dumps(document))
        done = _pharos("import", "--config", str(config), str(source), str(lone))
        assert done.returncode == 0, done.stderr
        assert "5 instances stored, 0 already stored, 1 files skipped (not DICOM), 1 refused" \
            in done.stderr, done.stderr
        assert "100% 6/6 files" in done.stderr  # the last progress line (DICOMDIR not counted)
        assert "broken.dcm" in done.stderr  # the refused file is named
        again = _pharos("import", "--config", str(config), str(lone))
        assert "0 instances stored, 1 already stored" in again.stderr

        # A server over the same index and storage sees them.
        with live_server(tmp_path / "server", document) as server:
            patients = httpx.get(f"{server.url}/patients?expand").json()
            assert sorted(p["MainDicomTags"]["PatientID"] for p in patients) == \
                ["IMP1", "IMP2", "IMP3", "IMP5"]

def test_import_of_a_missing_path_says_so(tmp_path: Path) -> None:
    config = tmp_path / "pharos.json"
    config.write_bytes(orjson.dumps({"StorageDirectory": str(tmp_path / "data")}))
    done = _pharos("import", "--config", str(config), str(tmp_path / "nowhere"))
    assert done.returncode == 2
    assert done.stderr.strip() == f"pharos: not found: {tmp_path / 'nowhere'}"
