"""Three nodes, one index, one store (issue 16): three ``pharos serve`` processes on
their own ports share one PostgreSQL database and one S3 bucket (moto's server) and
behave as one archive.

* The three start at the same moment on an empty database: it is migrated once (the
  others wait on an advisory lock and find it at the latest revision).
* What node A stores, nodes B and C serve at once (REST, DICOMweb, find).
* The same instance sent to the three nodes at the same moment is stored once: one row,
  one object; the losers' objects are removed (no orphan once the deletion queue drained).
* ``/changes`` read from any node while the three store is ordered, without duplicate,
  and a client polling ``since=Last`` misses nothing.
* Stable-study events fire once (one ``StableStudy`` change, one ``OnStableStudy`` hook
  call in the whole cluster), though every node runs a stability monitor.
* Every node answers C-ECHO and C-STORE.
* A job runs once, by one node; when that node is killed (``kill -9``) in the middle of
  a job, another node takes it over once its lease (``JobLease``) expired, and the job
  completes.

PostgreSQL only (``PHAROS_TEST_DATABASE_URL``): several nodes over one SQLite file are
not a supported deployment (one host runs several processes with ``HttpWorkers``).
"""

from __future__ import annotations

import io
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pydicom
import pytest
from pydicom.uid import generate_uid
from sqlalchemy import create_engine, text

from tests.helpers import LiveServer, free_port, live_server, make_dicom, pinned_database

pytestmark = pytest.mark.skipif(
    not os.environ.get("PHAROS_TEST_DATABASE_URL"),
    reason="several nodes share one PostgreSQL index (set PHAROS_TEST_DATABASE_URL); "
           "several nodes over one SQLite file are not a supported deployment")

NODES = 3
JOB_LEASE = 3  # seconds: a killed node's job is taken over this long after its last beat

HOOKS = '''
import os
from pathlib import Path

def OnStableStudy(study_id, tags, metadata):
    with open(Path(__file__).with_name("stable-studies.log"), "a") as log:
        log.write(f"{os.getpid()} {study_id}\\n")
'''


@dataclass
class StoreCounter:
    """A DICOM storage SCP counting what it receives, slowly when asked."""

    port: int
    delay: float = 0.0
    received: Counter = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> object:
        from pynetdicom import AE, AllStoragePresentationContexts, evt
        ae = AE(ae_title="COUNTER")
        ae.supported_contexts = AllStoragePresentationContexts
        ae.maximum_pdu_size = 0

        def on_store(event: object) -> int:
            if self.delay:
                time.sleep(self.delay)
            with self.lock:
                self.received[event.request.AffectedSOPInstanceUID] += 1  # type: ignore[attr-defined]
            return 0x0000

        return ae.start_server(("127.0.0.1", self.port), block=False,
                               evt_handlers=[(evt.EVT_C_STORE, on_store)])


@dataclass
class Cluster:
    nodes: list[LiveServer]
    database_url: str
    counter: StoreCounter
    hooks_log: Path

    def sql(self, statement: str, **params: object) -> list[tuple]:
        engine = create_engine(self.database_url)
        try:
            with engine.connect() as conn:
                return [tuple(row) for row in conn.execute(text(statement), params)]
        finally:
            engine.dispose()

    def alive(self) -> list[LiveServer]:
        return [node for node in self.nodes if node.process.poll() is None]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    from tests.s3server import moto_s3
    s3 = moto_s3()
    blobstore_url = s3.url(s3.new_bucket(), max_attempts=4)
    folder = tmp_path_factory.mktemp("nodes")
    hooks = folder / "hooks.py"
    hooks.write_text(HOOKS)
    counter = StoreCounter(free_port())
    scp = counter.start()
    with pinned_database(folder) as pinned, ExitStack() as stack:
        database_url = pinned["Pharos"]["DatabaseUrl"]
        config = {"DicomAet": "PHAROS", "StableAge": 2, "ConcurrentJobs": 1,
                  "DicomModalities": {"counter": ["COUNTER", "127.0.0.1", counter.port]},
                  "Pharos": {"DatabaseUrl": database_url, "BlobstoreUrl": blobstore_url,
                             "JobLease": JOB_LEASE, "Hooks": str(hooks)}}
        # Each node its own folder (its own leader lock: each runs a DICOM SCP and a
        # stability monitor), all on one index and one bucket, started at the same moment
        # on the empty database.
        managers = [live_server(folder / f"node{i}", config, startup_timeout=240)
                    for i in range(NODES)]
        with ThreadPoolExecutor(NODES) as pool:
            started = [pool.submit(manager.__enter__) for manager in managers]
            failures = []
            for manager, future in zip(managers, started, strict=True):
                try:
                    future.result()
                    stack.push(manager.__exit__)
                except Exception as error:  # noqa: BLE001 — reported below, once all are up
                    failures.append(error)
        if failures:
            raise failures[0]
        try:
            yield Cluster([future.result() for future in started], database_url, counter,
                          folder / "stable-studies.log")
        finally:
            scp.shutdown()  # type: ignore[attr-defined]


