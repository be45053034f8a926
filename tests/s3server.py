"""A real S3 API server for the tests: moto's standalone server (``moto.server``).

One server per test session, in a thread of the test process, on a free loopback port;
live Pharos servers reach it over HTTP like any S3 endpoint. Its objects live in moto's
in-process backend, so :meth:`MotoS3.outage` can stop the server and start it again on
the same port with the same buckets: a real S3 outage as the client sees it (connections
refused), without mocks.

The AWS chain of the test process (inherited by the servers it starts) is pinned to
dummy keys in the environment, and the shared files are pointed at nothing, so that a
developer's own ``~/.aws`` never takes part.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlencode

import pytest

# Dummy credentials moto accepts; the tests check these never reach a log.
TEST_ACCESS_KEY = "PHAROSTESTACCESSKEY0"
TEST_SECRET_KEY = "pharos-test-secret-never-logged-0123456789"

_SERVER: MotoS3 | None = None


def aws_test_environment() -> dict[str, str]:
    return {"AWS_ACCESS_KEY_ID": TEST_ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": TEST_SECRET_KEY,
            "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
            "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true"}


class MotoS3:
    """moto's S3 server on 127.0.0.1, started once and shared by the session."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request
        os.environ.update(aws_test_environment())
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        self.host, self.port = self._server.get_host_and_port()
        self.endpoint = f"http://{self.host}:{self.port}"

    def client(self) -> Any:
        import boto3
        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1")

    def new_bucket(self) -> str:
        name = f"pharos-{uuid.uuid4().hex[:16]}"
        self.client().create_bucket(Bucket=name)
        return name

    def url(self, bucket: str, prefix: str = "blobs", **params: object) -> str:
        """A BlobstoreUrl; few retries by default so that outage tests stay short."""
        query = {"endpoint": self.endpoint, "region": "us-east-1", "max_attempts": 2,
                 "connect_timeout": 2, "read_timeout": 20, **params}
        return f"s3://{bucket}/{prefix}?{urlencode(query)}"

    def object_names(self, bucket: str, prefix: str = "") -> list[str]:
        names: list[str] = []
        for page in self.client().get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=prefix):
            names += [entry["Key"] for entry in page.get("Contents") or []]
        return names

    @contextmanager
    def outage(self) -> Iterator[None]:
        """The endpoint refuses connections inside the block; the objects survive."""
        from moto.server import ThreadedMotoServer
        self._server.stop()
        try:
            yield
        finally:
            self._server = ThreadedMotoServer(ip_address=self.host, port=self.port,
                                              verbose=False)
            self._server.start()


def moto_s3() -> MotoS3:
    """The session's S3 server (skips the test when moto is not installed)."""
    global _SERVER
    if _SERVER is None:
        pytest.importorskip("boto3", reason="boto3 is not installed (pip install '.[test]')")
        pytest.importorskip("moto.server",
                            reason="moto's server is not installed (pip install '.[test]')")
        _SERVER = MotoS3()
    return _SERVER
