"""``/docs`` works offline: Swagger UI from the installed package, nothing from a CDN.

The page itself is drawn in chromium by ``tests/viewer/test_ui.py`` (which fails on any
request leaving the server); here, the HTTP side: every URL the page names is this
server's and answers.
"""

from __future__ import annotations

import re

import httpx

from tests.helpers import LiveServer


def test_docs_page_loads_only_local_assets(server: LiveServer) -> None:
    with server.client() as http:
        page = http.get("/docs")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        urls = re.findall(r'(?:href|src)="([^"]+)"', page.text) + \
            re.findall(r"url: '([^']+)'", page.text)
        assert urls and "/openapi.json" in urls
        assert not [u for u in urls if "//" in u], urls  # no absolute URL: no CDN
        assert '"validatorUrl": null' in page.text  # no call to validator.swagger.io
        for url in urls:
            answer = http.get(url)
            assert answer.status_code == 200, url
        bundle = http.get("/docs/assets/swagger-ui-bundle.js")
        assert bundle.headers["content-type"].startswith("text/javascript")
        assert "SwaggerUIBundle" in bundle.text
        assert http.get("/docs/assets/swagger-initializer.js").status_code == 404
        assert http.get("/docs/assets/..%2f..%2fpyproject.toml").status_code == 404
        assert http.get("/redoc").status_code == 404  # it would need a CDN


def test_docs_behind_authentication(tmp_path) -> None:
    from tests.helpers import live_server
    config = {"AuthenticationEnabled": True, "RegisteredUsers": {"alice": "wonderland"}}
    with live_server(tmp_path, config) as server:
        assert httpx.get(f"{server.url}/docs").status_code == 401
        assert httpx.get(f"{server.url}/docs/assets/swagger-ui.css").status_code == 401
        assert httpx.get(f"{server.url}/docs", auth=("alice", "wonderland")).status_code == 200
