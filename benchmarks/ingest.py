#!/usr/bin/env python3
"""REST ingest: POST /instances of synthetic 256x256 CT files, Pharos next to Orthanc.

For each client count, a fresh Pharos and then a fresh Orthanc (each alone, on new
temporary storage on the same disk) receive the same files from the same client code:
Python threads, one keep-alive connection each, files dealt round-robin. The table gives
instances/s, MB/s and the ratio Pharos/Orthanc (the target is >= 1.00).

    .venv/bin/python benchmarks/ingest.py                    # 2000 instances, 1 and 4 clients
    .venv/bin/python benchmarks/ingest.py --repeat 3 --json out.json
    .venv/bin/python benchmarks/ingest.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres
    .venv/bin/python benchmarks/ingest.py --skip-orthanc --uvicorn http=h11 --uvicorn loop=asyncio

No timing is asserted: this is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import orjson

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import (  # noqa: E402
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
    ratio,
    synthetic_dataset,
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=2000, help="files to send (default 2000)")
    parser.add_argument("--size", type=int, default=256, help="image rows/columns (default 256)")
    parser.add_argument("--clients", default="1,4",
                        help="comma-separated client counts (default 1,4)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs per server and client count; the median is reported")
    parser.add_argument("--skip-orthanc", action="store_true", help="measure Pharos only")
    parser.add_argument("--skip-pharos", action="store_true", help="measure Orthanc only")
    parser.add_argument("--database-url",
                        help="bench Pharos on PostgreSQL: a fresh database is created next to "
                             "this URL (postgresql+psycopg://user@host:port/db) and dropped")
    parser.add_argument("--uvicorn", action="append", default=[], metavar="KEY=VALUE",
                        help="run Pharos through uvicorn.run with this option (repeatable): "
                             "http=httptools|h11, loop=uvloop|asyncio, workers=N")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()),
                        help="where the fresh server storages go (default: the temp dir)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument("--py-spy", type=Path, metavar="PREFIX",
                        help="sample Pharos with py-spy during each run into "
                             "PREFIX-<clients>c-<run>.txt (collapsed stacks; slows Pharos)")
    args = parser.parse_args(argv)
    args.clients = [int(c) for c in args.clients.split(",") if c.strip()]
    args.uvicorn = dict(option.split("=", 1) for option in args.uvicorn)
    return args


def run_one(name: str, args: argparse.Namespace, bodies: list[bytes], clients: int,
            attempt: int) -> dict:
    """Start a fresh server, send every body, check the count, stop it."""
    if name == "Pharos":
        server_context = pharos_server(args.workdir, database_url=args.database_url,
                                       uvicorn_options=args.uvicorn or None)
    else:
        server_context = orthanc_server(args.workdir)
    spy_output = Path(f"{args.py_spy}-{clients}c-{attempt + 1}.txt") if args.py_spy else None
    with server_context as server, py_spy(server, spy_output):
        result = post_all(server, bodies, clients)
        stored = server.count_instances()
    if result.failures:
        log(f"  {name}: {len(result.failures)} failure(s), first: {result.failures[0]}")
    if stored != len(bodies):
        log(f"  {name}: WARNING {stored} instances stored, {len(bodies)} sent")
    log(f"  run {attempt + 1}  {name:8s} {clients} client(s): {result.seconds:6.2f} s  "
        f"{result.instances_per_second:7.1f} inst/s  {result.megabytes_per_second:6.1f} MB/s")
    return {"seconds": result.seconds, "instances_per_second": result.instances_per_second,
            "megabytes_per_second": result.megabytes_per_second, "stored": stored,
            "failures": len(result.failures)}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    servers = []
    if not args.skip_pharos:
        servers.append("Pharos")
    if not args.skip_orthanc:
        if orthanc_available():
            servers.append("Orthanc")
        else:
            log("Orthanc is not installed: measuring Pharos alone")
    files = synthetic_dataset(args.instances, size=args.size)
    bodies = load_bodies(files)
    total_mb = sum(map(len, bodies)) / 1e6
    log(f"{len(bodies)} instances, {total_mb:.1f} MB; servers: {', '.join(servers)}; "
        f"Pharos index: {'PostgreSQL' if args.database_url else 'SQLite'}"
        + (f"; uvicorn {args.uvicorn}" if args.uvicorn else ""))

    runs: dict[tuple[str, int], list[dict]] = {}
    for clients in args.clients:
        for attempt in range(args.repeat):
            for name in servers:  # alternate servers so that drifting load hits both
                runs.setdefault((name, clients), []).append(
                    run_one(name, args, bodies, clients, attempt))

    def rate(name: str, clients: int, key: str) -> float:
        return median([r[key] for r in runs.get((name, clients), [])])

    headers = ["clients", "Pharos inst/s", "Pharos MB/s", "Orthanc inst/s", "Orthanc MB/s",
               "Pharos/Orthanc"]
    rows = []
    for clients in args.clients:
        pharos = rate("Pharos", clients, "instances_per_second")
        orthanc = rate("Orthanc", clients, "instances_per_second")
        rows.append([clients, pharos, rate("Pharos", clients, "megabytes_per_second"),
                     orthanc, rate("Orthanc", clients, "megabytes_per_second"),
                     ratio(pharos, orthanc)])
    print(f"REST ingest of {len(bodies)} instances ({args.size}x{args.size} CT, "
          f"{total_mb:.0f} MB), median of {args.repeat} run(s); Pharos on "
          f"{'PostgreSQL' if args.database_url else 'SQLite'}")
    print(format_table(headers, rows))
    if args.json:
        document = {
            "benchmark": "ingest", "instances": len(bodies), "size": args.size,
            "megabytes": total_mb, "repeat": args.repeat,
            "pharos_database": "postgresql" if args.database_url else "sqlite",
            "uvicorn": args.uvicorn, "machine": machine_summary(),
            "results": [{"server": name, "clients": clients, "runs": values,
                         "median_instances_per_second": median(
                             [v["instances_per_second"] for v in values])}
                        for (name, clients), values in runs.items()],
            "ratios": {str(row[0]): row[5] for row in rows},
        }
        args.json.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2
                                           | orjson.OPT_SERIALIZE_NUMPY))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
