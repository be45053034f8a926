"""Orthanc 1.12.5's extended changes (``/changes?type=...&to=...``, ``First``), how
deletions show in the change log (as Orthanc 1.13: not logged; the changes of the deleted
resources go with them), and ``/tools/bulk-delete`` with Orthanc 1.13's
``{"Level", "ID"}`` items, on a live Pharos."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.helpers import LiveServer, make_dicom


@pytest.fixture()
def http(fresh_server: LiveServer) -> Iterator[httpx.Client]:
    with fresh_server.client() as client:
        yield client


def store(client: httpx.Client, patient: str, study: str, series: str, sop: str) -> dict:
    response = client.post("/instances", content=make_dicom(
        patient_id=patient, study_uid=study, series_uid=series, sop_uid=sop))
    assert response.status_code == 200
    return response.json()


def changes(client: httpx.Client, **params: Any) -> dict[str, Any]:
    response = client.get("/changes", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def log(client: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    """The changes but the Stable* ones, which come whenever StableAge (2 s) elapses."""
    return [c for c in changes(client, **params)["Changes"]
            if not c["ChangeType"].startswith("Stable")]


def test_type_and_to(http: httpx.Client) -> None:
    store(http, "P1", "1.1", "1.1.1", "1.1.1.1")
    first = changes(http)
    begin = first["Last"]
    assert [c["ChangeType"] for c in first["Changes"]] == [
        "NewInstance", "NewSeries", "NewStudy", "NewPatient"]
    assert first["First"] == first["Changes"][0]["Seq"] and first["Done"]
    only = changes(http, type="NewInstance")
    assert [c["Seq"] for c in only["Changes"]] == [begin - 3] and only["Last"] == begin - 3
    both = changes(http, type="NewPatient;NewInstance")
    assert [c["ChangeType"] for c in both["Changes"]] == ["NewInstance", "NewPatient"]
    for number in range(2, 12):
        store(http, "P1", "1.1", "1.1.1", f"1.1.1.{number}")
    new = changes(http, type="NewInstance", since=begin, limit=1000)
    assert len(new["Changes"]) == 10 and new["Done"]
    assert new["First"] == new["Changes"][0]["Seq"] > begin
    page = changes(http, type="NewInstance", since=begin, limit=4)
    assert len(page["Changes"]) == 4 and not page["Done"]
    assert page["First"] == new["First"] and page["Last"] < new["Last"]
    window = changes(http, type="NewInstance", since=begin, to=begin + 5, limit=100)
    assert [c["Seq"] for c in window["Changes"]] == list(range(begin + 1, begin + 6))
    assert window["Done"]
    # "to" alone: the last changes up to it, oldest first; walk backwards with First - 1.
    backwards = changes(http, type="NewInstance", to=new["Last"], limit=4)
    assert [c["Seq"] for c in backwards["Changes"]] == [c["Seq"] for c in new["Changes"][-4:]]
    assert not backwards["Done"]
    older = changes(http, type="NewInstance", to=backwards["First"] - 1, limit=100)
    assert len(older["Changes"]) == 7 and older["Done"]  # the first instance and six more
    none = changes(http, type="ModifiedStudy")
    assert none["Changes"] == [] and none["Done"] and "First" not in none
    assert none["Last"] >= new["Last"]  # the last sequence number given
    assert changes(http, type="All", limit=3)["Changes"] == changes(http, limit=3)["Changes"]


def test_bad_type_and_to(http: httpx.Client) -> None:
    assert http.get("/changes", params={"to": -1}).status_code == 200  # Orthanc's "none"
    for params in ({"type": "NewThing"}, {"type": "NewInstance;Nope"}, {"to": "x"},
                   {"to": "-2"}):
        response = http.get("/changes", params=params)
        assert response.status_code == 400, params
        assert response.json()["OrthancStatus"] == 3


def test_deletions_are_not_logged_and_take_their_changes(http: httpx.Client) -> None:
    """As Orthanc 1.13: a deletion logs no change (Lua and plugins see a "Deleted"
    event), the changes of every resource it removes go with it (the Changes rows
    cascade in Orthanc's index), and sequence numbers are never given twice."""
    kept = store(http, "P1", "1.1", "1.1.1", "1.1.1.1")
    doomed = store(http, "P2", "2.1", "2.1.1", "2.1.1.1")
    sibling = store(http, "P1", "1.1", "1.1.1", "1.1.1.2")
    before = log(http)
    last = changes(http)["Last"]
    assert http.delete(f"/instances/{sibling['ID']}").status_code == 200
    assert log(http) == [c for c in before if c["ID"] != sibling["ID"]]
    assert http.delete(f"/patients/{doomed['ParentPatient']}").status_code == 200
    gone = {doomed[key] for key in ("ID", "ParentSeries", "ParentStudy", "ParentPatient")}
    assert {c["ID"] for c in log(http)} == {c["ID"] for c in before} - gone - {sibling["ID"]}
    assert changes(http, type="Deleted")["Changes"] == []
    again = store(http, "P2", "2.1", "2.1.1", "2.1.1.1")
    renewed = log(http, since=last)
    assert renewed[0]["ID"] == again["ID"] and renewed[0]["Seq"] > last
    assert {c["ID"] for c in log(http)} >= {kept["ID"], again["ID"]}


def test_bulk_delete(http: httpx.Client) -> None:
    studies = [store(http, f"P{i}", f"3.{i}", f"3.{i}.1", f"3.{i}.1.1") for i in range(4)]
    response = http.post("/tools/bulk-delete", json={"Resources": [
        {"Level": "Study", "ID": studies[0]["ParentStudy"]},
        studies[1]["ParentSeries"],
        {"Level": "Series", "ID": studies[2]["ParentStudy"]},  # not a series: skipped
        {"Level": "instances", "ID": "no-such-instance"},
        "no-such-resource"]})
    assert response.status_code == 200
    assert response.text == "" and response.headers["content-type"].startswith("text/plain")
    left = set(http.get("/studies").json())
    assert left == {studies[2]["ParentStudy"], studies[3]["ParentStudy"]}
    for body in ({"Resources": [{"Level": "Nope", "ID": studies[3]["ParentStudy"]}]},
                 {"Resources": [studies[3]["ParentStudy"], 3]},
                 {"Resources": [{"ID": studies[3]["ParentStudy"]}]},
                 {"Resources": "x"}, [], {}):
        answer = http.post("/tools/bulk-delete", json=body)
        assert answer.status_code == 400, body
    assert set(http.get("/studies").json()) == left  # checked whole before deleting
