#!/usr/bin/env python3
"""Every door's write path, the small reads and the read leads, Pharos next to Orthanc in
one run: the ratio table of issue 15 ("writes at least as fast as Orthanc, in less
memory").

Each round starts one fresh Pharos (``pharos serve``, its defaults: one HTTP process per
core) and then one fresh Debian Orthanc (its defaults, the DICOMweb plugin loaded, its
DICOM server on, ``TCP_NODELAY=1``), each alone on new storage on the same disk, and
sends both the same sequence, each phase with its own synthetic CT files (so every
instance is new):

1. REST ingest, ``POST /instances``, 1 client (``--rest`` files, keep-alive);
2. REST ingest, 4 clients (``--rest`` other files; threads, one connection each);
3. STOW-RS, bodies of ``--batch`` instances, 1 client (``--stow`` files);
4. ZIP upload, ``POST /instances`` of deflated ZIPs of ``--zip-batch`` files (``--zip``);
5. C-STORE: dcmtk's ``storescu``, one association (``--cstore`` files: 1 patient, 1
   study, 2 series: the study the reads below use);
6. reads: ``GET /instances/{id}`` and ``GET /series/{id}`` (median latency, one
   keep-alive client, and the server's CPU per request), WADO-RS study metadata (median ms), study ZIP (MB/s),
   ``/instances/{id}/preview`` (median ms);
7. the server's memory after all of it: RSS summed over its processes (and PSS, which
   counts pages shared between processes once).

Rounds alternate the servers (``--repeat``), so that a machine whose speed drifts hits
both; the table gives medians and the ratio (>1 means Pharos is better, whatever the
unit). Nothing is asserted on timings: this is a measurement, not a test.

    .venv/bin/python benchmarks/writes.py                        # = make bench
    .venv/bin/python benchmarks/writes.py --repeat 2 --json /tmp/writes.json
    .venv/bin/python benchmarks/writes.py --only rest1,cstore --skip-orthanc
    .venv/bin/python benchmarks/writes.py --pharos-config '{"Pharos": {"HttpWorkers": 1}}'
"""

from __future__ import annotations

import argparse
import http.client
import io
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path

import orjson
import pydicom

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import (  # noqa: E402
    Server,
    format_table,
    load_bodies,
    log,
    machine_summary,
    median,
    orthanc_available,
    orthanc_server,
    pharos_server,
    post_all,
    py_spy,
    synthetic_dataset,
)

DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"
AET = "BENCH"
PHASES = ("rest1", "rest4", "stow", "zip", "cstore", "reads")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rest", type=int, default=2000, help="files per REST phase (2000)")
    parser.add_argument("--stow", type=int, default=1000, help="files to STOW (1000)")
    parser.add_argument("--batch", type=int, default=50, help="instances per STOW body (50)")
    parser.add_argument("--zip", type=int, default=1000, help="files to upload zipped (1000)")
    parser.add_argument("--zip-batch", type=int, default=100, help="files per ZIP (100)")
    parser.add_argument("--cstore", type=int, default=500, help="files sent by storescu (500)")
    parser.add_argument("--size", type=int, default=256, help="image rows/columns (256)")
    parser.add_argument("--small-reads", type=int, default=200,
                        help="GET /instances/{id} and /series/{id} requests (200 each)")
    parser.add_argument("--previews", type=int, default=100, help="previews read (100)")
    parser.add_argument("--repeat", type=int, default=1, help="rounds (servers alternate)")
    parser.add_argument("--only", default=",".join(PHASES),
                        help=f"comma-separated phases among {','.join(PHASES)}")
    parser.add_argument("--skip-orthanc", action="store_true")
    parser.add_argument("--skip-pharos", action="store_true")
    parser.add_argument("--database-url", help="Pharos on a fresh PostgreSQL database "
                        "created next to this URL")
    parser.add_argument("--pharos-config", default="{}",
                        help="JSON merged into Pharos' configuration (e.g. HttpWorkers)")
    parser.add_argument("--py-spy", type=Path, metavar="PREFIX",
                        help="sample Pharos with py-spy per phase (slows it: not a result)")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--json", type=Path, help="also write every round as JSON here")
    args = parser.parse_args(argv)
    args.only = [p for p in args.only.split(",") if p]
    unknown = set(args.only) - set(PHASES)
    if unknown:
        parser.error(f"unknown phases: {', '.join(sorted(unknown))}")
    args.pharos_config = orjson.loads(args.pharos_config)
    return args


# --- data -------------------------------------------------------------------------------

