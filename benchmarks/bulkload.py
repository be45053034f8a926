#!/usr/bin/env python3
"""Fill a Pharos index fast for benchmarks: parse, write blobs, index in big transactions.

REST ingest of 100,000 instances takes ~8 minutes here; this index-level path runs the
same code that ingest runs (``app.dicom.parse.parse_instance`` and
``app.index.repository.store_instance``) without HTTP, with two differences, both
harmless for a read benchmark and both deliberate:

* blobs are written without fsync, under a deterministic key (a UUID derived from the
  instance's Orthanc ID), so that one blob folder can serve several index fills (SQLite
  and PostgreSQL, several scales); a blob that exists already is not rewritten;
* instances are indexed ``--batch`` per transaction instead of one each.

Files are parsed by a pool of worker processes while the parent process writes the
index. The server must not run (SQLite) or must be idle while this loads.

    .venv/bin/python benchmarks/bulkload.py --config pharos.json DIR_OR_FILES...

This is a benchmark tool, not an import command: use ``pharos import`` for real data.
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.blobstore import open_blobstore  # noqa: E402
from app.config import Settings  # noqa: E402
from app.dicom.parse import ParsedInstance, parse_instance  # noqa: E402
from app.index import repository  # noqa: E402
from app.index.db import Database, migrate  # noqa: E402
from app.timeutil import now_stamp  # noqa: E402

# Deterministic blob keys: the same instance gets the same FileUuid in every fill.
BLOB_NAMESPACE = uuid.UUID("5b0c3f57-1b7e-4a5e-9a43-6d3f6c0f2a11")
ORIGIN = {"Origin": "RestApi", "RemoteIP": "127.0.0.1", "HttpUsername": ""}


@dataclass
class LoadReport:
    instances: int
    seconds: float
    stored: int
    already: int

    @property
    def rate(self) -> float:
        return self.instances / self.seconds if self.seconds else 0.0


def blob_key(parsed: ParsedInstance) -> str:
    return str(uuid.uuid5(BLOB_NAMESPACE, parsed.ids.instance))


_BLOB_ROOT: Path | None = None


def _init_worker(blob_root: str) -> None:
    global _BLOB_ROOT
    _BLOB_ROOT = Path(blob_root)


def _blob_path(root: Path, key: str) -> Path:
    return root / key[0:2] / key[2:4] / key  # FileSystemBlobStore's layout


def _parse_and_store_blob(path: str) -> tuple[ParsedInstance, str, int, str]:
    """In a worker: parse one file and write its blob (no fsync) unless already there."""
    data = Path(path).read_bytes()
    parsed = parse_instance(data)
    key = blob_key(parsed)
    assert _BLOB_ROOT is not None
    target = _blob_path(_BLOB_ROOT, key)
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(target.name + f".{os.getpid()}.part")
        temporary.write_bytes(data)
        os.replace(temporary, target)
    return parsed, key, len(data), hashlib.md5(data, usedforsecurity=False).hexdigest()


def _parsed(files: Sequence[Path], blob_root: Path,
            workers: int) -> Iterator[tuple[ParsedInstance, str, int, str]]:
    paths = [str(p) for p in files]
    if workers <= 1:
        _init_worker(str(blob_root))
        yield from map(_parse_and_store_blob, paths)
        return
    context = multiprocessing.get_context("fork")
    with context.Pool(workers, initializer=_init_worker, initargs=(str(blob_root),)) as pool:
        yield from pool.imap(_parse_and_store_blob, paths, chunksize=64)


def bulk_load(settings: Settings, files: Sequence[Path], *, batch: int = 1000,
              workers: int = 2, progress: bool = True) -> LoadReport:
    """Index *files* into the database and blob store that *settings* describe."""
    url = settings.effective_database_url
    migrate(url)
    blobs = open_blobstore(settings.blobstore_url, settings.storage_directory)
    root = getattr(blobs, "root", None)
    if root is None:
        raise SystemExit("bulkload writes blobs on the filesystem blob store only")
    database = Database(url)
    start = time.perf_counter()
    stored = already = 0
    pending: list[tuple[ParsedInstance, str, int, str]] = []

    def flush() -> None:
        nonlocal stored, already
        now = now_stamp()
        with database.write() as conn:
            for parsed, key, size, md5 in pending:
                outcome = repository.store_instance(conn, parsed, blob_key=key, file_size=size,
                                                    md5=md5, now=now, origin=ORIGIN,
                                                    overwrite=False)
                if outcome.status == "Success":
                    stored += 1
                else:
                    already += 1
        pending.clear()

    try:
        for count, item in enumerate(_parsed(files, Path(root), workers), 1):
            pending.append(item)
            if len(pending) >= batch:
                flush()
            if progress and count % 10000 == 0:
                elapsed = time.perf_counter() - start
                print(f"  bulk load: {count}/{len(files)} ({count / elapsed:.0f}/s)",
                      file=sys.stderr, flush=True)
        if pending:
            flush()
    finally:
        database.dispose()
    return LoadReport(len(files), time.perf_counter() - start, stored, already)


def _files(arguments: Sequence[str]) -> list[Path]:
    out: list[Path] = []
    for argument in arguments:
        path = Path(argument)
        out.extend(sorted(path.rglob("*.dcm")) if path.is_dir() else [path])
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="the Pharos configuration file")
    parser.add_argument("--batch", type=int, default=1000, help="instances per transaction")
    parser.add_argument("--workers", type=int, default=2, help="parsing processes")
    parser.add_argument("paths", nargs="+", help="DICOM files or folders (*.dcm)")
    args = parser.parse_args(argv)
    settings = Settings.from_sources(args.config)
    report = bulk_load(settings, _files(args.paths), batch=args.batch, workers=args.workers)
    print(f"{report.stored} stored, {report.already} already stored, "
          f"{report.seconds:.1f} s ({report.rate:.0f} instances/s)")


if __name__ == "__main__":
    main()
