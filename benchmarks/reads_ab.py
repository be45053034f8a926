#!/usr/bin/env python3
"""Hot read paths of two checkouts of Pharos, A/B, on the same index: did a change slow them?

A refactoring that should change nothing (issue 18: the index answers dataclasses instead
of SQLAlchemy rows, the services open the transactions) must not make the reads the
viewers and scripts hammer slower. This fills one storage folder through ``POST
/instances`` (synthetic 32x32 CT files: ``--patients`` x 1 study x 2 series x
``--per-series``), then starts one server per checkout on a copy of it (same Python, same
venv: only the ``app/`` package differs), both at once, and sends batches of each
request to one then the other (the order alternating):

* ``GET /instances/{id}`` (one instance's JSON), ``GET /series/{id}``, ``GET /studies/{id}``;
* ``POST /tools/find``: one patient's instances with ``Expand``, every study with
  ``Expand`` and ``RequestedTags``;
* QIDO-RS: every study (with computed attributes), the instances of one study;
* WADO-RS metadata of one series.

The table gives, per request, the server's CPU time (its processes' user + system time:
what a code change changes, and what the load of other processes on a busy machine
changes little) and the wall time, medians over the batches, and the ratios
candidate/base (< 1: faster). Look at the ratios, not the absolute times. Nothing is asserted: a measurement, not a test.

    .venv/bin/python benchmarks/reads_ab.py --base /tmp/pharos-base --candidate .
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import common  # noqa: E402
from benchmarks.common import Server, format_table, log, synthetic_dataset  # noqa: E402


@contextmanager
def _server(checkout: Path, storage: Path, workdir: Path) -> Iterator[Server]:
    """``pharos serve`` of *checkout* (``pharos_server`` runs ``common.REPO``) on a fresh
    copy of *storage* (blobs and SQLite index)."""
    copy = Path(tempfile.mkdtemp(prefix="reads-ab-copy-", dir=workdir)) / "storage"
    shutil.copytree(storage, copy)
    previous, common.REPO = common.REPO, checkout.resolve()
    try:
        with common.pharos_server(workdir, config={
                "StorageDirectory": str(copy), "IndexDirectory": str(copy),
                "DicomWeb": {"Enable": True}}) as server:
            yield server
    finally:
        common.REPO = previous
        shutil.rmtree(copy.parent, ignore_errors=True)


def _fill(checkout: Path, workdir: Path, patients: int, per_series: int) -> Path:
    files = synthetic_dataset(patients * 2 * per_series, size=32, patients=patients,
                              studies=1, series=2)
    bodies = common.load_bodies(files)
    previous, common.REPO = common.REPO, checkout.resolve()
    with common.pharos_server(workdir) as server:
        common.post_all(server, bodies, 2)
        count = server.count_instances()
        log(f"filled: {count} instances")
        kept = Path(tempfile.mkdtemp(prefix="reads-ab-storage-", dir=workdir))
        common._stop(server.process)
        shutil.copytree(server.directory / "storage", kept / "storage")
    common.REPO = previous
    return kept / "storage"


def _requests(http: httpx.Client) -> dict[str, Callable[[], httpx.Response]]:
    instances = http.get("/instances").json()
    studies = http.get("/studies").json()
    study = http.get(f"/studies/{studies[0]}").json()
    series = http.get(f"/series/{study['Series'][0]}").json()
    patient = http.get(f"/patients/{study['ParentPatient']}").json()
    study_uid = study["MainDicomTags"]["StudyInstanceUID"]
    series_uid = series["MainDicomTags"]["SeriesInstanceUID"]
    patient_id = patient["MainDicomTags"]["PatientID"]
    one = instances[len(instances) // 2]
    return {
        "GET /instances/{id}": lambda: http.get(f"/instances/{one}"),
        "GET /series/{id}": lambda: http.get(f"/series/{study['Series'][0]}"),
        "GET /studies/{id}": lambda: http.get(f"/studies/{studies[0]}"),
        "find instances of a patient, Expand": lambda: http.post("/tools/find", json={
            "Level": "Instance", "Query": {"PatientID": patient_id}, "Expand": True}),
        "find every study, Expand+RequestedTags": lambda: http.post("/tools/find", json={
            "Level": "Study", "Query": {}, "Expand": True,
            "RequestedTags": ["ModalitiesInStudy", "NumberOfStudyRelatedInstances"]}),
        "QIDO studies": lambda: http.get("/dicom-web/studies", params={
            "includefield": "ModalitiesInStudy,NumberOfStudyRelatedInstances"}),
        "QIDO instances of a study": lambda: http.get(
            f"/dicom-web/studies/{study_uid}/instances"),
        "WADO-RS series metadata": lambda: http.get(
            f"/dicom-web/studies/{study_uid}/series/{series_uid}/metadata"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", type=Path, required=True, help="checkout A (the reference)")
    parser.add_argument("--candidate", type=Path, required=True, help="checkout B")
    parser.add_argument("--patients", type=int, default=20)
    parser.add_argument("--per-series", type=int, default=25)
    parser.add_argument("--batches", type=int, default=10, help="batches per kind and server")
    parser.add_argument("--batch", type=int, default=40, help="requests per batch")
    parser.add_argument("--json", type=Path)
    options = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="reads-ab-"))
    try:
        storage = _fill(options.base, workdir, options.patients, options.per_series)
        with _server(options.base, storage, workdir) as base, \
                _server(options.candidate, storage, workdir) as candidate, \
                httpx.Client(base_url=base.url, timeout=60) as base_http, \
                httpx.Client(base_url=candidate.url, timeout=60) as candidate_http:
            rows, samples = _measure(
                {"base": base, "candidate": candidate},
                {"base": _requests(base_http), "candidate": _requests(candidate_http)},
                options.batches, options.batch)
        print(format_table(("request (ms per request)", "CPU base", "CPU cand.", "ratio",
                            "wall base", "wall cand.", "ratio"), rows))
        if options.json:
            options.json.write_bytes(orjson.dumps({"samples": samples, "table": rows}))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _tree_cpu_seconds(root: int) -> float:
    """User + system CPU time of *root* and every process below it (the HTTP workers)."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    total = 0.0
    for pid, cpu in times.items():
        current = pid
        while current > 1 and current != root:
            current = parents.get(current, 0)
        if current == root:
            total += cpu
    return total