def _found(node: LiveServer, level: str, query: dict) -> list[str]:
    with node.client() as http:
        answer = http.post("/tools/find", json={"Level": level, "Query": query})
        assert answer.status_code == 200, answer.text
        return answer.json()


def _wait(condition, what: str, timeout: float = 60):  # noqa: ANN001, ANN202
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _store_agrees_with_index(cluster: Cluster) -> list[str]:
    """Once the blob deletion queue is drained: every object is referenced by the index,
    every referenced blob is in the bucket (empty when all is right)."""
    _wait(lambda: not cluster.sql("SELECT blob_key FROM blob_deletions"),
          "the blob deletion queue to drain")
    keys = {k for (k,) in cluster.sql("SELECT blob_key FROM instances")}
    keys |= {k for (k,) in cluster.sql("SELECT uuid FROM attachments")}
    keys |= {k for (k,) in cluster.sql(
        "SELECT output_key FROM jobs WHERE output_key IS NOT NULL")}
    objects = cluster.nodes[0].blob_keys()
    problems = []
    if keys - objects:
        problems.append(f"{len(keys - objects)} indexed blob(s) missing from the bucket")
    if objects - keys:
        problems.append(f"{len(objects - keys)} orphan object(s) in the bucket")
    return problems


def test_nodes_started_together_migrated_the_database_once(cluster: Cluster) -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from app.index.db import MIGRATIONS_DIR
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert cluster.sql("SELECT version_num FROM alembic_version") == [(head,)]
    created = [node for node in cluster.nodes if "Index schema created" in
               (node.storage.parent / "server.log").read_text(errors="replace")]
    assert len(created) == 1  # one node created it; the others found it done
    for node in cluster.nodes:
        with node.client() as http:
            assert http.get("/system").status_code == 200


def test_what_one_node_stores_every_node_serves_at_once(cluster: Cluster) -> None:
    a, b, c = cluster.nodes
    data = make_dicom(patient_id="NODES-SERVE", size=16)
    with a.client() as http:
        stored = http.post("/instances", content=data)
    assert stored.status_code == 200 and stored.json()["Status"] == "Success"
    instance = stored.json()["ID"]
    study_uid = pydicom.dcmread(io.BytesIO(data)).StudyInstanceUID
    for node in (b, c):
        with node.client() as http:
            assert http.get(f"/instances/{instance}/file").content == data
            assert _found(node, "Instance", {"PatientID": "NODES-SERVE"}) == [instance]
            qido = http.get("/dicom-web/studies", params={"StudyInstanceUID": study_uid})
            assert qido.status_code == 200 and len(qido.json()) == 1
            wado = http.get(f"/dicom-web/studies/{study_uid}/metadata")
            assert wado.status_code == 200 and len(wado.json()) == 1


def test_same_instance_sent_to_three_nodes_at_once_is_stored_once(cluster: Cluster) -> None:
    per_node = 4
    for round_ in range(3):
        data = make_dicom(patient_id=f"NODES-SAME-{round_}", size=32)
        barrier = threading.Barrier(NODES * per_node)

        def send(node: LiveServer, data: bytes = data, barrier: threading.Barrier = barrier) \
                -> tuple[int, str]:
            with node.client() as http:
                barrier.wait()
                answer = http.post("/instances", content=data)
                return answer.status_code, answer.json().get("Status", answer.text)

        with ThreadPoolExecutor(NODES * per_node) as pool:
            answers = Counter(pool.map(send, cluster.nodes * per_node))
        assert set(answers) <= {(200, "Success"), (200, "AlreadyStored")}, answers
        assert answers[(200, "Success")] == 1, answers
        for node in cluster.nodes:
            assert len(_found(node, "Instance", {"PatientID": f"NODES-SAME-{round_}"})) == 1
    rows = cluster.sql("SELECT count(*) FROM instances i JOIN series s ON i.series_pk = s.pk "
                       "JOIN studies t ON s.study_pk = t.pk JOIN patients p ON "
                       "t.patient_pk = p.pk WHERE p.patient_id LIKE 'NODES-SAME-%'")
    assert rows == [(3,)]
    assert _store_agrees_with_index(cluster) == []


