#!/usr/bin/env python3
"""Query latency at scale: /tools/find (and QIDO-RS) on Pharos next to Orthanc.

The archive is filled with ``--instances`` synthetic instances (gen_dataset.py shape:
N/100 patients x 2 studies x 2 series x 25 instances, 32x32 pixels), the same files in
every server of the run. Then typical queries are sent over HTTP (httpx, one keep-alive
connection): a patient by PatientID, name prefix and infix wildcards, a study date
range, a modality at series level, the instances of one patient, Expand and computed
RequestedTags on 100 studies, and the same kinds of QIDO-RS searches where the server
has DICOMweb. Each query is warmed up, then sent ``--repeat`` times, the queries
interleaved round-robin; the table gives the median (and p90) latency in ms per server
and the ratio Pharos/Orthanc (the target: <= 10 ms and an order of magnitude below
Orthanc).

    .venv/bin/python benchmarks/find.py                                   # 2000, SQLite + Orthanc
    .venv/bin/python benchmarks/find.py --instances 2000,20000,100000 --backend both
    .venv/bin/python benchmarks/find.py --instances 100000 --backend postgresql --explain
    .venv/bin/python benchmarks/find.py --skip-orthanc --explain --json /tmp/find.json

How the servers are filled (loading is not what is measured):

* Pharos: an index-level bulk load (``benchmarks/bulkload.py``: the ingest code's
  ``parse_instance`` + ``store_instance``, 1000 instances per transaction, blobs
  without fsync). The SQLite index of each scale and schema is cached and copied for
  each run; a PostgreSQL run gets a fresh database (dropped after), filled the same
  way, then ``VACUUM ANALYZE`` (what autovacuum does within a minute in production:
  ingest updates the parent rows once per instance, leaving dead tuples behind).
* Orthanc: REST upload (``POST /instances``, 4 clients) once per scale into a cached
  storage folder; each run gets a fresh copy (attachments hard-linked, index copied).
  Orthanc runs with the DICOMweb plugin when it is installed (for QIDO-RS).

Caches live under ``$TMPDIR/pharos-bench`` (``PHAROS_BENCH_CACHE``), never in the repo.
``--explain`` also prints, for Pharos, every SQL statement one /tools/find runs with its
plan (EXPLAIN QUERY PLAN on SQLite, EXPLAIN ANALYZE on PostgreSQL) and the in-process
latency (no HTTP). No timing is asserted: this is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import (  # noqa: E402
    CACHE,
    GEN_DATASET,
    REPO,
    format_table,
    fresh_postgres_database,
    load_bodies,
    log,
    machine_summary,
    median,
    orthanc_available,
    orthanc_server,
    pharos_server,
    post_all,
    ratio,
)

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DICOMWEB_PLUGIN = Path(os.environ.get("PHAROS_ORTHANC_DICOMWEB",
                                      "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"))
STUDIES, SERIES, INSTANCES = 2, 2, 25  # per patient, per study, per series
PER_PATIENT = STUDIES * SERIES * INSTANCES


# --- data -------------------------------------------------------------------------------

def dataset(instances: int) -> list[Path]:
    """The files of ceil(instances/100) patients, from the smallest cached data set that
    holds them (a data set of P patients holds every smaller one: same names, same
    shape), generated with gen_dataset.py when none does."""
    patients = max(1, math.ceil(instances / PER_PATIENT))
    CACHE.mkdir(parents=True, exist_ok=True)
    candidates = []
    for folder in CACHE.glob(f"find-ct32-*x{STUDIES}x{SERIES}x{INSTANCES}"):
        try:
            size = int(folder.name.split("-")[2].split("x")[0])
        except ValueError:
            continue
        if size >= patients:
            candidates.append((size, folder))
    if candidates:
        folder = min(candidates)[1]
    else:
        folder = CACHE / f"find-ct32-{patients}x{STUDIES}x{SERIES}x{INSTANCES}"
        partial = folder.with_name(folder.name + f".partial-{os.getpid()}")
        log(f"generating {patients * PER_PATIENT} instances in {folder}")
        subprocess.run([sys.executable, str(GEN_DATASET), str(partial), "--patients",
                        str(patients), "--studies", str(STUDIES), "--series", str(SERIES),
                        "--instances", str(INSTANCES), "--size", "32"],
                       check=True, stdout=subprocess.DEVNULL)
        partial.rename(folder)
    wanted = {f"PAT{p:05d}" for p in range(patients)}
    files = sorted(p for p in folder.glob("*.dcm") if p.name.split("_", 1)[0] in wanted)
    if len(files) != patients * PER_PATIENT:
        raise SystemExit(f"{folder} holds {len(files)} files for {patients} patients: "
                         "delete it and run again")
    return files


# --- queries ----------------------------------------------------------------------------

@dataclass
class Query:
    name: str
    method: str  # POST /tools/find or GET (QIDO-RS)
    path: str
    body: dict[str, Any] | None = None

    @property
    def is_qido(self) -> bool:
        return self.method == "GET"


def queries(files: Sequence[Path], instances: int) -> list[Query]:
    import pydicom
    patients = max(1, math.ceil(instances / PER_PATIENT))
    middle = f"PAT{patients // 2:05d}"
    sample = pydicom.dcmread(next(p for p in files if p.name.startswith(middle + "_0_0_")),
                             stop_before_pixels=True)
    study_uid, series_uid = sample.StudyInstanceUID, sample.SeriesInstanceUID
    accession = sample.AccessionNumber
    date_range = "20150101-20151231"  # one year in 15: ~1/15 of the studies
    hundred = {"Level": "Study", "Query": {}, "Expand": True, "Limit": 100}

    def find(name: str, body: dict[str, Any]) -> Query:
        return Query(name, "POST", "/tools/find", body)

    def order(key: str, direction: str = "ASC", kind: str = "DicomTag") -> list[dict[str, str]]:
        return [{"Type": kind, "Key": key, "Direction": direction}]

    by_number = order("InstanceNumber", kind="DicomTagAsInt")

    def qido(name: str, path: str) -> Query:
        return Query(name, "GET", "/dicom-web" + path)

    return [
        find("patient by PatientID", {"Level": "Patient", "Query": {"PatientID": middle}}),
        find("patient name prefix SMITH*", {"Level": "Patient", "CaseSensitive": False,
                                            "Query": {"PatientName": "SMITH*"}}),
        find("patient name infix *JOHN*", {"Level": "Patient", "CaseSensitive": False,
                                           "Query": {"PatientName": "*JOHN*"}}),
        find("studies by PatientName prefix", {"Level": "Study", "CaseSensitive": False,
                                               "Query": {"PatientName": "SMITH*"}}),
        find("study by AccessionNumber", {"Level": "Study",
                                          "Query": {"AccessionNumber": accession}}),
        find("studies StudyDate range", {"Level": "Study",
                                         "Query": {"StudyDate": date_range}}),
        find("series Modality=CT", {"Level": "Series", "Query": {"Modality": "CT"}}),
        find("instances of one patient", {"Level": "Instance",
                                          "Query": {"PatientID": middle}}),
        find("studies of one patient, Expand", {"Level": "Study", "Expand": True,
                                                "Query": {"PatientID": middle}}),
        find("Expand 100 studies", hundred),
        find("RequestedTags 100 studies", {**hundred, "RequestedTags": [
            "ModalitiesInStudy", "NumberOfStudyRelatedInstances"]}),
        # Orthanc 1.12.5's extended find (Orthanc 1.10.1 ignores OrderBy and knows no
        # /tools/count-resources): sorted pages, as Orthanc Explorer 2 asks for them.
        find("OrderBy InstanceNumber (int) + Limit 100", {
            "Level": "Instance", "Query": {}, "OrderBy": by_number, "Limit": 100}),
        find("OrderBy InstanceNumber DESC, Since 1000, Limit 100", {
            "Level": "Instance", "Query": {}, "Limit": 100, "Since": 1000,
            "OrderBy": order("InstanceNumber", "DESC", "DicomTagAsInt")}),
        find("OrderBy StudyDate DESC + Limit 100", {
            "Level": "Study", "Query": {}, "OrderBy": order("StudyDate", "DESC"),
            "Limit": 100}),
        find("OrderBy LastUpdate DESC + Limit 100 (OE2)", {
            "Level": "Study", "Query": {}, "Limit": 100,
            "OrderBy": order("LastUpdate", "DESC", "Metadata")}),
        find("OrderBy PatientName, Since 1000, Limit 100", {
            "Level": "Study", "Query": {}, "OrderBy": order("PatientName"), "Since": 1000,
            "Limit": 100}),
        find("OrderBy SeriesDescription + Limit 100", {
            "Level": "Series", "Query": {}, "OrderBy": order("SeriesDescription"),
            "Limit": 100}),
        find("instances of one patient by InstanceNumber", {
            "Level": "Instance", "Query": {"PatientID": middle}, "OrderBy": by_number}),
        Query("count-resources instances StudyDate range", "POST", "/tools/count-resources",
              {"Level": "Instance", "Query": {"StudyDate": date_range}}),
        qido("QIDO studies?PatientID", f"/studies?PatientID={middle}"),
        qido("QIDO studies?PatientName=SMITH*", "/studies?PatientName=SMITH*"),
        qido("QIDO studies?StudyDate range", f"/studies?StudyDate={date_range}"),
        qido("QIDO studies?limit=100", "/studies?limit=100"),
        qido("QIDO series?Modality=CT&limit=100", "/series?Modality=CT&limit=100"),
        qido("QIDO series of one study", f"/studies/{study_uid}/series"),
        qido("QIDO instances of one series",
             f"/studies/{study_uid}/series/{series_uid}/instances"),
    ]


# --- servers, filled --------------------------------------------------------------------

def _schema_key() -> str:
    """Changes when a migration changes: a cached index is only reused for its schema."""
    digest = hashlib.sha1()
    for path in sorted((REPO / "app" / "index" / "migrations").rglob("*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:10]


def _pharos_document(storage: Path, index: Path | None, database_url: str | None) -> dict:
    pharos: dict[str, Any] = {"SweepOrphansAtStart": False}  # the blob folder is shared
    if database_url:
        pharos["DatabaseUrl"] = database_url
    document: dict[str, Any] = {"StorageDirectory": str(storage), "Pharos": pharos,
                                "StableAge": 3600}
    if index is not None:
        document["IndexDirectory"] = str(index)
    return document


def _bulk_load(document: dict, files: Sequence[Path]) -> None:
    from app.config import Settings
    from benchmarks.bulkload import bulk_load
    settings = Settings.from_document(document, environ={})
    report = bulk_load(settings, files)
    log(f"  Pharos bulk load: {report.stored} instances in {report.seconds:.0f} s "
        f"({report.rate:.0f}/s)")


def _sqlite_index(files: Sequence[Path], blobs: Path) -> Path:
    """A cached, complete SQLite index of these files (built once per scale and schema)."""
    import sqlite3
    folder = CACHE / f"find-pharos-sqlite-{len(files)}-{_schema_key()}"
    database = folder / "pharos-index.sqlite"
    if (folder / "complete").exists():
        return database
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    log(f"  filling the Pharos SQLite index {database}")
    _bulk_load(_pharos_document(blobs, folder, None), files)
    with sqlite3.connect(database) as conn:  # one self-contained file to copy
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    (folder / "complete").touch()
    return database


@contextmanager
def pharos_filled(workdir: Path, files: Sequence[Path], backend: str,
                  postgres_url: str) -> Iterator[tuple[Any, dict]]:
    """A running Pharos holding *files*, and its configuration document."""
    blobs = CACHE / "find-pharos-blobs"  # deterministic keys: shared by every fill
    blobs.mkdir(parents=True, exist_ok=True)
    if backend == "sqlite":
        source = _sqlite_index(files, blobs)
        index = Path(tempfile.mkdtemp(prefix="pharos-index-", dir=workdir))
        try:
            shutil.copyfile(source, index / source.name)
            document = _pharos_document(blobs, index, None)
            with pharos_server(workdir, config=document) as server:
                yield server, document
        finally:
            shutil.rmtree(index, ignore_errors=True)
        return
    with fresh_postgres_database(postgres_url) as url:
        document = _pharos_document(blobs, None, url)
        _bulk_load(document, files)
        import psycopg
        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"),
                             autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
        with pharos_server(workdir, config=document) as server:
            yield server, document


def _orthanc_storage(workdir: Path, files: Sequence[Path]) -> Path:
    """A cached Orthanc storage (index + attachments) holding *files*, filled by REST."""
    folder = CACHE / f"find-orthanc-{len(files)}"
    if (folder / "complete").exists():
        return folder / "storage"
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "storage").mkdir(parents=True)
    log(f"  filling Orthanc through REST (4 clients) into {folder}")
    storage = str(folder / "storage")
    with orthanc_server(workdir, config={"StorageDirectory": storage,
                                         "IndexDirectory": storage}) as server:
        start = time.perf_counter()
        for chunk in range(0, len(files), 20000):  # bounded memory
            result = post_all(server, load_bodies(files[chunk:chunk + 20000]), 4)
            if result.failures:
                raise SystemExit(f"Orthanc refused files: {result.failures[:3]}")
        seconds = time.perf_counter() - start
        count = server.count_instances()
    log(f"  Orthanc REST load: {count} instances in {seconds:.0f} s "
        f"({count / seconds:.0f}/s)")
    if count != len(files):
        raise SystemExit(f"Orthanc holds {count} instances, expected {len(files)}")
    (folder / "complete").touch()
    return folder / "storage"


@contextmanager
def orthanc_filled(workdir: Path, files: Sequence[Path]) -> Iterator[Any]:
    source = _orthanc_storage(workdir, files)
    copy = Path(tempfile.mkdtemp(prefix="orthanc-storage-", dir=workdir)) / "storage"
    try:
        copy.mkdir()
        for entry in source.iterdir():  # attachments are never rewritten: hard links
            if entry.is_dir():
                subprocess.run(["cp", "-al", str(entry), str(copy / entry.name)], check=True)
            else:
                shutil.copyfile(entry, copy / entry.name)
        config: dict[str, Any] = {"StorageDirectory": str(copy), "IndexDirectory": str(copy),
                                  "StableAge": 3600}
        if DICOMWEB_PLUGIN.exists():
            config["Plugins"] = [str(DICOMWEB_PLUGIN)]
        with orthanc_server(workdir, config=config) as server:
            yield server
    finally:
        shutil.rmtree(copy.parent, ignore_errors=True)


# --- measuring --------------------------------------------------------------------------

@dataclass
class Measure:
    samples: list[float] = field(default_factory=list)  # ms
    answers: int | None = None
    error: str | None = None

    @property
    def median(self) -> float:
        return median(self.samples)

    @property
    def p90(self) -> float:
        if not self.samples:
            return float("nan")
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]


def _send(client: httpx.Client, query: Query) -> httpx.Response:
    if query.is_qido:
        return client.get(query.path, headers={"Accept": "application/dicom+json"})
    return client.post(query.path, content=orjson.dumps(query.body),
                       headers={"Content-Type": "application/json"})


def _answers(response: httpx.Response) -> int | None:
    if not response.content:
        return 0
    try:
        value = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None
    return len(value) if isinstance(value, list) else None


def measure(server: Any, all_queries: Sequence[Query], repeat: int,
            warmup: int) -> dict[str, Measure]:
    results = {q.name: Measure() for q in all_queries}
    with httpx.Client(base_url=server.url, timeout=300) as client:
        active = []
        for query in all_queries:
            response = _send(client, query)
            if response.status_code != 200:
                results[query.name].error = f"HTTP {response.status_code}"
                continue
            results[query.name].answers = _answers(response)
            active.append(query)
        for _ in range(max(0, warmup - 1)):
            for query in active:
                _send(client, query)
        for _ in range(repeat):
            for query in active:
                start = time.perf_counter()
                response = _send(client, query)
                elapsed = (time.perf_counter() - start) * 1000
                if response.status_code != 200:
                    results[query.name].error = f"HTTP {response.status_code}"
                results[query.name].samples.append(elapsed)
    return results


# --- EXPLAIN (Pharos, in process) ---------------------------------------------------------

def explain(document: dict, find_queries: Sequence[Query], repeat: int) -> dict[str, dict]:
    """Each /tools/find in process: its SQL statements with their plans, and its latency."""
    from sqlalchemy import event

    from app.config import Settings
    from app.context import ServerContext
    from app.services.find import count_resources, tools_find

    context = ServerContext.open(Settings.from_document(document, environ={}))
    engine = context.db.engine
    dialect = engine.dialect.name
    captured: list[tuple[str, Any]] = []

    def capture(_conn, _cursor, statement, parameters, _context, _many):  # noqa: ANN001
        captured.append((statement, parameters))

    report: dict[str, dict] = {}
    try:
        for query in find_queries:
            timings = []
            run = count_resources if query.path.endswith("count-resources") else tools_find
            for _ in range(repeat):
                start = time.perf_counter()
                run(context, query.body)
                timings.append((time.perf_counter() - start) * 1000)
            captured.clear()
            event.listen(engine, "before_cursor_execute", capture)
            try:
                run(context, query.body)
            finally:
                event.remove(engine, "before_cursor_execute", capture)
            plans = []
            with engine.connect() as conn:
                for statement, parameters in captured:
                    if not statement.lstrip().upper().startswith("SELECT"):
                        continue
                    prefix = "EXPLAIN QUERY PLAN " if dialect == "sqlite" else \
                        "EXPLAIN (ANALYZE, COSTS OFF, TIMING ON, SUMMARY ON) "
                    rows = conn.exec_driver_sql(prefix + statement, parameters).all()
                    lines = [row[-1] if dialect == "sqlite" else row[0] for row in rows]
                    plans.append({"sql": " ".join(statement.split()), "plan": lines})
            report[query.name] = {"in_process_ms": median(timings), "statements": plans}
    finally:
        context.close()
    return report


def print_explain(backend: str, report: dict[str, dict]) -> None:
    print(f"\n=== Pharos on {backend}: SQL and plans of each /tools/find ===")
    for name, entry in report.items():
        print(f"\n--- {name}: {entry['in_process_ms']:.2f} ms in process, "
              f"{len(entry['statements'])} SELECT(s)")
        for item in entry["statements"]:
            sql = item["sql"]
            print(f"  SQL: {sql[:400]}{' ...' if len(sql) > 400 else ''}")
            for line in item["plan"]:
                print(f"      {line}")


# --- the run ----------------------------------------------------------------------------

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", default="2000",
                        help="scale(s), comma-separated: 2000, 20000, 100000 (default 2000)")
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="sqlite",
                        help="Pharos index backend(s) (default sqlite)")
    parser.add_argument("--database-url", default=DEFAULT_POSTGRES,
                        help="PostgreSQL server for --backend postgresql|both: a fresh "
                             "database is created next to this URL and dropped after")
    parser.add_argument("--repeat", type=int, default=20,
                        help="timed requests per query and server (median reported)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed requests per query")
    parser.add_argument("--skip-orthanc", action="store_true", help="measure Pharos only")
    parser.add_argument("--skip-pharos", action="store_true", help="measure Orthanc only")
    parser.add_argument("--no-qido", action="store_true", help="only /tools/find queries")
    parser.add_argument("--only", action="append", default=[], metavar="TEXT",
                        help="only the queries whose name contains TEXT (repeatable)")
    parser.add_argument("--explain", action="store_true",
                        help="print Pharos' SQL, query plans and in-process latency")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()),
                        help="where the fresh server storages go (default: the temp dir)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    args.scales = [int(x) for x in args.instances.split(",") if x.strip()]
    args.backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    return args


def run_scale(args: argparse.Namespace, instances: int) -> dict[str, Any]:
    files = dataset(instances)
    selected = [q for q in queries(files, instances) if not (args.no_qido and q.is_qido)
                and (not args.only or any(t.lower() in q.name.lower() for t in args.only))]
    log(f"\n== {len(files)} instances: {len(files) // PER_PATIENT} patients, "
        f"{len(files) // PER_PATIENT * STUDIES} studies, "
        f"{len(files) // PER_PATIENT * STUDIES * SERIES} series ==")
    results: dict[str, dict[str, Measure]] = {}
    plans: dict[str, dict] = {}
    if not args.skip_pharos:
        for backend in args.backends:
            log(f"  Pharos ({backend}) ...")
            with pharos_filled(args.workdir, files, backend, args.database_url) as (server,
                                                                                    document):
                results[f"Pharos {backend}"] = measure(server, selected, args.repeat,
                                                       args.warmup)
                if args.explain:
                    plans[backend] = explain(document, [q for q in selected if not q.is_qido],
                                             max(5, args.repeat // 2))
    if not args.skip_orthanc:
        if orthanc_available():
            log("  Orthanc ...")
            with orthanc_filled(args.workdir, files) as server:
                results["Orthanc"] = measure(server, selected, args.repeat, args.warmup)
        else:
            log("  Orthanc is not installed: Pharos alone")
    return {"instances": len(files), "queries": selected, "results": results, "plans": plans}


def report(run: dict[str, Any], repeat: int) -> None:
    results: dict[str, dict[str, Measure]] = run["results"]
    servers = list(results)
    pharos = [s for s in servers if s.startswith("Pharos")]
    headers = ["query", "answers"]
    for server in servers:
        headers += [f"{server} ms", "p90"]
    if "Orthanc" in results:
        headers += [f"{s.split()[1]}/Orthanc" for s in pharos]
    rows = []
    for query in run["queries"]:
        counts = {results[s][query.name].answers for s in servers
                  if results[s][query.name].error is None}
        row: list[object] = [query.name, "/".join(str(c) for c in sorted(counts, key=str))
                             if counts else "-"]
        for server in servers:
            measure_ = results[server][query.name]
            if measure_.error:
                row += [measure_.error, "-"]
            else:
                row += [measure_.median, measure_.p90]
        if "Orthanc" in results:
            theirs = results["Orthanc"][query.name]
            for server in pharos:
                ours = results[server][query.name]
                row.append(ratio(ours.median, theirs.median)
                           if not (ours.error or theirs.error) else "-")
        rows.append(row)
    print(f"\n/tools/find and QIDO-RS latency at {run['instances']} instances, median of "
          f"{repeat} requests (ms); 'answers' differing between servers are shown a/b")
    print(format_table(headers, rows))
    for backend, plan in run["plans"].items():
        print_explain(backend, plan)


def growth(runs: Sequence[dict[str, Any]]) -> None:
    if len(runs) < 2:
        return
    servers = list(runs[0]["results"])
    for server in servers:
        headers = ["query"] + [f"{run['instances']}" for run in runs]
        rows = []
        for query in runs[0]["queries"]:
            row: list[object] = [query.name]
            for run in runs:
                measure_ = run["results"].get(server, {}).get(query.name)
                row.append(measure_.median if measure_ and not measure_.error else "-")
            rows.append(row)
        print(f"\n{server}: median ms by number of instances")
        print(format_table(headers, rows))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    summary = machine_summary()
    log(f"machine: {summary}")
    runs = []
    for instances in args.scales:
        run = run_scale(args, instances)
        report(run, args.repeat)
        runs.append(run)
    growth(runs)
    if args.json:
        document = {"machine": summary, "repeat": args.repeat, "runs": [{
            "instances": run["instances"],
            "queries": [{"name": q.name, "method": q.method, "path": q.path, "body": q.body}
                        for q in run["queries"]],
            "results": {server: {name: {"median_ms": m.median, "p90_ms": m.p90,
                                        "answers": m.answers, "error": m.error,
                                        "samples_ms": m.samples}
                                 for name, m in measures.items()}
                        for server, measures in run["results"].items()},
            "plans": run["plans"]} for run in runs]}
        args.json.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
