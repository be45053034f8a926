"""Put every route of the HTTP doors in one flat route table.

Recent FastAPI (0.165 here) keeps an ``include_router``-ed router as a wrapper, matched
through per-request "effective route contexts": every request walks each included
router's routes twice (match, then handle), saving and restoring scope keys around each
candidate. With Pharos' ~150 routes in 18 routers that cost ~1.5-2 ms per request on the
development machine (``GET /instances/{id}`` 4.7 -> 3.0 ms in-process), more than the
request's own work. ``add_routes`` re-registers each route on the target router with
``add_api_route`` instead, so matching is Starlette's plain regex loop. The generated
OpenAPI document is the same either way (checked by the drift test).

Even flat, Starlette matches a request by trying every route in turn (~380 regular
expressions and Python calls here: 0.2-0.7 ms of CPU for the routes registered last).
``index_routes`` makes the router try only the routes whose path can match: those
whose first path segment is the request's (or a parameter).
"""

from __future__ import annotations

import re

from fastapi.datastructures import DefaultPlaceholder
from fastapi.routing import APIRoute, APIRouter
from starlette._utils import get_route_path
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import Receive, Scope, Send


def add_routes(target: APIRouter, source: APIRouter, prefix: str = "", *,
               include_in_schema: bool = True) -> None:
    """Copy every route of *source* onto *target* (under *prefix*), in order.

    Only ``APIRoute``s are expected: doors build their routers from plain routes and
    compose them with this function, never with ``include_router``. Defaults a route
    did not set (response class, operation ID function) become the target's, as
    ``include_router`` would resolve them.
    """
    for route in source.routes:
        if not isinstance(route, APIRoute):
            raise TypeError(f"add_routes copies APIRoutes only, not {route!r}; compose "
                            "routers with add_routes instead of include_router")
        response_class = target.default_response_class \
            if isinstance(route.response_class, DefaultPlaceholder) else route.response_class
        unique_id = target.generate_unique_id_function \
            if isinstance(route.generate_unique_id_function, DefaultPlaceholder) \
            else route.generate_unique_id_function
        target.add_api_route(
            prefix + route.path, route.endpoint, response_model=route.response_model,
            status_code=route.status_code, tags=route.tags, dependencies=route.dependencies,
            summary=route.summary, description=route.description,
            response_description=route.response_description, responses=route.responses,
            deprecated=route.deprecated, methods=route.methods, operation_id=route.operation_id,
            response_model_include=route.response_model_include,
            response_model_exclude=route.response_model_exclude,
            response_model_by_alias=route.response_model_by_alias,
            response_model_exclude_unset=route.response_model_exclude_unset,
            response_model_exclude_defaults=route.response_model_exclude_defaults,
            response_model_exclude_none=route.response_model_exclude_none,
            include_in_schema=route.include_in_schema and include_in_schema,
            response_class=response_class, name=route.name,
            route_class_override=type(route), callbacks=route.callbacks,
            openapi_extra=route.openapi_extra, generate_unique_id_function=unique_id)


def index_routes(router: APIRouter) -> None:
    """Make *router* match a request against the routes whose first path segment is the
    request's, in their order, instead of against all of them.

    The outcome is the same as the full scan's: a route whose first segment is another
    literal can never match the path (nor the path with or without a trailing slash,
    which the redirect rule tries), and routes with a parameter in their first segment
    are candidates everywhere. Each first segment gets a router of its own over the same
    route objects, with *router*'s settings; ``scope["router"]`` stays *router* (URL
    building sees every route). The index is rebuilt when routes are added.
    """
    if router.middleware_stack != router.app:  # type: ignore[comparison-overlap]
        raise TypeError("index_routes expects a router without router-level middleware")
    router.middleware_stack = _RouteIndex(router)


# The first segment of a route's path when it is a literal ("instances" for
# "/instances/{id}"); None when it holds a parameter.
_LITERAL_SEGMENT = re.compile(r"^/([^/{}]*)(?:/|$)")


def _first_segment(route: BaseRoute) -> str | None:
    if not isinstance(route, (Route, Mount)):  # APIRoute is a Route
        return None
    found = _LITERAL_SEGMENT.match(route.path)
    return found.group(1) if found else None


class _RouteIndex:
    def __init__(self, router: APIRouter) -> None:
        self.router = router
        self.count = -1
        self.by_segment: dict[str, APIRouter] = {}
        self.others = router

    def _build(self) -> None:
        routes = list(self.router.routes)
        segments = {_first_segment(route) for route in routes} - {None}
        by_segment = {segment: self._subset([r for r in routes
                                             if _first_segment(r) in (segment, None)])
                      for segment in segments if segment is not None}
        self.others = self._subset([r for r in routes if _first_segment(r) is None])
        self.by_segment, self.count = by_segment, len(routes)

    def _subset(self, routes: list[BaseRoute]) -> APIRouter:
        original = self.router
        subset = APIRouter(routes=routes, redirect_slashes=original.redirect_slashes,
                           default=original.default, form_limits=original.form_limits)
        return subset

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.router.app(scope, receive, send)
            return
        if len(self.router.routes) != self.count:
            self._build()
        path = get_route_path(scope)
        end = path.find("/", 1)
        segment = path[1:end] if end > 0 else path[1:]
        scope.setdefault("router", self.router)
        await self.by_segment.get(segment, self.others).app(scope, receive, send)
