"""Orthanc's settings changeable at run time, shared by every process of the server.

* ``DefaultEncoding`` (``/tools/default-encoding``): how strings of data sets without
  SpecificCharacterSet are decoded (ingest, ``/tags``, C-FIND), and the encoding of
  C-FIND answers;
* ``AcceptedTransferSyntaxes`` (``/tools/accepted-transfer-syntaxes``) and
  ``UnknownSopClassAccepted`` (``/tools/unknown-sop-class-accepted``): the presentation
  contexts the C-STORE SCP accepts (:func:`presentation_acceptance`);
* the log levels (``/tools/log-level``, ``/tools/log-level-<category>``): the levels of
  the Python loggers of each category (:data:`CATEGORY_LOGGERS`);
* ``MetricsEnabled`` (``/tools/metrics``).

Pharos runs several HTTP processes (and one of them runs the DICOM SCP), so the values
live in the index database (table ``runtime_settings``); each process caches them and
re-reads them when a version counter, kept in a small file of IndexDirectory and bumped
by every change, moves (one ``pread``, no query), and at least every
:data:`CROSS_HOST_REFRESH` seconds (servers on other hosts sharing a PostgreSQL index
bump another file). At each start the configured values are written again
(:func:`reset_to_configuration`): like Orthanc, a restart forgets the changes.
"""

from __future__ import annotations

import fcntl
import logging
import os
import struct
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson

from app.config import Settings
from app.context import ServerContext
from app.context.metrics import metrics_of
from app.dicom import encodings, orthanc_json, storage_classes
from app.dicom import transfer_syntaxes as syntaxes
from app.errors import BadFileFormat, ParameterOutOfRange
from app.index import runtime_repository
from app.index.db import Database

log = logging.getLogger(__name__)

CROSS_HOST_REFRESH = 1.0  # seconds
VERBOSITIES = ("default", "verbose", "trace")
# Orthanc's log categories (Logging::LogCategory) and the Python loggers of each one.
CATEGORY_LOGGERS: dict[str, tuple[str, ...]] = {
    "generic": ("app",),
    "plugins": ("app.plugins",),
    "http": ("app.api",),
    "sqlite": ("app.index",),
    "dicom": ("app.dimse", "pynetdicom"),
    "jobs": ("app.jobs",),
    "lua": ("app.lua", "app.services.lua"),
}
_PYTHON_LEVELS = {"default": logging.WARNING, "verbose": logging.INFO, "trace": logging.DEBUG}

_ENCODING = "DefaultEncoding"
_SYNTAXES = "AcceptedTransferSyntaxes"
_UNKNOWN_SOP = "UnknownSopClassAccepted"
_METRICS = "MetricsEnabled"
_LOG_PREFIX = "LogLevel."


@dataclass(frozen=True)
class RuntimeSettings:
    default_encoding: encodings.Encoding
    accepted_transfer_syntaxes: tuple[str, ...]  # Orthanc's order
    unknown_sop_class_accepted: bool
    log_levels: Mapping[str, str]  # category -> "default" | "verbose" | "trace"
    metrics_enabled: bool

    @property
    def log_level(self) -> str:
        """Orthanc's ``GetGlobalVerbosity``: trace if a category traces, verbose if one
        is verbose, else default."""
        levels = set(self.log_levels.values())
        return "trace" if "trace" in levels else "verbose" if "verbose" in levels \
            else "default"


def configured(settings: Settings) -> RuntimeSettings:
    """The values of the configuration (what a restart gives)."""
    level = settings.log_level if settings.log_level in VERBOSITIES else "default"
    return RuntimeSettings(
        default_encoding=encodings.parse(settings.default_encoding),
        accepted_transfer_syntaxes=syntaxes.ordered(settings.accepted_transfer_syntaxes),
        unknown_sop_class_accepted=bool(settings.unknown_sop_class_accepted),
        log_levels={category: level for category in CATEGORY_LOGGERS},
        metrics_enabled=bool(settings.metrics_enabled))


def _rows(values: RuntimeSettings) -> dict[str, str]:
    rows = {
        _ENCODING: values.default_encoding.name,
        _SYNTAXES: orjson.dumps(list(values.accepted_transfer_syntaxes)).decode(),
        _UNKNOWN_SOP: "1" if values.unknown_sop_class_accepted else "0",
        _METRICS: "1" if values.metrics_enabled else "0",
    }
    rows.update({_LOG_PREFIX + c: level for c, level in values.log_levels.items()})
    return rows


def _parse(rows: Mapping[str, str], fallback: RuntimeSettings) -> RuntimeSettings:
    """Rows back to values; a missing or unreadable row keeps the configured value."""
    values = fallback
    try:
        if _ENCODING in rows:
            values = replace(values, default_encoding=encodings.parse(rows[_ENCODING]))
        if _SYNTAXES in rows:
            values = replace(values, accepted_transfer_syntaxes=syntaxes.ordered(
                orjson.loads(rows[_SYNTAXES])))
    except (ValueError, TypeError):
        log.exception("Unreadable runtime setting; using the configured value")
    if _UNKNOWN_SOP in rows:
        values = replace(values, unknown_sop_class_accepted=rows[_UNKNOWN_SOP] == "1")
    if _METRICS in rows:
        values = replace(values, metrics_enabled=rows[_METRICS] == "1")
    levels = dict(values.log_levels)
    for category in CATEGORY_LOGGERS:
        level = rows.get(_LOG_PREFIX + category)
        if level in VERBOSITIES:
            levels[category] = level
    return replace(values, log_levels=levels)


