"""First contact: everything ``pharos serve`` needs from its environment, checked before
it serves, each failure one line naming the option and what to do.

Orthanc creates its ``StorageDirectory`` and ``IndexDirectory`` (with their parents) and
exits when it cannot use them, when its index database cannot be opened, or when the
HTTP or the DICOM port is taken. Pharos does the same, in the parent process, before any
HTTP worker starts: a worker that fails on its own would only leave a supervisor that
exits with status 0 and a traceback per process.
"""

from __future__ import annotations

import errno
import os
import socket
import tempfile
from pathlib import Path

from app.config import Settings


class StartupError(Exception):
    """The server cannot start: the message is the one line ``pharos`` prints."""


def prepare(settings: Settings) -> None:
    """Create the folders, open the blob store, migrate the index, check the ports."""
    if not settings.blobstore_url:
        _folder(Path(settings.storage_directory), "StorageDirectory", settings.read_only)
    if not settings.database_url:
        _folder(settings.index_path, "IndexDirectory" if settings.index_directory
                else "StorageDirectory", settings.read_only)
    _scripts(settings)
    _blob_store(settings)
    _index(settings)
    if settings.http_server_enabled:
        check_port(settings.http_host, settings.http_port, "HttpPort")
    if settings.dicom_server_enabled:
        check_port("0.0.0.0", settings.dicom_port, "DicomPort")


def _folder(path: Path, option: str, read_only: bool = False) -> None:
    """Create the folder with its parents, as Orthanc does, and check it is writable;
    with ReadOnly, it must exist and be readable (it is never written)."""
    if read_only:
        if not path.is_dir() or not os.access(path, os.R_OK | os.X_OK):
            raise StartupError(f"{option} {str(path)!r} is not a readable folder, and a "
                               "server with ReadOnly never creates one: fix " + option)
        return
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".pharos-write-check-"):
            pass
    except OSError as error:
        raise StartupError(f"{option} {str(path)!r} cannot be created or written "
                           f"({error.strerror or error}): fix {option} or the folder's "
                           "permissions") from None


def _scripts(settings: Settings) -> None:
    """The Lua scripts and the Python hooks module exist (they are run by each process)."""
    import importlib.util
    for script in settings.lua_scripts:
        path = settings.resolve_path(str(script))
        if not path.is_file() or not os.access(path, os.R_OK):
            raise StartupError(f"LuaScripts: {str(path)!r} cannot be read: fix the path "
                               "(relative paths start at the configuration's folder)")
    name = settings.hooks
    if not name:
        return
    if name.endswith(".py") or "/" in name:
        path = settings.resolve_path(name)
        if not path.is_file() or not os.access(path, os.R_OK):
            raise StartupError(f"Pharos.Hooks: {str(path)!r} cannot be read: fix the path")
        return
    try:
        found = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        found = None
    if found is None:
        raise StartupError(f"Pharos.Hooks: no Python module {name!r} on the path: fix the "
                           "name, or give the path of a .py file")


def _blob_store(settings: Settings) -> None:
    from app.blobstore import BlobStoreConfigError, open_blobstore
    try:
        open_blobstore(settings.blobstore_url, settings.storage_directory)
    except BlobStoreConfigError as error:
        raise StartupError(str(error)) from None


def _index(settings: Settings) -> None:
    """Migrate the index (which opens it): an unreachable or refused database is one line."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

    from app.index.db import check_schema, migrate
    url = settings.effective_database_url
    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        raise StartupError(f"DatabaseUrl {url[:80]!r} is not a database URL (e.g. "
                           "postgresql+psycopg://user@host/db): fix Pharos.DatabaseUrl or "
                           "PHAROS_DATABASE_URL") from None
    try:
        check_schema(url) if settings.read_only else migrate(url)
    except ValueError as error:  # ReadOnly over an index that is not at the latest schema
        raise StartupError(str(error)) from None
    except NoSuchModuleError as error:
        raise StartupError(f"DatabaseUrl {shown}: unsupported database ({error}); use "
                           "sqlite:/// or postgresql+psycopg://") from None
    except DBAPIError as error:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()
        raise StartupError(f"the index database {shown} cannot be used: "
                           f"{reason[0] if reason else type(error).__name__} (check that "
                           "it runs and accepts this user, or fix Pharos.DatabaseUrl / "
                           "PHAROS_DATABASE_URL)") from None


def check_port(host: str, port: int, option: str) -> None:
    """Bind the port once (as the server will, SO_REUSEADDR on): taken means fatal."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, int(port)))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise StartupError(f"{option} {port} is already in use on {host}: stop the "
                                   f"program listening there or choose another {option}") \
                    from None
            raise StartupError(f"{option} {port} cannot be opened on {host} "
                               f"({error.strerror or error}): choose another {option}"
                               + (" (ports below 1024 need privileges)"
                                  if port < 1024 and os.geteuid() != 0 else "")) from None


def where_it_listens(settings: Settings, storage: str, http_processes: int) -> list[str]:
    """The lines ``pharos serve`` logs once started (Orthanc's "HTTP server listening on
    port", "DICOM server listening..."), saying also who may connect: HTTP address and
    access rules, DICOM port, AET and rules, the index (URL without its password) and the
    storage."""
    from sqlalchemy.engine import make_url

    from app import __version__
    lines = [f"Pharos {__version__} \"{settings.name}\" started ({http_processes} HTTP "
             f"process{'es' if http_processes > 1 else ''})"]
    if settings.http_server_enabled:
        host = settings.http_host
        shown = f"[{host}]" if ":" in host else host
        everywhere = host in ("0.0.0.0", "::")
        clients = "any client (RemoteAccessAllowed)" if settings.remote_access_allowed \
            else "clients on this machine only (RemoteAccessAllowed false)"
        if settings.effective_authentication:
            users = len(settings.registered_users)
            access = f"HTTP Basic authentication, {users} registered user" \
                     f"{'' if users == 1 else 's'}"
        else:
            access = "no authentication"
        lines.append(f"HTTP: http://{shown}:{settings.http_port}/"
                     f"{' (all interfaces)' if everywhere else ''}; {clients}; {access}")
    else:
        lines.append("HTTP: disabled (HttpServerEnabled false)")
    if settings.dicom_server_enabled:
        anyone = [name for name, allowed in (
            ("C-ECHO", settings.dicom_always_allow_echo),
            ("C-STORE", settings.dicom_always_allow_store),
            ("C-FIND", settings.dicom_always_allow_find),
            ("C-GET", settings.dicom_always_allow_get),
            ("C-MOVE", settings.dicom_always_allow_move)) if allowed]
        modalities = len(settings.dicom_modalities)
        rules = [f"{', '.join(anyone)} from any AE" if anyone else "",
                 f"{'the rest' if anyone else 'everything'} from the {modalities} "
                 f"DicomModalities" + (" (checked by host too)"
                                       if settings.dicom_check_modality_host else ""),
                 "called AET checked" if settings.dicom_check_called_aet else ""]
        lines.append(f"DICOM: port {settings.dicom_port}, AET {settings.dicom_aet}; "
                     + "; ".join(rule for rule in rules if rule))
    else:
        lines.append("DICOM: disabled (DicomServerEnabled false)")
    index = make_url(settings.effective_database_url).render_as_string(hide_password=True)
    lines.append(f"Index: {index}{' (ReadOnly)' if settings.read_only else ''}")
    lines.append(f"Storage: {storage}")
    return lines
