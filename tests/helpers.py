"""Shared helpers for tests: free ports, synthetic DICOM files, live servers."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from tests.forkserver import ForkedServer, ForkServerClient

REPO = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("PHAROS_TEST_CORPUS", REPO.parent / "shared" / "data" / "dicom"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_dicom(*, patient_id: str = "PAT1", patient_name: str = "DOE^JOHN",
               study_uid: str | None = None, series_uid: str | None = None,
               sop_uid: str | None = None, instance_number: int = 1, modality: str = "CT",
               size: int = 8, pixels: bytes | None = None, **extra: object) -> bytes:
    """A small valid CT instance (explicit VR little endian) as Part 10 bytes."""
    ds = Dataset()
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = sop_uid or generate_uid()
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.PatientID = patient_id
    ds.PatientName = patient_name
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "M"
    ds.StudyDate = "20200102"
    ds.StudyTime = "101010"
    ds.AccessionNumber = "ACC1"
    ds.StudyDescription = "Test study"
    ds.SeriesDescription = "Test series"
    ds.Modality = modality
    ds.SeriesNumber = 1
    ds.InstanceNumber = instance_number
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = ds.Columns = size
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ramp = bytes(range(256)) * (size * size * 2 // 256) + bytes(size * size * 2 % 256)
    ds.PixelData = ramp if pixels is None else pixels
    for key, value in extra.items():
        setattr(ds, key, value)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


@dataclass
class LiveServer:
    url: str
    storage: Path
    dicom_port: int
    process: subprocess.Popen | ForkedServer
    blobstore_url: str | None = None  # None: the filesystem under storage

    def client(self, **kwargs: object) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60, **kwargs)

    def blob_keys(self) -> set[str]:
        """The keys of the stored blobs, whatever the store (files, or S3 objects)."""
        if self.blobstore_url and self.blobstore_url.startswith("s3://"):
            from app.blobstore import open_blobstore
            return set(open_blobstore(self.blobstore_url, str(self.storage)).keys())
        return {p.name for p in self.storage.rglob("*") if p.is_file()
                and len(p.parent.name) == 2 and not p.name.endswith(".tmp")}


def on_filesystem(config: dict | None = None) -> dict:
    """*config* with the filesystem blob store, even when PHAROS_TEST_BLOBSTORE=s3: for
    tests about files themselves (their ages, temporary files, a copied Orthanc folder)."""
    config = dict(config or {})
    config["Pharos"] = {**config.get("Pharos", {}), "BlobstoreUrl": None}
    return config


def blobstore_url_for_tests(storage: Path) -> str | None:
    """``PHAROS_TEST_BLOBSTORE=s3`` runs every live server on S3 (CI does it once): blobs
    go to a bucket of the session's moto server, named after the storage folder so that a
    server restarted on the same folder finds its blobs again."""
    if os.environ.get("PHAROS_TEST_BLOBSTORE", "").lower() != "s3":
        return None
    import hashlib

    from tests.s3server import moto_s3
    s3 = moto_s3()
    bucket = "pharos-" + hashlib.sha1(str(storage.resolve()).encode()).hexdigest()[:24]
    client = s3.client()
    try:
        client.head_bucket(Bucket=bucket)
    except Exception:  # noqa: BLE001 — not created yet
        client.create_bucket(Bucket=bucket)
    return s3.url(bucket, max_attempts=4)


def _database_url(storage: Path) -> tuple[str | None, str | None]:
    """A fresh database for one server: on PostgreSQL when PHAROS_TEST_DATABASE_URL is set."""
    base = os.environ.get("PHAROS_TEST_DATABASE_URL")
    if not base:
        return None, None
    import psycopg
    name = "pharos_test_" + uuid.uuid4().hex[:12]
    admin = base.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    prefix, _, _ = base.rpartition("/")
    return f"{prefix}/{name}", name


def _drop_database(name: str | None) -> None:
    if not name:
        return
    import psycopg
    base = os.environ["PHAROS_TEST_DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def pinned_database(tmp_path: Path) -> Iterator[dict]:
    """Pharos config pinning one index across server restarts (SQLite file or fresh PG db)."""
    url, name = _database_url(tmp_path)
    try:
        yield {"Pharos": {"DatabaseUrl": url}} if url else {}
    finally:
        _drop_database(name)


@contextmanager
def live_server(tmp_path: Path, config: dict | None = None,
                host: str = "127.0.0.1", startup_timeout: float = 120) -> Iterator[LiveServer]:
    """Run ``pharos serve`` in a subprocess on free ports, on fresh storage and index
    (*startup_timeout*: seconds it may take to answer, for tests starting several)."""
    storage = tmp_path / "storage"
    storage.mkdir(parents=True, exist_ok=True)
    http_port, dicom_port = free_port(), free_port()
    given = (config or {}).get("Pharos", {}).get("DatabaseUrl")
    database_url, database_name = (None, None) if given else _database_url(storage)
    document = {"Name": "PharosTest", "HttpPort": http_port, "DicomPort": dicom_port,
                "StorageDirectory": str(storage), "StableAge": 2, **(config or {})}
    # One HTTP process per test server unless a test asks for more (2 cores shared).
    document["Pharos"] = {"HttpWorkers": 1, **document.get("Pharos", {})}
    if database_url:
        document["Pharos"] = {**document.get("Pharos", {}), "DatabaseUrl": database_url}
    if "BlobstoreUrl" not in document["Pharos"]:  # a test that names a store keeps it
        # Named after the StorageDirectory in effect: servers given one folder share a bucket.
        document["Pharos"]["BlobstoreUrl"] = \
            blobstore_url_for_tests(Path(document["StorageDirectory"]))
    config_path = tmp_path / "pharos.json"
    config_path.write_bytes(orjson.dumps(document))
    log = open(tmp_path / "server.log", "wb")
    argv = ["serve", "--config", str(config_path), "--host", host]
    process: subprocess.Popen | ForkedServer
    if _fork_server_wanted():
        process = _fork_server().spawn(argv, tmp_path / "server.log")
    else:
        process = subprocess.Popen([sys.executable, "-m", "app.cli", *argv], cwd=REPO,
                                   stdout=log, stderr=subprocess.STDOUT)
    # A config may choose the ports (e.g. to name the server itself as a modality).
    url = f"http://127.0.0.1:{document['HttpPort']}"
    try:
        _wait_until_up(url, process, tmp_path / "server.log", document, startup_timeout)
        yield LiveServer(url, storage, int(document["DicomPort"]), process,
                         document["Pharos"]["BlobstoreUrl"])
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
        _drop_database(database_name)


_FORK_SERVER: ForkServerClient | None = None


def _fork_server_wanted() -> bool:
    """Live servers are forked from a pre-imported process (tests/forkserver.py: ~2 s of
    CPU less per server) unless PHAROS_TEST_FORKSERVER=0."""
    return os.environ.get("PHAROS_TEST_FORKSERVER", "1") != "0"


def _fork_server() -> ForkServerClient:
    global _FORK_SERVER
    if _FORK_SERVER is None:
        import atexit
        _FORK_SERVER = ForkServerClient()
        atexit.register(_FORK_SERVER.close)
    return _FORK_SERVER


def close_fork_server() -> None:
    global _FORK_SERVER
    if _FORK_SERVER is not None:
        _FORK_SERVER.close()
        _FORK_SERVER = None


def _wait_until_up(url: str, process: subprocess.Popen | ForkedServer, log: Path, document: dict,
                   timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    users = document.get("RegisteredUsers") or {}
    auth = next(iter(users.items()), None)
    # One client for every try: httpx.get() builds a client (an SSL context: ~40 ms of
    # CPU) per call, which over a start polled every 0.1 s cost ~1-2 s of CPU per server.
    with httpx.Client(timeout=1, auth=auth) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"server exited: {log.read_text(errors='replace')[-3000:]}")
            try:
                if client.get(f"{url}/system").status_code in (200, 401, 403):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
    raise RuntimeError(f"server did not start: {log.read_text(errors='replace')[-3000:]}")
