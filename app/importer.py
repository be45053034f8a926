"""``pharos import DIR...``: store every DICOM file (and ZIP of them) found in folders.

The files go through the one ingest path, as if uploaded, without a running server (the
index and store are opened directly; a server may run at the same time on the same
index). Progress is drawn on one line of the terminal (files, bytes, rate, what was
refused); when the output is not a terminal (a log, CI), a line every few seconds.
Files that are not DICOM (``DICOMDIR``, readme files, thumbnails...) are counted as
skipped, not as errors; refused files are named as they come and again after the
summary.

Parallel: ``--workers`` processes (default: one per core) take the files from one queue,
each through its own connection to the index (SQLite's WAL or PostgreSQL serialize the
writes; parsing, hashing and blob writes run side by side). Resumable: a file whose
SOPInstanceUID and MD5 match a stored instance is counted as already stored after
reading its header only, so an interrupted import started again skips what it stored.
The progress line is written here rather than with rich or tqdm: one line with the
rate and the ETA is all it needs, and the archive's base install stays without them.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import multiprocessing
import os
import queue
import sys
import threading
import time
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from app.config import Settings
from app.context import ServerContext, metrics
from app.errors import BadFileFormat, PharosError
from app.services import ingest

log = logging.getLogger(__name__)

_SKIPPED_NAMES = {"DICOMDIR", ".DS_Store", "Thumbs.db"}


@dataclass
class ImportReport:
    files: int = 0
    total_files: int = 0
    bytes_read: int = 0
    total_bytes: int = 0
    stored: int = 0
    already: int = 0
    skipped: int = 0
    refused: list[tuple[Path, str]] = field(default_factory=list)

    def summary(self) -> str:
        return (f"{self.stored} instances stored, {self.already} already stored, "
                f"{self.skipped} files skipped (not DICOM), {len(self.refused)} refused")


class Progress:
    """One line redrawn in place on a terminal; a line every *period* seconds otherwise."""

    def __init__(self, stream: TextIO, period: float = 5.0) -> None:
        self.stream = stream
        self.interactive = stream.isatty()
        self.period = period
        self.started = time.monotonic()
        self.last = 0.0

    def update(self, report: ImportReport, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < (0.1 if self.interactive else self.period):
            return
        self.last = now
        elapsed = max(now - self.started, 1e-6)
        fraction = report.bytes_read / report.total_bytes if report.total_bytes else 1.0
        width = 24
        bar = "#" * int(fraction * width) + "." * (width - int(fraction * width))
        rate = report.bytes_read / elapsed
        left = (report.total_bytes - report.bytes_read) / rate if rate else 0.0
        line = (f"[{bar}] {fraction:4.0%} {report.files}/{report.total_files} files, "
                f"{report.bytes_read / 1e6:.1f}/{report.total_bytes / 1e6:.1f} MB, "
                f"{report.files / elapsed:.0f} files/s, {rate / 1e6:.1f} MB/s, "
                f"ETA {_duration(left) if report.bytes_read else '?'}, "
                f"{report.stored} stored, {len(report.refused)} refused")
        if self.interactive:
            self.stream.write("\r\x1b[2K" + line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def message(self, text: str) -> None:
        """A line above the bar (a refused file)."""
        self.stream.write(("\r\x1b[2K" if self.interactive else "") + text + "\n")
        self.stream.flush()

    def close(self, report: ImportReport) -> None:
        self.update(report, force=True)
        if self.interactive:
            self.stream.write("\n")
        self.stream.flush()


def _duration(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def find_files(paths: Iterable[Path]) -> list[Path]:
    """The files under *paths* (folders walked, files kept), sorted, junk names left out."""
    found: list[Path] = []
    for path in paths:
        if path.is_file():
            found.append(path)
            continue
        for root, directories, names in os.walk(path):
            directories.sort()
            found.extend(Path(root) / name for name in sorted(names)
                         if name not in _SKIPPED_NAMES and not name.startswith("._"))
    return found


@dataclass
class FileOutcome:
    """What became of one file (a ZIP counts each of its instances)."""

    path: Path
    size: int
    stored: int = 0
    already: int = 0
    skipped: int = 0
    refused: str | None = None

    def add_to(self, report: ImportReport) -> None:
        report.files += 1
        report.bytes_read += self.size
        report.stored += self.stored
        report.already += self.already
        report.skipped += self.skipped
        if self.refused is not None:
            report.refused.append((self.path, self.refused))


def import_files(context: ServerContext, paths: list[Path], progress: Progress | None = None,
                 report: ImportReport | None = None, workers: int = 1) -> ImportReport:
    """Store each file (a DICOM file, or a ZIP of them); never stops on a bad one. With
    *workers* > 1, that many processes share the files, each with its own connection to
    the same index and store (parsing is Python: threads would share one core)."""
    report = report or ImportReport()
    report.total_files = len(paths)
    report.total_bytes = sum(_size(p) for p in paths)
    outcomes = _in_processes(context, paths, workers) if workers > 1 and len(paths) > 1 \
        else (import_one(context, path) for path in paths)
    for outcome in outcomes:
        outcome.add_to(report)
        if outcome.refused is not None:
            if progress is not None:
                progress.message(f"refused: {outcome.path}: {outcome.refused}")
            else:
                log.warning("%s: %s", outcome.path, outcome.refused)
        if progress is not None:
            progress.update(report)
    return report


def import_one(context: ServerContext, path: Path) -> FileOutcome:
    """One file through the ingest path. Resuming: a file whose SOPInstanceUID and MD5
    match a stored instance is counted as already stored without being parsed."""
    outcome = FileOutcome(path, _size(path))
    try:
        data = path.read_bytes()
    except OSError as error:
        outcome.refused = str(error)
        return outcome
    if not data:
        outcome.refused = "empty file"
        return outcome
    origin = {"Origin": "Unknown"}
    try:
        if ingest.is_zip(data[:4]):
            results = ingest.ingest_zip(context, io.BytesIO(data), origin)
        elif not _looks_like_dicom(data):
            outcome.skipped = 1
            return outcome
        elif ingest.stored_identically(context, data):
            outcome.already = 1
            return outcome
        else:
            results = [ingest.ingest_instance(context, data, origin)]
    except PharosError as error:
        if isinstance(error, BadFileFormat) and not _looks_like_dicom(data):
            outcome.skipped = 1
        else:
            outcome.refused = str(error)
        return outcome
    for result in results:
        if result.status == "Success":
            outcome.stored += 1
        else:
            outcome.already += 1
    return outcome


def _in_processes(context: ServerContext, paths: list[Path],
                  workers: int) -> Iterator[FileOutcome]:
    """The outcomes of *paths* imported by *workers* processes, in completion order.
    Each worker opens the index and store itself, adds its ingest counts to the
    archive's metrics and closes them when the queue is empty. A worker that dies
    (killed, out of memory) ends the import with an error rather than a wait forever."""
    spawn = multiprocessing.get_context("spawn")
    tasks: Any = spawn.Queue()
    results: Any = spawn.Queue()
    for path in paths:
        tasks.put(str(path))
    count = min(workers, len(paths))
    for _ in range(count * _THREADS):
        tasks.put(None)
    settings = dataclasses.replace(context.settings, sweep_orphans_at_start=False)
    processes = [spawn.Process(target=_worker, args=(settings, tasks, results), daemon=True)
                 for _ in range(count)]
    for process in processes:
        process.start()
    try:
        received = 0
        while received < len(paths):
            try:
                outcome = results.get(timeout=1.0)
            except queue.Empty:
                if not any(p.is_alive() for p in processes) and results.empty():
                    raise RuntimeError("the import workers stopped before the end") from None
                continue
            received += 1
            yield outcome
        for process in processes:
            process.join()
    finally:  # Ctrl-C or an error: what was stored stays stored
        for process in processes:
            if process.is_alive():
                process.terminate()
                process.join(5)


# Files in flight per worker process: while one waits for its blob's fsync or the index
# commit, the others parse, and concurrent commits are grouped (Database.write_grouped).
_THREADS = 4


def _worker(settings: Settings, tasks: Any, results: Any) -> None:
    logging.getLogger().setLevel(logging.WARNING)
    logging.getLogger("pydicom").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=UserWarning, module="pydicom")
    context = ServerContext.open(settings)

    def work() -> None:
        for path in iter(tasks.get, None):
            try:
                outcome = import_one(context, Path(path))
            except Exception as error:  # noqa: BLE001 — a bug or a store outage: say it, go on
                log.exception("Unexpected error importing %s", path)
                outcome = FileOutcome(Path(path), _size(Path(path)),
                                      refused=f"unexpected error: {error!r}")
            results.put(outcome)
    threads = [threading.Thread(target=work, daemon=True) for _ in range(_THREADS)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        try:
            metrics.flush(context)
        except Exception:  # noqa: BLE001 — metrics never fail an import
            log.warning("Import counts not added to the metrics")
        context.close()


def _looks_like_dicom(data: bytes) -> bool:
    """A Part 10 file (``DICM`` at 128), or a raw dataset starting with a group 0002/0008
    element, as Orthanc also accepts them."""
    if data[128:132] == b"DICM":
        return True
    return data[:2] in (b"\x02\x00", b"\x08\x00")


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def run(context: ServerContext, paths: list[Path], stream: TextIO = sys.stderr,
        workers: int = 1) -> ImportReport:
    """What the command does: find, import with progress, print the summary (each
    refused file named again, with why, after it)."""
    files = find_files(paths)
    progress = Progress(stream)
    report = ImportReport()
    try:
        import_files(context, files, progress, report, workers)
    finally:  # also on Ctrl-C: what was stored stays stored, and is said
        progress.close(report)
        stream.write(report.summary() + "\n")
        for path, why in report.refused:
            stream.write(f"  refused: {path}: {why}\n")
    return report