def test_changes_from_any_node_are_ordered_and_complete(cluster: Cluster) -> None:
    with cluster.nodes[0].client() as http:
        start = http.get("/changes", params={"last": ""}).json()["Last"]
    writing = threading.Event()
    writing.set()

    def write(node_index: int) -> None:
        node = cluster.nodes[node_index]
        with node.client() as http:
            for i in range(15):  # patients of their own: the writers do not serialize
                data = make_dicom(patient_id=f"NODES-CHG-{node_index}-{i}")
                assert http.post("/instances", content=data).status_code == 200

    def poll(node: LiveServer) -> list[int]:
        """A client following /changes with since=Last, small pages."""
        seen: list[int] = []
        since = start
        with node.client() as http:
            while True:
                still_writing = writing.is_set()
                page = http.get("/changes", params={"since": since, "limit": 5}).json()
                seen += [change["Seq"] for change in page["Changes"]]
                since = page["Last"]
                if page["Done"] and not still_writing:
                    return seen
                if page["Done"]:
                    time.sleep(0.02)

    with ThreadPoolExecutor(2 * NODES) as pool:
        polls = [pool.submit(poll, node) for node in cluster.nodes]
        writes = [pool.submit(write, i) for i in range(NODES)]
        for future in writes:
            future.result()
        writing.clear()
        seen = [future.result() for future in polls]
    with cluster.nodes[1].client() as http:
        changes = http.get("/changes", params={"since": start, "limit": 10000}).json()["Changes"]
    everything = [c["Seq"] for c in changes]
    written = {c["Seq"] for c in changes if c["ChangeType"].startswith("New")}
    assert len(written) == NODES * 15 * 4  # NewPatient, NewStudy, NewSeries, NewInstance
    assert everything == sorted(set(everything))
    for from_node in seen:
        # Ordered, no duplicate, nothing missed (the monitors may log Stable* changes
        # after a poller stopped: those are not its concern).
        missed = [c for c in changes if c["Seq"] <= from_node[-1] and c["Seq"] not in from_node]
        assert from_node == [seq for seq in everything if seq <= from_node[-1]], \
            (start, [c["Seq"] for c in missed], from_node[:12])
        assert written <= set(from_node)


def test_every_node_answers_c_echo_and_c_store(cluster: Cluster) -> None:
    from pynetdicom import AE
    from pynetdicom.sop_class import Verification
    study = generate_uid()
    for index, node in enumerate(cluster.nodes):
        data = make_dicom(patient_id="NODES-DIMSE", study_uid=study, instance_number=index)
        dataset = pydicom.dcmread(io.BytesIO(data))
        ae = AE(ae_title="NODETEST")
        ae.add_requested_context(Verification)
        ae.add_requested_context(dataset.SOPClassUID, dataset.file_meta.TransferSyntaxUID)
        assoc = ae.associate("127.0.0.1", node.dicom_port, ae_title="PHAROS")
        assert assoc.is_established, f"node {index} refused the association"
        try:
            assert assoc.send_c_echo().Status == 0x0000
            assert assoc.send_c_store(dataset).Status == 0x0000
        finally:
            assoc.release()
    for node in cluster.nodes:
        assert len(_found(node, "Instance", {"PatientID": "NODES-DIMSE"})) == NODES


