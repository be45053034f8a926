"""Differential tests: the same /modify and /anonymize requests sent to Pharos and to a real
Orthanc 1.10.1 give the same tags (new UIDs aside, which must be new, valid and consistent)
and the same hierarchy; the files are valid DICOM for pydicom and dcmtk's ``dcmdump``."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pydicom
import pytest
from pydicom.dataset import Dataset

from app import ORTHANC_API_VERSION, orthanc_api_at_least
from tests.helpers import CORPUS, LiveServer, live_server
from tests.interop.orthanc import RunningOrthanc, orthanc  # noqa: F401 — fixture

SAMPLES = ["DummyCT.dcm", "PrivateMDNTags.dcm", "DicomSeg.dcm", "KarstenHilbertRF.dcm",
           "sample-pdf.dcm", "Encodings/Lena-latin1.dcm", "MarekLatin2.dcm",
           "2017-06-27-XSSInjection.dcm", "WithEmptyPatientComments.dcm"]
BRAINIX = "Brainix"
UID_PATTERN = re.compile(r"^[0-9]+(\.[0-9]+)*$")

INSTANCE_REQUESTS: list[tuple[str, dict[str, Any]]] = [
    ("modify", {"Replace": {"PatientName": "HELLO^WORLD", "InstitutionName": "My clinic"},
                "Remove": ["StudyDescription"]}),
    ("modify", {"Replace": {"StudyInstanceUID": "1.2.3.4.5"}, "Force": True}),
    ("modify", {"RemovePrivateTags": True, "Keep": ["SOPInstanceUID"], "Force": True}),
    ("modify", {"Replace": {"ReferencedStudySequence": [{"ReferencedSOPClassUID": "1.2.3",
                                                         "ReferencedSOPInstanceUID": "1.2.3.4"}]}}),
    ("anonymize", {}),
    ("anonymize", {"DicomVersion": "2017c"}),
    ("anonymize", {"DicomVersion": "2008"}),
    ("anonymize", {"Keep": ["StudyDescription", "SeriesDescription"], "KeepPrivateTags": True}),
    ("anonymize", {"Replace": {"PatientName": "Jane", "PatientID": "ANON1"}, "Force": True,
                   "Remove": ["Modality"]}),
]


@pytest.fixture(scope="module")
def pharos(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("pharos-modify")) as live:
        yield live


def _upload(client: httpx.Client, path: Path) -> str:
    answer = client.post("/instances", content=path.read_bytes())
    answer.raise_for_status()
    return answer.json()["ID"]


def _files(name: str) -> list[Path]:
    path = CORPUS / name
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file())
    return [path]


def _original_uids(ds: Dataset, found: set[str]) -> set[str]:
    for element in ds.iterall():
        if element.VR == "UI" and element.value:
            for value in (element.value if element.VM > 1 else [element.value]):
                found.add(str(value))
    return found


def normalized(ds: Dataset, original_uids: set[str], original_patient_id: str) -> dict[str, Any]:
    """Tags as comparable values: new UIDs become ``<new UID>``, a new PatientID
    ``<new ID>``, the Orthanc version in DeidentificationMethod goes."""
    out: dict[str, Any] = {}
    for element in ds:
        if element.tag.elem == 0:
            continue  # retired group lengths: DCMTK rewrites them, pydicom drops them
        key = f"{element.tag.group:04x},{element.tag.elem:04x}"
        if element.VR == "SQ":
            out[key] = [normalized(item, original_uids, original_patient_id)
                        for item in element.value]
            continue
        value: Any = element.value
        if element.VR == "UI" and value:
            values = [str(v) for v in (value if element.VM > 1 else [value])]
            assert all(UID_PATTERN.match(v) and len(v) <= 64 for v in values), values
            value = ["<new UID>" if v not in original_uids else v for v in values]
        elif element.tag == 0x00100020 and str(value) != original_patient_id:
            value = "<new ID>"
        elif element.tag == 0x00100010 and re.fullmatch(r"Anonymized\d+", str(value)):
            value = "Anonymized<N>"
        elif element.tag == 0x00120063:
            value = re.sub(r"^Orthanc [0-9.]+ - ", "Orthanc - ", str(value))
        elif isinstance(value, bytes):
            value = value.rstrip(b"\0 ")
        elif isinstance(value, pydicom.multival.MultiValue):
            value = [str(v) for v in value]
        else:
            value = str(value) if value is not None else ""
        out[key] = (element.VR, value)
    return out


def as_oracle(body: dict[str, Any], server: Any, pharos: LiveServer) -> dict[str, Any]:
    """The request Pharos gets so that it does what the oracle (Orthanc 1.10.1) does: its
    default profile is 2021b, Pharos' (answering as 1.12.1+) 2023b."""
    if server is pharos and "DicomVersion" not in body and orthanc_api_at_least(1, 12, 1):
        return {**body, "DicomVersion": "2021b"}
    return body


