"""The app keeps one flat route table (app/api/routing.py): no router wrappers that
FastAPI would match per request, every door's routes present, in order, with the
same behaviour-relevant attributes as the original routes."""

from __future__ import annotations

import re

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.responses import PlainTextResponse
from starlette.routing import Match, Route

from app.api import dicomweb, images
from app.api.responses import JsonResponse
from app.api.routing import add_routes, index_routes
from app.config import Settings
from app.main import create_app


def test_the_app_has_no_included_router_wrappers():
    app = create_app(Settings())
    kinds = {type(route) for route in app.router.routes}
    assert all(issubclass(kind, (APIRoute, Route)) for kind in kinds), kinds
    paths = [route.path for route in app.router.routes]
    for route in images.router.routes:
        assert route.path in paths
    dicomweb_count = len(dicomweb.router.routes)
    # /dicom-web also holds the DICOMweb client (/dicom-web/servers), /rs does not.
    assert sum(p.startswith("/dicom-web/") for p in paths) == \
        dicomweb_count + len(dicomweb.servers_router.routes)
    assert sum(p.startswith("/rs/") for p in paths) == dicomweb_count


def test_add_routes_keeps_order_prefix_and_resolves_defaults():
    source = APIRouter(tags=["T"])

    @source.get("/items/{item}")
    def item(item: str) -> dict:
        return {"item": item}

    @source.get("/items/{item}/raw", response_class=PlainTextResponse)
    def raw(item: str) -> str:
        return item

    app = FastAPI(default_response_class=JsonResponse)
    add_routes(app.router, source, "/p")
    routes = [r for r in app.router.routes if isinstance(r, APIRoute)]
    assert [r.path for r in routes] == ["/p/items/{item}", "/p/items/{item}/raw"]
    assert routes[0].tags == ["T"] and routes[0].response_class is JsonResponse
    assert routes[1].response_class is PlainTextResponse
    with TestClient(app) as client:
        assert client.get("/p/items/a").json() == {"item": "a"}
        assert client.get("/p/items/b/raw").text == "b"
        assert client.get("/items/a").status_code == 404


def test_add_routes_refuses_nested_routers():
    outer, inner = APIRouter(), APIRouter()

    @inner.get("/x")
    def x() -> dict:
        return {}

    outer.include_router(inner)
    with pytest.raises(TypeError, match="add_routes"):
        add_routes(APIRouter(), outer)


def _first_match(routes: list, scope: dict) -> object:
    partial = None
    for route in routes:
        match, _ = route.matches(scope)
        if match == Match.FULL:
            return route
        if match == Match.PARTIAL and partial is None:
            partial = route
    return partial


def test_the_route_index_picks_the_route_the_full_scan_picks():
    """For a path of every route (and the same path with a trailing slash, another
    method, an unknown first segment), the routes the index tries give the route the
    scan of the whole table gives."""
    app = create_app(Settings())
    index = app.router.middleware_stack
    index._build()
    routes = list(app.router.routes)
    paths = {re.sub(r"\{[^}]*:path\}", "a/b", re.sub(r"\{[^}:]*\}", "x1", route.path))
             for route in routes}
    paths |= {path + "/" for path in paths} | {"/", "/nowhere", "/nowhere/x", ""}
    for path in sorted(paths):
        segment = path[1:].split("/", 1)[0]
        candidates = index.by_segment.get(segment, index.others).routes
        for method in ("GET", "POST", "PUT", "DELETE"):
            scope = {"type": "http", "path": path, "root_path": "", "method": method}
            assert _first_match(candidates, scope) is _first_match(routes, scope), \
                (method, path)


def test_routes_added_later_are_indexed():
    app = FastAPI(default_response_class=JsonResponse)

    @app.get("/first/{x}")
    def first(x: str) -> dict:
        return {"first": x}

    index_routes(app.router)
    with TestClient(app) as client:
        assert client.get("/first/1").json() == {"first": "1"}
        assert client.get("/later/1").status_code == 404

        @app.get("/later/{x}")
        def later(x: str) -> dict:
            return {"later": x}

        assert client.get("/later/2").json() == {"later": "2"}
        assert client.get("/first/3").json() == {"first": "3"}
        assert client.post("/first/3").status_code == 405
