"""Concurrent writers, as on a busy archive (issue 13), on SQLite and on PostgreSQL
(``PHAROS_TEST_DATABASE_URL``): two HTTP processes plus the DICOM SCP write at once.

* Deleting a study while its instances keep arriving: every answer is a success (or a
  404 for a delete that found nothing), and afterwards the index and the storage agree:
  no orphan blob, no blob-less instance, no metadata or label row of a deleted
  resource, no parent left without children.
* The same instance sent at once through REST, STOW-RS and C-STORE: one instance, one
  file, and only success answers.
"""

from __future__ import annotations

import io
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pydicom
import pytest
from pydicom.uid import generate_uid
from sqlalchemy import create_engine, text

from tests.helpers import LiveServer, live_server, make_dicom, pinned_database


@pytest.fixture(scope="module")
def racing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, str]]:
    folder = tmp_path_factory.mktemp("races")
    with pinned_database(folder) as pinned:
        config = {**pinned, "DicomAet": "PHAROS", "StableAge": 3600}
        config["Pharos"] = {**config.get("Pharos", {}), "HttpWorkers": 2}
        with live_server(folder, config) as server:
            url = pinned.get("Pharos", {}).get("DatabaseUrl") or \
                f"sqlite:///{server.storage / 'pharos-index.sqlite'}"
            yield server, url


def _consistency(server: LiveServer, database_url: str) -> list[str]:
    """Everything that would be wrong after a lost race (empty when all is right)."""
    problems: list[str] = []
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            keys = {k for (k,) in conn.execute(text("SELECT blob_key FROM instances"))}
            keys |= {k for (k,) in conn.execute(text("SELECT uuid FROM attachments"))}
            pending = {k for (k,) in conn.execute(text("SELECT blob_key FROM blob_deletions"))}
            for level, table in (("Patient", "patients"), ("Study", "studies"),
                                 ("Series", "series"), ("Instance", "instances")):
                for kind in ("metadata", "labels"):
                    dangling = conn.execute(text(
                        f"SELECT count(*) FROM {kind} WHERE level = :level AND resource_pk "
                        f"NOT IN (SELECT pk FROM {table})"), {"level": level}).scalar_one()
                    if dangling:
                        problems.append(f"{dangling} {kind} row(s) of deleted {table}")
            for parent, child, column in (("patients", "studies", "patient_pk"),
                                          ("studies", "series", "study_pk"),
                                          ("series", "instances", "series_pk")):
                empty = conn.execute(text(
                    f"SELECT count(*) FROM {parent} WHERE pk NOT IN "
                    f"(SELECT {column} FROM {child})")).scalar_one()
                if empty:
                    problems.append(f"{empty} {parent} without {child}")
    finally:
        engine.dispose()
    files = server.blob_keys()  # files, or S3 objects under PHAROS_TEST_BLOBSTORE=s3
    if keys - files:
        problems.append(f"{len(keys - files)} indexed blob(s) missing from the store")
    orphans = files - keys - pending
    if orphans:
        problems.append(f"{len(orphans)} orphan blob(s) in the store")
    return problems


def _stow(http: httpx.Client, data: bytes) -> int:
    boundary = "RACE" + generate_uid()[-10:]
    body = (f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + data
            + f"\r\n--{boundary}--\r\n".encode())
    return http.post("/dicom-web/studies", content=body, headers={
        "Content-Type": f"multipart/related; type=application/dicom; boundary={boundary}"}
    ).status_code


def _c_store(port: int, data: bytes) -> int:
    from pynetdicom import AE
    ds = pydicom.dcmread(io.BytesIO(data))
    ae = AE(ae_title="RACER")
    ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
    assoc = ae.associate("127.0.0.1", port, ae_title="PHAROS")
    if not assoc.is_established:
        return -1
    try:
        status = assoc.send_c_store(ds)
        return int(status.Status) if status else -2
    finally:
        assoc.release()


def test_delete_racing_with_stores(racing: tuple[LiveServer, str]) -> None:
    server, database_url = racing
    study_uid = generate_uid()
    series_uids = [generate_uid() for _ in range(3)]
    files = [make_dicom(patient_id="RACE", study_uid=study_uid,
                        series_uid=series_uids[i % 3], instance_number=i + 1, size=16)
             for i in range(240)]
    store_answers: Counter[str] = Counter()
    delete_answers: Counter[str] = Counter()
    done = threading.Event()
    lock = threading.Lock()

    def store(chunk: list[bytes]) -> None:
        with server.client() as http:
            for index, data in enumerate(chunk):
                try:
                    if index % 3 == 2:
                        code = _c_store(server.dicom_port, data)
                        answer = f"dimse:{code:#06x}" if code >= 0 else f"dimse:{code}"
                    elif index % 3 == 1:
                        answer = f"stow:{_stow(http, data)}"
                    else:
                        answer = f"rest:{http.post('/instances', content=data).status_code}"
                except Exception as error:  # noqa: BLE001 — a reset connection is a finding
                    answer = f"error:{type(error).__name__}"
                with lock:
                    store_answers[answer] += 1

    def deleter() -> None:
        with server.client() as http:
            while not done.is_set():
                studies = http.post("/tools/lookup", content=study_uid).json()
                for found in studies:
                    try:
                        code = http.delete(found["Path"]).status_code
                    except Exception as error:  # noqa: BLE001
                        code = type(error).__name__
                    with lock:
                        delete_answers[str(code)] += 1
                time.sleep(random.uniform(0.01, 0.05))

    chunks = [files[i::6] for i in range(6)]
    with ThreadPoolExecutor(8) as pool:
        deleting = [pool.submit(deleter) for _ in range(2)]
        list(pool.map(store, chunks))
        done.set()
        for future in deleting:
            future.result()
    good = {"rest:200", "stow:200", "dimse:0x0000"}
    assert set(store_answers) <= good, store_answers
    assert sum(store_answers.values()) == len(files)
    assert set(delete_answers) <= {"200", "404"}, delete_answers
    assert delete_answers["200"] >= 1, delete_answers  # the race did happen
    time.sleep(1)  # the queued blob deletions of the last commits
    assert _consistency(server, database_url) == []
    with server.client() as http:
        for patient in http.get("/patients").json():
            assert http.delete(f"/patients/{patient}").status_code in (200, 404)
    assert _consistency(server, database_url) == []


