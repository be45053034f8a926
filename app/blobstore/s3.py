"""Blobs as objects of an S3 bucket (AWS S3, MinIO, Ceph RGW...), through boto3.

Chosen by ``"Pharos": {"BlobstoreUrl": "s3://bucket/prefix?endpoint=...&region=..."}``
(or ``PHAROS_BLOBSTORE_URL``). Why boto3: it is AWS's own, maintained SDK, the one that
MinIO and Ceph document, and the only Python client implementing the whole AWS
credential chain (environment, shared files and profiles, SSO, web identity as in EKS,
ECS and EC2 instance roles) and botocore's retry modes. Credentials never appear in the
URL (one with ``user:password@`` is refused) nor in the logs.

The contract of :mod:`app.blobstore.base`, on S3:

* ``put`` is one PutObject up to ``part_size_mb`` (16 MiB), a multipart upload above it
  (parts of that size, so memory stays bounded whatever the blob); it returns once S3
  acknowledged the PutObject or the CompleteMultipartUpload (botocore turns a 200 whose
  body is an error into an exception). S3 is strongly consistent: every process sees the
  object from then on. A failed multipart upload is aborted; one left by a killed
  process is aborted by the orphan sweep (``keys``).
* ``open`` streams the object through a seekable reader that resumes an interrupted
  download with a ranged GET from where it stopped; ``read_range`` is one ranged GET.
* Every request goes through botocore's retries with exponential backoff and jitter
  (``retry_mode=standard`` by default, ``adaptive`` adds client-side rate limiting under
  throttling; ``max_attempts`` 5). A failure after the retries raises
  :class:`app.errors.StorageUnavailable` (503); an absent object, ``FileNotFoundError``.
* Objects are named ``<prefix>/<key>``; the orphan sweep only ever considers names that
  are Pharos keys (UUIDs) directly under the prefix, never another application's objects.
"""

from __future__ import annotations

import io
import logging
import re
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO, cast
from urllib.parse import parse_qsl, urlsplit

from app.blobstore.base import BlobKey, BlobStore, BlobStoreConfigError, check_key
from app.errors import StorageUnavailable

log = logging.getLogger(__name__)

_MIB = 1024 * 1024
MIN_PART_SIZE = 5 * _MIB  # S3's minimum for every part but the last
_DELETE_BATCH = 1000  # DeleteObjects takes at most 1000 keys
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_NOT_FOUND = {"NoSuchKey", "404", "NotFound"}
# What CompleteMultipartUpload needs back of each part when botocore sent checksums.
_PART_CHECKSUMS = {"ChecksumCRC32", "ChecksumCRC32C", "ChecksumCRC64NVME", "ChecksumSHA1",
                   "ChecksumSHA256"}
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.\-_]{1,254}$")


# --- the URL ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class S3Location:
    """A parsed ``s3://bucket/prefix?...`` URL (every parameter optional)."""

    bucket: str
    prefix: str = ""
    endpoint: str | None = None  # MinIO, Ceph...; None: AWS (or AWS_ENDPOINT_URL)
    region: str | None = None  # None: the AWS chain (AWS_REGION, config file)
    profile: str | None = None  # a named profile of the shared files; None: AWS_PROFILE
    addressing: str = "auto"  # path | virtual | auto (path when an endpoint is given)
    retry_mode: str = "standard"  # standard | adaptive (botocore's retry modes)
    max_attempts: int = 5
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    part_size: int = 16 * _MIB
    checksums: str = "when_supported"  # when_required for S3 servers without CRC support

    def describe(self) -> str:
        where = self.endpoint or "AWS"
        prefix = f"/{self.prefix}" if self.prefix else ""
        return f"S3 bucket s3://{self.bucket}{prefix} at {where}"


_PARAMETERS = {"endpoint", "region", "profile", "addressing", "retry_mode", "max_attempts",
               "connect_timeout", "read_timeout", "part_size_mb", "checksums"}


def parse_s3_url(url: str) -> S3Location:
    """Read ``s3://bucket[/prefix][?endpoint=&region=&profile=&addressing=&retry_mode=
    &max_attempts=&connect_timeout=&read_timeout=&part_size_mb=&checksums=]``."""
    parts = urlsplit(url)
    if parts.scheme != "s3":
        raise BlobStoreConfigError("an S3 blob store URL starts with s3://")
    if "@" in parts.netloc:
        # Never echo it: the part before @ would be a secret.
        raise BlobStoreConfigError("BlobstoreUrl must not carry credentials: Pharos reads "
                                   "them from the AWS chain (environment, files, roles)")
    bucket = parts.netloc
    if not _BUCKET_NAME.match(bucket):
        raise BlobStoreConfigError(f"invalid S3 bucket name {bucket!r} in BlobstoreUrl")
    values: dict[str, Any] = {"bucket": bucket, "prefix": parts.path.strip("/")}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name not in _PARAMETERS:
            raise BlobStoreConfigError(f"unknown BlobstoreUrl parameter {name!r} (known: "
                                       f"{', '.join(sorted(_PARAMETERS))})")
        values.update(_parameter(name, value))
    return S3Location(**values)


