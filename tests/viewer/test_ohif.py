"""The OHIF viewer served at /ohif/, proven in a real browser.

The browser checks run ``ohif_check.mjs`` (Debian's chromium driven by playwright-core)
against a live server holding corpus studies: the study list shows them, each study opens
and draws an image (the overlay shows ``W:<number>``), no request fails and the page logs
no error. Screenshots land in ``test-artifacts/viewer*/``. They are skipped only when
chromium, node, playwright-core (``npm ci --prefix tests/viewer``) or the viewer itself
(``make ohif``) is absent; ``.ci/run`` installs all four.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from app.config import Settings
from app.viewer import dist
from tests.helpers import REPO, LiveServer, live_server

HERE = Path(__file__).resolve().parent
CHECK_SCRIPT = HERE / "ohif_check.mjs"
CHROMIUM = os.environ.get("PHAROS_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = REPO / "test-artifacts"
VIEWER = dist.viewer_directory(os.environ.get("PHAROS_VIEWER_DIRECTORY"))

BRAINIX_UID = "2.16.840.1.113669.632.20.1211.10000357775"
KNEE_UID = "2.16.840.1.113669.632.20.121711.10000160881"
JPEG2000_UID = "1.3.6.1.4.1.5962.1.2.1.20040826185059.5457"
MULTIFRAME_UID = "1.2.276.0.7230010.3.1.2.8323329.21394.1457368573.712350"

needs_viewer = pytest.mark.skipif(
    not dist.is_installed(VIEWER), reason=f"OHIF viewer not installed in {VIEWER} (make ohif)")


def _browser_missing() -> str | None:
    from app.api import dicomweb
    if not dicomweb.router.routes:
        return "the DICOMweb router (app/api/dicomweb/) has not landed yet"
    if not os.access(CHROMIUM, os.X_OK):
        return f"chromium not found at {CHROMIUM} (apt-get install chromium)"
    if shutil.which("node") is None:
        return "node not found"
    if not (HERE / "node_modules" / "playwright-core").is_dir():
        return "playwright-core not installed (npm ci --prefix tests/viewer)"
    if not dist.is_installed(VIEWER):
        return f"OHIF viewer not installed in {VIEWER} (make ohif)"
    return None


needs_browser = pytest.mark.skipif(_browser_missing() is not None,
                                   reason=_browser_missing() or "")


def _files(corpus: Path) -> list[bytes]:
    paths = sorted((corpus / "Brainix").rglob("*.dcm")) + sorted((corpus / "Knee").rglob("*.dcm"))
    payloads = [p.read_bytes() for p in paths]
    payloads.append((corpus / "TransferSyntaxes" / "1.2.840.10008.1.2.4.91.dcm").read_bytes())
    # Two JPEG frames, and no Modality: OHIF 3.13.2's study list crashes (TypeError in
    # getModalities) on a QIDO study whose ModalitiesInStudy is present without a value,
    # so this study in the list also checks that Pharos leaves such an attribute out.
    payloads.append((corpus / "LenaTwiceWithFragments.dcm").read_bytes())
    return payloads


def _upload(server: LiveServer, payloads: list[bytes], auth: tuple[str, str] | None = None) -> None:
    with server.client(auth=auth) as http:
        for payload in payloads:
            answer = http.post("/instances", content=payload)
            assert answer.status_code == 200, answer.text


def _run_check(spec: dict) -> dict:
    completed = subprocess.run(
        ["node", str(CHECK_SCRIPT), json.dumps(spec)], cwd=REPO,
        capture_output=True, text=True, timeout=360)
    try:
        report = json.loads(completed.stdout)
    except ValueError:
        pytest.fail(f"ohif_check.mjs exited {completed.returncode} without a report:\n"
                    f"{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}")
    if completed.returncode != 0:
        pytest.fail("the viewer check failed (screenshots in "
                    f"{spec['artifacts']}):\n{json.dumps(report, indent=2)[:20000]}\n"
                    f"{completed.stderr[-2000:]}")
    return report


@needs_browser
def test_ohif_lists_and_draws_studies(tmp_path: Path, corpus: Path) -> None:
    with live_server(tmp_path) as server:
        _upload(server, _files(corpus))
        report = _run_check({
            "url": server.url, "artifacts": str(ARTIFACTS / "viewer"),
            "list": {"expect": ["BRAINIX", "KNEE"]},
            "studies": [
                {"uid": BRAINIX_UID, "label": "brainix", "open": "list", "listText": "BRAINIX"},
                {"uid": KNEE_UID, "label": "knee", "open": "url"},
                {"uid": JPEG2000_UID, "label": "jpeg2000", "open": "url"},
                {"uid": MULTIFRAME_UID, "label": "multiframe", "open": "url"},
            ],
        })
    drawn = {step["name"]: step["windowWidth"] for step in report["steps"] if "windowWidth" in step}
    assert set(drawn) == {"study brainix", "study knee", "study jpeg2000", "study multiframe"}
    assert all(width > 0 for width in drawn.values()), drawn


@needs_browser
def test_ohif_behind_basic_authentication(tmp_path: Path, corpus: Path) -> None:
    users = {"alice": "wonderland"}
    with live_server(tmp_path, {"AuthenticationEnabled": True, "RegisteredUsers": users}) as server:
        refused = httpx.get(f"{server.url}/ohif/")
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith("Basic")  # the browser's prompt
        _upload(server, [p.read_bytes() for p in sorted((corpus / "Brainix").rglob("*.dcm"))],
                auth=("alice", "wonderland"))
        _run_check({
            "url": server.url, "artifacts": str(ARTIFACTS / "viewer-auth"),
            "credentials": "alice:wonderland",
            "list": {"expect": ["BRAINIX"]},
            "studies": [{"uid": BRAINIX_UID, "label": "brainix", "open": "url"}],
        })


@needs_browser
@pytest.mark.skipif(not hasattr(Settings(), "cors_allow_origins"),
                    reason="DICOMweb CORS (Pharos.CorsAllowOrigins) has not landed yet")
def test_ohif_hosted_elsewhere_reads_dicomweb_with_cors(tmp_path: Path, corpus: Path) -> None:
    """OHIF from one server (the viewer's origin), studies from another one allowing it."""
    with live_server(tmp_path / "viewer") as viewer:
        allowed = {"Pharos": {"CorsAllowOrigins": [viewer.url]}}
        with live_server(tmp_path / "data", allowed) as data:
            preflight = httpx.options(f"{data.url}/dicom-web/studies", headers={
                "Origin": viewer.url, "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "accept"})
            assert preflight.status_code in (200, 204)
            assert preflight.headers["access-control-allow-origin"] == viewer.url
            assert "GET" in preflight.headers["access-control-allow-methods"]
            stranger = httpx.get(f"{data.url}/dicom-web/studies",
                                 headers={"Origin": "http://elsewhere.example"})
            assert "access-control-allow-origin" not in stranger.headers
            _upload(data, [p.read_bytes() for p in sorted((corpus / "Knee").rglob("*.dcm"))])
            _run_check({
                "url": viewer.url, "dicomwebRoot": f"{data.url}/dicom-web",
                "artifacts": str(ARTIFACTS / "viewer-cors"),
                "list": {"expect": ["KNEE"]},
                "studies": [{"uid": KNEE_UID, "label": "knee", "open": "url"}],
            })


# --- the routes, without a browser -------------------------------------------------------


def test_landing_page_lists_what_the_server_offers(server: LiveServer) -> None:
    page = httpx.get(f"{server.url}/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    for link in ('href="/dicom-web/studies"', 'href="/docs"', 'href="/system"',
                 'href="/openapi.json"'):
        assert link in page.text
    assert ('href="/ohif/"' in page.text) == dist.is_installed(VIEWER)


def test_app_config_points_at_this_servers_dicomweb(server: LiveServer) -> None:
    answer = httpx.get(f"{server.url}/ohif/app-config.js",
                       headers={"Host": "pacs.example:8443"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/javascript")
    assert answer.headers["cache-control"] == "no-store"
    prefix = "window.config = "
    body = answer.text[answer.text.index(prefix) + len(prefix):].rstrip().rstrip(";")
    config = json.loads(body)
    assert config["routerBasename"] == "/ohif"
    assert config["showStudyList"] is True
    [source] = config["dataSources"]
    assert config["defaultDataSourceName"] == source["sourceName"]
    settings = source["configuration"]
    for root in ("qidoRoot", "wadoRoot", "wadoUriRoot"):
        assert settings[root] == "http://pacs.example:8443/dicom-web"
    proxied = httpx.get(f"{server.url}/ohif/app-config.js", headers={
        "X-Forwarded-Proto": "https", "X-Forwarded-Host": "pacs.example",
        "X-Forwarded-Prefix": "/pharos"})
    assert '"qidoRoot": "https://pacs.example/pharos/dicom-web"' in proxied.text
    assert settings["imageRendering"] == settings["thumbnailRendering"] == "wadors"
    assert settings["enableStudyLazyLoad"] is settings["supportsWildcard"] is True
    assert settings["bulkDataURI"] == {"enabled": True}
    assert settings["omitQuotationForMultipartRequest"] is True


@needs_viewer
def test_viewer_files_and_client_routes(server: LiveServer) -> None:
    with server.client() as http:
        assert http.get("/ohif").status_code == 307
        index = http.get("/ohif/")
        assert index.status_code == 200
        assert 'window.PUBLIC_URL="/ohif/"' in index.text
        assert 'src="/ohif/app-config.js"' in index.text
        # Client-side routes of the single-page app answer its index.html.
        routed = http.get("/ohif/viewer", params={"StudyInstanceUIDs": BRAINIX_UID})
        assert routed.status_code == 200 and routed.text == index.text
        bundle = next(VIEWER.glob("app.bundle.*.js")).name
        script = http.get(f"/ohif/{bundle}", headers={"Accept-Encoding": "identity"})
        assert script.headers["content-type"].startswith("text/javascript")
        assert "immutable" in script.headers["cache-control"]
        assert '__webpack_require__.p = "/ohif/"' in script.text
        raw = http.send(http.build_request("GET", f"/ohif/{bundle}",
                                           headers={"Accept-Encoding": "gzip"}), stream=True)
        assert raw.headers["content-encoding"] == "gzip"
        assert gzip.decompress(b"".join(raw.iter_raw())) == script.content
        wasm = next(VIEWER.glob("*.wasm")).name
        assert http.head(f"/ohif/{wasm}").headers["content-type"] == "application/wasm"
        # A missing asset is a 404, not the index page (which would be a confusing MIME error).
        assert http.get("/ohif/missing.bundle.js").status_code == 404
        assert http.get("/ohif/%2e%2e/%2e%2e/pyproject.toml").status_code == 404


def test_viewer_not_installed_says_how_to_install(tmp_path: Path) -> None:
    empty = tmp_path / "no-viewer"
    empty.mkdir()
    with live_server(tmp_path, {"Pharos": {"ViewerDirectory": str(empty)}}) as server:
        answer = httpx.get(f"{server.url}/ohif/")
        assert answer.status_code == 404
        assert "make ohif" in answer.text
        assert "not installed" in httpx.get(f"{server.url}/").text
