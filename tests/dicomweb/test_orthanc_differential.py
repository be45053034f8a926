"""Differential checks against Debian's Orthanc 1.10.1 + DICOMweb plugin (the oracle).

The same corpus series go into both servers by STOW-RS; QIDO-RS answers and series
metadata are compared attribute by attribute. The differences that remain are listed
below, each a documented Orthanc plugin quirk or a deliberate standard-conformant choice.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.dicomweb.conftest import multipart_body
from tests.helpers import LiveServer
from tests.interop.orthanc import RunningOrthanc, orthanc  # noqa: F401 — fixture

CORPUS_SETS = ("Knix", "Brainix/Flair", "DummyCT.dcm", "sample-pdf.dcm",
               "TransferSyntaxes/1.2.840.10008.1.2.4.50.dcm",
               "TransferSyntaxes/1.2.840.10008.1.2.4.70.dcm",
               "TransferSyntaxes/1.2.840.10008.1.2.5.dcm", "MultiframeWindowing.dcm")

# Attributes where the answers differ on purpose, with the reason.
QIDO_ALLOWED = {
    # Orthanc converts every answer to its DefaultEncoding (Latin-1) and says ISO_IR 100;
    # DICOM JSON is UTF-8 (PS3.18 F.2), Pharos says ISO_IR 192.
    "00080005",
    # InstanceAvailability and RequestAttributesSequence are default return attributes of
    # PS3.18 Tables 10.6.3-3..5 that Orthanc's plugin leaves out.
    "00080056", "00400275",
}
METADATA_ALLOWED = {
    # Orthanc 1.10's plugin leaves pixel data out of the metadata; Pharos gives its
    # BulkDataURI (OHIF and dcm4chee clients use it).
    "7FE00010",
    # Data Set Trailing Padding (PS3.10 7.2: no meaning, may be ignored): Orthanc lists
    # it as bulk data, Pharos drops it like group lengths.
    "FFFCFFFC",
}


@pytest.fixture(scope="module")
def loaded(orthanc: RunningOrthanc, server: LiveServer,  # noqa: F811
           corpus: Path) -> Iterator[tuple[str, str]]:
    files: list[bytes] = []
    for name in CORPUS_SETS:
        path = corpus / name
        if path.is_dir():
            files += [f.read_bytes() for f in sorted(path.rglob("*.dcm"))]
        elif path.exists():
            files.append(path.read_bytes())
    body, boundary = multipart_body([({"Content-Type": "application/dicom"}, f)
                                     for f in files], "b" + secrets.token_hex(6))
    headers = {"Content-Type": f"multipart/related; type=application/dicom; boundary={boundary}"}
    for url in (orthanc.url, server.url):
        response = httpx.post(url + "/dicom-web/studies", content=body, headers=headers,
                              timeout=120)
        assert response.status_code == 200, (url, response.text[:300])
    yield orthanc.url, server.url


def _get(base: str, path: str) -> Any:
    response = httpx.get(base + "/dicom-web" + path, timeout=60,
                         headers={"Accept": "application/dicom+json"})
    assert response.status_code == 200, (base, path, response.text[:200])
    return response.json()


def _normalize(value: Any, base: str) -> Any:
    """URLs without the server's address; strings without DICOM padding; DS values as
    numbers (Orthanc 1.10.1 writes numbers, Orthanc 1.12.6+ and Pharos their text)."""
    if isinstance(value, dict):
        if "BulkDataURI" in value or "InlineBinary" in value:
            return "<bulk>"  # host, vr and inline/URI choices differ: presence only
        if value.get("vr") == "DS" and "Value" in value:
            return {**value, "Value": [None if v is None else float(v) for v in value["Value"]]}
        return {k: _normalize(v, base) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalize(v, base) for v in value]
    if isinstance(value, str):
        return value.replace(base, "BASE").strip(" \x00")
    return value


def _by_uid(answers: list[dict], key: str) -> dict[str, dict]:
    return {a[key]["Value"][0]: a for a in answers}


def _compare(orthanc_answers: list[dict], pharos_answers: list[dict], key: str,
             bases: tuple[str, str], allowed: set[str]) -> list[str]:
    left, right = _by_uid(orthanc_answers, key), _by_uid(pharos_answers, key)
    problems = []
    if set(left) != set(right):
        problems.append(f"different results: {sorted(set(left) ^ set(right))}")
    for uid in set(left) & set(right):
        a, b = left[uid], right[uid]
        for tag in sorted(set(a) | set(b)):
            if tag in allowed:
                continue
            va, vb = _normalize(a.get(tag), bases[0]), _normalize(b.get(tag), bases[1])
            if tag == "00080061" and va == {"vr": "CS"} and vb is None:
                continue  # Orthanc answers an empty ModalitiesInStudy; OHIF crashes on it
            if va != vb:
                problems.append(f"{uid} {tag}: orthanc={va} pharos={vb}")
    return problems


QUERIES = [
    ("/studies", "0020000D"),
    ("/studies?includefield=00081030,00080060,00080090,00100030", "0020000D"),
    ("/studies?PatientName=KNIX", "0020000D"),
    ("/studies?StudyDate=20000101-20100101", "0020000D"),
    ("/studies?ModalitiesInStudy=MR", "0020000D"),
    ("/series", "0020000E"),
    ("/series?Modality=MR", "0020000E"),
    ("/instances?SOPClassUID=1.2.840.10008.5.1.4.1.1.104.1", "00080018"),
]


@pytest.mark.parametrize(("path", "key"), QUERIES)
def test_qido_like_orthanc(loaded: tuple[str, str], path: str, key: str) -> None:
    orthanc_url, pharos_url = loaded
    problems = _compare(_get(orthanc_url, path), _get(pharos_url, path), key,
                        (orthanc_url, pharos_url), QIDO_ALLOWED)
    assert problems == []


def test_series_and_instances_of_each_study_like_orthanc(loaded: tuple[str, str]) -> None:
    orthanc_url, pharos_url = loaded
    problems = []
    for study in _by_uid(_get(orthanc_url, "/studies"), "0020000D"):
        for path, key in ((f"/studies/{study}/series?includefield=00080021,00080031,"
                           "0008103E,00200011", "0020000E"),
                          (f"/studies/{study}/instances", "00080018")):
            problems += _compare(_get(orthanc_url, path), _get(pharos_url, path), key,
                                 (orthanc_url, pharos_url), QIDO_ALLOWED)
    assert problems == []


def test_series_metadata_like_orthanc(loaded: tuple[str, str]) -> None:
    orthanc_url, pharos_url = loaded
    problems = []
    checked = 0
    for series in _get(orthanc_url, "/series"):
        study = series["0020000D"]["Value"][0]
        uid = series["0020000E"]["Value"][0]
        path = f"/studies/{study}/series/{uid}/metadata"
        problems += _compare(_get(orthanc_url, path), _get(pharos_url, path), "00080018",
                             (orthanc_url, pharos_url), METADATA_ALLOWED)
        checked += 1
    assert checked >= 5
    assert problems == []