def _parameter(name: str, value: str) -> dict[str, Any]:
    choices = {"addressing": ("auto", "path", "virtual"),
               "retry_mode": ("standard", "adaptive", "legacy"),
               "checksums": ("when_supported", "when_required")}
    try:
        if name in choices:
            if value not in choices[name]:
                raise ValueError(f"one of {', '.join(choices[name])}")
            return {name: value}
        if name == "max_attempts":
            attempts = int(value)
            if attempts < 1:
                raise ValueError("at least 1")
            return {name: attempts}
        if name in ("connect_timeout", "read_timeout"):
            seconds = float(value)
            if seconds <= 0:
                raise ValueError("a positive number of seconds")
            return {name: seconds}
        if name == "part_size_mb":
            size = int(value) * _MIB
            if size < MIN_PART_SIZE:
                raise ValueError("at least 5 (S3's minimum part size)")
            return {"part_size": size}
    except ValueError as error:
        raise BlobStoreConfigError(f"BlobstoreUrl parameter {name}={value!r}: "
                                   f"expected {error}") from None
    return {name: value or None}  # endpoint, region, profile


# --- the client -------------------------------------------------------------------------------

def make_client(location: S3Location) -> Any:
    """A boto3 S3 client on the standard AWS credential chain, with botocore's retries."""
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        raise BlobStoreConfigError("BlobstoreUrl is an s3:// URL but boto3 is not installed: "
                                   "pip install 'pharos[s3]'") from None
    # botocore's DEBUG records dump request headers (the access key ID, signatures):
    # never let a verbose root logger print them; its INFO lines ("Found credentials in
    # environment variables", per process) are start-up noise: warnings and errors only.
    for name in ("botocore", "boto3", "s3transfer", "urllib3"):
        logging.getLogger(name).setLevel(logging.WARNING)
    addressing = location.addressing
    if addressing == "auto" and location.endpoint:
        addressing = "path"  # MinIO, Ceph and test servers rarely resolve bucket subdomains
    config = Config(
        region_name=location.region,
        retries={"mode": location.retry_mode, "max_attempts": location.max_attempts},
        connect_timeout=location.connect_timeout, read_timeout=location.read_timeout,
        max_pool_connections=64,  # ingest writer threads + request threads + jobs
        s3={"addressing_style": addressing},
        request_checksum_calculation=location.checksums,
        response_checksum_validation=location.checksums,
    )
    try:
        session = boto3.session.Session(profile_name=location.profile)
        return session.client("s3", endpoint_url=location.endpoint, config=config)
    except Exception as error:  # noqa: BLE001 — a bad profile, endpoint or region
        raise BlobStoreConfigError(f"cannot create the S3 client for {location.describe()}: "
                                   f"{error}") from None


def _error_code(error: BaseException) -> str:
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


# --- the store --------------------------------------------------------------------------------

