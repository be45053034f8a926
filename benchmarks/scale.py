#!/usr/bin/env python3
"""Pharos at scale (issue 16): load N instances through the real ingest code, then
measure queries and sizes at N.

* **Load**: ``--count`` synthetic CT instances (default 100,000; 16x16 pixels, made in
  process with pydicom: 100 instances per patient, 2 studies x 2 series x 25, names,
  dates and accession numbers spread like ``benchmarks/find.py``'s) go through
  ``app.services.ingest.ingest_instance`` — the function every door calls: parse, blob
  written and fsynced, one index transaction per instance — from ``--processes``
  worker processes, each with its own ``ServerContext`` on the same index and storage.
  The ingest rate is reported per 10 % slice of the load (the first slice against the
  last says whether ingest stays flat as the index grows).
* **Queries at N**, on a ``pharos serve`` started on that index: the selective
  ``/tools/find`` and QIDO-RS queries of ``benchmarks/find.py`` and the same searches as
  C-FIND (Patient and Study Root), median and p95 over ``--repeat`` rounds.
* **Sizes**: index bytes per instance (PostgreSQL: ``pg_total_relation_size`` of every
  table, indexes and TOAST included; SQLite: the database file and its WAL), and the
  server's RSS (one HTTP process) right after start and after the queries.

    .venv/bin/python benchmarks/scale.py --count 20000 \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres
    .venv/bin/python benchmarks/scale.py --count 5000          # SQLite

PostgreSQL runs get a fresh database, dropped at the end (``--keep`` keeps it and the
storage folder). Nothing is asserted: this is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import (  # noqa: E402
    format_table,
    free_port,
    fresh_postgres_database,
    log,
    machine_summary,
    pharos_server,
)
from benchmarks.find import Measure, Query, measure  # noqa: E402

PER_PATIENT, PER_STUDY, PER_SERIES = 100, 50, 25
LAST_NAMES = ["SMITH", "JONES", "BROWN", "TAYLOR", "WILSON", "DAVIES", "EVANS", "THOMAS",
              "ROBERTS", "WALKER"]
FIRST_NAMES = ["JOHN", "MARY", "PETER", "ANNA", "PAUL", "LUCY", "MARK", "EMMA", "LUKE",
               "SARAH"]
UID_ROOT = "1.2.826.0.1.3680043.10.1287"  # a private root, deterministic UIDs below it
ORIGIN = {"Origin": "RestApi", "RemoteIP": "127.0.0.1", "HttpUsername": ""}


# --- data ---------------------------------------------------------------------------------

def patient_of(index: int) -> int:
    return index // PER_PATIENT


def instance_bytes(index: int, run: int) -> bytes:
    """Instance *index* of the synthetic archive (same index, same file, per run)."""
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian
    patient = patient_of(index)
    study = (index // PER_STUDY) % 2
    series = (index // PER_SERIES) % 2
    number = index % PER_SERIES
    ds = Dataset()
    ds.SOPClassUID = CTImageStorage
    ds.PatientID = f"PAT{patient:06d}"
    ds.PatientName = f"{LAST_NAMES[patient % 10]}^{FIRST_NAMES[(patient // 10) % 10]}"
    ds.PatientBirthDate = f"{1930 + patient % 70}0101"
    ds.PatientSex = "MF"[patient % 2]
    ds.StudyInstanceUID = f"{UID_ROOT}.{run}.{patient}.{study}"
    ds.SeriesInstanceUID = f"{ds.StudyInstanceUID}.{series}"
    ds.SOPInstanceUID = f"{ds.SeriesInstanceUID}.{number}"
    ds.StudyDate = f"{2010 + (patient + study) % 15}{1 + patient % 12:02d}{1 + patient % 28:02d}"
    ds.StudyTime = "101010"
    ds.AccessionNumber = f"ACC{patient:07d}{study}"
    ds.StudyDescription = ["CT CHEST", "CT ABDOMEN"][study]
    ds.SeriesDescription = ["AXIAL", "CORONAL"][series]
    ds.Modality = "CT"
    ds.SeriesNumber = series + 1
    ds.InstanceNumber = number + 1
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = ds.Columns = 16
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = bytes(range(256)) * 2
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


# --- load ---------------------------------------------------------------------------------

def load(document: dict, count: int, processes: int, run: int) -> list[float]:
    """Ingest *count* instances from *processes* workers; answer the sorted completion
    times. Each worker takes whole patients in turn, as modalities sending at once."""
    from app.config import Settings
    from app.index.db import migrate
    migrate(Settings.from_document(document, environ={}).effective_database_url)
    patients = list(range((count + PER_PATIENT - 1) // PER_PATIENT))
    shares = []
    for worker in range(processes):
        mine = patients[worker::processes]
        shares.append([i for p in mine for i in range(p * PER_PATIENT,
                                                      min(count, (p + 1) * PER_PATIENT))])
    context = multiprocessing.get_context("spawn")
    with context.Pool(processes) as pool:
        jobs = [pool.apply_async(_load_share_list, (document, share, run)) for share in shares]
        times = sorted(t for job in jobs for t in job.get())
    return times


def _load_share_list(document: dict, indexes: list[int], run: int) -> list[float]:
    from app.config import Settings
    from app.context import ServerContext
    from app.services.ingest import ingest_instance
    context = ServerContext.open(Settings.from_document(document, environ={}))
    done: list[float] = []
    try:
        for index in indexes:
            ingest_instance(context, instance_bytes(index, run), ORIGIN)
            done.append(time.time())
    finally:
        context.close()
    return done


def slices(started: float, times: Sequence[float], parts: int = 10) -> list[tuple[str, int, float]]:
    """(label, instances, rate) per 1/parts of the load, by completion order."""
    rows: list[tuple[str, int, float]] = []
    count = len(times)
    if count < 2:
        return rows
    # The clock starts at the first completion: worker start-up (imports, connections)
    # is not ingest.
    previous_end = times[0]
    for part in range(parts):
        first, last = part * count // parts, (part + 1) * count // parts
        measured = last - max(first, 1)
        if measured <= 0:
            continue
        end = times[last - 1]
        seconds = max(1e-9, end - previous_end)
        rows.append((f"{first + 1:,}-{last:,}", last - first, measured / seconds))
        previous_end = end
    return rows


# --- queries ------------------------------------------------------------------------------

def http_queries(count: int, run: int) -> list[Query]:
    patients = max(1, count // PER_PATIENT)
    middle = patients // 2
    patient_id = f"PAT{middle:06d}"
    study_uid = f"{UID_ROOT}.{run}.{middle}.0"
    series_uid = f"{study_uid}.0"
    date_range = "20150101-20151231"

    def find(name: str, body: dict[str, Any]) -> Query:
        return Query(name, "POST", "/tools/find", body)

    def qido(name: str, path: str) -> Query:
        return Query(name, "GET", "/dicom-web" + path)

    return [
        find("patient by PatientID", {"Level": "Patient", "Query": {"PatientID": patient_id}}),
        find("patient name prefix SMITH*", {"Level": "Patient", "CaseSensitive": False,
                                            "Query": {"PatientName": "SMITH*"}, "Limit": 100}),
        find("patient name infix *JOHN*", {"Level": "Patient", "CaseSensitive": False,
                                           "Query": {"PatientName": "*JOHN*"}, "Limit": 100}),
        find("study by AccessionNumber", {"Level": "Study",
                                          "Query": {"AccessionNumber": f"ACC{middle:07d}0"}}),
        find("study by StudyInstanceUID", {"Level": "Study",
                                           "Query": {"StudyInstanceUID": study_uid}}),
        find("studies StudyDate range, Limit 100", {"Level": "Study", "Limit": 100,
                                                    "Query": {"StudyDate": date_range}}),
        find("instances of one patient", {"Level": "Instance",
                                          "Query": {"PatientID": patient_id}}),
        find("Expand 100 studies", {"Level": "Study", "Query": {}, "Expand": True,
                                    "Limit": 100}),
        qido("QIDO studies?PatientID", f"/studies?PatientID={patient_id}"),
        qido("QIDO studies?PatientName=SMITH*&limit=100",
             "/studies?PatientName=SMITH*&limit=100"),
        qido("QIDO studies?limit=100", "/studies?limit=100"),
        qido("QIDO series of one study", f"/studies/{study_uid}/series"),
        qido("QIDO instances of one series",
             f"/studies/{study_uid}/series/{series_uid}/instances"),
    ]


def c_find_queries(count: int, run: int) -> list[tuple[str, str, dict[str, str]]]:
    patients = max(1, count // PER_PATIENT)
    middle = patients // 2
    study_uid = f"{UID_ROOT}.{run}.{middle}.0"
    return [
        ("C-FIND patient by PatientID", "PATIENT", {"PatientID": f"PAT{middle:06d}",
                                                    "PatientName": ""}),
        ("C-FIND patients SMITH*", "PATIENT", {"PatientName": "SMITH*", "PatientID": ""}),
        ("C-FIND patients *JOHN*", "PATIENT", {"PatientName": "*JOHN*", "PatientID": ""}),
        ("C-FIND study by AccessionNumber", "STUDY", {
            "AccessionNumber": f"ACC{middle:07d}0", "StudyInstanceUID": ""}),
        ("C-FIND study by StudyInstanceUID", "STUDY", {"StudyInstanceUID": study_uid,
                                                       "StudyDate": ""}),
        ("C-FIND series of one study", "SERIES", {"StudyInstanceUID": study_uid,
                                                  "SeriesInstanceUID": "", "Modality": ""}),
    ]


def measure_c_find(port: int, queries: list[tuple[str, str, dict[str, str]]],
                   repeat: int) -> dict[str, Measure]:
    """Each query over one association (Study Root; Patient Root for PATIENT level)."""
    from pydicom.dataset import Dataset
    from pynetdicom import AE
    from pynetdicom.sop_class import (
        PatientRootQueryRetrieveInformationModelFind,
        StudyRootQueryRetrieveInformationModelFind,
    )
    results = {name: Measure() for name, _, _ in queries}
    ae = AE(ae_title="SCALEBENCH")
    ae.add_requested_context(PatientRootQueryRetrieveInformationModelFind)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    assoc = ae.associate("127.0.0.1", port, ae_title="ORTHANC")
    if assoc.is_established:  # as Pharos' own sockets: no Nagle delay on small PDUs
        import socket
        assoc.dul.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    else:
        for measure_ in results.values():
            measure_.error = "association refused"
        return results
    try:
        for round_ in range(repeat + 1):  # the first round warms up
            for name, level, keys in queries:
                identifier = Dataset()
                identifier.QueryRetrieveLevel = level
                for key, value in keys.items():
                    setattr(identifier, key, value)
                model = PatientRootQueryRetrieveInformationModelFind if level == "PATIENT" \
                    else StudyRootQueryRetrieveInformationModelFind
                start = time.perf_counter()
                answers, final = 0, None
                for status, found in assoc.send_c_find(identifier, model):
                    final = status.Status if status else None
                    if found is not None and final in (0xFF00, 0xFF01):
                        answers += 1
                elapsed = (time.perf_counter() - start) * 1000
                if final != 0x0000:
                    results[name].error = f"status {final}"
                if round_:
                    results[name].samples.append(elapsed)
                results[name].answers = answers
    finally:
        assoc.release()
    return results


def p95(samples: Sequence[float]) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


# --- sizes --------------------------------------------------------------------------------

def index_bytes(document: dict) -> int:
    url = document["Pharos"].get("DatabaseUrl")
    if url:
        import psycopg
        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"),
                             autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
            return int(conn.execute(
                "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN "
                "pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' "
                "AND c.relkind = 'r'").fetchone()[0])
    folder = Path(document["IndexDirectory"])
    return sum(p.stat().st_size for p in folder.glob("pharos-index.sqlite*"))


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


# --- main ---------------------------------------------------------------------------------

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100_000, help="instances to load")
    parser.add_argument("--processes", type=int, default=max(2, os.cpu_count() or 2),
                        help="ingest worker processes")
    parser.add_argument("--database-url", help="PostgreSQL server (a fresh database is "
                        "created there); default: SQLite")
    parser.add_argument("--repeat", type=int, default=20, help="rounds of queries")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="pharos-scale-", dir=args.workdir))
    run = int(time.time()) % 100000
    with fresh_postgres_database(args.database_url) as url:
        storage = workdir / "storage"
        storage.mkdir(parents=True)
        pharos: dict[str, Any] = {"SweepOrphansAtStart": False, "HttpWorkers": 1}
        document: dict[str, Any] = {"StorageDirectory": str(storage),
                                    "IndexDirectory": str(storage), "StableAge": 3600,
                                    "Pharos": pharos}
        if url:
            pharos["DatabaseUrl"] = url
        backend = "PostgreSQL" if url else "SQLite"
        server_config = {**document, "DicomServerEnabled": True, "DicomPort": free_port(),
                         "DicomAlwaysAllowFind": True, "LimitFindResults": 0}
        log(f"{backend}: loading {args.count:,} instances with {args.processes} processes")
        started = time.time()
        times = load(document, args.count, args.processes, run)
        total = times[-1] - started if times else 0.0
        rows = slices(started, times)
        print(f"\nIngest through app.services.ingest ({backend}, {args.processes} processes): "
              f"{len(times):,} instances in {total:.0f} s, {len(times) / total:.0f}/s overall")
        print(format_table(["slice", "instances", "instances/s"],
                           [(label, n, f"{rate:.0f}") for label, n, rate in rows]))
        if rows:
            print(f"last slice / first slice: {rows[-1][2] / rows[0][2]:.2f}")
        size = index_bytes(document)
        print(f"\nindex: {size / 1e6:.1f} MB, {size / max(1, len(times)):.0f} bytes per instance")
        with pharos_server(workdir, config=server_config) as server:
            rss_start = rss_bytes(server.process.pid)
            http = measure(server, http_queries(args.count, run), args.repeat, warmup=2)
            dimse = measure_c_find(int(server_config["DicomPort"]),
                                   c_find_queries(args.count, run), args.repeat)
            rss_end = rss_bytes(server.process.pid)
        print(f"\nqueries at {len(times):,} instances ({backend}), ms over {args.repeat} rounds")
        table = []
        for name, result in [*http.items(), *dimse.items()]:
            table.append((name, result.answers, f"{result.median:.1f}",
                          f"{p95(result.samples):.1f}", result.error or ""))
        print(format_table(["query", "answers", "median", "p95", "error"], table))
        print(f"\nserver RSS (1 HTTP process): {rss_start / 1e6:.0f} MB after start on the "
              f"loaded index, {rss_end / 1e6:.0f} MB after the queries")
        if args.json:
            args.json.write_bytes(orjson.dumps({
                "backend": backend, "count": len(times), "processes": args.processes,
                "seconds": total, "slices": rows, "index_bytes": size,
                "rss_start": rss_start, "rss_end": rss_end,
                "queries": {name: {"answers": r.answers, "median": r.median,
                                   "p95": p95(r.samples), "error": r.error}
                            for name, r in [*http.items(), *dimse.items()]},
                "machine": machine_summary()}, option=orjson.OPT_INDENT_2))
    import shutil
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
