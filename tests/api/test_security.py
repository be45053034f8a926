"""HTTP Basic authentication with RegisteredUsers, and RemoteAccessAllowed."""

from __future__ import annotations

import socket

import httpx
import pytest

from tests.helpers import live_server, make_dicom


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    with live_server(tmp_path_factory.mktemp("auth"), {
            "AuthenticationEnabled": True, "RegisteredUsers": {"alice": "wonderland"}}) as live:
        yield live


def test_requests_need_valid_credentials(secured):
    with secured.client() as http:
        refused = http.get("/patients")
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith("Basic")
        assert http.get("/patients", auth=("alice", "wrong")).status_code == 401
        assert http.post("/instances", content=make_dicom()).status_code == 401
    with secured.client(auth=("alice", "wonderland")) as http:
        assert http.post("/instances", content=make_dicom()).status_code == 200
        instance = http.get("/instances").json()[0]
        assert http.get(f"/instances/{instance}/metadata/HttpUsername").text == "alice"


def _non_loopback_address() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent for a UDP connect
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_remote_clients_are_refused_unless_allowed(tmp_path):
    address = _non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address to connect from")
    with live_server(tmp_path / "closed", host="0.0.0.0") as live:
        port = live.url.rsplit(":", 1)[1]
        assert httpx.get(f"{live.url}/system").status_code == 200  # loopback is fine
        remote = httpx.get(f"http://{address}:{port}/system")
        assert remote.status_code == 403
        assert remote.json()["HttpStatus"] == 403
    with live_server(tmp_path / "open", {"RemoteAccessAllowed": True,
                                         "AuthenticationEnabled": False}, host="0.0.0.0") as live:
        port = live.url.rsplit(":", 1)[1]
        assert httpx.get(f"http://{address}:{port}/system").status_code == 200
