#!/usr/bin/env python3
"""A/B experiments on the ingest path, in-process, by swapping one piece at a time.

Each variant runs ``app.services.ingest.ingest_instance`` over the same files on fresh
storage (and a fresh database), with one function replaced for the duration of the run;
variants are interleaved and repeated, and the median ms/instance is reported. Nothing
under ``app/`` is modified: this measures what a change *would* gain before making it.

Variants:

* ``baseline``     the code as it is;
* ``no-precheck``  without the read transaction that looks for the instance before the
                   blob is written (``store_instance`` checks again in its transaction);
* ``no-fsync``     blob writes without fsync (NOT a proposal: it sizes the fsync cost);
* ``fast-store``   ``store_instance`` on pre-written SQL strings executed on the driver
                   (no per-call statement building), and one joined look-up of the
                   series/study/patient keys when the series already exists;
* ``fast-both``    fast-store + no-precheck.

    .venv/bin/python benchmarks/experiments_ingest.py --instances 500 --repeat 2
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import fresh_postgres_database, load_bodies, synthetic_dataset  # noqa: E402


@contextmanager
def patched(owner: object, name: str, value: object) -> Iterator[None]:
    original = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, original)


def _fast_store_instance(original: Callable) -> Callable:
    """store_instance with driver-level SQL and a one-statement parent look-up."""
    import time as _time

    from app.dicom.levels import Level
    from app.index.repository import StoreOutcome, _pack

    find_instance = "SELECT pk FROM instances WHERE public_id = ?"
    find_parents = ("SELECT s.pk, st.pk, st.patient_pk FROM series s "
                    "JOIN studies st ON st.pk = s.study_pk WHERE s.public_id = ?")
    insert_instance = (
        "INSERT INTO instances (public_id, series_pk, sop_uid, sop_class_uid, "
        "instance_number, index_in_series, transfer_syntax, blob_key, file_size, md5, "
        "received_at, origin, remote_aet, remote_ip, called_aet, http_username, main_tags, "
        "dicom_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING pk")
    touch_series = "UPDATE series SET last_update = ?, is_stable = ? WHERE pk = ?"
    touch_study = "UPDATE studies SET last_update = ?, is_stable = ? WHERE pk = ?"
    touch_patient = ("UPDATE patients SET last_update = ?, is_stable = ?, recycle_seq = ? "
                     "WHERE pk = ?")
    insert_change = "INSERT INTO changes (change_type, level, public_id, date) VALUES (?, ?, ?, ?)"

    def sql(conn, text: str) -> str:  # noqa: ANN001
        return text.replace("?", "%s") if conn.dialect.name == "postgresql" else text

    def store_instance(conn, parsed, *, blob_key, file_size, md5, now, origin,  # noqa: ANN001, ANN202
                       overwrite):
        cursor = conn.connection.driver_connection.cursor()
        ids = parsed.ids
        cursor.execute(sql(conn, find_parents), (ids.series,))
        parents = cursor.fetchone()
        if parents is None or overwrite:
            return original(conn, parsed, blob_key=blob_key, file_size=file_size, md5=md5,
                            now=now, origin=origin, overwrite=overwrite)
        cursor.execute(sql(conn, find_instance), (ids.instance,))
        existing = cursor.fetchone()
        if existing is not None:
            return StoreOutcome("AlreadyStored", existing[0])
        series_pk, study_pk, patient_pk = parents
        instance = parsed.main_tags[Level.INSTANCE]
        cursor.execute(sql(conn, insert_instance), (
            ids.instance, series_pk, parsed.sop_uid, parsed.sop_class_uid,
            instance.get("InstanceNumber"), parsed.index_in_series, parsed.transfer_syntax,
            blob_key, file_size, md5, now, origin.get("Origin", "Unknown"),
            origin.get("RemoteAET", ""), origin.get("RemoteIP", ""),
            origin.get("CalledAET", ""), origin.get("HttpUsername", ""), _pack(instance),
            parsed.dicom_json))
        instance_pk = cursor.fetchone()[0]
        cursor.execute(sql(conn, touch_series), (now, False, series_pk))
        cursor.execute(sql(conn, touch_study), (now, False, study_pk))
        cursor.execute(sql(conn, touch_patient), (now, False, _time.time_ns(), patient_pk))
        cursor.execute(sql(conn, insert_change), ("NewInstance", Level.INSTANCE.value,
                                                  ids.instance, now))
        return StoreOutcome("Success", instance_pk)

    return store_instance


def run_variant(variant: str, bodies: list[bytes], workdir: Path,
                database_url: str | None) -> float:
    import os

    from app.blobstore import filesystem
    from app.config import Settings
    from app.context import ServerContext
    from app.index import repository
    from app.services import ingest

    storage = Path(tempfile.mkdtemp(prefix=f"pharos-exp-{variant}-", dir=workdir))
    try:
        with fresh_postgres_database(database_url) as url, ExitStack() as stack:
            overrides: dict[str, object] = {"storage_directory": str(storage)}
            if url:
                overrides["database_url"] = url
            context = ServerContext.open(Settings.from_sources(None, overrides=overrides))
            stack.callback(context.close)
            if variant in ("no-precheck", "fast-both"):
                stack.enter_context(patched(ingest.repository, "get_row",
                                            lambda *args, **kwargs: None))
            if variant in ("fast-store", "fast-both"):
                stack.enter_context(patched(repository, "store_instance",
                                            _fast_store_instance(repository.store_instance)))
            if variant == "no-fsync":
                stack.enter_context(patched(filesystem.os, "fsync", lambda fd: None))
            origin = {"Origin": "RestApi", "RemoteIP": "127.0.0.1"}
            start = time.perf_counter()
            for data in bodies:
                ingest.ingest_instance(context, data, origin)
            seconds = time.perf_counter() - start
            with context.db.read() as conn:
                stored = repository.count_level(conn, repository.Level.INSTANCE)
            if stored != len(bodies):
                print(f"WARNING {variant}: {stored} stored of {len(bodies)}", file=sys.stderr)
            del os
            return seconds / len(bodies) * 1000
    finally:
        shutil.rmtree(storage, ignore_errors=True)


VARIANTS = ["baseline", "no-precheck", "fast-store", "fast-both", "no-fsync"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--database-url")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()))
    args = parser.parse_args(argv)
    bodies = load_bodies(synthetic_dataset(max(args.instances, 2000))[: args.instances])
    variants = [v for v in args.variants.split(",") if v]
    results: dict[str, list[float]] = {v: [] for v in variants}
    for attempt in range(args.repeat):
        for variant in variants:
            ms = run_variant(variant, bodies, args.workdir, args.database_url)
            results[variant].append(ms)
            print(f"run {attempt + 1}: {variant:12s} {ms:6.3f} ms/instance", file=sys.stderr)
    base = statistics.median(results.get("baseline", [float("nan")]))
    print(f"In-process ingest_instance, {len(bodies)} instances, median of {args.repeat}, "
          f"{'PostgreSQL' if args.database_url else 'SQLite'} index")
    print(f"{'variant':12s} {'ms/inst':>8s} {'saved':>8s}  runs")
    for variant, values in results.items():
        ms = statistics.median(values)
        print(f"{variant:12s} {ms:8.3f} {base - ms:+8.3f}  "
              + " ".join(f"{v:.3f}" for v in values))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
