#!/usr/bin/env python3
"""The explorer's own requests (``/ui/``) on a large archive: are its lists still fast?

The archive holds ``--studies`` studies (default 100,000) of one small instance each
(gen_dataset.py: N/2 patients x 2 studies, 8x8 pixels), bulk-loaded into the index
(``benchmarks/bulkload.py``; cached per scale and schema under ``$TMPDIR/pharos-bench``).
Then, on a running ``pharos serve``, each request the explorer's pages send is timed
exactly as ``app/ui/js/table.js`` builds it (the same ``/tools/find`` bodies: Limit =
page size + 1, Since, OrderBy, ResponseContent, RequestedTags; the parallel
``/tools/count-resources``): the first page in each sort order, a page in the middle
and the last page, the filters (name prefix, patient ID, date range, modality, label),
the patients list, a study's series. Median and p90 over ``--repeat`` rounds, the
requests interleaved; nothing is asserted (a measurement, not a test).

    .venv/bin/python benchmarks/explorer.py                      # 100,000 studies, SQLite
    .venv/bin/python benchmarks/explorer.py --studies 20000 \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import (  # noqa: E402
    CACHE,
    GEN_DATASET,
    format_table,
    fresh_postgres_database,
    log,
    machine_summary,
    pharos_server,
)
from benchmarks.find import Measure, _bulk_load, _pharos_document, _schema_key  # noqa: E402

PAGE = 25
STUDY_COLUMNS = {
    "ResponseContent": ["MainDicomTags", "Labels", "Metadata", "RequestedTags", "Parent"],
    "RequestedTags": ["ModalitiesInStudy", "NumberOfStudyRelatedSeries",
                      "NumberOfStudyRelatedInstances"],
}
PATIENT_COLUMNS = {
    "ResponseContent": ["MainDicomTags", "Labels", "Metadata", "RequestedTags", "IsProtected"],
    "RequestedTags": ["NumberOfPatientRelatedStudies", "NumberOfPatientRelatedInstances"],
}
ORDERS = {
    "last update": [{"Type": "Metadata", "Key": "LastUpdate", "Direction": "DESC"}],
    "patient name": [{"Type": "DicomTag", "Key": "PatientName", "Direction": "ASC"}],
    "patient ID": [{"Type": "DicomTag", "Key": "PatientID", "Direction": "ASC"}],
    "study date": [{"Type": "DicomTag", "Key": "StudyDate", "Direction": "DESC"},
                   {"Type": "DicomTag", "Key": "StudyTime", "Direction": "DESC"}],
    "description": [{"Type": "DicomTag", "Key": "StudyDescription", "Direction": "ASC"}],
    "accession": [{"Type": "DicomTag", "Key": "AccessionNumber", "Direction": "ASC"}],
}


def dataset(studies: int) -> list[Path]:
    """*studies* one-instance studies, generated once (cached)."""
    patients = (studies + 1) // 2
    folder = CACHE / f"explorer-ct8-{patients}x2x1x1"
    if not folder.is_dir():
        CACHE.mkdir(parents=True, exist_ok=True)
        partial = folder.with_name(folder.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        log(f"generating {patients} patients x 2 studies in {folder}")
        subprocess.run([sys.executable, str(GEN_DATASET), str(partial), "--patients", str(patients),
                        "--studies", "2", "--series", "1", "--instances", "1", "--size", "8"],
                       check=True, stdout=subprocess.DEVNULL)
        partial.rename(folder)
    return sorted(folder.glob("*.dcm"))[:studies]


def sqlite_index(files: list[Path], blobs: Path) -> Path:
    folder = CACHE / f"explorer-pharos-sqlite-{len(files)}-{_schema_key()}"
    database = folder / "pharos-index.sqlite"
    if not (folder / "complete").exists():
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        _bulk_load(_pharos_document(blobs, folder, None), files)
        with sqlite3.connect(database) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        (folder / "complete").touch()
    return database


def requests(studies: int, client: httpx.Client) -> list[tuple[str, str, dict[str, Any]]]:
    """(name, path, body) of what the pages send."""
    def page(name: str, order: str, since: int = 0, query: dict | None = None,
             **extra: Any) -> tuple[str, str, dict[str, Any]]:
        body = {"Level": "Study", "Query": query or {}, "CaseSensitive": False, **extra,
                **STUDY_COLUMNS, "Since": since, "Limit": PAGE + 1, "OrderBy": ORDERS[order]}
        return name, "/tools/find", body

    def count(name: str, query: dict | None = None, **extra: Any) -> tuple[str, str, dict[str, Any]]:
        return name, "/tools/count-resources", {"Level": "Study", "Query": query or {},
                                                "CaseSensitive": False, **extra}

    middle = (studies // 2) // PAGE * PAGE
    last = (studies - 1) // PAGE * PAGE
    # A label on a few studies, as a user would have set through the page.
    labelled = client.post("/tools/find", json={"Level": "Study", "Query": {}, "Limit": 20,
                                                 "Since": studies // 3}).json()
    for study in labelled:
        client.put(f"/studies/{study}/labels/urgent", content=b"")
    some = client.post("/tools/find", json={"Level": "Study", "Query": {}, "Limit": 1,
                                             "Since": studies // 2, "Expand": True}).json()[0]
    patient_id = some["PatientMainDicomTags"]["PatientID"]
    out = [page(f"studies, first page by {order}", order) for order in ORDERS]
    out += [
        count("count all studies"),
        page("studies by name, middle page", "patient name", middle),
        page("studies by name, last page", "patient name", last),
        page("studies by last update, last page", "last update", last),
        page("filter name prefix SMITH", "last update", query={"PatientName": "smith*"}),
        count("count name prefix SMITH", {"PatientName": "smith*"}),
        page("filter name prefix SMITH, sort name, page 50", "patient name", 50 * PAGE,
             query={"PatientName": "smith*"}),
        page("filter patient ID", "last update", query={"PatientID": f"{patient_id}*"}),
        page("filter study date, one year", "study date", query={"StudyDate": "20150101-20151231"}),
        count("count study date, one year", {"StudyDate": "20150101-20151231"}),
        page("filter modality CT", "last update", query={"ModalitiesInStudy": "CT"}),
        count("count modality CT", {"ModalitiesInStudy": "CT"}),
        page("filter label", "last update", Labels=["urgent"], LabelsConstraint="All"),
        count("count label", Labels=["urgent"], LabelsConstraint="All"),
        ("patients, first page by name", "/tools/find",
         {"Level": "Patient", "Query": {}, "CaseSensitive": False, **PATIENT_COLUMNS,
          "Since": 0, "Limit": PAGE + 1, "OrderBy": [{"Type": "DicomTag", "Key": "PatientName",
                                                      "Direction": "ASC"}]}),
        ("count all patients", "/tools/count-resources", {"Level": "Patient", "Query": {}}),
        ("a study's series", "/tools/find",
         {"Level": "Series", "Query": {}, "ParentStudy": some["ID"],
          "ResponseContent": ["MainDicomTags", "RequestedTags"],
          "RequestedTags": ["NumberOfSeriesRelatedInstances"],
          "OrderBy": [{"Type": "DicomTagAsInt", "Key": "SeriesNumber", "Direction": "ASC"}]}),
    ]
    return out


def measure(url: str, studies: int, repeat: int) -> list[list[object]]:
    with httpx.Client(base_url=url, timeout=300) as client:
        plan = requests(studies, client)
        results = {name: Measure() for name, _, _ in plan}
        for round_number in range(repeat + 1):  # the first round warms up
            for name, path, body in plan:
                start = time.perf_counter()
                answer = client.post(path, content=orjson.dumps(body),
                                     headers={"Content-Type": "application/json"})
                elapsed = (time.perf_counter() - start) * 1000
                if answer.status_code != 200:
                    results[name].error = f"HTTP {answer.status_code}: {answer.text[:200]}"
                    continue
                value = answer.json()
                results[name].answers = value["Count"] if isinstance(value, dict) else len(value)
                if round_number:
                    results[name].samples.append(elapsed)
    return [[name, m.answers if m.answers is not None else "-", m.median, m.p90]
            if not m.error else [name, m.error, float("nan"), float("nan")]
            for name, m in results.items()]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--studies", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--database-url", help="a PostgreSQL server (a fresh database is made)")
    args = parser.parse_args(argv)
    log(f"machine: {machine_summary()}")
    files = dataset(args.studies)
    blobs = CACHE / "explorer-pharos-blobs"
    blobs.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="pharos-explorer-bench-"))
    try:
        if args.database_url:
            with fresh_postgres_database(args.database_url) as url:
                document = _pharos_document(blobs, None, url)
                _bulk_load(document, files)
                import psycopg
                with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"),
                                     autocommit=True) as conn:
                    conn.execute("VACUUM ANALYZE")
                with pharos_server(workdir, config=document) as server:
                    rows = measure(server.url, len(files), args.repeat)
        else:
            source = sqlite_index(files, blobs)
            index = workdir / "index"
            index.mkdir()
            shutil.copyfile(source, index / source.name)
            with pharos_server(workdir, config=_pharos_document(blobs, index, None)) as server:
                rows = measure(server.url, len(files), args.repeat)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    backend = "PostgreSQL" if args.database_url else "SQLite"
    print(f"\nExplorer requests at {len(files):,} studies ({backend}), ms over {args.repeat} rounds\n")
    print(format_table(["request", "answers", "median ms", "p90 ms"], rows))


if __name__ == "__main__":
    main()
