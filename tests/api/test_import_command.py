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
        done = _pharos("import", "--config", str(config), "--workers", "1", str(source),
                       str(lone))
        assert done.returncode == 1, done.stderr  # a file was refused: the exit says so
        assert "5 instances stored, 0 already stored, 1 files skipped (not DICOM), 1 refused" \
            in done.stderr, done.stderr
        assert "100% 6/6 files" in done.stderr  # the last progress line (DICOMDIR not counted)
        assert "ETA 0:00" in done.stderr
        # The refused file is named after the summary, with why.
        tail = done.stderr.split("1 refused\n", 1)[1]
        assert f"refused: {source / 'broken.dcm'}: " in tail, done.stderr
        again = _pharos("import", "--config", str(config), str(lone))
        assert again.returncode == 0, again.stderr
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


def _folder_of(tmp_path: Path, count: int) -> tuple[Path, list[bytes]]:
    source = tmp_path / "many"
    source.mkdir()
    files = [make_dicom(patient_id=f"PAR{i % 3}", study_uid=f"1.2.3.{i % 3}",
                        series_uid=f"1.2.3.{i % 3}.1", sop_uid=f"1.2.3.{i % 3}.1.{i}")
             for i in range(count)]
    for i, data in enumerate(files):
        (source / f"{i:03}.dcm").write_bytes(data)
    return source, files


def test_parallel_import_then_resume_skips_what_is_stored(tmp_path: Path) -> None:
    """Three processes import one folder; imported again, every file is skipped as
    identical (SOPInstanceUID and MD5) without a new store, even with OverwriteInstances;
    a changed file under a stored SOPInstanceUID is stored again."""
    source, files = _folder_of(tmp_path, 24)
    storage = tmp_path / "data"
    with pinned_database(tmp_path) as pinned:
        document = {**pinned, "StorageDirectory": str(storage), "OverwriteInstances": True}
        document["Pharos"] = {**document.get("Pharos", {}),
                              "BlobstoreUrl": blobstore_url_for_tests(storage)}
        config = tmp_path / "pharos.json"
        config.write_bytes(orjson.dumps(document))
        done = _pharos("import", "--config", str(config), "--workers", "3", str(source))
        assert done.returncode == 0, done.stderr
        assert "24 instances stored, 0 already stored, 0 files skipped (not DICOM), 0 refused" \
            in done.stderr, done.stderr

        with live_server(tmp_path / "server", document) as server:
            first = httpx.get(f"{server.url}/changes?limit=1000").json()["Last"]
            # Resumed: nothing parsed nor stored again, though OverwriteInstances would.
            again = _pharos("import", "--config", str(config), "--workers", "2", str(source))
            assert again.returncode == 0, again.stderr
            assert "0 instances stored, 24 already stored" in again.stderr, again.stderr
            assert httpx.get(f"{server.url}/changes?limit=1000").json()["Last"] == first
            # The same SOPInstanceUID with other bytes is not skipped: it is stored anew.
            changed = make_dicom(patient_id="PAR0", study_uid="1.2.3.0", series_uid="1.2.3.0.1",
                                 sop_uid="1.2.3.0.1.0", ImageComments="changed")
            assert changed != files[0]
            (source / "000.dcm").write_bytes(changed)
            third = _pharos("import", "--config", str(config), "--workers", "2", str(source))
            assert "1 instances stored, 23 already stored" in third.stderr, third.stderr
            instances = httpx.get(f"{server.url}/instances?expand").json()
            assert len(instances) == 24
            comments = [httpx.get(f"{server.url}/instances/{i['ID']}/content/0020-4000").text
                        for i in instances if i["MainDicomTags"]["SOPInstanceUID"] == "1.2.3.0.1.0"]
            assert [c.strip() for c in comments] == ["changed"]