class S3BlobStore(BlobStore):
    def __init__(self, location: S3Location, client: Any | None = None, *,
                 check: bool = True) -> None:
        self.location = location
        self.bucket = location.bucket
        self.part_size = location.part_size
        self._base = f"{location.prefix}/" if location.prefix else ""
        self.client = client if client is not None else make_client(location)
        from botocore.exceptions import BotoCoreError, ClientError
        self._boto_errors: tuple[type[BaseException], ...] = (BotoCoreError, ClientError)
        if check:
            self._check_bucket()

    @classmethod
    def from_url(cls, url: str) -> S3BlobStore:
        return cls(parse_s3_url(url))

    def describe(self) -> str:
        return self.location.describe()

    def _name(self, key: BlobKey) -> str:
        return self._base + check_key(key)

    def _check_bucket(self) -> None:
        """Fail at start, in one line, when the bucket cannot be used."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except self._boto_errors as error:
            code = _error_code(error)
            reason = {"404": "the bucket does not exist", "NoSuchBucket":
                      "the bucket does not exist", "403": "access denied (check the "
                      "credentials of the AWS chain and the bucket policy)"}.get(code)
            raise BlobStoreConfigError(f"cannot use {self.describe()}: "
                                       f"{reason or error}") from None

    @contextmanager
    def _requests(self, action: str, key: str = "") -> Iterator[None]:
        """Map botocore failures: absent object -> FileNotFoundError, others (after
        botocore's retries) -> StorageUnavailable."""
        try:
            yield
        except self._boto_errors as error:
            if _error_code(error) in _NOT_FOUND:
                raise FileNotFoundError(f"no blob {key!r} in {self.describe()}") from None
            raise StorageUnavailable(f"S3 {action} {key} failed: {error}") from error

    # --- writing ---

    def put(self, key: BlobKey, chunks: Iterable[bytes] | bytes) -> int:
        name = self._name(key)
        parts = _split(chunks, self.part_size)
        first = next(parts)
        second = next(parts, None)
        if second is None:
            with self._requests("PutObject", key):
                self.client.put_object(Bucket=self.bucket, Key=name, Body=first)
            return len(first)
        return self._multipart(name, key, _chain(first, second, parts))

    def _multipart(self, name: str, key: str, parts: Iterator[bytes]) -> int:
        with self._requests("CreateMultipartUpload", key):
            upload = self.client.create_multipart_upload(Bucket=self.bucket, Key=name)
        upload_id = upload["UploadId"]
        done: list[dict[str, Any]] = []
        size = 0
        try:
            for number, part in enumerate(parts, 1):
                with self._requests("UploadPart", key):
                    answer = self.client.upload_part(Bucket=self.bucket, Key=name,
                                                     UploadId=upload_id, PartNumber=number,
                                                     Body=part)
                done.append({"PartNumber": number, "ETag": answer["ETag"],
                             **{k: v for k, v in answer.items() if k in _PART_CHECKSUMS}})
                size += len(part)
            with self._requests("CompleteMultipartUpload", key):
                self.client.complete_multipart_upload(
                    Bucket=self.bucket, Key=name, UploadId=upload_id,
                    MultipartUpload={"Parts": done})
        except BaseException:
            self._abort(name, upload_id)
            raise
        return size

    def _abort(self, name: str, upload_id: str) -> None:
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=name, UploadId=upload_id)
        except self._boto_errors as error:  # the sweep aborts it later
            log.warning("Cannot abort the multipart upload of %s: %s", name, error)

    # --- reading ---

    def open(self, key: BlobKey) -> BinaryIO:
        name = self._name(key)
        with self._requests("GetObject", key):
            response = self.client.get_object(Bucket=self.bucket, Key=name)
        raw = _ObjectReader(self, key, name, response)
        return io.BufferedReader(raw, buffer_size=256 * 1024)

    def read_range(self, key: BlobKey, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0:
            raise ValueError("a range needs a non-negative offset and length")
        if length == 0:
            self.size(key)  # FileNotFoundError all the same
            return b""
        request = {"Bucket": self.bucket, "Key": self._name(key),
                   "Range": f"bytes={offset}-{offset + length - 1}"}
        attempts = self.location.max_attempts
        for attempt in range(attempts):
            with self._requests("GetObject (range)", key):
                try:
                    body = self.client.get_object(**request)["Body"]
                except self._boto_errors[1] as error:
                    if _error_code(error) == "InvalidRange":
                        return b""  # past the end of an existing blob (S3 answers 416)
                    raise
            try:
                return cast(bytes, body.read())
            except (OSError, self._boto_errors[0]) as error:
                if attempt + 1 >= attempts:
                    raise StorageUnavailable(f"S3 ranged read of {key} failed: {error}") \
                        from error
                time.sleep(min(0.1 * 2 ** attempt, 5.0))  # a body cut mid-way: again
        raise AssertionError("unreachable")

    def size(self, key: BlobKey) -> int:
        with self._requests("HeadObject", key):
            return int(self.client.head_object(Bucket=self.bucket,
                                               Key=self._name(key))["ContentLength"])

    # --- deleting ---

    def delete(self, key: BlobKey) -> None:
        with self._requests("DeleteObject", key):
            self.client.delete_object(Bucket=self.bucket, Key=self._name(key))

    def delete_many(self, keys: Iterable[BlobKey]) -> list[BlobKey]:
        """DeleteObjects by 1000: one request per thousand blobs of a deleted study."""
        failed: list[BlobKey] = []
        batch: list[BlobKey] = []
        for key in keys:
            batch.append(key)
            if len(batch) == _DELETE_BATCH:
                failed += self._delete_batch(batch)
                batch = []
        if batch:
            failed += self._delete_batch(batch)
        return failed

    def _delete_batch(self, keys: list[BlobKey]) -> list[BlobKey]:
        names = {self._name(key): key for key in keys}
        try:
            with self._requests("DeleteObjects"):
                answer = self.client.delete_objects(Bucket=self.bucket, Delete={
                    "Objects": [{"Key": name} for name in names], "Quiet": True})
        except StorageUnavailable as error:
            log.warning("Cannot delete %d blob(s): %s", len(keys), error)
            return list(keys)
        errors = answer.get("Errors") or []
        for entry in errors[:3]:
            log.warning("Cannot delete blob %s: %s", entry.get("Key"), entry.get("Message"))
        return [names[e["Key"]] for e in errors if e.get("Key") in names]

    # --- listing (the orphan sweep) ---

    def keys(self, older_than: float = 0.0) -> Iterator[BlobKey]:
        deadline = time.time() - older_than
        self._abort_stale_uploads(deadline)
        paginator = self.client.get_paginator("list_objects_v2")
        with self._requests("ListObjectsV2"):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self._base):
                for entry in page.get("Contents") or []:
                    name = entry["Key"][len(self._base):]
                    if _UUID.match(name) and entry["LastModified"].timestamp() <= deadline:
                        yield name

    def _abort_stale_uploads(self, deadline: float) -> None:
        """Multipart uploads of a killed process: S3 would keep (and bill) their parts."""
        paginator = self.client.get_paginator("list_multipart_uploads")
        with self._requests("ListMultipartUploads"):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self._base):
                for upload in page.get("Uploads") or []:
                    name = upload["Key"]
                    if _UUID.match(name[len(self._base):]) and \
                            upload["Initiated"].timestamp() <= deadline:
                        log.info("Aborting the abandoned multipart upload of %s", name)
                        self._abort(name, upload["UploadId"])