class Data:
    """The files of every phase, read before any clock starts (distinct shapes: distinct
    cached data sets, so no phase sends an instance another one stored)."""

    def __init__(self, args: argparse.Namespace) -> None:
        size = args.size
        self.rest1 = load_bodies(synthetic_dataset(args.rest, size=size, patients=4, series=2))
        self.rest4 = load_bodies(synthetic_dataset(args.rest, size=size, patients=8, series=2))
        self.stow = _multipart_bodies(load_bodies(synthetic_dataset(
            args.stow, size=size, patients=5, series=2)), args.batch)
        self.stow_count = args.stow
        zip_files = load_bodies(synthetic_dataset(args.zip, size=size, patients=2, series=5))
        self.zips = [_zip(zip_files[i:i + args.zip_batch])
                     for i in range(0, len(zip_files), args.zip_batch)]
        self.zip_count = len(zip_files)
        self.cstore = synthetic_dataset(args.cstore, size=size, patients=1, studies=1,
                                        series=2)
        self.study_uid = str(pydicom.dcmread(self.cstore[0], stop_before_pixels=True)
                             .StudyInstanceUID)


def _multipart_bodies(files: Sequence[bytes], batch: int) -> list[tuple[bytes, str]]:
    bodies = []
    for start in range(0, len(files), batch):
        boundary = "bench" + secrets.token_hex(8)
        chunks = []
        for data in files[start:start + batch]:
            chunks += [f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode(),
                       data, b"\r\n"]
        chunks.append(f"--{boundary}--\r\n".encode())
        bodies.append((b"".join(chunks), boundary))
    return bodies


