"""``/modalities`` and ``/peers`` registries: short and long forms, ``?expand``,
``configuration``, deletion, Orthanc's JSON, and where REST changes live (the database
with ``...InDatabase``, else forgotten at restart), consistent across HTTP processes."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import live_server, pinned_database

ORTHANC_MODALITY_KEYS = ["AET", "AllowEcho", "AllowEventReport", "AllowFind",
                         "AllowFindWorklist", "AllowGet", "AllowMove", "AllowNAction",
                         "AllowStore", "AllowTranscoding", "Host", "LocalAet", "Manufacturer",
                         "Port", "Timeout", "UseDicomTls"]


def test_modalities_short_and_long_forms(tmp_path: Path) -> None:
    config = {"DicomModalities": {"pacs": ["PACS", "10.0.0.1", 104],
                                  "ct": {"AET": "CT1", "Host": "ct.local", "Port": 11112,
                                         "AllowStore": False}}}
    with live_server(tmp_path, config) as server, server.client() as client:
        assert client.get("/modalities").json() == ["ct", "pacs"]
        expanded = client.get("/modalities?expand").json()
        assert list(expanded["pacs"]) == ORTHANC_MODALITY_KEYS
        assert expanded["pacs"] == {
            "AET": "PACS", "AllowEcho": True, "AllowEventReport": True, "AllowFind": True,
            "AllowFindWorklist": True, "AllowGet": True, "AllowMove": True,
            "AllowNAction": True, "AllowStore": True, "AllowTranscoding": True,
            "Host": "10.0.0.1", "LocalAet": "", "Manufacturer": "Generic", "Port": 104,
            "Timeout": 0, "UseDicomTls": False}
        assert expanded["ct"]["AllowStore"] is False
        assert client.get("/modalities/ct/configuration").json() == expanded["ct"]

        short = client.put("/modalities/new", content=b'["NEW", "127.0.0.1", 4000, "GE"]')
        assert short.status_code == 200 and short.text == ""
        assert client.get("/modalities/new/configuration").json()["Manufacturer"] == "GE"
        long = client.put("/modalities/new", json={"AET": "NEW2", "Host": "h", "Port": "105",
                                                  "AllowEcho": False, "Timeout": 7})
        assert long.status_code == 200
        new = client.get("/modalities/new/configuration").json()
        assert (new["AET"], new["Port"], new["AllowEcho"], new["Timeout"]) == (
            "NEW2", 105, False, 7)
        assert client.get("/modalities").json() == ["ct", "new", "pacs"]
        assert "echo" in client.get("/modalities/new").json()

        assert client.delete("/modalities/pacs").status_code == 200  # a configured one too
        assert client.get("/modalities").json() == ["ct", "new"]
        unknown = client.get("/modalities/pacs/configuration")
        assert unknown.status_code == 404 and unknown.json()["OrthancStatus"] == 7
        assert client.delete("/modalities/pacs").status_code == 404
        bad = client.put("/modalities/bad", json={"AET": "X"})
        assert bad.status_code == 400


def test_peers_registry(tmp_path: Path) -> None:
    config = {"OrthancPeers": {"a": ["http://127.0.0.1:1"],
                               "b": {"Url": "http://h:8042/", "Username": "u", "Password": "p"}}}
    with live_server(tmp_path, config) as server, server.client() as client:
        assert client.get("/peers").json() == ["a", "b"]
        assert client.get("/peers?expand").json() == {
            "a": {"HttpHeaders": [], "Pkcs11": False, "Timeout": 0,
                  "Url": "http://127.0.0.1:1/"},
            "b": {"HttpHeaders": [], "Password": None, "Pkcs11": False, "Timeout": 0,
                  "Url": "http://h:8042/", "Username": "u"}}
        assert client.get("/peers/a").json() == ["configuration", "store", "store-straight",
                                                 "system"]
        assert client.put("/peers/c", json={"Url": "http://x:1", "Timeout": 5}).status_code == 200
        assert client.get("/peers/c/configuration").json()["Timeout"] == 5
        assert client.put("/peers/d", content=b'["http://y:2/"]').status_code == 200
        assert client.delete("/peers/a").status_code == 200
        assert client.get("/peers").json() == ["b", "c", "d"]
        missing = client.get("/peers/a/system")
        assert missing.status_code == 404 and missing.json()["OrthancStatus"] == 17
        unreachable = client.get("/peers/d/system")
        assert unreachable.status_code == 500 and unreachable.json()["OrthancStatus"] == 9


def test_rest_changes_persist_only_in_database_mode(tmp_path: Path) -> None:
    with pinned_database(tmp_path) as pinned:
        volatile = {**pinned}
        with live_server(tmp_path, volatile) as server, server.client() as client:
            client.put("/modalities/m", content=b'["M", "h", 1]')
            client.put("/peers/p", content=b'["http://h:1/"]')
            assert client.get("/modalities").json() == ["m"]
        with live_server(tmp_path, volatile) as server, server.client() as client:
            assert client.get("/modalities").json() == []  # Orthanc forgets them too
            assert client.get("/peers").json() == []

        persistent = {**pinned, "DicomModalitiesInDatabase": True,
                      "OrthancPeersInDatabase": True,
                      "DicomModalities": {"conf": ["C", "h", 2]}}
        with live_server(tmp_path, persistent) as server, server.client() as client:
            client.put("/modalities/m", content=b'["M", "h", 1]')
            client.put("/peers/p", content=b'["http://h:1/"]')
            client.delete("/modalities/conf")
        with live_server(tmp_path, persistent) as server, server.client() as client:
            assert client.get("/modalities").json() == ["m"]
            assert client.get("/modalities/m/configuration").json()["AET"] == "M"
            assert client.get("/peers").json() == ["p"]


def test_registry_is_the_same_in_every_http_process(tmp_path: Path) -> None:
    """With several HTTP worker processes, a PUT is seen by whichever process answers."""
    with live_server(tmp_path, {"Pharos": {"HttpWorkers": 2}}) as server:
        for number in range(6):
            with server.client() as client:  # a new connection may land on the other process
                client.put(f"/modalities/m{number}", content=b'["M", "h", 1]')
        for _ in range(10):
            with server.client() as client:
                assert client.get("/modalities").json() == [f"m{n}" for n in range(6)]
