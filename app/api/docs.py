"""``/docs``: Swagger UI over ``/openapi.json``, served from an installed package.

FastAPI's own ``/docs`` loads Swagger UI from a CDN, so a hospital network without
internet access sees a blank page. Pharos serves the Swagger UI files of the
``swagger-ui-bundle-v2`` package (Apache-2.0, Swagger UI 5: it reads OpenAPI 3.1, which
FastAPI writes), installed with the project, and turns off what would reach out: the
spec validator badge (``validatorUrl``) and FastAPI's remote favicon. ReDoc
(``/redoc``) is not offered: it has no offline package.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, PlainTextResponse, Response

router = APIRouter(include_in_schema=False)

ASSETS = "/docs/assets"
# The files the page loads (a fixed list: no path from the URL reaches the file system).
_FILES = {"swagger-ui-bundle.js": "text/javascript; charset=utf-8",
          "swagger-ui.css": "text/css; charset=utf-8",
          "favicon-32x32.png": "image/png"}


def swagger_ui_directory() -> Path | None:
    """Where the installed package keeps Swagger UI's files (None: not installed)."""
    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:
        return None
    return Path(str(swagger_ui_path))


@router.api_route("/docs", methods=["GET", "HEAD"])
def swagger_ui(request: Request) -> HTMLResponse:
    """The interactive documentation of the REST API (try it out: same origin, same auth)."""
    root = request.scope.get("root_path", "")
    if swagger_ui_directory() is None:
        return HTMLResponse(
            "<!doctype html><title>API documentation</title><h1>Swagger UI is not "
            "installed</h1><p>Install the project's dependencies (<code>pip install "
            f".</code>: swagger-ui-bundle-v2). The OpenAPI document is at "
            f'<a href="{root}/openapi.json">{root}/openapi.json</a>.</p>', status_code=404)
    return get_swagger_ui_html(
        openapi_url=f"{root}/openapi.json", title="Pharos — REST API",
        swagger_js_url=f"{root}{ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{root}{ASSETS}/favicon-32x32.png",
        swagger_ui_parameters={"validatorUrl": None, "docExpansion": "none",
                               "filter": True, "tryItOutEnabled": False})


@router.api_route(ASSETS + "/{name}", methods=["GET", "HEAD"])
def swagger_ui_asset(name: str) -> Response:
    directory = swagger_ui_directory()
    if directory is None or name not in _FILES:
        return PlainTextResponse(f"{ASSETS}/{name} not found", status_code=404)
    return FileResponse(directory / name, media_type=_FILES[name],
                        headers={"Cache-Control": "public, max-age=86400"})