# --- the version counter shared by the processes of one host --------------------------

class _Version:
    """An 8-byte counter in IndexDirectory: read with one ``pread``, bumped under
    ``flock`` after each committed change."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(directory / ".pharos-runtime-version", os.O_RDWR | os.O_CREAT, 0o644)
        # flock excludes other processes; threads sharing this descriptor need a lock too
        self._lock = threading.Lock()

    def read(self) -> int:
        data = os.pread(self._fd, 8, 0)
        return struct.unpack("<Q", data)[0] if len(data) == 8 else 0

    def bump(self) -> None:
        with self._lock:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                os.pwrite(self._fd, struct.pack("<Q", (self.read() + 1) % 2**64), 0)
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        os.close(self._fd)


class _ProcessVersion:
    """The counter of a ReadOnly server, whose run-time settings live in each process
    (as in Orthanc: they are never written to the index it may not modify)."""

    def read(self) -> int:
        return 0

    def bump(self) -> None:
        return None

    def close(self) -> None:
        return None


@dataclass
class _Cache:
    version: _Version | _ProcessVersion
    fallback: RuntimeSettings
    values: RuntimeSettings | None = None
    seen: int = -1
    loaded_at: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _cache(context: ServerContext) -> _Cache:
    cache = context.extras.get("runtime.cache")
    if isinstance(cache, _Cache):
        return cache
    with _CREATE_LOCK:
        cache = context.extras.get("runtime.cache")
        if not isinstance(cache, _Cache):
            if context.settings.read_only:
                values = configured(context.settings)
                cache = _Cache(_ProcessVersion(), values, values)
                apply_log_levels(values.log_levels)
            else:
                cache = _Cache(_Version(context.settings.index_path),
                               configured(context.settings))
            context.extras["runtime.cache"] = cache
    return cache


_CREATE_LOCK = threading.Lock()


def current(context: ServerContext) -> RuntimeSettings:
    """The values now (cheap: the database is read only after a change)."""
    cache = _cache(context)
    if context.settings.read_only and cache.values is not None:
        return cache.values
    version = cache.version.read()
    values = cache.values
    if values is not None and version == cache.seen \
            and time.monotonic() - cache.loaded_at < CROSS_HOST_REFRESH:
        return values
    with cache.lock:
        if cache.values is not None and version == cache.seen \
                and time.monotonic() - cache.loaded_at < CROSS_HOST_REFRESH:
            return cache.values
        with context.db.read() as conn:
            rows = runtime_repository.read_all(conn)
        values = _parse(rows, cache.fallback)
        previous, cache.values = cache.values, values
        cache.seen, cache.loaded_at = version, time.monotonic()
    if previous is None or previous.log_levels != values.log_levels:
        apply_log_levels(values.log_levels)
    return values


def _write(context: ServerContext, rows: Mapping[str, str]) -> RuntimeSettings:
    if context.settings.read_only:  # in this process only, never in the index
        cache = _cache(context)
        with cache.lock:
            before = cache.values or cache.fallback
            cache.values = _parse({**_rows(before), **rows}, cache.fallback)
        if before.log_levels != cache.values.log_levels:
            apply_log_levels(cache.values.log_levels)
        return cache.values
    with context.db.write() as conn:
        runtime_repository.put(conn, rows)
    cache = _cache(context)
    cache.version.bump()
    with cache.lock:
        cache.values = None
    return current(context)


def reset_to_configuration(settings: Settings, db: Database) -> None:
    """Write the configured values (at server start, before any request)."""
    values = configured(settings)
    with db.write() as conn:
        runtime_repository.put(conn, _rows(values))
    version = _Version(settings.index_path)
    try:
        version.bump()
    finally:
        version.close()
    apply_log_levels(values.log_levels)


# --- the process side: loggers and the decoder's default encoding -----------------------

def apply_log_levels(levels: Mapping[str, str]) -> None:
    """Set the Python loggers of each category (default WARNING, verbose INFO, trace
    DEBUG); SQL statements are logged at the sqlite category's trace level."""
    for category, names in CATEGORY_LOGGERS.items():
        level = _PYTHON_LEVELS[levels.get(category, "default")]
        for name in names:
            logging.getLogger(name).setLevel(level)
    sql = logging.INFO if levels.get("sqlite") == "trace" else logging.WARNING
    logging.getLogger("sqlalchemy.engine").setLevel(sql)


