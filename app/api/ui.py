"""Pharos' web UI at ``/ui/``: static files, and the redirects from Orthanc's explorers.

The UI itself is a small single-page app in plain JavaScript modules and one CSS file
(``app/ui/``, shipped in the Python package: no build step, no CDN) that talks to the
same REST API every other client uses, with the browser's own credentials: this door
only serves its files. Authentication and ``RemoteAccessAllowed`` are the server's
(``SecurityMiddleware`` covers every route), so the browser asks for the Basic
credentials once and sends them with the page's own requests, all on this origin.

* ``/ui/`` answers ``index.html``, ``/ui/<file>`` a file of ``app/ui/`` (only the files
  found there: no path from the URL reaches the file system), ETag-validated
  (``Cache-Control: no-cache``: an upgraded server is seen at the next load) and
  gzipped for browsers that accept it;
* ``/app/explorer.html`` (Orthanc Explorer's address) and ``/ui/app/`` (Orthanc
  Explorer 2's) redirect to ``/ui/``, with relative ``Location``s so that a reverse proxy
  serving Pharos under a prefix keeps working.
"""

from __future__ import annotations

import gzip
import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response

router = APIRouter(include_in_schema=False)

UI_DIRECTORY = Path(__file__).resolve().parent.parent / "ui"

_MEDIA_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml",
                ".png": "image/png", ".json": "application/json", ".txt": "text/plain"}

# The page loads scripts, styles and images from this origin only, and talks to this
# origin only: a DICOM tag value that reached the page as markup could run nothing.
_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
        "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; "
        "form-action 'self'; frame-ancestors 'self'")


@dataclass(frozen=True)
class _Asset:
    body: bytes
    gzipped: bytes | None
    media_type: str
    etag: str
    stamp: tuple[float, int]  # mtime, size: reread when the file changes on disk


class _Assets:
    """The files of ``app/ui/``, read once (they are small) and reread when they change."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._names: frozenset[str] | None = None
        self._cache: dict[str, _Asset] = {}

    def names(self) -> frozenset[str]:
        if self._names is None:
            self._names = frozenset(
                path.relative_to(self.directory).as_posix()
                for path in self.directory.rglob("*")
                if path.is_file() and path.suffix in _MEDIA_TYPES)
        return self._names

    def get(self, name: str) -> _Asset | None:
        if name not in self.names():
            return None
        path = self.directory / name
        try:
            stat = path.stat()
        except OSError:
            return None
        stamp = (stat.st_mtime, stat.st_size)
        cached = self._cache.get(name)
        if cached is not None and cached.stamp == stamp:
            return cached
        body = path.read_bytes()
        media_type = _MEDIA_TYPES[path.suffix]
        compressible = not media_type.startswith("image/png") and len(body) > 1024
        asset = _Asset(body, gzip.compress(body, 9, mtime=0) if compressible else None,
                       media_type, '"' + hashlib.sha256(body).hexdigest()[:32] + '"', stamp)
        with self._lock:
            self._cache[name] = asset
        return asset


ASSETS = _Assets(UI_DIRECTORY)


def _answer(request: Request, name: str) -> Response:
    asset = ASSETS.get(name)
    if asset is None:
        return PlainTextResponse(f"/ui/{name} not found", status_code=404)
    headers = {"ETag": asset.etag, "Cache-Control": "no-cache", "Vary": "Accept-Encoding"}
    if name.endswith(".html"):
        headers["Content-Security-Policy"] = _CSP
        headers["Referrer-Policy"] = "same-origin"
    if asset.etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    body = asset.body
    if asset.gzipped is not None and "gzip" in request.headers.get("accept-encoding", ""):
        body = asset.gzipped
        headers["Content-Encoding"] = "gzip"
    if request.method == "HEAD":
        headers["Content-Length"] = str(len(body))
        return Response(status_code=200, headers=headers, media_type=asset.media_type)
    return Response(body, headers=headers, media_type=asset.media_type)


@router.api_route("/ui", methods=["GET", "HEAD"])
def ui_root() -> RedirectResponse:
    return RedirectResponse("ui/")


@router.api_route("/ui/", methods=["GET", "HEAD"])
def ui_index(request: Request) -> Response:
    """The explorer's page (its views are client-side routes after ``#``)."""
    return _answer(request, "index.html")


@router.api_route("/app/explorer.html", methods=["GET", "HEAD"])
def orthanc_explorer() -> RedirectResponse:
    """Orthanc Explorer's address (bookmarks, Orthanc's own ``/`` redirect) -> ``/ui/``."""
    return RedirectResponse("../ui/")


@router.api_route("/ui/app", methods=["GET", "HEAD"])
def orthanc_explorer_2_folder() -> RedirectResponse:
    return RedirectResponse("./")


@router.api_route("/ui/app/{path:path}", methods=["GET", "HEAD"])
def orthanc_explorer_2(path: str) -> RedirectResponse:
    """Orthanc Explorer 2's address (``/ui/app/``, its pages below) -> ``/ui/``."""
    return RedirectResponse("../" * (path.count("/") + 1))


@router.api_route("/ui/{name:path}", methods=["GET", "HEAD"])
def ui_file(name: str, request: Request) -> Response:
    """A file of the UI (scripts, style, icons)."""
    return _answer(request, name)
