#!/usr/bin/env python3
"""``pharos import FOLDER`` against Orthanc's way of loading a folder (issue 16).

Orthanc has no import command: its users upload a folder over REST (the Orthanc Book's
``ImportDicomFiles.py``, one file per ``POST /instances``, or the same with several
clients). This benchmark loads the same folder of ``--instances`` synthetic CT files
(gen_dataset.py, 256x256, cached under ``$TMPDIR/pharos-bench``) both ways, alternating
which goes first over ``--rounds`` rounds, each time into fresh storage:

* Pharos: ``pharos import --workers W FOLDER`` (W from ``--workers``, default one per
  core), fresh SQLite index (or a fresh PostgreSQL database with ``--database-url``);
  the wall time of the whole command, start-up and migrations included.
* Orthanc (Debian's 1.10.1, SQLite, ``SyncStorageArea`` on, as Pharos fsyncs): the files
  read into memory first, then ``POST /instances`` from ``--clients`` keep-alive clients
  (1 = ``ImportDicomFiles.py``); the wall time of the uploads only, not the server's
  start. This favours Orthanc: it does not pay for reading the files.

Both are checked to hold every instance after the run. Then ``pharos import`` is run
again on the loaded archive (resuming: everything already stored) and timed. Prints
instances/s and the ratio Pharos/Orthanc per round. Nothing is asserted.

    .venv/bin/python benchmarks/import_folder.py --instances 2000 --rounds 2
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import (  # noqa: E402
    REPO,
    format_table,
    fresh_postgres_database,
    load_bodies,
    log,
    machine_summary,
    orthanc_server,
    post_all,
    synthetic_dataset,
)


def folder_of(files: list[Path], workdir: Path) -> Path:
    """The files hard-linked into one folder (what a user points the import at)."""
    folder = Path(tempfile.mkdtemp(prefix="import-src-", dir=workdir))
    for path in files:
        target = folder / path.name
        try:
            os.link(path, target)
        except OSError:
            shutil.copyfile(path, target)
    return folder


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def pharos_import(folder: Path, workdir: Path, count: int, workers: int | None,
                  database_url: str | None) -> dict[str, Any]:
    directory = Path(tempfile.mkdtemp(prefix="pharos-import-", dir=workdir))
    with fresh_postgres_database(database_url) as url:
        document: dict[str, Any] = {"StorageDirectory": str(directory / "storage"),
                                    "StorageCompression": False, "SyncStorageArea": True}
        if url:
            document["Pharos"] = {"DatabaseUrl": url}
        config = directory / "pharos.json"
        config.write_bytes(orjson.dumps(document))
        command = [sys.executable, "-m", "app.cli", "import", "--config", str(config)]
        if workers:
            command += ["--workers", str(workers)]
        figures: dict[str, Any] = {}
        for phase in ("import", "resume"):
            cpu = _children_cpu()
            started = time.perf_counter()
            done = subprocess.run([*command, str(folder)], cwd=REPO, capture_output=True,
                                  text=True, check=False)
            seconds = time.perf_counter() - started
            expected = (f"{count} instances stored, 0 already" if phase == "import"
                        else f"0 instances stored, {count} already")
            if done.returncode != 0 or expected not in done.stderr:
                raise RuntimeError(f"pharos import ({phase}) failed:\n{done.stderr[-2000:]}")
            figures[phase] = {"seconds": seconds, "rate": count / seconds,
                              "cpu_seconds": _children_cpu() - cpu}
    shutil.rmtree(directory, ignore_errors=True)
    return figures


def orthanc_upload(bodies: list[bytes], workdir: Path, clients: int) -> dict[str, Any]:
    with orthanc_server(workdir) as server:
        result = post_all(server, bodies, clients)
        if result.failures or server.count_instances() != len(bodies):
            raise RuntimeError(f"Orthanc upload failed: {result.failures[:3]}")
        return {"seconds": result.seconds, "rate": result.instances_per_second}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=None,
                        help="pharos import --workers (default: its own, one per core)")
    parser.add_argument("--clients", type=int, default=4,
                        help="Orthanc's REST upload clients (1 = ImportDicomFiles.py)")
    parser.add_argument("--database-url", help="PostgreSQL server for Pharos' index")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    log(f"machine: {machine_summary()}")
    files = synthetic_dataset(args.instances, size=256, patients=4, studies=2, series=2)
    folder = folder_of(files, args.workdir)
    bodies = load_bodies(files)
    rows, runs = [], []
    try:
        for round_ in range(args.rounds):
            order = ("pharos", "orthanc") if round_ % 2 == 0 else ("orthanc", "pharos")
            figures: dict[str, Any] = {}
            for who in order:
                log(f"round {round_ + 1}: {who}")
                if who == "pharos":
                    figures[who] = pharos_import(folder, args.workdir, len(files),
                                                 args.workers, args.database_url)
                else:
                    figures[who] = orthanc_upload(bodies, args.workdir, args.clients)
            pharos, orthanc = figures["pharos"], figures["orthanc"]
            runs.append(figures)
            rows.append([round_ + 1, f"{pharos['import']['rate']:.0f}",
                         f"{orthanc['rate']:.0f}",
                         f"{pharos['import']['rate'] / orthanc['rate']:.2f}",
                         f"{pharos['import']['cpu_seconds'] * 1000 / len(files):.1f}",
                         f"{pharos['resume']['rate']:.0f}"])
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"\n{len(files)} files, 256x256 CT; Pharos {args.database_url and 'PostgreSQL' or 'SQLite'},"
          f" import --workers {args.workers or 'default'}; Orthanc {args.clients} REST clients\n")
    print(format_table(["round", "pharos import inst/s", "Orthanc REST inst/s", "ratio",
                        "pharos CPU ms/inst", "resume inst/s"], rows))
    if args.json:
        args.json.write_bytes(orjson.dumps({"machine": machine_summary(), "runs": runs},
                                           option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