def without_plain_method(ours: dict[str, Any], theirs: dict[str, Any]) -> dict[str, Any]:
    """Orthanc 1.12.7+ signs a changed profile ``Orthanc <version>`` where 1.10.1 leaves
    DeidentificationMethod out."""
    if orthanc_api_at_least(1, 12, 7) and "0012,0063" not in theirs and \
            ours.get("0012,0063", (None, None))[1] == f"Orthanc {ORTHANC_API_VERSION}":
        return {k: v for k, v in ours.items() if k != "0012,0063"}
    return ours


def _dcmdump_ok(data: bytes, tmp: Path) -> None:
    if shutil.which("dcmdump") is None:
        return
    path = tmp / "check.dcm"
    path.write_bytes(data)
    result = subprocess.run(["dcmdump", "-q", str(path)], capture_output=True, text=True, errors="replace",
                            check=False)
    assert result.returncode == 0 and "E:" not in result.stderr, result.stderr


@pytest.mark.parametrize("sample", SAMPLES)
@pytest.mark.parametrize("verb,request_body", INSTANCE_REQUESTS,
                         ids=[f"{v}{i}" for i, (v, _) in enumerate(INSTANCE_REQUESTS)])
def test_instance_level_same_tags(sample: str, verb: str, request_body: dict[str, Any],
                                  pharos: LiveServer, orthanc: RunningOrthanc,  # noqa: F811
                                  tmp_path: Path) -> None:
    path = CORPUS / sample
    if not path.exists():
        pytest.skip(f"{sample} not in the corpus")
    source = pydicom.dcmread(path, force=True)
    uids = _original_uids(source, set())
    patient_id = str(source.get("PatientID", ""))
    answers = []
    for server in (pharos, orthanc):
        with server.client() as client:
            instance = _upload(client, path)
            answer = client.post(f"/instances/{instance}/{verb}",
                                 json=as_oracle(request_body, server, pharos))
            assert answer.status_code == 200, answer.text
            assert answer.headers["content-type"].startswith("application/dicom")
            answers.append(answer.content)
    _dcmdump_ok(answers[0], tmp_path)
    ours, theirs = (pydicom.dcmread(io.BytesIO(a)) for a in answers)
    theirs_tags = normalized(theirs, uids, patient_id)
    assert without_plain_method(normalized(ours, uids, patient_id), theirs_tags) == theirs_tags
    # The new identifiers really are new
    if verb == "anonymize" or "SOPInstanceUID" not in str(request_body):
        assert ours.SOPInstanceUID != source.SOPInstanceUID


BAD_REQUESTS: list[tuple[str, str, Any]] = [
    ("instances", "modify", {"Replace": {"PatientID": "X"}}),
    ("instances", "modify", {"Remove": ["SOPInstanceUID"]}),
    ("instances", "modify", {"Replace": {"NoSuchTagAtAll": "X"}}),
    ("instances", "modify", {"Replace": "not an object"}),
    ("instances", "modify", {"Force": "yes"}),
    ("instances", "anonymize", {"DicomVersion": "1999"}),
    ("studies", "modify", {"Replace": {"StudyInstanceUID": "1.2.3"}}),
    ("patients", "modify", {"Replace": {"PatientName": "X"}}),
    ("series", "modify", {"Remove": ["PatientID"]}),
]


@pytest.mark.parametrize("collection,verb,body", BAD_REQUESTS)
def test_bad_requests_refused_like_orthanc(collection: str, verb: str, body: Any,
                                           pharos: LiveServer,
                                           orthanc: RunningOrthanc) -> None:  # noqa: F811
    statuses = []
    for server in (pharos, orthanc):
        with server.client() as client:
            instance = _upload(client, CORPUS / "DummyCT.dcm")
            parent = {"studies": "study", "series": "series", "patients": "patient"}
            target = instance if collection == "instances" else \
                client.get(f"/instances/{instance}/{parent[collection]}").json()["ID"]
            statuses.append(client.post(f"/{collection}/{target}/{verb}", json=body).status_code)
    assert 400 <= statuses[0] < 500
    # Orthanc answers 500 for an unknown tag name; Pharos answers a clear 400 (deliberate).
    assert statuses[0] == statuses[1] or statuses[1] == 500


