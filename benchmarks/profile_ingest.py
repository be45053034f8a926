#!/usr/bin/env python3
"""Where does ingest time go? ``ingest_instance`` called in-process, without HTTP.

Two views of the same files:

* a stage breakdown: each step of the ingest path timed on its own, in the order the
  service runs it (parse, extract main tags, DICOM JSON, orjson, identifiers, md5, blob
  write with and without fsync, the index transaction), as milliseconds per instance;
* ``--cprofile N``: cProfile of N full ``ingest_instance`` calls, top functions by
  cumulative and by own time.

The difference between the in-process rate and the REST rate of ``ingest.py`` is the
cost of the HTTP door (uvicorn, Starlette, spooling, thread hand-off).

    .venv/bin/python benchmarks/profile_ingest.py --instances 500
    .venv/bin/python benchmarks/profile_ingest.py --instances 300 --cprofile 300
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import os
import pstats
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import (  # noqa: E402
    fresh_postgres_database,
    load_bodies,
    synthetic_dataset,
)


def _context(storage: Path, database_url: str | None):  # noqa: ANN202
    from app.config import Settings
    from app.context import ServerContext
    overrides: dict[str, object] = {"storage_directory": str(storage)}
    if database_url:
        overrides["database_url"] = database_url
    settings = Settings.from_sources(None, overrides=overrides)
    return ServerContext.open(settings)


def stage_breakdown(bodies: list[bytes], storage: Path, database_url: str | None) -> None:
    import orjson

    from app.blobstore.base import new_key
    from app.dicom.identifiers import ResourceIds
    from app.dicom.parse import (
        _check_not_truncated,
        _extract,
        dicom_json_of,
        main_tags_of,
        read_dataset,
    )
    from app.index import repository
    from app.timeutil import now_stamp

    context = _context(storage, database_url)
    totals: dict[str, float] = {}

    def timed(name: str, function: Callable[[], object]) -> object:
        start = time.perf_counter()
        value = function()
        totals[name] = totals.get(name, 0.0) + time.perf_counter() - start
        return value

    nosync = storage / "nosync"
    nosync.mkdir()
    try:
        for data in bodies:
            import pydicom
            timed("pydicom.dcmread (raw, deferred values)",
                  lambda: pydicom.dcmread(io.BytesIO(data)))  # noqa: B023
            ds = timed("read_dataset (dcmread + truncation check)",
                       lambda: read_dataset(data))  # noqa: B023
            timed("  _check_not_truncated (alone)", lambda: _check_not_truncated(ds))  # noqa: B023
            ds = read_dataset(data)
            timed("main_tags_of (decode_value x main tags)", lambda: main_tags_of(ds))  # noqa: B023
            ds = read_dataset(data)
            as_dict = timed("Dataset.to_json_dict (DICOM JSON)",
                            lambda: dicom_json_of(ds))  # noqa: B023
            timed("orjson.dumps(DICOM JSON)", lambda: orjson.dumps(as_dict))  # noqa: B023
            timed("ResourceIds.compute (4 x SHA-1)",
                  lambda: ResourceIds.compute("P", "1.2.3", "1.2.3.4", "1.2.3.4.5"))
            ds = read_dataset(data)
            parsed = timed("_extract (all of the above on a parsed ds)",
                           lambda: _extract(ds))  # noqa: B023
            timed("md5 of the file", lambda: hashlib.md5(data, usedforsecurity=False).hexdigest())  # noqa: B023
            key = new_key()
            timed("blob put (write + fsync + rename)", lambda: context.blobs.put(key, data))  # noqa: B023

            def write_nosync() -> None:
                path = nosync / new_key()
                with open(path, "wb") as stream:
                    stream.write(data)  # noqa: B023

            timed("  same write without fsync (for comparison)", write_nosync)

            def check_exists() -> None:
                with context.db.read() as conn:
                    repository.get_row(conn, repository.Level.INSTANCE, parsed.ids.instance)  # noqa: B023

            timed("pre-check get_row (read transaction)", check_exists)

            def index() -> None:
                with context.db.write() as conn:
                    repository.store_instance(
                        conn, parsed, blob_key=key, file_size=len(data), md5="0" * 32,  # noqa: B023
                        now=now_stamp(), origin={"Origin": "RestApi"}, overwrite=False)

            timed("index transaction (store_instance + commit)", index)
        shutil.rmtree(nosync, ignore_errors=True)
        # The complete service on fresh copies (new SOP UIDs are not needed: fresh storage).
        context.close()
        shutil.rmtree(storage / "index", ignore_errors=True)
    finally:
        context.close()
    count = len(bodies)
    print(f"\nStage breakdown, ms per instance over {count} instances "
          f"({'PostgreSQL' if database_url else 'SQLite'} index):")
    for name, seconds in totals.items():
        print(f"  {name:48s} {seconds / count * 1000:7.3f} ms")


def full_ingest(bodies: list[bytes], storage: Path, database_url: str | None,
                profile: int) -> None:
    from app.services.ingest import ingest_instance
    context = _context(storage, database_url)
    origin = {"Origin": "RestApi", "RemoteIP": "127.0.0.1"}
    try:
        if profile:
            profiler = cProfile.Profile()
            profiler.enable()
        start = time.perf_counter()
        for data in bodies[: profile or None]:
            ingest_instance(context, data, origin)
        seconds = time.perf_counter() - start
        if profile:
            profiler.disable()
    finally:
        context.close()
    count = len(bodies[: profile or None])
    print(f"\ningest_instance in-process: {count} instances in {seconds:.2f} s = "
          f"{count / seconds:.0f} instances/s, {seconds / count * 1000:.2f} ms/instance"
          + (" (under cProfile)" if profile else ""))
    if profile:
        stats = pstats.Stats(profiler)
        stats.sort_stats("cumulative").print_stats(35)
        stats.sort_stats("tottime").print_stats(25)


# Inclusive buckets for py-spy collapsed stacks: a sample counts for every bucket one of
# its frames matches (so buckets nest: "parse_instance" contains "to_json_dict").
SPY_BUCKETS: list[tuple[str, tuple[str, ...]]] = [
    ("HTTP: uvicorn protocol + event loop", ("httptools_impl.py", "h11_impl.py",
                                             "base_events.py", "uvloop")),
    ("HTTP: starlette/fastapi routing+middleware", ("starlette/", "fastapi/")),
    ("  spool_body (read request into spool)", ("spool_body",)),
    ("  json_answer (response)", ("json_answer",)),
    ("ingest_instance (worker thread)", ("ingest_instance",)),
    ("  parse_instance", ("parse_instance",)),
    ("    read_dataset / dcmread", ("read_dataset",)),
    ("    main_tags_of", ("main_tags_of",)),
    ("    to_json_dict", ("to_json_dict (pydicom/dataset.py",)),
    ("    orjson.dumps", ("dumps (orjson",)),
    ("  md5", ("openssl_md5", "hexdigest")),
    ("  blob put", ("put (app/blobstore",)),
    ("    fsync", ("fsync",)),
    ("    mkdir", ("mkdir",)),
    ("  pre-check get_row (read txn)", ("get_row (app/index",)),
    ("  index write txn (store_instance+commit)", ("write (app/index/db.py",)),
    ("    store_instance", ("store_instance (app/index",)),
    ("    SQLAlchemy Python (compile/coerce/cache)", ("sqlalchemy/sql/",)),
    ("    sqlite3/psycopg execute", ("execute (sqlite3", "do_execute", "psycopg/cursor")),
    ("    commit", ("do_commit", "commit (")),
    ("  waiting for the SQLite write lock", ("_write_lock", "__enter__ (app/index/db.py")),
    ("stability monitor", ("stability",)),
]


def summarize_spy(paths: list[Path]) -> None:
    """Print the share of py-spy samples per bucket (see SPY_BUCKETS)."""
    totals = {name: 0 for name, _ in SPY_BUCKETS}
    total = 0
    leaf: dict[str, int] = {}
    for path in paths:
        for line in path.read_text(errors="replace").splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not count_text.isdigit():
                continue
            count = int(count_text)
            total += count
            for name, needles in SPY_BUCKETS:
                if any(needle in stack for needle in needles):
                    totals[name] += count
            frame = stack.rsplit(";", 1)[-1]
            leaf[frame] = leaf.get(frame, 0) + count
    print(f"py-spy: {total} samples (non-idle) from {len(paths)} file(s); inclusive shares:")
    for name, count in totals.items():
        print(f"  {name:48s} {100 * count / max(total, 1):5.1f} %")
    print("top leaf frames (own time):")
    for frame, count in sorted(leaf.items(), key=lambda kv: -kv[1])[:20]:
        print(f"  {100 * count / max(total, 1):5.1f} %  {frame[:110]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=500)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--cprofile", type=int, default=0, metavar="N",
                        help="profile N full ingest_instance calls instead of timing stages")
    parser.add_argument("--database-url", help="profile on a fresh PostgreSQL database")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--summarize-spy", type=Path, nargs="+", metavar="FILE",
                        help="only summarize py-spy collapsed stacks (ingest.py --py-spy)")
    args = parser.parse_args(argv)
    if args.summarize_spy:
        summarize_spy(args.summarize_spy)
        return 0
    # Use the 2000-file data set of ingest.py when it is cached (same files, same shape).
    files = synthetic_dataset(max(args.instances, 2000), size=args.size)[: args.instances]
    bodies = load_bodies(files)
    for mode in ("stages", "full") if not args.cprofile else ("full",):
        storage = Path(tempfile.mkdtemp(prefix="pharos-profile-", dir=args.workdir))
        try:
            with fresh_postgres_database(args.database_url) as url:
                if mode == "stages":
                    stage_breakdown(bodies, storage, url)
                else:
                    full_ingest(bodies, storage, url, args.cprofile)
        finally:
            shutil.rmtree(storage, ignore_errors=True)
    print(f"\n(pid {os.getpid()}; 2 shared cores: run twice and compare)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
