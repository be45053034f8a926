"""Render every error as Orthanc's error JSON, with the right HTTP status."""

from __future__ import annotations

import logging
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match

from app.api import directory
from app.api.responses import JsonResponse
from app.errors import PharosError

log = logging.getLogger(__name__)


def orthanc_error(request: Request, status: int, code: int, message: str,
                  details: str | None = None) -> JsonResponse:
    body = {"HttpError": HTTPStatus(status).phrase, "HttpStatus": status, "Message": message,
            "Method": request.method, "OrthancError": message, "OrthancStatus": code,
            "Uri": request.url.path}
    if details and details != message:
        body = {"Details": details, **body}
    headers = {}
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="Orthanc Secure Area"'
    return JsonResponse(body, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(PharosError)
    async def _pharos(request: Request, error: PharosError) -> JsonResponse:
        return orthanc_error(request, error.http_status, error.orthanc_code,
                             error.orthanc_message, error.details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> Response:
        if error.status_code in (404, 405):
            children = directory.listing(request)
            if children is not None:  # GET on an inner node of the REST tree
                return JsonResponse(children)
        if error.status_code == 404:
            # No route for this URI: Orthanc 1.12.2+ sends its error JSON as text/plain
            # (HttpOutput::SendStatus labels every error body so); errors of the routes
            # themselves keep application/json, which is what the body is.
            answer = orthanc_error(request, 404, 17, "Unknown resource", None)
            return Response(answer.body, status_code=404, headers={"Content-Type": "text/plain"})
        if error.status_code == 405:
            # Orthanc's SendMethodNotAllowed: the Allow header and an empty body (so no
            # Content-Type).
            headers = dict(error.headers or {})
            allowed = allowed_methods(request)
            if allowed:
                headers["Allow"] = allowed
            return Response(status_code=405, headers=headers)
        return orthanc_error(request, error.status_code, 8, "Bad request", str(error.detail))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, error: RequestValidationError) -> JsonResponse:
        return orthanc_error(request, 400, 8, "Bad request", _describe(error))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> JsonResponse:
        log.exception("Unexpected error on %s %s", request.method, request.url.path)
        return orthanc_error(request, 500, -1, "Internal error", str(error))


def allowed_methods(request: Request) -> str:
    """The methods of every route of the request's path, as Orthanc's ``Allow`` lists them
    (``GET,POST``: no space, no OPTIONS or HEAD), for a 405 answer. Starlette only names
    the methods of the first route whose path matched."""
    methods: list[str] = []
    for route in request.app.router.routes:
        match, _ = route.matches({**request.scope, "method": "GET"})
        if match == Match.NONE:
            continue
        for method in sorted(getattr(route, "methods", None) or ()):
            if method not in ("HEAD", "OPTIONS") and method not in methods:
                methods.append(method)
    order = ["GET", "POST", "PUT", "DELETE"]
    methods.sort(key=lambda m: order.index(m) if m in order else len(order))
    return ",".join(methods)


def _describe(error: RequestValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(x) for x in item.get("loc", ()))
        parts.append(f"{where}: {item.get('msg')}")
    return "; ".join(parts) or "Invalid request"