def test_same_instance_at_once_through_every_door(racing: tuple[LiveServer, str]) -> None:
    server, database_url = racing
    data = make_dicom(patient_id="SAMEONE", size=16)
    barrier = threading.Barrier(30)

    def send(door: str) -> str:
        with server.client() as http:
            barrier.wait()
            if door == "rest":
                answer = http.post("/instances", content=data)
                return f"rest:{answer.status_code}:{answer.json().get('Status')}"
            if door == "stow":
                return f"stow:{_stow(http, data)}"
            return f"dimse:{_c_store(server.dicom_port, data):#06x}"

    with ThreadPoolExecutor(30) as pool:
        answers = Counter(pool.map(send, ["rest", "stow", "dimse"] * 10))
    assert set(answers) <= {"rest:200:Success", "rest:200:AlreadyStored", "stow:200",
                            "dimse:0x0000"}, answers
    with server.client() as http:
        found = http.post("/tools/find", json={"Level": "Instance",
                                               "Query": {"PatientID": "SAMEONE"}}).json()
        assert len(found) == 1
        assert answers["rest:200:Success"] + answers["rest:200:AlreadyStored"] == 10
        http.delete(f"/instances/{found[0]}")
    assert _consistency(server, database_url) == []


def test_reads_racing_with_deletes(racing: tuple[LiveServer, str]) -> None:
    """A study deleted while clients read it (``/tools/find`` with ``Expand`` at every
    level, the study's JSON and children, its DICOMweb metadata, its files): each
    answer is whole, with or without the study, or a 404; never a 500 (on PostgreSQL, a
    find read its rows, then their parents in a later statement that no longer saw them:
    KeyError, 500)."""
    server, _ = racing
    rounds, answers, problems = 12, Counter[str](), []
    lock = threading.Lock()
    current: dict[str, Any] = {}
    done = threading.Event()

    def record(kind: str, answer: httpx.Response) -> None:
        with lock:
            answers[f"{kind}:{answer.status_code}"] += 1
            if answer.status_code >= 500 or answer.status_code not in (200, 204, 404):
                problems.append(f"{kind} {answer.request.url} -> {answer.status_code} "
                                f"{answer.text[:300]}")
            elif kind == "find" and answer.status_code == 200:
                broken = [r for r in answer.json() if "ID" not in r or "MainDicomTags" not in r]
                if broken:
                    problems.append(f"find answered broken resources: {broken[:1]}")

    def reader(number: int) -> None:
        levels = ["Patient", "Study", "Series", "Instance"]
        with server.client() as http:
            turn = number
            while not done.is_set():
                turn += 1
                study = current.get("study")
                if study is None:
                    time.sleep(0.005)
                    continue
                try:
                    if turn % 4 == 3:
                        record("metadata", http.get(
                            f"/dicom-web/studies/{study['uid']}/metadata"))
                    elif turn % 8 == 1:
                        record("study", http.get(f"/studies/{study['id']}/instances"))
                    else:
                        record("find", http.post("/tools/find", json={
                            "Level": levels[turn % 4], "Expand": True,
                            "Query": {"PatientID": "READRACE"},
                            "RequestedTags": ["NumberOfStudyRelatedInstances"]}))
                except httpx.TransportError as error:  # a dropped connection is a finding
                    with lock:
                        problems.append(f"reader: {error!r}")

    with ThreadPoolExecutor(4) as pool:
        readers = [pool.submit(reader, n) for n in range(3)]
        with server.client() as http:
            for _ in range(rounds):
                uid = generate_uid()
                series = [generate_uid() for _ in range(3)]
                for index in range(30):
                    stored = http.post("/instances", content=make_dicom(
                        patient_id="READRACE", study_uid=uid, series_uid=series[index % 3],
                        instance_number=index + 1, size=8))
                    assert stored.status_code == 200, stored.text
                current["study"] = {"uid": uid, "id": stored.json()["ParentStudy"]}
                time.sleep(0.1)  # the readers are on it
                assert http.delete(f"/studies/{current['study']['id']}").status_code == 200
        done.set()
        for future in readers:
            future.result()
    assert problems == [], (problems[:5], answers)
    assert answers["find:200"] > rounds, answers  # the readers did read
