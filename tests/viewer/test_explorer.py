"""Pharos Explorer (``/ui/``), proven in a real browser, and its routes.

``explorer_check.mjs`` drives Debian's chromium (playwright-core, the OHIF check's
harness) through every action of the page on a live server: upload by file input,
folder, ZIP and drop, with progress; search, sort, page; browse patient, study, series,
instance (tags, preview); label, protect, modify, anonymize, download ZIP and DICOMDIR,
delete; send to an Orthanc peer, a DICOM modality and a DICOMweb server (a second
Pharos), query and retrieve from it; jobs with live progress; system statistics; the
keyboard path. It fails
on any answer >= 400, failed load, request to another origin, console error or control
without an accessible name; screenshots land in ``test-artifacts/ui*/``. Then this file
checks on the servers that the actions happened (the label, the protection, the copy
on the other server...).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import httpx
import pytest

from app.api.ui import UI_DIRECTORY
from tests.helpers import REPO, LiveServer, free_port, live_server, make_dicom

HERE = Path(__file__).resolve().parent
CHECK_SCRIPT = HERE / "explorer_check.mjs"
CHROMIUM = os.environ.get("PHAROS_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = REPO / "test-artifacts"
PAGING_STUDIES = 30


def _browser_missing() -> str | None:
    if not os.access(CHROMIUM, os.X_OK):
        return f"chromium not found at {CHROMIUM} (apt-get install chromium)"
    if shutil.which("node") is None:
        return "node not found"
    if not (HERE / "node_modules" / "playwright-core").is_dir():
        return "playwright-core not installed (npm ci --prefix tests/viewer)"
    return None


needs_browser = pytest.mark.skipif(_browser_missing() is not None, reason=_browser_missing() or "")


def _run_check(spec: dict) -> dict:
    completed = subprocess.run(["node", str(CHECK_SCRIPT), json.dumps(spec)], cwd=REPO,
                               capture_output=True, text=True, timeout=600)
    try:
        report = json.loads(completed.stdout)
    except ValueError:
        pytest.fail(f"explorer_check.mjs exited {completed.returncode} without a report:\n"
                    f"{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}")
    if completed.returncode != 0:
        pytest.fail(f"the explorer check failed (screenshots in {spec['artifacts']}):\n"
                    f"{json.dumps(report, indent=2)[:20000]}\n{completed.stderr[-2000:]}")
    return report


def _dicom_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.dcm"))


def _seed_paging_studies(server: LiveServer) -> None:
    """Studies of their own patients, enough for two pages of 25."""
    with server.client() as http:
        for n in range(PAGING_STUDIES):
            payload = make_dicom(patient_id=f"PG{n:03d}", patient_name=f"PAGING^{n:03d}",
                                 StudyDescription=f"Paging study {n:03d}",
                                 StudyDate=f"2019{1 + n % 12:02d}{1 + n % 28:02d}")
            assert http.post("/instances", content=payload).status_code == 200


@needs_browser
def test_explorer_does_every_action_through_the_page(tmp_path: Path, corpus: Path) -> None:
    ports = {name: free_port() for name in ("a_http", "a_dicom", "b_http", "b_dicom")}
    target = {"Name": "Target", "HttpPort": ports["b_http"], "DicomPort": ports["b_dicom"],
              "DicomAet": "PHAROSB",
              "DicomModalities": {"explorer": ["PHAROSUI", "127.0.0.1", ports["a_dicom"]]}}
    explorer = {"Name": "Explorer test", "HttpPort": ports["a_http"], "DicomPort": ports["a_dicom"],
                "DicomAet": "PHAROSUI",
                "DicomModalities": {"target": ["PHAROSB", "127.0.0.1", ports["b_dicom"]]},
                "OrthancPeers": {"target-peer": {"Url": f"http://127.0.0.1:{ports['b_http']}/"}},
                "DicomWeb": {"Servers": {"target-web": [f"http://127.0.0.1:{ports['b_http']}/dicom-web/"]}}}
    uploads = {
        "files": _dicom_files(corpus / "Phenix") + _dicom_files(corpus / "Comunix"),
        "folder": corpus / "Brainix",
        "zip": tmp_path / "knee.zip",
        "drop": _dicom_files(corpus / "Knix"),
    }
    with zipfile.ZipFile(uploads["zip"], "w") as archive:
        for path in _dicom_files(corpus / "Knee"):
            archive.write(path, path.relative_to(corpus).as_posix())
    uploaded = (len(uploads["files"]) + len(_dicom_files(uploads["folder"]))
                + len(_dicom_files(corpus / "Knee")) + len(uploads["drop"]))

    with live_server(tmp_path / "b", target) as remote, live_server(tmp_path / "a", explorer) as server:
        _seed_paging_studies(server)
        with remote.client() as http:  # a study only the remote modality has
            assert http.post("/instances", content=make_dicom(
                patient_id="REMOTE1", patient_name="REMOTE^ONLY", StudyDescription="Remote study",
            )).status_code == 200
        report = _run_check({
            "url": server.url, "artifacts": str(ARTIFACTS / "ui"), "scenario": "full",
            "upload": {key: ([str(p) for p in value] if isinstance(value, list) else str(value))
                       for key, value in uploads.items()},
            "expect": {
                "studies": PAGING_STUDIES, "firstPageRows": 25,
                "studiesAfterUploads": PAGING_STUDIES + 5,
                "folderInstances": len(_dicom_files(uploads["folder"])),
                "zipInstances": len(_dicom_files(corpus / "Knee")),
                "searchName": "KNIX", "browseName": "BRAINIX",
                "modifiedDescription": "Modified through the explorer",
                "peer": "target-peer", "modality": "target", "dicomweb": "target-web",
                "remoteName": "REMOTE*",
                "instancesAtEnd": PAGING_STUDIES + uploaded + 1,
            },
        })
        steps = {step["name"]: step for step in report["steps"]}
        assert 5 < steps["upload a folder, with progress"]["progressSeen"] < 95
        # What the page did, as the servers see it.
        with server.client() as http:
            modified = steps["modify"]["study"]
            study = http.get(f"/studies/{modified}").json()
            assert study["MainDicomTags"]["StudyDescription"] == "Modified through the explorer"
            assert study["Labels"] == ["urgent-ui"]  # labels follow the modified copy
            assert http.get(f"/patients/{study['ParentPatient']}/protected").text == "1"
            assert http.get(f"/studies/{steps['browse patient, study, series, instance']['study']}").status_code == 404
            assert http.get(f"/studies/{steps['anonymize']['anonymized']}").status_code == 404
            assert http.post("/tools/find", json={"Level": "Study", "Query": {"PatientName": "REMOTE^ONLY"}}).json()
            jobs = http.get("/jobs?expand").json()
            assert {job["Type"] for job in jobs} >= {
                "ResourceModification", "OrthancPeerStore", "DicomModalityStore", "DicomWebStowClient",
                "DicomMoveScu", "Archive"}
        with remote.client() as http:
            copies = http.post("/tools/find", json={
                "Level": "Study", "Query": {"StudyDescription": "Modified through the explorer"},
                "Expand": True}).json()
            assert len(copies) == 1  # sent three times (peer, modality, STOW-RS): one study
        with zipfile.ZipFile(steps["download ZIP and DICOMDIR"]["download-media"]) as media:
            assert "DICOMDIR" in media.namelist()
        with zipfile.ZipFile(steps["download ZIP and DICOMDIR"]["download-zip"]) as archive:
            assert len([n for n in archive.namelist() if n.endswith(".dcm")]) == len(
                _dicom_files(uploads["folder"]))


@needs_browser
def test_explorer_behind_basic_authentication(tmp_path: Path, corpus: Path) -> None:
    users = {"alice": "wonderland"}
    with live_server(tmp_path, {"AuthenticationEnabled": True, "RegisteredUsers": users}) as server:
        refused = httpx.get(f"{server.url}/ui/")
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith("Basic")
        assert httpx.get(f"{server.url}/ui/js/main.js").status_code == 401
        with server.client(auth=("alice", "wonderland")) as http:
            assert http.post("/instances", content=make_dicom(patient_name="EXISTING^ONE")).status_code == 200
        _run_check({
            "url": server.url, "artifacts": str(ARTIFACTS / "ui-auth"), "scenario": "auth",
            "credentials": "alice:wonderland",
            "upload": {"files": [str(p) for p in _dicom_files(corpus / "Brainix" / "Flair")[:5]]
                       + [str(corpus / "2017-06-27-XSSInjection.dcm")]},
            "expect": {"browseName": "BRAINIX"},
        })
        with server.client(auth=("alice", "wonderland")) as http:
            [study] = http.post("/tools/find", json={"Level": "Study", "Query": {"PatientName": "BRAINIX"},
                                                     "Expand": True}).json()
            assert study["Labels"] == ["checked"]


# --- the routes, without a browser -------------------------------------------------------


def test_ui_files_are_served_from_the_package(server: LiveServer) -> None:
    with server.client() as http:
        page = http.get("/ui/")
        assert page.status_code == 200
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assert '<script type="module" src="js/main.js">' in page.text
        # Every file the page names is served, from this origin, no CDN.
        for name in re.findall(r'(?:src|href)="((?:js/|ui\.css|favicon)[^"]*)"', page.text):
            answer = http.get(f"/ui/{name}")
            assert answer.status_code == 200, name
        script = http.get("/ui/js/main.js")
        assert script.headers["content-type"] == "text/javascript; charset=utf-8"
        assert script.headers["cache-control"] == "no-cache"
        etag = script.headers["etag"]
        assert http.get("/ui/js/main.js", headers={"If-None-Match": etag}).status_code == 304
        gzipped = http.send(http.build_request("GET", "/ui/ui.css", headers={"Accept-Encoding": "gzip"}),
                            stream=True)
        assert gzipped.headers["content-encoding"] == "gzip"
        gzipped.close()
        head = http.head("/ui/ui.css")
        assert head.status_code == 200 and head.content == b""
        assert http.get("/ui/missing.js").status_code == 404
        assert http.get("/ui/%2e%2e/%2e%2e/pyproject.toml").status_code == 404
        assert http.get("/ui/../app/api/ui.py").status_code == 404


def _exports(module: Path) -> set[str]:
    text = module.read_text()
    names = set(re.findall(r"^export (?:async )?(?:function|class|const|let) (\w+)", text, re.M))
    for group in re.findall(r"^export \{([^}]*)\}", text, re.M):
        names |= {name.split(" as ")[-1].strip() for name in group.split(",") if name.strip()}
    return names


def test_every_ui_module_is_shipped_and_names_no_other_origin() -> None:
    """What a broken page would show only in a browser: a module or a name it imports
    that does not exist (the whole page fails to load), an address on another origin."""
    files = sorted(p for p in UI_DIRECTORY.rglob("*") if p.is_file())
    assert {p.suffix for p in files} <= {".html", ".css", ".js", ".svg"}
    for path in files:
        text = path.read_text()
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", text), path  # no CDN
        for names, module in re.findall(r"import \{([^}]*)\} from '(\.{1,2}/[^']+)'", text):
            target = (path.parent / module).resolve()
            assert target.is_file(), f"{path}: {module}"
            for name in (n.split(" as ")[0].strip() for n in names.split(",") if n.strip()):
                assert name in _exports(target), f"{path} imports {name} that {module} lacks"
    pyproject = (REPO / "pyproject.toml").read_text()
    assert '"ui/*.html"' in pyproject and '"ui/js/*.js"' in pyproject and '"ui/js/views/*.js"' in pyproject


def test_orthanc_explorer_addresses_redirect_to_the_ui(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url, follow_redirects=False) as http:
        for path, location in [("/app/explorer.html", "../ui/"), ("/ui/app/", "../"),
                               ("/ui/app", "./"), ("/ui/app/index.html", "../"),
                               ("/ui/app/a/b", "../../"), ("/ui", "ui/")]:
            answer = http.get(path)
            assert answer.status_code == 307, path
            assert answer.headers["location"] == location, path
            assert str(answer.url.join(location)).endswith("/ui/"), path
    with httpx.Client(base_url=server.url, follow_redirects=True) as http:
        landed = http.get("/app/explorer.html")
        assert landed.url.path == "/ui/" and "Pharos Explorer" in landed.text


def test_landing_page_links_to_the_explorer(server: LiveServer) -> None:
    page = httpx.get(f"{server.url}/")
    assert page.status_code == 200
    assert 'href="/ui/"' in page.text
