#!/usr/bin/env python3
"""Mixed load on a live Pharos: several clients for minutes, reads racing deletes.

Issue 13: under sustained mixed load memory stays flat and errors are zero; a resource
deleted during a find or a retrieve is simply absent from the answer (or a 404), never a
500. One Pharos (``pharos serve``, ``--workers`` HTTP processes, 2 by default as the
server picks on 2 cores), fresh storage (and a fresh PostgreSQL database with
``--database-url``), seeded with ``--seed-studies`` studies; then ``--clients`` threads,
each on its own keep-alive connection, for ``--minutes``, each doing in turn (weighted at
random, seeded):

* ``store-rest``: ``POST /instances`` of a new instance (64x64 CT, ~9 KB) of the study
  the client is filling; a study is readable by everyone once it holds
  ``--study-size`` instances;
* ``store-stow``: ``POST /dicom-web/studies`` of two new instances in one body;
* ``find``: ``/tools/find`` of the studies of a patient with ``Expand`` (and of the
  instances of a study with ``Expand`` one time out of two);
* ``qido``: ``GET /dicom-web/studies?PatientID=...`` or the series of a study;
* ``metadata``: ``GET /dicom-web/studies/{uid}/metadata``;
* ``file``: ``GET /instances/{id}/file`` of an instance of a readable study;
* ``delete``: ``DELETE /studies/{id}`` of a readable study, which the other clients may
  be reading at that moment (it stays listed as readable until the delete answers).

What counts as an error: any 5xx, a dropped connection, an answer that is not what the
operation answers (a 2xx that is not valid JSON where JSON is expected, an expanded
resource without its ``ID``). A 404 on an operation that names one resource
(``metadata``, ``file``, ``delete``, the series of a study) is not an error when that
resource is being or has been deleted: it is counted apart as ``absent``; anywhere else a
4xx is an error. The server's RSS (the ``pharos serve`` process and its children) is
sampled at the start of the load, every 30 s and at the end. At the end the archive is
checked: every instance the index lists has its blob, no blob without an instance
(filesystem store).

Prints per-operation counts, p50/p99 latency, answers by status, RSS samples; writes it
all with ``--json``. Exits 1 when there was any error (5xx, dropped connection, wrong
answer) or an inconsistent archive, so that it can gate; timings are never checked.

    .venv/bin/python benchmarks/mixed_load.py                          # SQLite, 3 minutes
    .venv/bin/python benchmarks/mixed_load.py --minutes 1 --clients 6
    .venv/bin/python benchmarks/mixed_load.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import socket
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.dicom.identifiers import ResourceIds  # noqa: E402
from benchmarks.common import format_table, log, machine_summary, pharos_server  # noqa: E402
from tests.helpers import make_dicom  # noqa: E402

# Operation weights (per client iteration). Stores add 20 + 6 x 2 = 32 instances per 100
# iterations, deletes remove 6 studies of --study-size (6) instances: the archive keeps
# about its seeded size, so that the RSS samples compare like with like.
WEIGHTS = {"store-rest": 20, "store-stow": 6, "find": 12, "qido": 12, "metadata": 12,
           "file": 16, "delete": 6}
# Operations naming one resource: a 404 there is the resource being deleted.
NAMED = {"metadata", "file", "delete", "qido-series"}
SAMPLE_EVERY = 30.0


# --- the shared view of the archive ------------------------------------------------------------

@dataclass
class Study:
    patient_id: str
    uid: str
    orthanc_id: str
    instances: list[str] = field(default_factory=list)  # Orthanc IDs


class Archive:
    """What the clients stored and may read (readable studies), under one lock."""

    def __init__(self, seed: int) -> None:
        self.lock = threading.Lock()
        self.readable: list[Study] = []
        self.random = random.Random(seed)
        self.patients = [f"MIX{n:03d}" for n in range(20)]

    def pick(self) -> Study | None:
        with self.lock:
            return self.random.choice(self.readable) if self.readable else None

    def publish(self, study: Study) -> None:
        with self.lock:
            self.readable.append(study)

    def forget(self, study: Study) -> None:
        with self.lock:
            if study in self.readable:
                self.readable.remove(study)

    def take_for_delete(self, keep: int) -> Study | None:
        """A readable study to delete, as long as more than ``keep`` stay readable (the
        archive then stays about the same size: stores and deletes balance)."""
        with self.lock:
            if len(self.readable) <= keep:
                return None
            return self.random.choice(self.readable)


def new_instance(study: Study, series_uid: str, number: int) -> tuple[bytes, str]:
    from pydicom.uid import generate_uid
    sop = generate_uid()
    body = make_dicom(patient_id=study.patient_id, patient_name=f"{study.patient_id}^LOAD",
                      study_uid=study.uid, series_uid=series_uid, sop_uid=sop,
                      instance_number=number, size=64)
    return body, ResourceIds.compute(study.patient_id, study.uid, series_uid, sop).instance


# --- one client --------------------------------------------------------------------------------

@dataclass
class Results:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, op: str, seconds: float, status: str, error: str | None) -> None:
        with self.lock:
            self.latencies[op].append(seconds)
            self.statuses[op][status] += 1
            if error is not None:
                self.errors.append(f"{op}: {error}")


class Client:
    def __init__(self, number: int, host: str, port: int, archive: Archive,
                 results: Results, study_size: int, keep: int, seed: int) -> None:
        self.number, self.host, self.port = number, host, port
        self.archive, self.results = archive, results
        self.study_size, self.keep = study_size, keep
        self.random = random.Random(seed * 1000 + number)
        self.conn: http.client.HTTPConnection | None = None
        self.filling: Study | None = None
        self.series_uid = ""
        self.counter = 0

    # HTTP ------------------------------------------------------------------------------------

    def _connection(self) -> http.client.HTTPConnection:
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
            self.conn.connect()
            self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self.conn

    def request(self, op: str, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, bytes] | None:
        """One request, timed and recorded unless the caller records it (answers None on
        a dropped connection, recorded as an error)."""
        started = time.perf_counter()
        try:
            conn = self._connection()
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            answer = response.read()
        except (OSError, http.client.HTTPException) as error:
            if self.conn is not None:
                self.conn.close()
            self.conn = None
            self.results.record(op, time.perf_counter() - started, type(error).__name__,
                                f"{method} {path}: {error!r}")
            return None
        self.last_seconds = time.perf_counter() - started
        return response.status, answer

    def settle(self, op: str, method: str, path: str, answer: tuple[int, bytes] | None,
               *, named: bool = False, check: Any = None) -> bool:
        """Record an answer: 2xx (checked by ``check``), 404 on a named resource (absent),
        anything else an error. True when it was a 2xx that passed."""
        if answer is None:
            return False
        status, body = answer
        error = None
        if status >= 500 or (400 <= status and not (named and status == 404)):
            error = f"{method} {path} -> {status} {body[:300]!r}"
        elif status < 300 and check is not None:
            try:
                problem = check(body)
            except ValueError as bad:
                problem = f"unreadable answer: {bad}"
            if problem:
                error = f"{method} {path} -> {status}: {problem}"
        if status == 404 and error is None:
            label = "absent(404)"
        elif status < 300 and error is not None:
            label = f"{status}-wrong"
        else:
            label = str(status)
        self.results.record(op, self.last_seconds, label, error)
        return error is None and status < 300

    # operations ------------------------------------------------------------------------------

    def _study_to_fill(self) -> Study:
        from pydicom.uid import generate_uid
        if self.filling is None or len(self.filling.instances) >= self.study_size:
            if self.filling is not None:
                self.archive.publish(self.filling)
            patient = self.random.choice(self.archive.patients)
            uid = generate_uid()
            self.filling = Study(patient, uid, ResourceIds.compute(patient, uid, "", "").study)
            self.series_uid = generate_uid()
        return self.filling

    def store_rest(self) -> None:
        study = self._study_to_fill()
        body, instance = new_instance(study, self.series_uid, len(study.instances) + 1)
        answer = self.request("store-rest", "POST", "/instances", body,
                              {"Content-Type": "application/dicom"})
        if self.settle("store-rest", "POST", "/instances", answer, check=_stored(instance)):
            study.instances.append(instance)

    def store_stow(self) -> None:
        study = self._study_to_fill()
        parts = [new_instance(study, self.series_uid, len(study.instances) + 1 + i)
                 for i in range(2)]
        boundary = f"MIXLOAD{self.number}x{self.counter}"
        self.counter += 1
        body = b"".join(f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
                        + data + b"\r\n" for data, _ in parts) + f"--{boundary}--\r\n".encode()
        answer = self.request("store-stow", "POST", "/dicom-web/studies", body, {
            "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
            "Accept": "application/dicom+json"})
        if self.settle("store-stow", "POST", "/dicom-web/studies", answer,
                       check=_stow_stored(len(parts))):
            study.instances.extend(instance for _, instance in parts)

    def find(self) -> None:
        study = self.archive.pick()
        if study is not None and self.random.random() < 0.5:
            query = {"Level": "Instance", "Query": {"StudyInstanceUID": study.uid},
                     "Expand": True}
        else:
            patient = study.patient_id if study else self.random.choice(self.archive.patients)
            query = {"Level": "Study", "Query": {"PatientID": patient}, "Expand": True,
                     "RequestedTags": ["ModalitiesInStudy", "NumberOfStudyRelatedInstances"]}
        answer = self.request("find", "POST", "/tools/find", orjson.dumps(query),
                              {"Content-Type": "application/json"})
        self.settle("find", "POST", "/tools/find", answer, check=_expanded)

    def qido(self) -> None:
        study = self.archive.pick()
        if study is not None and self.random.random() < 0.5:
            path = f"/dicom-web/studies/{study.uid}/series"
            answer = self.request("qido", "GET", path, None, {"Accept": "application/dicom+json"})
            # An empty answer to a study deleted meanwhile is a 204 or a 404.
            self.settle("qido", "GET", path, answer, named=True, check=_json_list_or_empty)
            return
        patient = study.patient_id if study else self.random.choice(self.archive.patients)
        path = f"/dicom-web/studies?PatientID={patient}&limit=50&includefield=00201208"
        answer = self.request("qido", "GET", path, None, {"Accept": "application/dicom+json"})
        self.settle("qido", "GET", path, answer, check=_json_list_or_empty)

    def metadata(self) -> None:
        study = self.archive.pick()
        if study is None:
            return
        path = f"/dicom-web/studies/{study.uid}/metadata"
        answer = self.request("metadata", "GET", path, None, {"Accept": "application/dicom+json"})
        self.settle("metadata", "GET", path, answer, named=True, check=_json_list_or_empty)

    def file(self) -> None:
        study = self.archive.pick()
        if study is None or not study.instances:
            return
        path = f"/instances/{self.random.choice(study.instances)}/file"
        answer = self.request("file", "GET", path)
        self.settle("file", "GET", path, answer, named=True, check=_part10)

    def delete(self) -> None:
        study = self.archive.take_for_delete(self.keep)
        if study is None:
            return
        path = f"/studies/{study.orthanc_id}"
        answer = self.request("delete", "DELETE", path)
        self.settle("delete", "DELETE", path, answer, named=True, check=_json_object)
        self.archive.forget(study)

    def run(self, deadline: float) -> None:
        operations = list(WEIGHTS)
        weights = [WEIGHTS[op] for op in operations]
        try:
            while time.monotonic() < deadline:
                getattr(self, self.random.choices(operations, weights)[0].replace("-", "_"))()
        finally:
            if self.filling is not None and self.filling.instances:
                self.archive.publish(self.filling)
            if self.conn is not None:
                self.conn.close()


# --- answer checks (None: fine, else the problem) -----------------------------------------------

def _stored(instance: str) -> Any:
    def check(body: bytes) -> str | None:
        answer = orjson.loads(body)
        return None if answer.get("ID") == instance else f"stored as {answer.get('ID')}"
    return check


def _stow_stored(count: int) -> Any:
    def check(body: bytes) -> str | None:
        answer = orjson.loads(body)
        stored = answer.get("00081199", {}).get("Value", [])
        failed = answer.get("00081198", {}).get("Value", [])
        return None if len(stored) == count and not failed else \
            f"{len(stored)} stored, {len(failed)} failed"
    return check


def _expanded(body: bytes) -> str | None:
    answer = orjson.loads(body)
    if not isinstance(answer, list):
        return "not a list"
    broken = [item for item in answer if not isinstance(item, dict) or "ID" not in item
              or "MainDicomTags" not in item]
    return f"{len(broken)} broken resource(s): {broken[:1]}" if broken else None


def _json_list_or_empty(body: bytes) -> str | None:
    if not body:
        return None  # 204 No Content
    return None if isinstance(orjson.loads(body), list) else "not a list"


def _json_object(body: bytes) -> str | None:
    return None if isinstance(orjson.loads(body), dict) else "not an object"


def _part10(body: bytes) -> str | None:
    return None if body[128:132] == b"DICM" else f"not a DICOM file ({len(body)} bytes)"


# --- memory -------------------------------------------------------------------------------------

def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            text = Path(f"/proc/{pid}/task/{task}/children").read_text()
            found += [int(child) for child in text.split()]
    except OSError:
        pass
    return found


def tree_rss_mb(pid: int) -> float:
    """RSS of a process and all its descendants, in MB (/proc, Linux)."""
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
        pending += _children(current)
    return round(total / 1024, 1)


# --- the run ------------------------------------------------------------------------------------

def _blob_count(storage: Path) -> int:
    return sum(1 for p in storage.rglob("*") if p.is_file() and len(p.parent.name) == 2
               and len(p.parent.parent.name) == 2 and not p.name.endswith(".tmp"))


def seed_archive(host: str, port: int, archive: Archive, studies: int, study_size: int,
                 seed: int) -> None:
    results = Results()
    client = Client(999, host, port, archive, results, study_size, 0, seed)
    while len(archive.readable) < studies:
        client.store_rest()
        if results.errors:
            raise RuntimeError(f"seeding failed: {results.errors[:3]}")
    if client.filling is not None and client.filling.instances:
        archive.publish(client.filling)
    if client.conn is not None:
        client.conn.close()


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="pharos-mixed-"))
    config = {"Pharos": {"HttpWorkers": args.workers}}
    with pharos_server(workdir, database_url=args.database_url, config=config) as server:
        archive = Archive(args.seed)
        log(f"seeding {args.seed_studies} studies of {args.study_size} instances")
        seed_archive(server.host, server.port, archive, args.seed_studies, args.study_size,
                     args.seed)
        results = Results()
        clients = [Client(n, server.host, server.port, archive, results, args.study_size,
                          args.seed_studies // 2, args.seed) for n in range(args.clients)]
        rss: list[tuple[float, float]] = [(0.0, tree_rss_mb(server.process.pid))]
        started = time.monotonic()
        deadline = started + args.minutes * 60
        threads = [threading.Thread(target=c.run, args=(deadline,), daemon=True)
                   for c in clients]
        for thread in threads:
            thread.start()
        log(f"{args.clients} clients for {args.minutes} min; RSS {rss[0][1]} MB")
        while (now := time.monotonic()) < deadline:
            time.sleep(min(SAMPLE_EVERY - (now - started) % SAMPLE_EVERY, deadline - now))
            at = time.monotonic() - started
            if at < args.minutes * 60 - 1:
                rss.append((round(at), tree_rss_mb(server.process.pid)))
                log(f"{at:5.0f} s: RSS {rss[-1][1]} MB, "
                    f"{sum(len(v) for v in results.latencies.values())} requests, "
                    f"{len(results.errors)} errors")
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        rss.append((round(elapsed), tree_rss_mb(server.process.pid)))
        alive = server.process.poll() is None
        statistics = server.get_json("/statistics")
        instances = int(statistics["CountInstances"])  # type: ignore[index]
        blobs = _blob_count(server.directory / "storage")
        listed = len(server.get_json("/instances"))  # type: ignore[arg-type]
        if args.server_log:
            args.server_log.write_bytes(server.log_path.read_bytes())
    return {"results": results, "rss": rss, "elapsed": elapsed, "alive": alive,
            "instances": instances, "listed": listed, "blobs": blobs,
            "database": "postgresql" if args.database_url else "sqlite"}


def report(args: argparse.Namespace, outcome: dict[str, Any]) -> int:
    results: Results = outcome["results"]
    rows = []
    for op in [*WEIGHTS]:
        values = results.latencies.get(op, [])
        statuses = results.statuses.get(op, Counter())
        rows.append([op, len(values), round(len(values) / outcome["elapsed"], 1),
                     percentile(values, 0.5) * 1000, percentile(values, 0.99) * 1000,
                     " ".join(f"{k}:{v}" for k, v in sorted(statuses.items()))])
    total = sum(len(v) for v in results.latencies.values())
    print(f"\nmixed load, {outcome['database']}, {args.clients} clients, {args.workers} HTTP "
          f"workers, {outcome['elapsed']:.0f} s, {total} requests "
          f"({total / outcome['elapsed']:.0f}/s)")
    print(format_table(["operation", "count", "per s", "p50 ms", "p99 ms", "answers"], rows))
    fives = sum(n for op in results.statuses.values() for s, n in op.items()
                if s[:1] == "5")
    print(f"\n5xx: {fives}; errors: {len(results.errors)}")
    for error in results.errors[:20]:
        print("  " + error[:400])
    samples = outcome["rss"]
    print("server RSS (s: MB): " + ", ".join(f"{t:.0f}: {mb}" for t, mb in samples))
    # Flat: the last sample against the first one after warm-up (30 s).
    reference = samples[1][1] if len(samples) > 2 else samples[0][1]
    growth = samples[-1][1] - reference
    print(f"RSS growth after warm-up: {growth:+.1f} MB")
    consistent = outcome["blobs"] == outcome["instances"] == outcome["listed"]
    print(f"archive at the end: {outcome['instances']} instances (/statistics), "
          f"{outcome['listed']} listed, {outcome['blobs']} blob files; "
          f"{'consistent' if consistent else 'INCONSISTENT'}; server "
          f"{'alive' if outcome['alive'] else 'DEAD'}")
    if args.json:
        args.json.write_bytes(orjson.dumps({
            "machine": machine_summary(), "database": outcome["database"],
            "clients": args.clients, "workers": args.workers, "seconds": outcome["elapsed"],
            "requests": total, "operations": {r[0]: {"count": r[1], "p50_ms": r[3],
                                                      "p99_ms": r[4], "answers": r[5]}
                                               for r in rows},
            "errors": results.errors, "rss_mb": samples, "rss_growth_mb": growth,
            "archive": {k: outcome[k] for k in ("instances", "listed", "blobs")},
        }, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY))
    return 0 if not results.errors and consistent and outcome["alive"] else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2, help="HTTP worker processes")
    parser.add_argument("--database-url", help="PostgreSQL (a fresh database next to it)")
    parser.add_argument("--seed-studies", type=int, default=40)
    parser.add_argument("--study-size", type=int, default=6, help="instances per study")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--server-log", type=Path, help="keep a copy of the server's log")
    args = parser.parse_args(argv)
    return report(args, run(args))


if __name__ == "__main__":
    sys.exit(main())
