"""The blob-store contract (app/blobstore/base.py), run against every backend: the
filesystem store and the S3 store on a real S3 API server (moto's, tests/s3server.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.blobstore import BlobStoreConfigError, FileSystemBlobStore, open_blobstore
from app.blobstore.base import BlobStore, new_key
from app.errors import StorageUnavailable
from tests.helpers import REPO, free_port
from tests.s3server import TEST_SECRET_KEY, moto_s3

MIB = 1024 * 1024


def _s3_store(**params: object) -> BlobStore:
    s3 = moto_s3()
    return open_blobstore(s3.url(s3.new_bucket(), part_size_mb=5, **params), "unused")


@pytest.fixture(params=["filesystem", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "filesystem":
        return open_blobstore(None, str(tmp_path / "storage"))
    return _s3_store()


def _again(store: BlobStore) -> BlobStore:
    """A second, independent store object on the same storage (another process's view)."""
    if isinstance(store, FileSystemBlobStore):
        return FileSystemBlobStore(store.root)
    from app.blobstore.s3 import S3BlobStore
    return S3BlobStore(store.location)


def _chunks(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start:start + size]


# --- put / open / read ------------------------------------------------------------------------

def test_put_bytes_then_read_open_and_size(store: BlobStore) -> None:
    key, data = new_key(), os.urandom(300_000)
    assert store.put(key, data) == len(data)
    assert store.read(key) == data
    assert store.size(key) == len(data)
    with store.open(key) as stream:
        parts = []
        while chunk := stream.read(65536):
            parts.append(chunk)
    assert b"".join(parts) == data


def test_put_streamed_chunks_and_empty_blob(store: BlobStore) -> None:
    key, data = new_key(), os.urandom(100_000)
    assert store.put(key, _chunks(data, 7_000)) == len(data)
    assert store.read(key) == data
    empty = new_key()
    assert store.put(empty, iter([])) == 0
    assert store.read(empty) == b""
    assert store.size(empty) == 0


def test_large_blob_round_trip_streamed(store: BlobStore) -> None:
    """Larger than the S3 part size (5 MiB here): a multipart upload on S3."""
    key, data = new_key(), os.urandom(11 * MIB + 123)
    assert store.put(key, _chunks(data, MIB)) == len(data)
    with store.open(key) as stream:
        assert stream.read(MIB) == data[:MIB]
        stream.seek(10 * MIB)
        assert stream.tell() == 10 * MIB
        assert stream.read() == data[10 * MIB:]
        stream.seek(0)
        assert stream.read() == data


def test_large_bytes_put_is_multipart_on_s3() -> None:
    store = _s3_store()
    key, data = new_key(), os.urandom(12 * MIB)
    store.put(key, data)
    etag = store.client.head_object(Bucket=store.bucket, Key=store._name(key))["ETag"]
    assert etag.strip('"').endswith("-3")  # three parts of at most 5 MiB
    assert store.read(key) == data


def test_read_range(store: BlobStore) -> None:
    key, data = new_key(), bytes(range(256)) * 40
    store.put(key, data)
    assert store.read_range(key, 0, 10) == data[:10]
    assert store.read_range(key, 1000, 500) == data[1000:1500]
    assert store.read_range(key, len(data) - 5, 100) == data[-5:]  # shorter at the end
    assert store.read_range(key, len(data), 10) == b""  # past the end
    assert store.read_range(key, len(data) + 100, 10) == b""
    assert store.read_range(key, 3, 0) == b""
    with pytest.raises(ValueError):
        store.read_range(key, -1, 10)


def test_absent_blob_is_file_not_found(store: BlobStore) -> None:
    key = new_key()
    with pytest.raises(FileNotFoundError):
        store.open(key)
    with pytest.raises(FileNotFoundError):
        store.read_range(key, 0, 10)
    with pytest.raises(FileNotFoundError):
        store.read_range(key, 0, 0)
    with pytest.raises(FileNotFoundError):
        store.size(key)


def test_invalid_keys_are_refused(store: BlobStore) -> None:
    for key in ("../../etc/passwd", "a/b/c/d", ".hidden", "ab"):
        with pytest.raises(ValueError):
            store.put(key, b"x")


# --- durability -------------------------------------------------------------------------------

def test_a_put_blob_is_seen_by_another_store_at_once(store: BlobStore) -> None:
    """put returns once the store acknowledged: another process reads it at once."""
    key, data = new_key(), os.urandom(5000)
    store.put(key, data)
    other = _again(store)
    assert other.read(key) == data
    assert key in set(other.keys())


def test_a_failed_put_leaves_nothing(store: BlobStore) -> None:
    def broken() -> Iterator[bytes]:
        yield os.urandom(6 * MIB)  # past the first S3 part: a multipart upload is open
        raise RuntimeError("the sender went away")

    key = new_key()
    with pytest.raises(RuntimeError):
        store.put(key, broken())
    with pytest.raises(FileNotFoundError):
        store.open(key)
    assert key not in set(store.keys())
    if isinstance(store, FileSystemBlobStore):
        assert not [p for p in store.root.rglob("*") if p.is_file()]
    else:
        uploads = store.client.list_multipart_uploads(Bucket=store.bucket).get("Uploads")
        assert not uploads


def test_overwriting_a_key_is_atomic_for_readers(store: BlobStore) -> None:
    key = new_key()
    store.put(key, b"first version")
    store.put(key, b"second")
    assert store.read(key) == b"second"


# --- delete / keys ----------------------------------------------------------------------------

def test_delete_is_idempotent(store: BlobStore) -> None:
    key = new_key()
    store.put(key, b"data")
    store.delete(key)
    store.delete(key)
    with pytest.raises(FileNotFoundError):
        store.read(key)


def test_delete_many(store: BlobStore) -> None:
    keys = [new_key() for _ in range(5)]
    for key in keys:
        store.put(key, key.encode())
    kept = new_key()
    store.put(kept, b"kept")
    assert store.delete_many(keys + [new_key()]) == []  # an absent key is no failure
    assert set(store.keys()) == {kept}


def test_keys_by_age(store: BlobStore) -> None:
    keys = {new_key() for _ in range(3)}
    for key in keys:
        store.put(key, b"x")
    assert set(store.keys()) == keys
    assert set(store.keys(older_than=3600)) == set()  # maybe in flight elsewhere: kept


def test_s3_sweep_listing_ignores_foreign_objects_and_aborts_stale_uploads() -> None:
    """The orphan sweep lists only Pharos keys directly under the prefix, and aborts the
    multipart uploads a killed process left (the S3 analogue of stale temporary files)."""
    store = _s3_store()
    ours = new_key()
    store.put(ours, b"ours")
    client, bucket = store.client, store.bucket
    for name in ("blobs/readme.txt", "blobs/sub/" + new_key(), new_key(), "other/" + new_key()):
        client.put_object(Bucket=bucket, Key=name, Body=b"not ours")
    client.create_multipart_upload(Bucket=bucket, Key="blobs/" + new_key())
    assert list(store.keys(older_than=0)) == [ours]
    assert not client.list_multipart_uploads(Bucket=bucket).get("Uploads")


# --- S3 specifics: URL, errors, resumed reads -------------------------------------------------

def test_s3_url_parameters_and_refusals() -> None:
    from app.blobstore.s3 import parse_s3_url
    location = parse_s3_url("s3://my-bucket/a/b/?endpoint=http://minio:9000&region=eu-west-3"
                            "&retry_mode=adaptive&max_attempts=9&part_size_mb=64"
                            "&checksums=when_required&addressing=virtual")
    assert (location.bucket, location.prefix, location.endpoint, location.region) == \
        ("my-bucket", "a/b", "http://minio:9000", "eu-west-3")
    assert (location.retry_mode, location.max_attempts, location.part_size) == \
        ("adaptive", 9, 64 * MIB)
    assert parse_s3_url("s3://bucket").prefix == ""
    with pytest.raises(BlobStoreConfigError) as refused:
        parse_s3_url("s3://AKIAXXXX:topsecret@bucket/x")
    assert "topsecret" not in str(refused.value) and "AKIAXXXX" not in str(refused.value)
    for bad in ("s3://bucket?colour=blue", "s3://bucket?part_size_mb=1",
                "s3://bucket?retry_mode=never", "s3://Bad_Bucket!", "s3://bucket?max_attempts=0"):
        with pytest.raises(BlobStoreConfigError):
            parse_s3_url(bad)
    with pytest.raises(BlobStoreConfigError):
        open_blobstore("ftp://user:pw@host/x", "unused")


def test_s3_missing_bucket_is_a_config_error() -> None:
    s3 = moto_s3()
    with pytest.raises(BlobStoreConfigError, match="does not exist"):
        open_blobstore(s3.url("pharos-no-such-bucket"), "unused")


def test_s3_outage_raises_storage_unavailable_and_delete_many_reports() -> None:
    s3 = moto_s3()
    store = open_blobstore(s3.url(s3.new_bucket(), connect_timeout=1), "unused")
    key = new_key()
    store.put(key, b"before the outage")
    with s3.outage():
        with pytest.raises(StorageUnavailable):
            store.put(new_key(), b"during")
        with pytest.raises(StorageUnavailable):
            store.open(key)
        with pytest.raises(StorageUnavailable):
            store.read_range(key, 0, 4)
        with pytest.raises(StorageUnavailable):
            store.delete(key)
        assert store.delete_many([key]) == [key]
    assert store.read(key) == b"before the outage"


def test_s3_read_resumes_when_the_body_is_cut() -> None:
    """A download whose connection is lost mid-way goes on with a ranged GET from the
    byte it had reached (here the connection is closed under the reader)."""
    store = _s3_store()
    key, data = new_key(), os.urandom(3 * MIB)
    store.put(key, data)
    with store.open(key) as stream:
        head = stream.read(MIB)
        stream.raw._body.close()  # the connection goes away
        rest = stream.read()
    assert head + rest == data


def test_s3_url_without_boto3_exits_with_one_clear_line(tmp_path: Path) -> None:
    """``pip install .`` has no boto3: an s3:// URL must say what to install, in one line."""
    shadow = tmp_path / "shadow"
    (shadow / "boto3").mkdir(parents=True)
    (shadow / "boto3" / "__init__.py").write_text("raise ImportError('No module named boto3')\n")
    env = {**os.environ, "PYTHONPATH": str(shadow),
           "PHAROS_BLOBSTORE_URL": "s3://bucket/prefix?endpoint=http://127.0.0.1:1",
           "PHAROS_STORAGE_DIRECTORY": str(tmp_path / "storage"),
           "PHAROS_HTTP_PORT": str(free_port()), "PHAROS_DICOM_PORT": str(free_port())}
    done = subprocess.run([sys.executable, "-m", "app.cli", "serve"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines[-1] == ("pharos: BlobstoreUrl is an s3:// URL but boto3 is not installed: "
                         "pip install 'pharos[s3]'")
    assert "Traceback" not in done.stderr


def test_filesystem_server_starts_without_boto3(tmp_path: Path) -> None:
    """Without the s3 extra a filesystem archive still starts: boto3 is never imported."""
    shadow = tmp_path / "shadow"
    (shadow / "boto3").mkdir(parents=True)
    (shadow / "boto3" / "__init__.py").write_text("raise ImportError('No module named boto3')\n")
    code = ("import sys; from app.config import Settings; "
            "from app.context import ServerContext; "
            f"c = ServerContext.open(Settings(storage_directory={str(tmp_path / 's')!r})); "
            "c.close(); print('boto3' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(shadow)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_s3_credentials_come_from_the_chain_and_are_never_logged(
        caplog: pytest.LogCaptureFixture) -> None:
    import logging
    caplog.set_level(logging.DEBUG)
    store = _s3_store()
    key = new_key()
    store.put(key, b"x")
    store.read(key)
    with pytest.raises(FileNotFoundError):
        store.read(new_key())
    assert TEST_SECRET_KEY not in caplog.text
    assert "Authorization" not in caplog.text  # botocore's header dumps stay off


def test_open_gives_a_stream_pydicom_reads_without_the_pixels(store: BlobStore) -> None:
    """Media archives read each header from the stream, never the whole file."""
    from app.dicom.parse import read_dataset
    from tests.helpers import make_dicom
    key = new_key()
    store.put(key, make_dicom(patient_id="STREAMED", size=256))
    with store.open(key) as stream:
        dataset = read_dataset(stream, stop_before_pixels=True)
    assert dataset.PatientID == "STREAMED"
    assert "PixelData" not in dataset
