"""Differential test of decoded images: Pharos against Debian's Orthanc on the corpus.

Every file of the sample corpus is posted to both servers; for every instance (first
frame) the image routes are fetched from both and compared **byte for byte**: Pharos
decodes with Orthanc's rules and writes PNGs as libpng writes them for Orthanc, so the
answers (and their MD5, which Orthanc's own tests check) are the same files.

Allowed differences, each with its reason:

* Orthanc 1.10.1 answers 500 where it cannot decode (``/numpy``, ``/matlab``): Pharos 415;
* ``KNOWN_DIFFERENCES``: Orthanc 1.10.1 bugs fixed in the later Orthanc versions whose
  behaviour Pharos (reporting 1.12.1) follows.

Every difference is collected before failing, so one run shows the whole picture.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import pydicom
import pytest

from tests.helpers import LiveServer
from tests.interop.orthanc import RunningOrthanc
from tests.interop.orthanc import orthanc as real_orthanc  # noqa: F401 — a fixture

pytestmark = [pytest.mark.interop, pytest.mark.corpus]

ROUTES = ("preview", "image-uint8", "image-uint16", "image-int16", "rendered",
          "rendered?width=33&smooth=1", "rendered?window-center=100&window-width=50",
          "matlab", "numpy", "numpy?rescale=0", "frames/0/raw")

_PLANAR = "Orthanc 1.10.1 does not interleave RLE planes (fixed in 1.11.3 and 1.12.1)"
_FLOOR = "Orthanc 1.10.1 floors rescaled float32 values (fixed in 1.11)"
# (file name, route) -> (largest allowed difference, why). Keep this short and honest.
KNOWN_DIFFERENCES: dict[tuple[str, str], tuple[float, str]] = {
    **{(name, route): (255, _PLANAR)
       for name in ("2023-04-21-RLEPlanarConfigurationYBR_FULL.dcm",
                    "2022-11-14-RLEPlanarConfiguration.dcm")
       for route in ROUTES if route != "frames/0/raw"},
    **{(name, "numpy"): (1, _FLOOR)
       for name in ("PrivateMDNTags.dcm", "1.2.840.10008.1.2.4.57.dcm",
                    "2020-11-16-SalimKanounAnonymization.dcm", "Issue94.dcm")},
}


@dataclass
class Corpus:
    ids: dict[str, str] = field(default_factory=dict)  # instance ID -> corpus file
    syntaxes: dict[str, str] = field(default_factory=dict)  # instance ID -> transfer syntax


def _files(root: Path) -> list[Path]:
    files = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix.lower() not in (".png", ".md", ".pdf", ".raw"):
            files.append(path)
    return files


def _upload(url: str, files: list[Path], answers: dict[Path, httpx.Response]) -> None:
    with httpx.Client(base_url=url, timeout=120) as http:
        for path in files:
            answers[path] = http.post("/instances", content=path.read_bytes())


@pytest.fixture(scope="module")
def both(server: LiveServer, real_orthanc: RunningOrthanc,  # noqa: F811
         corpus: Path) -> Iterator[tuple[LiveServer, RunningOrthanc, Corpus]]:
    files = _files(corpus)
    ours: dict[Path, httpx.Response] = {}
    theirs: dict[Path, httpx.Response] = {}
    threads = [threading.Thread(target=_upload, args=(server.url, files, ours)),
               threading.Thread(target=_upload, args=(real_orthanc.url, files, theirs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stored = Corpus()
    for path in files:
        answer = theirs[path]
        if answer.status_code == 200 and ours[path].status_code == 200:
            instance = answer.json()["ID"]
            stored.ids.setdefault(instance, str(path.relative_to(corpus)))
            try:
                meta = pydicom.dcmread(path, stop_before_pixels=True, force=True).file_meta
                stored.syntaxes[instance] = str(meta.get("TransferSyntaxUID", ""))
            except Exception:  # noqa: BLE001 — the servers accepted it: good enough
                stored.syntaxes[instance] = ""
    yield server, real_orthanc, stored


def _values(route: str, body: bytes) -> np.ndarray | None:
    if route.startswith("numpy"):
        return np.load(io.BytesIO(body))
    try:
        from PIL import Image
        return np.asarray(Image.open(io.BytesIO(body)))
    except Exception:  # noqa: BLE001 — not an image (matlab, raw)
        return None


@dataclass
class Findings:
    differences: list[str] = field(default_factory=list)
    orthanc_errors: list[str] = field(default_factory=list)
    tolerated: list[str] = field(default_factory=list)


def _compare(findings: Findings, name: str, route: str,
             ours: httpx.Response, theirs: httpx.Response) -> None:
    where = f"{route} {name}"
    if theirs.status_code >= 500 and ours.status_code in (400, 415):
        findings.orthanc_errors.append(f"{where}: Orthanc {theirs.status_code}")
        return
    if ours.status_code != theirs.status_code:
        findings.differences.append(f"{where}: status Pharos {ours.status_code} "
                                    f"Orthanc {theirs.status_code}")
        return
    if ours.status_code != 200 or ours.content == theirs.content:
        return
    allowed, reason = KNOWN_DIFFERENCES.get((Path(name).name, route), (0.0, ""))
    a, b = _values(route, ours.content), _values(route, theirs.content)
    if a is None or b is None or a.shape != b.shape or a.dtype != b.dtype:
        if allowed:
            findings.tolerated.append(f"{where}: {reason}")
        else:
            findings.differences.append(f"{where}: different answers")
        return
    error = float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.size else 0.0
    if error > allowed or (error == 0 and not allowed):
        findings.differences.append(f"{where}: " + (f"pixels differ by up to {error:g}" if error
                                                    else "same pixels, different bytes"))
    else:
        findings.tolerated.append(f"{where}: {error:g} ({reason})")


def test_image_answers_are_orthancs(both, record_property):
    server, orthanc, stored = both
    findings = Findings()
    with server.client() as ours, httpx.Client(base_url=orthanc.url, timeout=120) as theirs:
        for instance, name in sorted(stored.ids.items(), key=lambda item: item[1]):
            for route in ROUTES:
                path = f"/instances/{instance}/{route}"
                _compare(findings, name, route, ours.get(path), theirs.get(path))
    record_property("tolerated", findings.tolerated)
    print("Tolerated differences:", *findings.tolerated, sep="\n  ")
    print("Orthanc errors:", len(findings.orthanc_errors))
    assert not findings.differences, "\n".join(findings.differences)
