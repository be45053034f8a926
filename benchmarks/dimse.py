"""C-STORE throughput: dcmtk's storescu sends N synthetic instances over one association
to Pharos, then to Debian's Orthanc, in the same run (instances/s, ratio Pharos/Orthanc).

Both servers run with TCP_NODELAY: Pharos sets it on every DIMSE socket; DCMTK (hence
Orthanc and storescu) disables Nagle's algorithm unless the environment variable
``TCP_NODELAY`` is 0, so the run exports ``TCP_NODELAY=1`` to be explicit, and Orthanc's
``TcpNoDelay`` option (its HTTP server's) is on too. Each repetition uses a fresh server
and fresh storage. Target: at least Orthanc's rate.

    .venv/bin/python -m benchmarks.dimse [--instances 500] [--size 256] [--repeat 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import orjson

if __package__ in (None, ""):  # run as a script: benchmarks/dimse.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import (  # noqa: E402
    Server,
    format_table,
    log,
    machine_summary,
    median,
    orthanc_available,
    orthanc_server,
    orthanc_version,
    pharos_server,
    ratio,
    synthetic_dataset,
)

AET = "BENCH"


def _dicom_port(server: Server) -> int:
    config = next(server.directory.glob("*.json"))
    return int(orjson.loads(config.read_bytes())["DicomPort"])


def _wait_for_dicom(server: Server, port: int, timeout: float = 30) -> None:
    """The HTTP API may answer (another worker process) before the DICOM port listens."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if subprocess.run(["echoscu", "-aec", AET, "127.0.0.1", str(port)],
                          capture_output=True).returncode == 0:
            return
        time.sleep(0.2)
    raise RuntimeError(f"{server.name}: nothing answers C-ECHO on port {port}")


def store_once(server: Server, files: list[Path]) -> float:
    """Seconds for one storescu association carrying every file."""
    port = _dicom_port(server)
    _wait_for_dicom(server, port)
    start = time.perf_counter()
    result = subprocess.run(["storescu", "-aet", "STORESCU", "-aec", AET, "127.0.0.1",
                             str(port), *map(str, files)], capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"storescu to {server.name} failed: {result.stderr[-2000:]}")
    stored = server.count_instances()
    if stored != len(files):
        raise RuntimeError(f"{server.name} holds {stored} instances, {len(files)} were sent")
    return elapsed


def measure(name: str, start: Callable[[], AbstractContextManager[Server]], files: list[Path],
            repeat: int) -> list[float]:
    rates = []
    for attempt in range(repeat):
        with start() as server:
            seconds = store_once(server, files)
        rates.append(len(files) / seconds)
        log(f"{name} run {attempt + 1}: {len(files)} instances in {seconds:.2f} s "
            f"= {rates[-1]:.0f} instances/s")
    return rates


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=500)
    parser.add_argument("--size", type=int, default=256, help="rows = columns of each image")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--database-url", default=os.environ.get("PHAROS_BENCH_DATABASE_URL"))
    args = parser.parse_args(argv)
    os.environ["TCP_NODELAY"] = "1"  # DCMTK (storescu, Orthanc): Nagle off, explicitly
    files = synthetic_dataset(args.instances, size=args.size)
    config = {"DicomServerEnabled": True, "DicomAet": AET}
    workdir = Path(tempfile.mkdtemp(prefix="pharos-bench-dimse-"))

    def pharos() -> AbstractContextManager[Server]:
        return pharos_server(workdir, database_url=args.database_url, config=config)

    def orthanc() -> AbstractContextManager[Server]:
        return orthanc_server(workdir, config={**config, "TcpNoDelay": True})

    results: dict[str, list[float]] = {"Pharos": measure("Pharos", pharos, files, args.repeat)}
    if orthanc_available():
        results["Orthanc"] = measure("Orthanc", orthanc, files, args.repeat)
    rows = [[name, f"{median(rates):.0f}", " ".join(f"{r:.0f}" for r in rates)]
            for name, rates in results.items()]
    print(f"\nC-STORE, storescu, {len(files)} instances of {files[0].stat().st_size // 1024} KiB"
          f" over one association ({'PostgreSQL' if args.database_url else 'SQLite'})")
    print(format_table(["server", "instances/s (median)", "runs"], rows))
    if "Orthanc" in results:
        print(f"Pharos/Orthanc: {ratio(median(results['Pharos']), median(results['Orthanc'])):.2f}"
              f"  ({orthanc_version()})")
    print(orjson.dumps(machine_summary()).decode())


if __name__ == "__main__":
    main()
