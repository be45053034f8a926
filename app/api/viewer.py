"""The landing page ``/`` (links to the explorer at ``/ui/``, app/api/ui.py) and the OHIF v3
viewer at ``/ohif/``.

The viewer is a prebuilt single-page app fetched at set-up time (``make ohif``); this
router only serves its files, the ``app-config.js`` that points it at this server's own
DICOMweb root, and ``index.html`` for its client-side routes (``/ohif/viewer?...``).
Authentication is the server's: the middleware answers 401 with ``WWW-Authenticate``,
so a browser asks for the credentials once and sends them with every later request of
the page (scripts, workers, DICOMweb calls) — they are all on this origin.
"""

from __future__ import annotations

import html
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from app import __version__
from app.services.dicomweb_plugin import dicomweb_root
from app.viewer import dist
from app.viewer.config import ROUTER_BASENAME, ohif_config_script

router = APIRouter(include_in_schema=False)

_NOT_INSTALLED = (
    "<!doctype html><title>Viewer not installed</title>"
    "<h1>The OHIF viewer is not installed</h1>"
    "<p>Pharos serves a prebuilt OHIF v3 from <code>{directory}</code>, which is empty. "
    "Run <code>make ohif</code> (needs npm), or set <code>ViewerDirectory</code> in the "
    "<code>Pharos</code> section of the configuration.</p>")


def _viewer_directory(request: Request) -> Path:
    return dist.viewer_directory(request.app.state.settings.viewer_directory)


def _base_url(request: Request) -> str:
    """The server's URL as this client reached it, no final slash.

    The same rule as DICOMweb's service root: a reverse proxy's ``X-Forwarded-Proto``,
    ``X-Forwarded-Host`` and ``X-Forwarded-Prefix`` win over the request's own scheme and
    ``Host``. Trusting them is harmless here: the answer goes back to that client only
    (``Cache-Control: no-store``).
    """
    headers = request.headers
    proto = _first(headers.get("x-forwarded-proto")) or request.url.scheme
    host = _first(headers.get("x-forwarded-host")) or headers.get("host") or request.url.netloc
    prefix = (headers.get("x-forwarded-prefix") or "").rstrip("/")
    return f"{proto}://{host}{prefix}{request.scope.get('root_path', '')}"


def _first(value: str | None) -> str:
    return (value or "").split(",")[0].strip()


@router.api_route("/", methods=["GET", "HEAD"])
def landing_page(request: Request) -> HTMLResponse:
    """What this server offers, with links (a browser's first stop)."""
    settings = request.app.state.settings
    root = request.scope.get("root_path", "")
    viewer = (f'<a href="{root}{ROUTER_BASENAME}/">{root}{ROUTER_BASENAME}/</a>'
              if dist.is_installed(_viewer_directory(request))
              else "not installed (<code>make ohif</code>)")
    rows = [
        ("Explorer", f'<a href="{root}/ui/">{root}/ui/</a>',
         "browse, search, upload, edit, send and retrieve the archive's content"),
        ("OHIF viewer", viewer, "browse and view the studies (OHIF v3 over DICOMweb)"),
        ("DICOMweb", f'<a href="{root}/dicom-web/studies">{root}/dicom-web/</a>',
         "QIDO-RS, WADO-RS, STOW-RS (also at <code>/rs/</code>); WADO-URI at <code>/wado</code>"),
        ("REST API", f'<a href="{root}/system">{root}/system</a>',
         "Orthanc's REST API: <code>/patients</code>, <code>/studies</code>, "
         "<code>/instances</code>, <code>/tools/find</code>, <code>/jobs</code>..."),
        ("API documentation", f'<a href="{root}/docs">{root}/docs</a>',
         f'OpenAPI: <a href="{root}/openapi.json">{root}/openapi.json</a>'),
        ("DICOM", f"AET <code>{html.escape(settings.dicom_aet)}</code>, "
                  f"port <code>{settings.dicom_port}</code>",
         "C-ECHO, C-STORE, C-FIND, C-MOVE, C-GET" if settings.dicom_server_enabled
         else "DICOM server disabled"),
    ]
    body = "".join(f"<tr><th>{name}</th><td>{link}</td><td>{note}</td></tr>"
                   for name, link, note in rows)
    page = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{html.escape(settings.name)} — Pharos</title>"
        "<meta name=viewport content='width=device-width,initial-scale=1'>"
        "<style>body{font:16px/1.5 system-ui,sans-serif;margin:2rem auto;max-width:60rem;"
        "padding:0 1rem}th{text-align:left;padding-right:1rem}td{padding:.3rem 1rem .3rem 0}"
        "code{background:#eee;padding:0 .2em}</style></head><body>"
        f"<h1>{html.escape(settings.name)}</h1>"
        f"<p>Pharos {html.escape(__version__)}: a DICOM archive speaking Orthanc's REST API, "
        f"DICOMweb and DIMSE.</p><table>{body}</table></body></html>")
    return HTMLResponse(page)


@router.api_route(ROUTER_BASENAME, methods=["GET", "HEAD"])
def viewer_root(request: Request) -> RedirectResponse:
    return RedirectResponse(f"{request.scope.get('root_path', '')}{ROUTER_BASENAME}/")


@router.api_route(f"{ROUTER_BASENAME}/app-config.js", methods=["GET", "HEAD"])
def viewer_config(request: Request) -> Response:
    """OHIF's configuration, generated: the data source is this server's ``/dicom-web``."""
    settings = request.app.state.settings
    script = ohif_config_script(f"{_base_url(request)}{dicomweb_root(settings)}",
                                friendly_name=settings.name)
    # Built from the Host header: never to be stored by a cache for another host.
    return Response(script, media_type="text/javascript; charset=utf-8",
                    headers={"Cache-Control": "no-store"})


@router.api_route(ROUTER_BASENAME + "/{path:path}", methods=["GET", "HEAD"])
def viewer_file(path: str, request: Request) -> Response:
    """A file of the viewer; ``index.html`` for its client-side routes."""
    directory = _viewer_directory(request)
    if not dist.is_installed(directory):
        return HTMLResponse(_NOT_INSTALLED.format(directory=html.escape(str(directory))),
                            status_code=404)
    accept_encoding = request.headers.get("accept-encoding", "")
    found = dist.find_file(directory, path, accept_encoding) if path else None
    if found is None:
        if path and not dist.is_client_route(path):
            return Response(f"{ROUTER_BASENAME}/{path} not found", status_code=404,
                            media_type="text/plain")
        found = dist.index_file(directory, accept_encoding)
    return FileResponse(found.path, media_type=found.media_type, headers=found.headers)
