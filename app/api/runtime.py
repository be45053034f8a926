"""Orthanc's run-time settings routes (``OrthancRestSystem.cpp``): default encoding,
accepted transfer syntaxes, unknown SOP classes, log levels, metrics.

Plain-text bodies and answers as Orthanc's; the values are shared by every process of
the server (:mod:`app.services.runtime`).
"""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import PlainTextResponse

from app.api.deps import get_context, read_body
from app.api.responses import JsonResponse, json_answer
from app.services import metrics, runtime

router = APIRouter(tags=["System"])

_TEXT = {"text/plain": {"schema": {"type": "string"}}}
_TEXT_BODY = {"requestBody": {"required": True, "content": _TEXT}}
_TEXT_ANSWER = {200: {"description": "Plain text", "content": _TEXT}}
# One media type (app/api/openapi.py says why); a bare UID as text is read too.
_SYNTAXES_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": {"oneOf": [
        {"type": "string"}, {"type": "array", "items": {"type": "string"}}]}}},
    "description": "Transfer syntax UIDs (wildcards allowed), as JSON; a bare UID as "
                   "text/plain is accepted too"}}


async def _text(request: Request) -> str:
    return (await read_body(request, get_context(request))).decode("utf-8", "replace")


def _plain(text: str) -> PlainTextResponse:
    return PlainTextResponse(text)


@router.get("/tools/default-encoding", operation_id="get_default_encoding",
            response_class=PlainTextResponse, responses=_TEXT_ANSWER)
def get_default_encoding(request: Request) -> PlainTextResponse:
    """The encoding of strings in files without SpecificCharacterSet, and of C-FIND
    answers (``DefaultEncoding``)."""
    return _plain(runtime.current(get_context(request)).default_encoding.name)


@router.put("/tools/default-encoding", operation_id="set_default_encoding",
            response_class=PlainTextResponse, responses=_TEXT_ANSWER,
            openapi_extra=_TEXT_BODY)
async def set_default_encoding(request: Request) -> PlainTextResponse:
    """``Ascii``, ``Utf8``, ``Latin1``..``Latin5``, ``Cyrillic``, ``Windows1251``,
    ``Arabic``, ``Greek``, ``Hebrew``, ``Thai``, ``Japanese``, ``Chinese``, ``Korean``,
    ``JapaneseKanji`` or ``SimplifiedChinese``; answers the encoding now in use."""
    name = await _text(request)
    return _plain(await run_in_threadpool(runtime.set_default_encoding,
                                          get_context(request), name))


@router.get("/tools/accepted-transfer-syntaxes", operation_id="get_accepted_transfer_syntaxes",
            response_model=list[str])
def get_accepted_transfer_syntaxes(request: Request) -> JsonResponse:
    """The transfer syntax UIDs the C-STORE SCP accepts."""
    values = runtime.current(get_context(request))
    return json_answer(list(values.accepted_transfer_syntaxes))


@router.put("/tools/accepted-transfer-syntaxes", operation_id="set_accepted_transfer_syntaxes",
            response_model=list[str], openapi_extra=_SYNTAXES_BODY)
async def set_accepted_transfer_syntaxes(request: Request) -> JsonResponse:
    """A JSON list of UIDs, or one UID (JSON string or plain text); ``?`` and ``*`` are
    wildcards. Answers the transfer syntaxes now accepted."""
    raw = await read_body(request, get_context(request))
    try:
        patterns = orjson.loads(raw)
    except orjson.JSONDecodeError:
        patterns = raw.decode("utf-8", "replace")
    accepted = await run_in_threadpool(runtime.set_accepted_transfer_syntaxes,
                                       get_context(request), patterns)
    return json_answer(list(accepted))


@router.get("/tools/unknown-sop-class-accepted", operation_id="get_unknown_sop_class_accepted",
            response_class=PlainTextResponse, responses=_TEXT_ANSWER)
def get_unknown_sop_class_accepted(request: Request) -> PlainTextResponse:
    """``1`` when the C-STORE SCP accepts SOP classes it does not know, else ``0``."""
    accepted = runtime.current(get_context(request)).unknown_sop_class_accepted
    return _plain("1" if accepted else "0")