def test_stable_study_events_fire_once_across_nodes(cluster: Cluster) -> None:
    study, series = generate_uid(), generate_uid()
    for index, node in enumerate(cluster.nodes):  # the study grows on every node
        with node.client() as http:
            assert http.post("/instances", content=make_dicom(
                patient_id="NODES-STABLE", study_uid=study, series_uid=series,
                instance_number=index)).status_code == 200
    study_id = _found(cluster.nodes[0], "Study", {"StudyInstanceUID": study})[0]

    def stable_changes() -> list[dict]:
        with cluster.nodes[2].client() as http:
            changes = http.get("/changes", params={"limit": 100000}).json()["Changes"]
        return [c for c in changes if c["ChangeType"] == "StableStudy" and c["ID"] == study_id]

    _wait(stable_changes, "the study to become stable")
    # Every monitor runs each second: give the others several chances to fire again.
    time.sleep(3)
    assert len(stable_changes()) == 1
    calls = _wait(lambda: [line for line in cluster.hooks_log.read_text().splitlines()
                           if line.endswith(study_id)] if cluster.hooks_log.exists() else [],
                  "the OnStableStudy hook")
    time.sleep(1)
    calls = [line for line in cluster.hooks_log.read_text().splitlines()
             if line.endswith(study_id)]
    assert len(calls) == 1, calls
    with cluster.nodes[1].client() as http:
        assert http.get(f"/studies/{study_id}").json()["IsStable"] is True


def _submit_store(node: LiveServer, resources: list[str]) -> str:
    with node.client() as http:
        answer = http.post("/modalities/counter/store",
                           json={"Resources": resources, "Asynchronous": True})
    assert answer.status_code == 200, answer.text
    return answer.json()["ID"]


def _job_state(cluster: Cluster, job_id: str) -> str:
    for node in cluster.alive():
        try:
            with node.client() as http:
                return http.get(f"/jobs/{job_id}").json()["State"]
        except httpx.HTTPError:
            continue
    raise AssertionError("no node answers")


def test_each_job_runs_once_by_one_node(cluster: Cluster) -> None:
    instances = []
    for i in range(6):
        with cluster.nodes[i % NODES].client() as http:
            instances.append(http.post("/instances", content=make_dicom(
                patient_id=f"NODES-JOB-{i}")).json()["ID"])
    jobs = [_submit_store(cluster.nodes[i % NODES], [instance])
            for i, instance in enumerate(instances)]
    for job in jobs:
        _wait(lambda job=job: _job_state(cluster, job) in ("Success", "Failure"),
              f"job {job}")
        assert _job_state(cluster, job) == "Success"
    sop_uids = []
    for instance in instances:
        with cluster.nodes[0].client() as http:
            sop_uids.append(http.get(f"/instances/{instance}").json()["MainDicomTags"]
                            ["SOPInstanceUID"])
    with cluster.counter.lock:
        assert [cluster.counter.received[uid] for uid in sop_uids] == [1] * len(sop_uids)


def test_job_of_a_killed_node_is_taken_over(cluster: Cluster) -> None:
    study, series = generate_uid(), generate_uid()
    count = 12
    with cluster.nodes[0].client() as http:
        for i in range(count):
            assert http.post("/instances", content=make_dicom(
                patient_id="NODES-KILL", study_uid=study, series_uid=series,
                instance_number=i)).status_code == 200
    series_id = _found(cluster.nodes[0], "Series", {"SeriesInstanceUID": series})[0]
    cluster.counter.delay = 0.4  # ~5 s of sending: the node dies in the middle
    try:
        job = _submit_store(cluster.nodes[1], [series_id])
        owner = _wait(lambda: cluster.sql(
            "SELECT claimed_by FROM jobs WHERE id = :id AND state = 'Running'", id=job),
            "the job to run")[0][0]
        pid = int(owner.split(":")[1])
        victim = next(node for node in cluster.nodes if node.process.pid == pid)
        with cluster.counter.lock:
            before = sum(cluster.counter.received.values())
        _wait(lambda: sum(cluster.counter.received.values()) > before + 1,
              "the job to send a few instances")
        os.kill(pid, signal.SIGKILL)
        victim.process.wait(timeout=10)
        _wait(lambda: _job_state(cluster, job) in ("Success", "Failure"),
              "another node to take the job over and finish it", timeout=90)
        assert _job_state(cluster, job) == "Success"
    finally:
        cluster.counter.delay = 0.0
    new_owner = cluster.sql("SELECT claimed_by FROM jobs WHERE id = :id", id=job)[0][0]
    assert new_owner != owner
    survivors = {node.process.pid for node in cluster.alive()}
    assert int(new_owner.split(":")[1]) in survivors
    with cluster.alive()[0].client() as http:
        uids = [i["MainDicomTags"]["SOPInstanceUID"]
                for i in http.get(f"/series/{series_id}/instances").json()]
    with cluster.counter.lock:
        assert all(cluster.counter.received[uid] >= 1 for uid in uids)
    # The survivors still agree with the store.
    assert _store_agrees_with_index(cluster) == []