def _split(chunks: Iterable[bytes] | bytes, part_size: int) -> Iterator[bytes]:
    """Parts of *part_size* bytes (the last one shorter); at least one, maybe empty."""
    if isinstance(chunks, bytes | bytearray | memoryview):
        view = memoryview(chunks)
        if len(view) <= part_size:
            yield bytes(chunks) if not isinstance(chunks, bytes) else chunks
            return
        for start in range(0, len(view), part_size):
            yield bytes(view[start:start + part_size])
        return
    buffer = bytearray()
    sent = False
    for chunk in chunks:
        buffer += chunk
        while len(buffer) >= part_size:
            yield bytes(buffer[:part_size])
            del buffer[:part_size]
            sent = True
    if buffer or not sent:
        yield bytes(buffer)


def _chain(first: bytes, second: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield second
    yield from rest


class _ObjectReader(io.RawIOBase):
    """A seekable view of one object: reads stream from an open GET; a seek, or a body
    cut mid-way (connection reset, read timeout), reopens with ``Range: bytes=N-``."""

    def __init__(self, store: S3BlobStore, key: str, name: str, response: dict[str, Any]) -> None:
        super().__init__()
        self._store, self._key, self._name = store, key, name
        self._size = int(response["ContentLength"])
        self._etag = response.get("ETag")
        self._body: Any = response["Body"]
        self._position = 0
        # Like a file's name (pydicom reads it from any BufferedReader): where the blob is.
        self.name = f"s3://{store.bucket}/{name}"

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        target = base + offset
        if target < 0:
            raise OSError("negative seek position")
        if target != self._position:
            self._drop_body()
            self._position = target
        return target

    def readinto(self, buffer: Any) -> int:
        data = self._read(min(len(buffer), self._size - self._position))
        buffer[:len(data)] = data
        return len(data)

    def readall(self) -> bytes:
        return self._read(self._size - self._position)

    def _read(self, wanted: int) -> bytes:
        if wanted <= 0:
            return b""
        attempts = self._store.location.max_attempts
        retried: tuple[type[BaseException], ...] = (OSError, *self._store._boto_errors)
        for attempt in range(attempts):
            try:
                if self._body is None:
                    self._reopen()
                data = self._body.read(wanted)
                if len(data) < wanted and self._position + len(data) < self._size:
                    raise OSError("the object's body ended early")
                self._position += len(data)
                return cast(bytes, data)
            except FileNotFoundError:
                raise  # deleted meanwhile
            except retried as error:
                self._drop_body()
                if attempt + 1 >= attempts:
                    raise StorageUnavailable(f"S3 read of {self._key} failed: {error}") \
                        from error
                log.info("Resuming the download of %s at byte %d: %s", self._key,
                         self._position, error)
                time.sleep(min(0.1 * 2 ** attempt, 5.0))
        raise AssertionError("unreachable")

    def _reopen(self) -> None:
        arguments = {"Bucket": self._store.bucket, "Key": self._name,
                     "Range": f"bytes={self._position}-"}
        if self._etag:
            arguments["IfMatch"] = self._etag  # the same object, never a newer one
        with self._store._requests("GetObject (resume)", self._key):
            self._body = self._store.client.get_object(**arguments)["Body"]

    def _drop_body(self) -> None:
        if self._body is not None:
            try:
                self._body.close()
            except Exception:  # noqa: BLE001 — closing a broken connection
                pass
            self._body = None

    def close(self) -> None:
        self._drop_body()
        super().close()
