"""``create_app(settings)``: the FastAPI application with every door mounted."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.routing import APIRoute

from app import __version__
from app.api import (
    archive,
    attachments,
    curation,
    dicom_tools,
    dicomweb,
    docs,
    images,
    instances,
    jobs,
    legacy_find,
    maintenance,
    merge_split,
    modalities,
    modify,
    peers,
    plugins,
    resources,
    scripting,
    system,
    tools,
    ui,
    viewer,
    webdav,
)
from app.api import runtime as runtime_api
from app.api.errors import install_error_handlers
from app.api.openapi import customize_openapi
from app.api.request_filter import ScriptRequestFilter
from app.api.request_metrics import RequestMetrics
from app.api.responses import JsonResponse
from app.api.routing import add_routes, index_routes
from app.api.security import SecurityMiddleware
from app.api.uri import UriNormalizer
from app.api.xml_answers import XmlAnswers
from app.config import Settings
from app.context import ServerContext
from app.context.blob_deletion import BlobDeletionDrainer
from app.dicom import dictionary as user_dictionary
from app.dimse.scp import start_scp
from app.jobs.worker import start_workers
from app.scripting import engine as scripting_engine
from app.services import change_stream, job_kinds, runtime, webhooks
from app.services.dicomweb_plugin import (
    dicomweb_enabled,
    dicomweb_root,
    wado_enabled,
    wado_root,
)
from app.services.metrics import MetricsFlusher
from app.services.stability import ProcessLeadership, StabilityMonitor
from app.startup import where_it_listens

log = logging.getLogger(__name__)


def _operation_id(route: APIRoute) -> str:
    return route.name


def create_app(settings: Settings | None = None, *, context: ServerContext | None = None,
               reset_runtime_settings: bool = True) -> FastAPI:
    """Build the app. The context (index, blobs) opens in the lifespan unless one is given.

    The app's start is the server's start: the run-time settings go back to the
    configured values, unless *reset_runtime_settings* is false (a worker process of a
    multi-process server, whose parent did it once for all).
    """
    settings = settings or (context.settings if context else Settings())
    user_dictionary.register(user_dictionary.parse(settings.dictionary))
    job_kinds.install()  # what the jobs engine accepts and runs (app/services/job_kinds.py)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = app.state.context is None
        if own:
            app.state.context = ServerContext.open(settings)
        read_only = settings.read_only  # ReadOnly: no background task writes anything
        if reset_runtime_settings and not read_only:
            runtime.reset_to_configuration(settings, app.state.context.db)
        runtime_started = runtime.start(app.state.context)
        # Lua states and Python hooks before any door opens (filters apply at once).
        scripting_engine.start(app.state.context, app)
        # One process of a multi-process server leads: it runs the DIMSE SCP (one port)
        # and the stability monitor; every process runs job workers (claims are atomic).
        leader = ProcessLeadership(settings)
        is_leader = leader.acquire()
        monitor = StabilityMonitor(app.state.context) if is_leader and not read_only \
            else None
        if monitor is not None:
            monitor.start()
        workers = start_workers(app.state.context) if not read_only else None
        # Every process retries queued blob deletions (claims are atomic).
        deletions = BlobDeletionDrainer(app.state.context).start() if not read_only else None
        # Every process adds its counts to the archive's (/tools/metrics-prometheus).
        flusher = MetricsFlusher(app.state.context).start() if not read_only else None
        deliverer = webhooks.start(app.state.context)  # None without Webhooks
        restore_signals = change_stream.end_streams_on_exit()  # /changes/stream ends first
        scp = start_scp(app.state.context) \
            if settings.dicom_server_enabled and is_leader else None
        if is_leader:  # once per server: where it listens, who may connect
            for line in where_it_listens(settings, app.state.context.blobs.describe(),
                                         settings.effective_http_workers):
                logging.getLogger("pharos").info("%s", line)
        try:
            yield
        finally:
            if scp is not None:
                scp.stop()
            if workers is not None:
                workers.stop()
            if deletions is not None:
                deletions.stop()
            restore_signals()
            if deliverer is not None:
                deliverer.stop()
            if flusher is not None:
                flusher.stop()
            if monitor is not None:
                monitor.stop()
            scripting_engine.stop(app.state.context)
            if is_leader:
                logging.getLogger("pharos").info("Pharos stopped")
            leader.release()
            runtime_started.stop()
            if own:
                app.state.context.close()
                app.state.context = None

    app = FastAPI(
        title="Pharos",
        version=__version__,
        summary="A DICOM archive speaking Orthanc's REST API, DICOMweb and DIMSE",
        description="Orthanc-compatible REST API. Identifiers, routes and JSON shapes are "
                    "Orthanc's; see README.md for the differences.",
        default_response_class=JsonResponse,
        generate_unique_id_function=_operation_id,
        lifespan=lifespan,
        docs_url=None,  # app/api/docs.py serves /docs without a CDN
        redoc_url=None,
    )
    app.openapi = customize_openapi(app)  # type: ignore[method-assign]
    app.state.context = context
    app.state.settings = settings
    install_error_handlers(app)
    # One flat route table (see app/api/routing.py): the order is the matching order.
    for router in (system.router, runtime_api.router, instances.router,
                   attachments.router,  # before resources: it defers "dicom" there
                   resources.router, tools.router, images.router, archive.router,
                   modalities.router, legacy_find.router, peers.router, jobs.router, modify.router,
                   curation.router, merge_split.router, maintenance.router,
                   scripting.router, plugins.router, dicom_tools.router):
        add_routes(app.router, router)
    # DICOMweb where the DicomWeb section puts it (Orthanc's plugin options), /rs alias.
    if dicomweb_enabled(settings):
        root = dicomweb_root(settings)
        add_routes(app.router, dicomweb.servers_router, root)
        add_routes(app.router, dicomweb.router, root)
        add_routes(app.router, dicomweb.router, "/rs", include_in_schema=False)
    if wado_enabled(settings):
        add_routes(app.router, dicomweb.wado_uri_router, wado_root(settings),
                   include_in_schema=wado_root(settings) == "/wado")
    if settings.web_dav_enabled:  # Orthanc 1.8.0's share; no OpenAPI (see app/api/webdav.py)
        add_routes(app.router, webdav.router, include_in_schema=False)
    add_routes(app.router, viewer.router)
    add_routes(app.router, ui.router)  # the explorer at /ui/ (app/ui/: static files)
    add_routes(app.router, docs.router)
    index_routes(app.router)  # a request is matched against its first segment's routes
    app.add_middleware(ScriptRequestFilter)  # IncomingHttpRequestFilter, after security
    app.add_middleware(SecurityMiddleware, settings=settings)
    app.add_middleware(XmlAnswers)  # JSON answers as XML on Accept: application/xml
    app.add_middleware(RequestMetrics)  # sees normalized paths and the 401/403 answers
    app.add_middleware(UriNormalizer)  # added last: runs first
    return app


def create_app_from_environment() -> FastAPI:
    """The factory each worker process of ``pharos serve`` calls (multi-process mode)."""
    import os

    import orjson

    from app.startup import configure_logging
    configure_logging()  # a spawned worker process starts without the parent's logging
    overrides = orjson.loads(os.environ.get("PHAROS_SETTINGS_OVERRIDES") or "{}")
    return create_app(Settings.from_sources(os.environ.get("PHAROS_CONFIG_FILE"),
                                            overrides=overrides),
                      reset_runtime_settings=False)
