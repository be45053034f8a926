"""``pharos import DIR...``: store every DICOM file (and ZIP of them) found in folders.

The files go through the one ingest path, as if uploaded, without a running server (the
index and store are opened directly; a server may run at the same time on the same
index). Progress is drawn on one line of the terminal (files, bytes, rate, what was
refused); when the output is not a terminal (a log, CI), a line every few seconds.
Files that are not DICOM (``DICOMDIR``, readme files, thumbnails...) are counted as
skipped, not as errors.
"""

from __future__ import annotations

import io
import logging
import os
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from app.context import ServerContext
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
        line = (f"[{bar}] {fraction:4.0%} {report.files}/{report.total_files} files, "
                f"{report.bytes_read / 1e6:.1f}/{report.total_bytes / 1e6:.1f} MB, "
                f"{report.files / elapsed:.0f} files/s, {report.stored} stored, "
                f"{len(report.refused)} refused")
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


def import_files(context: ServerContext, paths: list[Path], progress: Progress | None = None,
                 report: ImportReport | None = None) -> ImportReport:
    """Store each file (a DICOM file, or a ZIP of them); never stops on a bad one."""
    report = report or ImportReport()
    report.total_files = len(paths)
    report.total_bytes = sum(_size(p) for p in paths)
    origin = {"Origin": "Unknown"}
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError as error:
            data = b""
            report.refused.append((path, str(error)))
        report.files += 1
        report.bytes_read += _size(path)
        if data:
            _import_one(context, path, data, origin, report, progress)
        if progress is not None:
            progress.update(report)
    return report


def _import_one(context: ServerContext, path: Path, data: bytes, origin: dict[str, str],
                report: ImportReport, progress: Progress | None) -> None:
    try:
        if ingest.is_zip(data[:4]):
            results = ingest.ingest_zip(context, io.BytesIO(data), origin)
        elif not _looks_like_dicom(data):
            report.skipped += 1
            return
        else:
            results = [ingest.ingest_instance(context, data, origin)]
    except PharosError as error:
        if isinstance(error, BadFileFormat) and not _looks_like_dicom(data):
            report.skipped += 1
            return
        report.refused.append((path, str(error)))
        if progress is not None:
            progress.message(f"refused: {path}: {error}")
        else:
            log.warning("%s: %s", path, error)
        return
    for result in results:
        if result.status == "Success":
            report.stored += 1
        else:
            report.already += 1


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


def run(context: ServerContext, paths: list[Path], stream: TextIO = sys.stderr) -> ImportReport:
    """What the command does: find, import with progress, print the summary."""
    files = find_files(paths)
    progress = Progress(stream)
    report = ImportReport()
    try:
        import_files(context, files, progress, report)
    finally:  # also on Ctrl-C: what was stored stays stored, and is said
        progress.close(report)
        stream.write(report.summary() + "\n")
    return report