@router.put("/tools/unknown-sop-class-accepted", operation_id="set_unknown_sop_class_accepted",
            response_class=PlainTextResponse, responses=_TEXT_ANSWER,
            openapi_extra=_TEXT_BODY)
async def set_unknown_sop_class_accepted(request: Request) -> PlainTextResponse:
    """``1``/``true`` or ``0``/``false``."""
    accepted = runtime.parse_boolean(await _text(request))
    await run_in_threadpool(runtime.set_unknown_sop_class_accepted, get_context(request),
                            accepted)
    return _plain("")


@router.get("/tools/metrics", operation_id="get_metrics_enabled",
            response_class=PlainTextResponse, responses=_TEXT_ANSWER)
def get_metrics_enabled(request: Request) -> PlainTextResponse:
    """``1`` when metrics are collected (``MetricsEnabled``), else ``0``."""
    return _plain("1" if runtime.current(get_context(request)).metrics_enabled else "0")


@router.put("/tools/metrics", operation_id="set_metrics_enabled",
            response_class=PlainTextResponse, responses=_TEXT_ANSWER,
            openapi_extra=_TEXT_BODY)
async def set_metrics_enabled(request: Request) -> PlainTextResponse:
    enabled = runtime.parse_boolean(await _text(request))
    await run_in_threadpool(runtime.set_metrics_enabled, get_context(request), enabled)
    return _plain("")


@router.get("/tools/metrics-prometheus", operation_id="get_metrics_prometheus",
            response_class=PlainTextResponse,
            responses={200: {"description": "Prometheus text format 0.0.4 (empty when "
                             "metrics are disabled)", "content": {"text/plain": {
                                 "schema": {"type": "string"}}}}})
def get_metrics_prometheus(request: Request) -> PlainTextResponse:
    """Usage metrics in Prometheus' text format: Orthanc's (``orthanc_count_instances``,
    ``orthanc_disk_size_mb``, ``orthanc_jobs_*``...) and Pharos' (HTTP requests and
    latencies by route, ingests by origin, jobs by state, storage bytes), summed over
    every process of the archive. Empty when ``MetricsEnabled`` is false."""
    return PlainTextResponse(metrics.prometheus_text(get_context(request)),
                             media_type=metrics.CONTENT_TYPE)


@router.get("/tools/log-level", tags=["Logs"], operation_id="get_log_level",
            response_class=PlainTextResponse, responses=_TEXT_ANSWER)
def get_log_level(request: Request) -> PlainTextResponse:
    """``default``, ``verbose`` or ``trace``."""
    return _plain(runtime.current(get_context(request)).log_level)


@router.put("/tools/log-level", tags=["Logs"], operation_id="set_log_level",
            response_class=PlainTextResponse, responses=_TEXT_ANSWER,
            openapi_extra=_TEXT_BODY)
async def set_log_level(request: Request) -> PlainTextResponse:
    """``default``, ``verbose`` or ``trace``, for every category."""
    level = runtime.parse_verbosity(await _text(request))
    await run_in_threadpool(runtime.set_log_level, get_context(request), level)
    return _plain("")


def _register_category(category: str) -> None:
    def get_category_level(request: Request) -> PlainTextResponse:
        return _plain(runtime.current(get_context(request)).log_levels[category])

    async def set_category_level(request: Request) -> PlainTextResponse:
        level = runtime.parse_verbosity(await _text(request))
        await run_in_threadpool(runtime.set_log_level, get_context(request), level, category)
        return _plain("")

    path = f"/tools/log-level-{category}"
    router.add_api_route(path, get_category_level, methods=["GET"], tags=["Logs"],
                         operation_id=f"get_log_level_{category}",
                         response_class=PlainTextResponse, responses=_TEXT_ANSWER,
                         summary=f"Get the log level of the {category} category")
    router.add_api_route(path, set_category_level, methods=["PUT"], tags=["Logs"],
                         operation_id=f"set_log_level_{category}",
                         response_class=PlainTextResponse, responses=_TEXT_ANSWER,
                         openapi_extra=_TEXT_BODY,
                         summary=f"Set the log level of the {category} category")


for _category in runtime.CATEGORY_LOGGERS:
    _register_category(_category)