def _study_tags(client: httpx.Client, study: str) -> list[Dataset]:
    datasets = []
    for instance in client.get(f"/studies/{study}/instances").json():
        data = client.get(f"/instances/{instance['ID']}/file").content
        datasets.append(pydicom.dcmread(io.BytesIO(data)))
    return sorted(datasets, key=lambda d: (str(d.get("SeriesDescription", "")),
                                           int(d.get("InstanceNumber", 0) or 0)))


@pytest.mark.parametrize("sample,verb,body", [
    (BRAINIX, "modify", {"Replace": {"StudyDescription": "Changed",
                                     "InstitutionName": "Nowhere"}}),
    ("PatientWith2studies", "modify", {"Replace": {"PatientID": "NEWPID", "PatientName": "NEW^NAME"},
                        "Force": True}),
    (BRAINIX, "anonymize", {}),
    (BRAINIX, "anonymize", {"Keep": ["SeriesDescription"]}),
])
def test_study_level_same_tags_and_hierarchy(sample: str, verb: str, body: dict[str, Any],
                                             pharos: LiveServer,
                                             orthanc: RunningOrthanc) -> None:  # noqa: F811
    files = _files(sample)
    if not files[0].exists():
        pytest.skip("Brainix not in the corpus")
    level = "patients" if "PatientID" in body.get("Replace", {}) else "studies"
    results = []
    for server in (pharos, orthanc):
        with server.client() as client:
            ids = [_upload(client, f) for f in files]
            study = client.get(f"/instances/{ids[0]}/study").json()
            target = study["ParentPatient"] if level == "patients" else study["ID"]
            answer = client.post(f"/{level}/{target}/{verb}", json=as_oracle(body, server, pharos))
            assert answer.status_code == 200, answer.text
            shape = answer.json()
            # ParentResources: the resources asked for, answered since Orthanc 1.11.3
            assert set(shape) - {"ParentResources"} == {
                "Description", "FailedInstancesCount", "ID", "InstancesCount",
                "IsAnonymization", "Path", "PatientID", "Type"}
            assert shape["Path"] == f"/{level}/{shape['ID']}"
            new_studies = ([shape["ID"]] if level == "studies" else
                           client.get(f"/patients/{shape['ID']}").json()["Studies"])
            hierarchy = []
            datasets = []
            for new_study in new_studies:
                assert client.get(f"/studies/{new_study}").json()["ParentPatient"] == \
                    shape["PatientID"]
                series = client.get(f"/studies/{new_study}/series").json()
                hierarchy.append(sorted(len(s["Instances"]) for s in series))
                datasets.extend(_study_tags(client, new_study))
            hierarchy.sort()
            datasets.sort(key=lambda d: str(d.get("SOPClassUID", "")) + str(d.StudyDate))
            meta = client.get(f"/studies/{new_studies[0]}/metadata?expand").json()
            results.append((hierarchy, datasets, shape, meta))
    (our_h, ours, our_shape, our_meta), (their_h, theirs, their_shape, their_meta) = results
    assert our_h == their_h
    for key in ("Type", "Description", "InstancesCount", "FailedInstancesCount",
                "IsAnonymization"):
        assert our_shape[key] == their_shape[key]
    assert ("ModifiedFrom" in our_meta) == ("ModifiedFrom" in their_meta)
    assert ("AnonymizedFrom" in our_meta) == ("AnonymizedFrom" in their_meta)
    source_uids: set[str] = set()
    for f in files:
        _original_uids(pydicom.dcmread(f, stop_before_pixels=True, force=True), source_uids)
    patient_id = str(pydicom.dcmread(files[0], stop_before_pixels=True).PatientID)
    for a, b in zip(ours, theirs, strict=True):
        theirs_tags = normalized(b, source_uids, patient_id)
        assert without_plain_method(normalized(a, source_uids, patient_id),
                                    theirs_tags) == theirs_tags
    # One new study UID, one new series UID per series, consistent across instances
    assert len({d.StudyInstanceUID for d in ours}) == len(our_h)
    assert len({d.SeriesInstanceUID for d in ours}) == sum(len(h) for h in our_h)
    assert len({d.PatientID for d in ours}) == 1
