"""Put every route of the HTTP doors in one flat route table.

Recent FastAPI (0.165 here) keeps an ``include_router``-ed router as a wrapper, matched
through per-request "effective route contexts": every request walks each included
router's routes twice (match, then handle), saving and restoring scope keys around each
candidate. With Pharos' ~150 routes in 18 routers that cost ~1.5-2 ms per request on the
development machine (``GET /instances/{id}`` 4.7 -> 3.0 ms in-process), more than the
request's own work. ``add_routes`` re-registers each route on the target router with
``add_api_route`` instead, so matching is Starlette's plain regex loop. The generated
OpenAPI document is the same either way (checked by the drift test).
"""

from __future__ import annotations

from fastapi.datastructures import DefaultPlaceholder
from fastapi.routing import APIRoute, APIRouter


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