def _measure(servers: dict[str, Server], senders: dict[str, dict[str, Callable[[], httpx.Response]]],
             batches: int, batch: int) -> tuple[list[tuple[str, ...]], dict[str, Any]]:
    """Per kind of request, *batches* batches of *batch* requests to each server in turn
    (the order alternating): the server's CPU time per request (what a change to the
    code changes; another process's load changes it little) and the wall time per
    request, medians over the batches."""
    rows, samples = [], {}
    for kind in senders["base"]:
        cpu: dict[str, list[float]] = {"base": [], "candidate": []}
        wall: dict[str, list[float]] = {"base": [], "candidate": []}
        for name in servers:
            for _ in range(5):
                senders[name][kind]().raise_for_status()  # warm
        for number in range(batches):
            order = ("base", "candidate") if number % 2 == 0 else ("candidate", "base")
            for name in order:
                send, pid = senders[name][kind], servers[name].process.pid
                before, start = _tree_cpu_seconds(pid), time.perf_counter()
                for _ in range(batch):
                    send().raise_for_status()
                wall[name].append((time.perf_counter() - start) / batch)
                cpu[name].append((_tree_cpu_seconds(pid) - before) / batch)
        samples[kind] = {"cpu": cpu, "wall": wall}
        medians = {f"{measure} {name}": statistics.median(values[name]) * 1000
                   for measure, values in (("cpu", cpu), ("wall", wall)) for name in servers}
        row = (kind, f"{medians['cpu base']:.2f}", f"{medians['cpu candidate']:.2f}",
               f"{medians['cpu candidate'] / medians['cpu base']:.2f}",
               f"{medians['wall base']:.2f}", f"{medians['wall candidate']:.2f}",
               f"{medians['wall candidate'] / medians['wall base']:.2f}")
        rows.append(row)
        log("  ".join(row))
    return rows, samples


if __name__ == "__main__":
    main()
