#!/usr/bin/env python3
"""Exports: study ZIP download throughput and /preview latency, Pharos next to Orthanc.

One study of synthetic CT instances (gen_dataset.py, cached in /tmp) is uploaded to a
fresh Pharos and a fresh Orthanc (Debian's); then, on each in turn:

* ``GET /studies/{id}/archive`` is downloaded ``--repeat`` times (streamed, counted, the
  last one checked to be a valid ZIP with every instance): MB/s, median of the runs;
* ``GET /instances/{id}/preview`` of ``--previews`` instances, one keep-alive client:
  median latency in ms.

The table gives both and the ratio Pharos/Orthanc (targets: ZIP >= 3x, preview <= 1x
Orthanc's latency). No timing is asserted: this is a measurement, not a test.

    .venv/bin/python benchmarks/exports.py                 # 300 instances of 256x256
    .venv/bin/python benchmarks/exports.py --instances 300 --size 512 --json out.json
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import httpx
import orjson

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
    ratio,
    synthetic_dataset,
)


def _download(server: Server, study: str, keep: bool) -> tuple[float, int, bytes]:
    started = time.perf_counter()
    size, parts = 0, []
    with httpx.Client(base_url=server.url, timeout=600) as http, \
            http.stream("GET", f"/studies/{study}/archive") as answer:
        answer.raise_for_status()
        for chunk in answer.iter_bytes(1 << 20):
            size += len(chunk)
            if keep:
                parts.append(chunk)
    return time.perf_counter() - started, size, b"".join(parts)


def measure(server: Server, bodies: list[bytes], repeat: int, previews: int) -> dict:
    post_all(server, bodies, 4)
    with httpx.Client(base_url=server.url, timeout=60) as http:
        studies = http.get("/studies").json()
        assert len(studies) == 1, studies
        instances = http.get(f"/studies/{studies[0]}/instances").json()
        ids = [i["ID"] for i in instances][:previews]
        http.get(f"/instances/{ids[0]}/preview").raise_for_status()  # warm-up
        latencies = []
        for instance in ids:
            started = time.perf_counter()
            answer = http.get(f"/instances/{instance}/preview")
            latencies.append((time.perf_counter() - started) * 1000)
            answer.raise_for_status()
    rates, size = [], 0
    for run in range(repeat):
        seconds, size, content = _download(server, studies[0], keep=run == repeat - 1)
        rates.append(size / seconds / 1e6)
    archive = zipfile.ZipFile(io.BytesIO(content))
    assert archive.testzip() is None and len(archive.namelist()) == len(bodies)
    return {"zip_mb_s": median(rates), "zip_bytes": size, "preview_ms": median(latencies)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--instances", type=int, default=300)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--previews", type=int, default=100)
    parser.add_argument("--skip-orthanc", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    files = synthetic_dataset(args.instances, size=args.size, patients=1, studies=1, series=2)
    bodies = load_bodies(files)
    log(f"{len(bodies)} instances of {args.size}x{args.size}, "
        f"{sum(map(len, bodies)) / 1e6:.1f} MB")
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench-exports-") as work:
        with pharos_server(Path(work)) as server:
            results["Pharos"] = measure(server, bodies, args.repeat, args.previews)
        if orthanc_available() and not args.skip_orthanc:
            with orthanc_server(Path(work)) as server:
                results["Orthanc"] = measure(server, bodies, args.repeat, args.previews)
    ours, theirs = results["Pharos"], results.get("Orthanc")
    rows = [["study ZIP (MB/s)", f"{ours['zip_mb_s']:.1f}",
             f"{theirs['zip_mb_s']:.1f}" if theirs else "-",
             f"{ratio(ours['zip_mb_s'], theirs['zip_mb_s']):.2f}" if theirs else "-"],
            ["preview median (ms)", f"{ours['preview_ms']:.2f}",
             f"{theirs['preview_ms']:.2f}" if theirs else "-",
             f"{ratio(ours['preview_ms'], theirs['preview_ms']):.2f}" if theirs else "-"]]
    print(format_table(["measure", "Pharos", "Orthanc", "Pharos/Orthanc"], rows))
    if args.json:
        args.json.write_bytes(orjson.dumps({"machine": machine_summary(), "args": {
            "instances": args.instances, "size": args.size}, "results": results},
            option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