def _zip(files: Sequence[bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for number, data in enumerate(files):
            archive.writestr(f"IMG{number:05d}.dcm", data)
    return buffer.getvalue()


# --- one keep-alive client ----------------------------------------------------------------

class Client:
    def __init__(self, server: Server) -> None:
        self.server = server
        self.conn = http.client.HTTPConnection(server.host, server.port, timeout=600)
        self.conn.connect()
        self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> bytes:
        self.conn.request(method, path, body=body, headers=headers or {})
        response = self.conn.getresponse()
        answer = response.read()
        if response.status != 200:
            raise RuntimeError(f"{self.server.name} {method} {path}: {response.status} "
                               f"{answer[:300]!r}")
        return answer

    def timed(self, method: str, path: str, **kwargs: object) -> tuple[float, bytes]:
        started = time.perf_counter()
        answer = self.request(method, path, **kwargs)  # type: ignore[arg-type]
        return time.perf_counter() - started, answer

    def close(self) -> None:
        self.conn.close()


# --- phases -------------------------------------------------------------------------------

def rest(server: Server, bodies: list[bytes], clients: int) -> float:
    result = post_all(server, bodies, clients)
    if result.failures:
        raise RuntimeError(f"{server.name}: {len(result.failures)} failed POSTs, first: "
                           f"{result.failures[0]}")
    return result.instances_per_second


def stow(server: Server, data: Data) -> float:
    client = Client(server)
    started = time.perf_counter()
    for body, boundary in data.stow:
        client.request("POST", "/dicom-web/studies", body, {
            "Content-Type": f"multipart/related; type=application/dicom; boundary={boundary}",
            "Accept": "application/dicom+json"})
    elapsed = time.perf_counter() - started
    client.close()
    return data.stow_count / elapsed


def zips(server: Server, data: Data) -> float:
    client = Client(server)
    started = time.perf_counter()
    stored = 0
    for body in data.zips:
        stored += len(orjson.loads(client.request("POST", "/instances", body, {
            "Content-Type": "application/zip"})))
    elapsed = time.perf_counter() - started
    client.close()
    if stored != data.zip_count:
        raise RuntimeError(f"{server.name}: {stored} instances answered for "
                           f"{data.zip_count} zipped")
    return data.zip_count / elapsed


def _dicom_port(server: Server) -> int:
    config = next(server.directory.glob("*.json"))
    return int(orjson.loads(config.read_bytes())["DicomPort"])


def cstore(server: Server, files: list[Path]) -> float:
    port = _dicom_port(server)
    deadline = time.monotonic() + 30  # another HTTP process may answer before the SCP runs
    while subprocess.run(["echoscu", "-aec", AET, "127.0.0.1", str(port)],
                         capture_output=True).returncode != 0:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{server.name}: nothing answers C-ECHO on {port}")
        time.sleep(0.2)
    started = time.perf_counter()
    result = subprocess.run(["storescu", "-aet", "STORESCU", "-aec", AET, "127.0.0.1",
                             str(port), *map(str, files)], capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"storescu to {server.name} failed: {result.stderr[-2000:]}")
    return len(files) / elapsed


def reads(server: Server, data: Data, args: argparse.Namespace) -> dict[str, float]:
    client = Client(server)
    found = orjson.loads(client.request("POST", "/tools/find", orjson.dumps(
        {"Level": "Study", "Query": {"StudyInstanceUID": data.study_uid}})))
    study = found[0]
    instances = [i["ID"] for i in orjson.loads(client.request(
        "GET", f"/studies/{study}/instances"))]
    series = orjson.loads(client.request("GET", f"/studies/{study}"))["Series"]
    results: dict[str, float] = {}

    def latency(paths: Sequence[str], **kwargs: object) -> float:
        client.request("GET", paths[0], **kwargs)  # type: ignore[arg-type]  # warm-up
        return median([client.timed("GET", p, **kwargs)[0] for p in paths]) * 1000

    count = args.small_reads
    for key, paths in (
            ("instance", [f"/instances/{instances[i % len(instances)]}" for i in range(count)]),
            ("series", [f"/series/{series[i % len(series)]}" for i in range(count)])):
        cpu_before = cpu_seconds(server.process.pid)
        results[f"{key}_ms"] = latency(paths)
        # The server's CPU per request (the warm-up request included): what the load of
        # other processes on a shared machine disturbs least.
        results[f"{key}_cpu_ms"] = \
            (cpu_seconds(server.process.pid) - cpu_before) * 1000 / (len(paths) + 1)
    results["metadata_ms"] = latency(
        [f"/dicom-web/studies/{data.study_uid}/metadata"] * 3,
        headers={"Accept": "application/dicom+json", "Accept-Encoding": "identity"})
    client.request("GET", f"/studies/{study}/archive")  # warm-up
    rates = []
    for _ in range(3):
        seconds, archive = client.timed("GET", f"/studies/{study}/archive")
        rates.append(len(archive) / seconds / 1e6)
    if len(zipfile.ZipFile(io.BytesIO(archive)).namelist()) != len(instances):
        raise RuntimeError(f"{server.name}: the study ZIP misses instances")
    results["zip_mb_s"] = median(rates)
    results["preview_ms"] = latency([f"/instances/{i}/preview"
                                     for i in instances[:args.previews]])
    client.close()
    return results


# --- memory -------------------------------------------------------------------------------

def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


def _tree(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            todo += _children(current)
        except OSError:
            continue
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of *pid* and its live descendants (threads included)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for process in _tree(pid):
        try:
            fields = Path(f"/proc/{process}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def memory_mb(pid: int) -> tuple[float, float]:
    """(RSS, PSS) in MB of *pid* and all its descendants."""
    rss = pss = 0
    todo = [pid]
    while todo:
        current = todo.pop()
        try:
            for line in Path(f"/proc/{current}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
            todo += _children(current)
        except OSError:
            continue
    return rss / 1024, pss / 1024


# --- one round ----------------------------------------------------------------------------

def run_round(name: str, start: Callable[[], AbstractContextManager[Server]], data: Data,
              args: argparse.Namespace, round_number: int) -> dict[str, float]:
    results: dict[str, float] = {}
    with start() as server:
        results["start_rss_mb"] = memory_mb(server.process.pid)[0]
        steps: list[tuple[str, Callable[[], object]]] = [
            ("rest1", lambda: results.__setitem__("rest1", rest(server, data.rest1, 1))),
            ("rest4", lambda: results.__setitem__("rest4", rest(server, data.rest4, 4))),
            ("stow", lambda: results.__setitem__("stow", stow(server, data))),
            ("zip", lambda: results.__setitem__("zip", zips(server, data))),
            ("cstore", lambda: results.__setitem__("cstore", cstore(server, data.cstore))),
            ("reads", lambda: results.update(reads(server, data, args))),
        ]
        for phase, step in steps:
            if phase not in args.only:
                continue
            spy = Path(f"{args.py_spy}-{phase}-{round_number}.txt") if args.py_spy else None
            before = set(results)
            stored_before = server.count_instances() if phase != "reads" else 0
            cpu_before = cpu_seconds(server.process.pid)
            with py_spy(server, spy):
                step()
            if phase != "reads":  # CPU per instance: what the noisy wall clock hides
                count = server.count_instances() - stored_before
                results[f"{phase}_cpu_ms"] = \
                    (cpu_seconds(server.process.pid) - cpu_before) * 1000 / max(count, 1)
            shown = {k: round(v, 2) for k, v in results.items() if k not in before}
            log(f"  round {round_number} {name:8s} {phase:7s} {shown}")
        results["rss_mb"], results["pss_mb"] = memory_mb(server.process.pid)
        results["stored"] = server.count_instances()
    log(f"  round {round_number} {name:8s} RSS {results['rss_mb']:.0f} MB (PSS "
        f"{results['pss_mb']:.0f}), {results['stored']} instances")
    return results


ROWS = [  # key, label, unit, higher is better
    ("rest1", "REST ingest, 1 client", "inst/s", True),
    ("rest4", "REST ingest, 4 clients", "inst/s", True),
    ("stow", "STOW-RS, batches", "inst/s", True),
    ("zip", "ZIP upload", "inst/s", True),
    ("cstore", "C-STORE, one association", "inst/s", True),
    ("rest1_cpu_ms", "  server CPU per instance, REST 1 client", "ms", False),
    ("rest4_cpu_ms", "  server CPU per instance, REST 4 clients", "ms", False),
    ("stow_cpu_ms", "  server CPU per instance, STOW-RS", "ms", False),
    ("zip_cpu_ms", "  server CPU per instance, ZIP", "ms", False),
    ("cstore_cpu_ms", "  server CPU per instance, C-STORE", "ms", False),
    ("rss_mb", "server RSS after the run", "MB", False),
    ("pss_mb", "server PSS after the run", "MB", False),
    ("instance_ms", "GET /instances/{id}, median", "ms", False),
    ("series_ms", "GET /series/{id}, median", "ms", False),
    ("instance_cpu_ms", "  server CPU per GET /instances/{id}", "ms", False),
    ("series_cpu_ms", "  server CPU per GET /series/{id}", "ms", False),
    ("metadata_ms", "WADO-RS study metadata", "ms", False),
    ("zip_mb_s", "study ZIP download", "MB/s", True),
    ("preview_ms", "/preview, median", "ms", False),
]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ["TCP_NODELAY"] = "1"  # DCMTK (storescu, Orthanc): Nagle off, explicitly
    data = Data(args)
    log(f"data ready: REST {len(data.rest1)}+{len(data.rest4)}, STOW {data.stow_count} "
        f"(bodies of {args.batch}), ZIP {data.zip_count} (ZIPs of {args.zip_batch}), "
        f"C-STORE {len(data.cstore)}; phases {','.join(args.only)}")
    pharos_config = {"DicomServerEnabled": True, "DicomAet": AET, **args.pharos_config}
    orthanc_config = {"DicomServerEnabled": True, "DicomAet": AET, "TcpNoDelay": True,
                      "Plugins": [DICOMWEB_PLUGIN], "DicomWeb": {"Enable": True}}
    servers: list[tuple[str, Callable[[], AbstractContextManager[Server]]]] = []
    if not args.skip_pharos:
        servers.append(("Pharos", lambda: pharos_server(
            args.workdir, database_url=args.database_url, config=pharos_config)))
    if not args.skip_orthanc and orthanc_available():
        servers.append(("Orthanc", lambda: orthanc_server(args.workdir, config=orthanc_config)))
    rounds: dict[str, list[dict[str, float]]] = {name: [] for name, _ in servers}
    for number in range(1, args.repeat + 1):
        for name, start in servers:
            rounds[name].append(run_round(name, start, data, args, number))

    def value(name: str, key: str) -> float:
        return median([r[key] for r in rounds.get(name, []) if key in r])

    rows = []
    for key, label, unit, higher in ROWS:
        ours, theirs = value("Pharos", key), value("Orthanc", key)
        if ours != ours and theirs != theirs:  # NaN: not measured
            continue
        better = (ours / theirs if higher else theirs / ours) if ours and theirs else \
            float("nan")
        runs = " ".join(f"{r[key]:.4g}" for r in rounds.get("Pharos", []) if key in r)
        rows.append([f"{label} ({unit})", ours, theirs, better, runs])
    print(f"\nPharos vs Orthanc, {args.repeat} round(s), medians; 'better' > 1 means Pharos "
          f"wins; Pharos on {'PostgreSQL' if args.database_url else 'SQLite'}")
    print(format_table(["measure", "Pharos", "Orthanc", "better", "Pharos runs"], rows))
    if args.json:
        args.json.write_bytes(orjson.dumps({
            "benchmark": "writes", "machine": machine_summary(),
            "args": {k: str(v) for k, v in vars(args).items()}, "rounds": rounds},
            option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
