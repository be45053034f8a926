"""``pharos serve | import DIR | migrate | openapi``."""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from pathlib import Path

import orjson

from app.config import Settings
from app.startup import configure_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pharos", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the archive (HTTP + DICOM)")
    serve.add_argument("--config", help="an Orthanc configuration file or folder")
    serve.add_argument("--host", help="HTTP address to bind (default 0.0.0.0)")
    serve.add_argument("--port", type=int, help="HTTP port (overrides HttpPort)")
    imp = commands.add_parser("import", help="store every DICOM file (or ZIP of them) of "
                              "folders or files, with a progress bar")
    imp.add_argument("paths", nargs="+", metavar="PATH")
    imp.add_argument("--config")
    imp.add_argument("--workers", type=int, default=None,
                     help="processes importing side by side (default: one per core)")
    mig = commands.add_parser("migrate", help="apply the index migrations and exit")
    mig.add_argument("--config")
    commands.add_parser("openapi", help="print the OpenAPI document (JSON)")
    rec = commands.add_parser("reconstruct", help="rebuild the index from the stored files and "
                              "index the DICOM files no row knows (e.g. a copied Orthanc "
                              "storage folder); run it while no server uses the storage")
    rec.add_argument("--config")
    args = parser.parse_args(argv)
    configure_logging()

    if args.command == "openapi":
        sys.stdout.write(openapi_document())
        return 0
    overrides = {}
    if getattr(args, "port", None):
        overrides["http_port"] = args.port
    if getattr(args, "host", None):
        overrides["http_host"] = args.host
    from app.blobstore import BlobStoreConfigError
    from app.startup import StartupError
    try:
        settings = Settings.from_sources(args.config, overrides=overrides)
        return _run(args, settings, overrides)
    except (ValueError, OSError, StartupError, BlobStoreConfigError) as error:
        # One clear line, no traceback, a non-zero status: a configuration value the
        # server cannot use (ConfigurationError names the option), an unreadable or
        # invalid configuration file, a folder, a port, a database or a blob store
        # that cannot be used.
        from app.config import ConfigurationError
        where = f" ({args.config})" if getattr(args, "config", None) and \
            isinstance(error, ConfigurationError) else ""
        sys.stderr.write(f"pharos: {error}{where}\n")
        return 2


def _run(args: argparse.Namespace, settings: Settings, overrides: dict) -> int:
    if args.command == "serve":
        return serve_forever(settings, args.config, overrides)
    if args.command == "migrate":
        from app.index.db import migrate
        migrate(settings.effective_database_url)
        return 0
    if args.command == "import":
        return import_paths(settings, [Path(p) for p in args.paths], args.workers)
    if args.command == "reconstruct":
        return reconstruct_storage(settings)
    return 2


def openapi_document() -> str:
    from app.main import create_app
    document = create_app(Settings()).openapi()
    return orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode() + "\n"


def serve_forever(settings: Settings, config_path: str | None = None,
                  overrides: dict | None = None) -> int:
    """Run uvicorn: in-process with one worker, else as N processes built by a factory
    from the same configuration (each process opens the shared index and store)."""
    import os

    import uvicorn

    from app.main import create_app
    from app.startup import prepare
    prepare(settings)  # folders, blob store, index (migrated), ports: before serving
    workers = settings.effective_http_workers
    if settings.lua_in_use and settings.http_workers > 1:
        logging.warning("Lua is in use (ExecuteLuaEnabled or LuaScripts): one HTTP process "
                        "instead of HttpWorkers=%d, so that the server has one Lua state",
                        settings.http_workers)
    # uvicorn logs through the root logger (our format), warnings and errors only.
    common = {"host": settings.http_host, "port": settings.http_port, "log_level": "warning",
              "log_config": None, "access_log": False, "timeout_keep_alive": 30}
    if workers == 1:
        uvicorn.run(create_app(settings), **common)  # exits 3 when the start fails
        return 0
    if not settings.read_only:  # ReadOnly: run-time settings live in each process
        _reset_runtime_settings(settings)  # once: the workers only read them
    if config_path:
        os.environ["PHAROS_CONFIG_FILE"] = str(Path(config_path).resolve())
    os.environ["PHAROS_SETTINGS_OVERRIDES"] = orjson.dumps(overrides or {}).decode()
    return _supervise(uvicorn.Config("app.main:create_app_from_environment", factory=True,
                                     workers=workers, **common))


def _supervise(config: object) -> int:
    """uvicorn's multi-process supervisor, with the exit status it does not give: when a
    worker fails to start (uvicorn stops the others), the server exits 3, not 0, so that
    a supervisor (systemd, Docker) sees a failed start."""
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors import Multiprocess
    socket = config.bind_socket()  # type: ignore[attr-defined]
    supervisor = Multiprocess(config, sockets=[socket])  # type: ignore[arg-type]
    try:
        supervisor.run()
    except KeyboardInterrupt:
        pass
    failed = any(p.exitcode == STARTUP_FAILURE for p in supervisor.processes)
    return STARTUP_FAILURE if failed else 0


def _reset_runtime_settings(settings: Settings) -> None:
    """The run-time settings (default encoding, accepted transfer syntaxes, log levels...)
    back to the configured values, as an Orthanc restart gives them."""
    from app.index.db import Database
    from app.services import runtime
    db = Database(settings.effective_database_url)
    try:
        runtime.reset_to_configuration(settings, db)
    finally:
        db.dispose()


def import_paths(settings: Settings, paths: list[Path], workers: int | None = None) -> int:
    """``pharos import``: 0 when no file was refused, else 1 (what could be stored is)."""
    import os

    from app import importer
    from app.context import ServerContext
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise OSError(f"not found: {', '.join(missing)}")
    # The bar, not the start-up's INFO lines nor pydicom's remarks on odd values.
    logging.getLogger().setLevel(logging.WARNING)
    logging.getLogger("pydicom").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=UserWarning, module="pydicom")
    from app.context import metrics
    context = ServerContext.open(settings)
    try:
        report = importer.run(context, paths, workers=workers or os.cpu_count() or 1)
    finally:
        try:  # its ingests count in the archive's metrics (pharos_ingest_total, Unknown)
            metrics.flush(context)
        except Exception:  # noqa: BLE001 — metrics never fail an import
            logging.getLogger(__name__).warning("Import counts not added to the metrics")
        context.close()
    return 1 if report.refused else 0


def reconstruct_storage(settings: Settings) -> int:
    """``pharos reconstruct``: offline, so without the startup orphan sweep (which would
    remove the un-indexed files of a copied Orthanc storage older than an hour) and
    adopting files of any age."""
    from app.blobstore import open_blobstore
    from app.context import ServerContext
    from app.index.db import Database, migrate
    from app.services.reconstruct import reconstruct_all
    url = settings.effective_database_url
    migrate(url)
    context = ServerContext(settings, Database(url),
                            open_blobstore(settings.blobstore_url, settings.storage_directory))
    try:
        report = reconstruct_all(context, minimum_age=0.0)
    finally:
        context.close()
    sys.stdout.write(orjson.dumps(report.as_json()).decode() + "\n")
    return 1 if report.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

