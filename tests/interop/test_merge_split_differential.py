"""Differential tests: the same merge, split, bulk-modify and bulk-anonymize requests sent to
Pharos and to a real Orthanc 1.10.1 give the same answers (job content shapes and counts),
the same hierarchy and the same tags (new UIDs aside: they must be new, valid and consistent).

Each test starts a fresh pair of servers, since merges and splits move data around."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pydicom
import pytest
from pydicom.dataset import Dataset

from app import orthanc_api_at_least
from tests.helpers import CORPUS, live_server
from tests.interop.orthanc import running_orthanc, skip_unless_orthanc
from tests.interop.test_modify_differential import normalized, without_plain_method

SAMPLES = ("Brainix", "Knix")


def _files(name: str) -> list[Path]:
    path = CORPUS / name
    if not path.is_dir():
        pytest.skip(f"{name} not in the corpus")
    return sorted(p for p in path.rglob("*") if p.is_file())


@contextmanager
def both_servers(tmp_path: Path) -> Iterator[list[httpx.Client]]:
    """Pharos and Orthanc, each loaded with the same sample studies."""
    skip_unless_orthanc()
    files = [f for name in SAMPLES for f in _files(name)]
    with live_server(tmp_path / "pharos") as pharos, \
            running_orthanc(tmp_path / "orthanc") as orthanc, \
            pharos.client() as ours, orthanc.client() as theirs:
        for client in (ours, theirs):
            for path in files:
                client.post("/instances", content=path.read_bytes()).raise_for_status()
        yield [ours, theirs]


def _original_uids() -> tuple[set[str], str]:
    uids: set[str] = set()
    for name in SAMPLES:
        for path in _files(name):
            ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
            for element in ds.iterall():
                if element.VR == "UI" and element.value:
                    values = element.value if element.VM > 1 else [element.value]
                    uids.update(str(v) for v in values)
    patient_id = str(pydicom.dcmread(_files(SAMPLES[0])[0], stop_before_pixels=True).PatientID)
    return uids, patient_id


def _study_of(client: httpx.Client, sample: str) -> dict[str, Any]:
    """The study uploaded from *sample* (found by the UID of its first file)."""
    uid = str(pydicom.dcmread(_files(sample)[0], stop_before_pixels=True).StudyInstanceUID)
    found = client.post("/tools/lookup", content=uid).json()
    study_id = next(f["ID"] for f in found if f["Type"] == "Study")
    return client.get(f"/studies/{study_id}").json()


def _series_by_description(client: httpx.Client, study: dict[str, Any]) -> list[str]:
    series = [client.get(f"/series/{s}").json() for s in study["Series"]]
    series.sort(key=lambda s: (s["MainDicomTags"].get("SeriesDescription", ""),
                               len(s["Instances"])))
    return [s["ID"] for s in series]


def _datasets(client: httpx.Client, level: str, public_id: str) -> list[Dataset]:
    datasets = [pydicom.dcmread(io.BytesIO(client.get(f"/instances/{i['ID']}/file").content))
                for i in client.get(f"/{level}/{public_id}/instances").json()]
    return sorted(datasets, key=lambda d: (str(d.get("SeriesDescription", "")),
                                           int(d.get("InstanceNumber", 0) or 0),
                                           str(d.get("SOPClassUID", ""))))


def _hierarchy(client: httpx.Client, study_id: str) -> list[int]:
    return sorted(len(s["Instances"]) for s in client.get(f"/studies/{study_id}/series").json())


def _same_tags(ours: list[Dataset], theirs: list[Dataset]) -> None:
    uids, patient_id = _original_uids()
    assert len(ours) == len(theirs)
    # Paired by content (instance numbers repeat across the two samples)
    our_tags = sorted((normalized(d, uids, patient_id) for d in ours), key=repr)
    their_tags = sorted((normalized(d, uids, patient_id) for d in theirs), key=repr)
    for a, b in zip(our_tags, their_tags, strict=True):
        assert without_plain_method(a, b) == b


def _consistent_uids(datasets: list[Dataset], series_count: int) -> None:
    uids, _ = _original_uids()
    assert len({d.StudyInstanceUID for d in datasets}) == 1
    assert len({d.SeriesInstanceUID for d in datasets}) == series_count
    assert all(d.SOPInstanceUID not in uids for d in datasets)
    assert len({d.SOPInstanceUID for d in datasets}) == len(datasets)


def test_merge_series_into_study(tmp_path: Path) -> None:
    results = []
    with both_servers(tmp_path) as clients:
        for client in clients:
            target = _study_of(client, "Knix")
            source = _study_of(client, "Brainix")
            moved = _series_by_description(client, source)[0]
            answer = client.post(f"/studies/{target['ID']}/merge", json={"Resources": [moved]})
            assert answer.status_code == 200, answer.text
            content = answer.json()
            new_series = [s for s in client.get(f"/studies/{target['ID']}").json()["Series"]
                          if s not in target["Series"]]
            merged = [d for s in new_series for d in _datasets(client, "series", s)]
            results.append((content, _hierarchy(client, target["ID"]), merged,
                            client.get(f"/studies/{source['ID']}").status_code,
                            len(new_series)))
    (our_content, our_h, ours, our_left, our_new), (their_content, their_h, theirs,
                                                     their_left, their_new) = results
    assert our_content.keys() == their_content.keys()
    for key in ("Description", "InstancesCount", "FailedInstancesCount"):
        assert our_content[key] == their_content[key]
    assert our_h == their_h and our_left == their_left and our_new == their_new
    _same_tags(ours, theirs)
    _consistent_uids(ours, our_new)


def test_merge_whole_study_keep_source(tmp_path: Path) -> None:
    results = []
    with both_servers(tmp_path) as clients:
        for client in clients:
            target = _study_of(client, "Knix")
            source = _study_of(client, "Brainix")
            answer = client.post(f"/studies/{target['ID']}/merge",
                                 json={"Resources": [source["ID"]], "KeepSource": True})
            assert answer.status_code == 200, answer.text
            patients = len(client.get("/patients").json())
            results.append((answer.json()["InstancesCount"], _hierarchy(client, target["ID"]),
                            _hierarchy(client, source["ID"]), patients,
                            _datasets(client, "studies", target["ID"])))
    ours, theirs = results
    assert ours[:4] == theirs[:4]
    _same_tags(ours[4], theirs[4])


def test_split_series_and_instances(tmp_path: Path) -> None:
    results = []
    with both_servers(tmp_path) as clients:
        for client in clients:
            study = _study_of(client, "Brainix")
            first, second = _series_by_description(client, study)
            instances = client.get(f"/series/{second}/instances").json()
            instances.sort(key=lambda i: int(i["MainDicomTags"].get("InstanceNumber", 0)))
            answer = client.post(f"/studies/{study['ID']}/split", json={
                "Series": [first], "Instances": [i["ID"] for i in instances[:3]],
                "Replace": {"StudyDescription": "Split", "PatientName": "SPLIT^NAME",
                            "ReferringPhysicianName": "DR^WHO"},
                "Remove": ["AccessionNumber", "StudyID"]})
            assert answer.status_code == 200, answer.text
            content = answer.json()
            target = content["TargetStudy"]
            datasets = _datasets(client, "studies", target)
            assert all(d.StudyInstanceUID == content["TargetStudyUID"] for d in datasets)
            results.append((content, _hierarchy(client, target),
                            _hierarchy(client, study["ID"]), datasets,
                            client.get(f"/studies/{target}").json()["MainDicomTags"]))
    (our_content, our_h, our_left, ours, our_tags), \
        (their_content, their_h, their_left, theirs, their_tags) = results
    assert our_content.keys() == their_content.keys()
    assert our_content["InstancesCount"] == their_content["InstancesCount"]
    assert our_h == their_h and our_left == their_left
    their_tags.pop("StudyInstanceUID")
    our_tags.pop("StudyInstanceUID")
    assert our_tags == their_tags
    _same_tags(ours, theirs)
    _consistent_uids(ours, len(our_h))


def _resources_by_type(content: dict[str, Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for resource in content["Resources"]:
        counts[resource["Type"]] = counts.get(resource["Type"], 0) + 1
    return counts


@pytest.mark.parametrize("route,body", [
    ("bulk-modify", {"Replace": {"InstitutionName": "Bulk", "SeriesDescription": "B"},
                     "Level": "Series"}),
    ("bulk-modify", {"Replace": {"InstitutionName": "Bulk"}}),
    ("bulk-modify", {"Replace": {"PatientID": "BULKPID", "PatientName": "BULK"},
                     "Force": True}),
    ("bulk-anonymize", {}),
    ("bulk-anonymize", {"Keep": ["StudyDescription"], "DicomVersion": "2017c"}),
])
def test_bulk_same_resources_and_tags(route: str, body: dict[str, Any],
                                      tmp_path: Path) -> None:
    results = []
    with both_servers(tmp_path) as clients:
        for client in clients:
            sent = body
            if client is clients[0] and route == "bulk-anonymize" and "DicomVersion" not in body \
                    and orthanc_api_at_least(1, 12, 1):
                # The oracle's default profile (Orthanc 1.10.1: 2021b); Pharos' is 2023b.
                sent = {**body, "DicomVersion": "2021b"}
            brainix = _study_of(client, "Brainix")
            knix = _study_of(client, "Knix")
            lone = client.get(f"/series/{_series_by_description(client, knix)[0]}"
                              ).json()["Instances"][0]
            request = {**sent, "Resources": [brainix["Series"][0], lone]}
            answer = client.post(f"/tools/{route}", json=request)
            assert answer.status_code == 200, answer.text
            content = answer.json()
            instances = [r["ID"] for r in content["Resources"] if r["Type"] == "Instance"]
            datasets = [pydicom.dcmread(io.BytesIO(client.get(f"/instances/{i}/file").content))
                        for i in instances]
            datasets.sort(key=lambda d: (str(d.get("SeriesDescription", "")),
                                         int(d.get("InstanceNumber", 0) or 0)))
            results.append((content, datasets))
    (ours, our_files), (theirs, their_files) = results
    assert ours.keys() == theirs.keys()
    for key in ("Description", "InstancesCount", "FailedInstancesCount", "IsAnonymization"):
        assert ours[key] == theirs[key]
    assert _resources_by_type(ours) == _resources_by_type(theirs)
    assert [r["Type"] for r in ours["Resources"]] == [r["Type"] for r in theirs["Resources"]]
    _same_tags(our_files, their_files)


BAD: list[tuple[str, Any]] = [
    ("merge", {"Resources": "x"}),
    ("merge", {"Resources": ["no-such-id"]}),
    ("merge", {"Resources": ["<self>"]}),
    ("merge", {"Resources": ["<own-series>"]}),
    ("merge", {"Resources": ["<patient>"]}),
    ("merge", {"Resources": ["<other>"], "KeepSource": "no"}),
    ("split", {}),
    ("split", {"Series": "x"}),
    ("split", {"Series": ["<other-series>"]}),
    ("split", {"Series": ["<own-series>"], "Replace": {"InstitutionName": "X"}}),
    ("split", {"Series": ["<own-series>"], "Remove": ["StudyInstanceUID"]}),
    ("split", {"Series": ["<own-series>"], "Replace": {"PatientName": 1}}),
    ("bulk-modify", {"Replace": {"InstitutionName": "X"}}),
    ("bulk-modify", {"Resources": ["no-such-id"]}),
    ("bulk-modify", {"Resources": ["<other>"], "Level": "Nope"}),
    ("bulk-modify", {"Resources": ["<other>"], "Level": "Patient",
                     "Replace": {"InstitutionName": "X"}}),
    ("bulk-modify", {"Resources": ["<other>"], "Replace": {"PatientID": "X"}}),
    ("bulk-anonymize", {"Resources": "x"}),
]


def test_bad_requests_refused_like_orthanc(tmp_path: Path) -> None:
    statuses: list[list[int]] = []
    with both_servers(tmp_path) as clients:
        for client in clients:
            study = _study_of(client, "Brainix")
            other = _study_of(client, "Knix")
            values = {"<self>": study["ID"], "<own-series>": study["Series"][0],
                      "<patient>": study["ParentPatient"], "<other>": other["ID"],
                      "<other-series>": other["Series"][0]}
            before = client.get("/statistics").json()["CountInstances"]
            found = []
            for route, body in BAD:
                filled = {k: ([values.get(x, x) for x in v] if isinstance(v, list) else v)
                          for k, v in body.items()}
                url = f"/studies/{study['ID']}/{route}" if route in ("merge", "split") \
                    else f"/tools/{route}"
                found.append(client.post(url, json=filled).status_code)
            assert client.get("/statistics").json()["CountInstances"] == before
            statuses.append(found)
    ours, theirs = statuses
    for (route, body), our_status, their_status in zip(BAD, ours, theirs, strict=True):
        assert 400 <= our_status < 500, (route, body, our_status)
        # Orthanc answers 500 to a Level that is not a string or an unknown tag name;
        # Pharos answers a clear 4xx there (deliberate).
        assert our_status == their_status or their_status == 500, (route, body)