class Started:
    """What :func:`start` set up in this process; :meth:`stop` undoes it."""

    def __init__(self, context: ServerContext) -> None:
        self.context = context
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._refresh, name="pharos-runtime",
                                        daemon=True)

    def _refresh(self) -> None:
        """Pick up changes made by other processes (log levels) while this one is idle."""
        while not self._stopping.wait(CROSS_HOST_REFRESH):
            try:
                current(self.context)
            except Exception:  # noqa: BLE001 - the index may be briefly unavailable
                log.debug("Cannot refresh the runtime settings", exc_info=True)

    def stop(self) -> None:
        self._stopping.set()
        orthanc_json.set_default_encoding_source(None)
        cache = self.context.extras.pop("runtime.cache", None)
        if isinstance(cache, _Cache):
            cache.version.close()


def start(context: ServerContext) -> Started:
    """In each process: the decoders read the shared default encoding, loggers follow
    the shared levels."""
    started = Started(context)
    orthanc_json.set_default_encoding_source(lambda: current(context).default_encoding.codec)
    current(context)
    started._thread.start()
    return started


# --- the REST API's operations ----------------------------------------------------------

def set_default_encoding(context: ServerContext, name: str) -> str:
    try:
        encoding = encodings.parse(name)
    except ValueError as error:
        raise ParameterOutOfRange(str(error)) from error
    return _write(context, {_ENCODING: encoding.name}).default_encoding.name


def set_accepted_transfer_syntaxes(context: ServerContext, patterns: Any) -> tuple[str, ...]:
    """A pattern or a list of patterns (``?``/``*`` wildcards), as Orthanc parses them."""
    try:
        accepted = syntaxes.matching(patterns)
    except ValueError as error:
        raise BadFileFormat(str(error)) from error
    rows = {_SYNTAXES: orjson.dumps(list(accepted)).decode()}
    return _write(context, rows).accepted_transfer_syntaxes


def parse_boolean(text: str) -> bool:
    """Orthanc's ``RestApiCall::ParseBoolean``: "0"/"false" or "1"/"true"."""
    stripped = text.strip()
    if stripped in ("0", "false"):
        return False
    if stripped in ("1", "true"):
        return True
    raise BadFileFormat("Boolean value expected")


def set_unknown_sop_class_accepted(context: ServerContext, accepted: bool) -> None:
    _write(context, {_UNKNOWN_SOP: "1" if accepted else "0"})


def set_metrics_enabled(context: ServerContext, enabled: bool) -> None:
    """Every process follows within a flush period (``app.services.metrics``); this one
    at once."""
    _write(context, {_METRICS: "1" if enabled else "0"})
    metrics_of(context).enabled = enabled


def parse_verbosity(text: str) -> str:
    """Orthanc's ``StringToVerbosity``."""
    if text not in VERBOSITIES:
        raise ParameterOutOfRange(f'Verbosity can be "default", "verbose" or "trace": {text}')
    return text


def set_log_level(context: ServerContext, verbosity: str, category: str | None = None) -> None:
    """All categories (Orthanc's ``SetGlobalVerbosity``) or one."""
    level = parse_verbosity(verbosity)
    categories = list(CATEGORY_LOGGERS) if category is None else [category]
    _write(context, {_LOG_PREFIX + c: level for c in categories})
    if category is None:
        log.warning("REST API call has switched the log level to: %s", level)
    else:
        log.warning('REST API call has switched the log level of category "%s" to "%s"',
                    category, level)


# --- the C-STORE SCP's acceptance ------------------------------------------------------

@dataclass(frozen=True)
class Acceptance:
    """What the SCP accepts from one calling AE: storage transfer syntaxes (Orthanc's
    order), whether storage SOP classes it does not know are accepted, and the storage
    SOP classes accepted (``AcceptedSopClasses`` minus ``RejectedSopClasses``; a class
    named there is accepted even when unknown, a rejected one never is)."""

    transfer_syntaxes: tuple[str, ...]
    unknown_sop_class: bool
    storage_classes: frozenset[str] = storage_classes.KNOWN_SET
    rejected_classes: frozenset[str] = frozenset()


# Extension point (Lua's ``Is<Group>TransferSyntaxAccepted(aet, ip)`` and
# ``IsUnknownSopClassAccepted(aet, ip)``, Python hooks): each filter may narrow or widen
# the acceptance of one association.
AcceptanceFilter = Callable[[ServerContext, str, str, Acceptance], Acceptance]
ACCEPTANCE_FILTERS: list[AcceptanceFilter] = []


def presentation_acceptance(context: ServerContext, calling_aet: str,
                            remote_ip: str) -> Acceptance:
    """The one decision of what an association from *calling_aet* at *remote_ip* may
    send (Orthanc's ``IApplicationEntityFilter::GetAcceptedTransferSyntaxes`` and
    ``IsUnknownSopClassAccepted``): the runtime settings, then the filters."""
    values = current(context)
    settings = context.settings
    accepted = settings.storage_sop_classes
    acceptance = Acceptance(values.accepted_transfer_syntaxes,
                            values.unknown_sop_class_accepted, frozenset(accepted),
                            storage_classes.rejected(tuple(settings.rejected_sop_classes)))
    for accept in ACCEPTANCE_FILTERS:
        acceptance = accept(context, calling_aet, remote_ip, acceptance)
    return acceptance
