#!/usr/bin/env python3
"""DICOMweb side by side: Pharos next to Debian's Orthanc + orthanc-dicomweb, same run.

Three workloads, each server fresh and measured alone on the same disk:

* STOW-RS throughput: ``--stow`` synthetic CT files POSTed to /dicom-web/studies in
  multipart/related bodies of ``--batch`` instances (one client, keep-alive);
* study metadata: GET /dicom-web/studies/{uid}/metadata of a ``--study-size`` instance
  study (Orthanc's plugin re-reads every file; Pharos answers from the index);
* study retrieval: GET /dicom-web/studies/{uid} (multipart/related application/dicom),
  streamed and counted by the client, in MB/s.

Targets (issue "DICOMweb ... viewer-ready"): STOW >= Orthanc, metadata >= 3x Orthanc,
retrieval >= Orthanc. Synthetic data comes from gen_dataset.py, cached under
$PHAROS_BENCH_CACHE (default /tmp/pharos-bench), never committed.

    .venv/bin/python benchmarks/dicomweb.py
    .venv/bin/python benchmarks/dicomweb.py --stow 2000 --study-size 500 --repeat 5 --json out.json

No timing is asserted: this is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
import orjson
import pydicom

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import (  # noqa: E402
    Server,
    format_table,
    log,
    machine_summary,
    median,
    orthanc_available,
    orthanc_server,
    pharos_server,
    ratio,
    synthetic_dataset,
)

DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stow", type=int, default=1000, help="instances to STOW (1000)")
    parser.add_argument("--batch", type=int, default=50, help="instances per STOW body (50)")
    parser.add_argument("--study-size", type=int, default=500,
                        help="instances of the study read back (500)")
    parser.add_argument("--size", type=int, default=256, help="image rows/columns (256)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measure; median kept")
    parser.add_argument("--skip-orthanc", action="store_true", help="measure Pharos only")
    parser.add_argument("--database-url", help="Pharos on a fresh PostgreSQL database next "
                        "to this URL (postgresql+psycopg://user@host:port/db)")
    parser.add_argument("--json", type=Path, help="write the results here as JSON")
    return parser.parse_args(argv)


def _bodies(files: Sequence[Path], batch: int) -> Iterator[tuple[bytes, str]]:
    for start in range(0, len(files), batch):
        boundary = "bench" + secrets.token_hex(8)
        chunks = []
        for path in files[start:start + batch]:
            chunks.append(f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode())
            chunks.append(path.read_bytes())
            chunks.append(b"\r\n")
        chunks.append(f"--{boundary}--\r\n".encode())
        yield b"".join(chunks), boundary


def stow(server: Server, files: Sequence[Path], batch: int) -> float:
    """Instances per second for STOW-RS bodies of *batch* instances, one client."""
    bodies = list(_bodies(files, batch))  # built before the clock starts
    with httpx.Client(base_url=server.url, timeout=300) as client:
        started = time.perf_counter()
        for body, boundary in bodies:
            response = client.post("/dicom-web/studies", content=body, headers={
                "Content-Type": f"multipart/related; type=application/dicom; "
                                f"boundary={boundary}",
                "Accept": "application/dicom+json"})
            if response.status_code != 200:
                raise RuntimeError(f"{server.name} STOW: {response.status_code} "
                                   f"{response.text[:300]}")
        elapsed = time.perf_counter() - started
    return len(files) / elapsed


def _timed(action: Callable[[], int], repeat: int) -> tuple[float, int]:
    action()  # warm-up (caches, connections), not measured
    times = []
    size = 0
    for _ in range(repeat):
        started = time.perf_counter()
        size = action()
        times.append(time.perf_counter() - started)
    return median(times), size


def study_metadata(server: Server, study: str, repeat: int, expected: int) -> tuple[float, int]:
    """Seconds per GET /studies/{uid}/metadata (median), and the answer size."""
    with httpx.Client(base_url=server.url, timeout=300) as client:
        def fetch() -> int:
            # Identity encoding for both: Orthanc 1.10 does not gzip by default.
            response = client.get(f"/dicom-web/studies/{study}/metadata", headers={
                "Accept": "application/dicom+json", "Accept-Encoding": "identity"})
            if response.status_code != 200 or len(orjson.loads(response.content)) != expected:
                raise RuntimeError(f"{server.name} metadata: {response.status_code}")
            return len(response.content)
        return _timed(fetch, repeat)


def study_retrieve(server: Server, study: str, repeat: int) -> tuple[float, int]:
    """Seconds per GET /studies/{uid} read to the end (median), and the bytes read."""
    with httpx.Client(base_url=server.url, timeout=600) as client:
        def fetch() -> int:
            total = 0
            with client.stream("GET", f"/dicom-web/studies/{study}", headers={
                    "Accept": 'multipart/related; type="application/dicom"',
                    "Accept-Encoding": "identity"}) as response:
                if response.status_code != 200:
                    raise RuntimeError(f"{server.name} retrieve: {response.status_code}")
                for chunk in response.iter_raw(1 << 20):
                    total += len(chunk)
            return total
        return _timed(fetch, repeat)


def measure(name: str, server_context: AbstractContextManager[Server], stow_files: list[Path],
            study_files: list[Path], study: str, args: argparse.Namespace) -> dict[str, float]:
    with server_context as server:
        log(f"{name}: STOW-RS of {len(stow_files)} instances in batches of {args.batch}")
        stow_rate = stow(server, stow_files, args.batch)
        log(f"{name}: loading the {len(study_files)}-instance study")
        stow(server, study_files, args.batch)
        log(f"{name}: study metadata")
        metadata_seconds, metadata_bytes = study_metadata(server, study, args.repeat,
                                                          len(study_files))
        log(f"{name}: study retrieval")
        retrieve_seconds, retrieved = study_retrieve(server, study, args.repeat)
    return {"stow_instances_per_s": stow_rate, "metadata_s": metadata_seconds,
            "metadata_bytes": metadata_bytes, "retrieve_s": retrieve_seconds,
            "retrieve_mb_per_s": retrieved / retrieve_seconds / 1e6,
            "retrieved_bytes": retrieved}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stow_files = synthetic_dataset(args.stow, size=args.size, patients=4, series=2)
    study_files = synthetic_dataset(args.study_size, size=args.size, patients=1, studies=1,
                                    series=2)
    study = str(pydicom.dcmread(study_files[0], stop_before_pixels=True).StudyInstanceUID)
    if any(str(pydicom.dcmread(f, stop_before_pixels=True).StudyInstanceUID) != study
           for f in study_files[:: max(1, len(study_files) // 10)]):
        raise RuntimeError("the study data set holds more than one study")
    workdir = Path(tempfile.mkdtemp(prefix="pharos-bench-dicomweb-"))
    results: dict[str, dict[str, float]] = {}
    results["Pharos"] = measure("Pharos", pharos_server(workdir, database_url=args.database_url),
                                stow_files, study_files, study, args)
    if not args.skip_orthanc and orthanc_available():
        plugin = {"Plugins": [DICOMWEB_PLUGIN], "DicomWeb": {"Enable": True}}
        results["Orthanc"] = measure("Orthanc", orthanc_server(workdir, config=plugin),
                                     stow_files, study_files, study, args)
    elif not args.skip_orthanc:
        log("Orthanc is not installed: Pharos only")
    pharos = results["Pharos"]
    orthanc = results.get("Orthanc")
    rows = [
        (f"STOW-RS (instances/s, batches of {args.batch})", pharos["stow_instances_per_s"],
         orthanc and orthanc["stow_instances_per_s"],
         orthanc and ratio(pharos["stow_instances_per_s"], orthanc["stow_instances_per_s"]),
         ">= 1"),
        (f"study metadata, {args.study_size} instances (ms)", pharos["metadata_s"] * 1000,
         orthanc and orthanc["metadata_s"] * 1000,
         orthanc and ratio(orthanc["metadata_s"], pharos["metadata_s"]), ">= 3 (speed-up)"),
        ("study retrieval (MB/s)", pharos["retrieve_mb_per_s"],
         orthanc and orthanc["retrieve_mb_per_s"],
         orthanc and ratio(pharos["retrieve_mb_per_s"], orthanc["retrieve_mb_per_s"]), ">= 1"),
    ]
    print(format_table(["measure", "Pharos", "Orthanc", "ratio", "target"], rows))
    if args.json:
        args.json.write_bytes(orjson.dumps({"machine": machine_summary(), "args": {
            k: str(v) for k, v in vars(args).items()}, "results": results},
            option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
