"""The entry points doors and services call: one line each, no-ops without scripting.

Where Orthanc calls its Lua engine, Pharos calls these:

* :func:`filter_incoming_instance` in the one ingest path, after parsing and before the
  index transaction (``ReceivedInstanceFilter``; ``ReceivedCStoreInstanceFilter`` for
  C-STORE): an instance refused is never stored;
* :func:`instance_stored` after the ingest transaction committed (``OnStoredInstance``,
  run later by the event thread);
* index events (stable, deleted, updated resources; job events) reach the engine through
  :meth:`app.index.db.Database.add_listener` after each commit;
* :func:`http_request_allowed` (``IncomingHttpRequestFilter``) from the HTTP middleware;
* :func:`incoming_find_identifier` (``IncomingFindRequestFilter``) in the C-FIND SCP and
  :func:`outgoing_find_identifier` (``OutgoingFindRequestFilter``) in the C-FIND SCU.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from app.context.hooks import ScriptHooks
from app.dicom import orthanc_json
from app.dicom.parse import read_dataset
from app.scripting.dicom_maps import identifier_from_table, identifier_table
from app.scripting.engine import engine_of

log = logging.getLogger(__name__)
T = TypeVar("T")

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    from app.context import ServerContext
    from app.dicom.parse import ParsedInstance


# Threads for the HTTP work that waits for a Lua state (execute-script, the HTTP filter):
# not Starlette's pool, which the internal REST calls of the script holding the state need.
_WAITING_THREADS = ThreadPoolExecutor(max_workers=64, thread_name_prefix="pharos-lua-http")


async def run_waiting_for_lua(function: Callable[..., T], *arguments: Any) -> T:
    """Run blocking work that may wait for a Lua state, off the event loop."""
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()
    return await loop.run_in_executor(_WAITING_THREADS,
                                      functools.partial(context.run, function, *arguments))


def lua_origin(origin: Mapping[str, str]) -> dict[str, str]:
    """Pharos' origin of an instance in the form Orthanc gives scripts
    (``DicomInstanceOrigin::Format``)."""
    kind = origin.get("Origin", "Unknown")
    if kind == "DicomProtocol":
        return {"CalledAet": origin.get("CalledAET", ""), "RemoteAet": origin.get("RemoteAET", ""),
                "RemoteIp": origin.get("RemoteIP", ""), "RequestOrigin": kind}
    if kind == "RestApi":
        return {"RemoteIp": origin.get("RemoteIP", ""), "RequestOrigin": kind,
                "Username": origin.get("HttpUsername", "")}
    return {"RequestOrigin": kind}


def simplified_tags(data: bytes, parsed: ParsedInstance) -> dict[str, Any]:
    """The tags Orthanc hands to instance callbacks: the ``?simplify`` JSON of the whole
    data set (long values null), without the pixel data. Should an odd file defeat the
    JSON conversion (the instance itself was parsed), the main tags stand in for it."""
    try:
        dataset = read_dataset(data, stop_before_pixels=True)
        return orthanc_json.to_simplified(orthanc_json.dataset_to_json(dataset))
    except Exception:  # noqa: BLE001 — never refuse or fail a store because of scripting
        log.warning("Tags of instance %s given to scripts: main tags only", parsed.ids.instance,
                    exc_info=True)
        return {name: value for level in parsed.main_tags.values()
                for name, value in level.items()}


def filter_incoming_instance(context: ServerContext, data: bytes, parsed: ParsedInstance,
                             origin: Mapping[str, str]) -> int | None:
    """None to store the instance; else the DIMSE status of the refusal (0, success, for
    ``ReceivedInstanceFilter``, as Orthanc answers; the returned status for
    ``ReceivedCStoreInstanceFilter``). Raises CannotExecuteLua when a filter fails."""
    engine = engine_of(context)
    if engine is None or not engine.filters_incoming_instances():
        return None
    info = {"HasPixelData": parsed.pixel_data_offset is not None,
            "TransferSyntaxUID": parsed.transfer_syntax}
    return engine.filter_instance(simplified_tags(data, parsed), lua_origin(origin), info,
                                  cstore=origin.get("Origin") == "DicomProtocol")


def instance_stored(context: ServerContext, data: bytes, parsed: ParsedInstance,
                    origin: Mapping[str, str]) -> None:
    """Queue ``OnStoredInstance`` for a newly stored (or overwritten) instance. Never
    raises: the instance is stored already."""
    engine = engine_of(context)
    if engine is None or not engine.defines("OnStoredInstance"):
        return
    try:
        # Metadata a modification stores after the instance, known now (the Book's loop
        # guard "metadata['ModifiedFrom'] == nil" must see it).
        extra = {name: origin[name] for name in ("ModifiedFrom", "AnonymizedFrom")
                 if name in origin}
        engine.signal_stored_instance(parsed.ids.instance, simplified_tags(data, parsed),
                                      lua_origin(origin), extra)
    except Exception:  # noqa: BLE001
        log.exception("OnStoredInstance could not be queued for %s", parsed.ids.instance)


def http_request_allowed(context: ServerContext, method: str, uri: str, ip: str,
                         username: str, headers: Mapping[str, str]) -> bool:
    """``IncomingHttpRequestFilter``: False answers 403. Blocking: call from a thread."""
    engine = engine_of(context)
    if engine is None:
        return True
    return engine.allow_http_request(method, uri, ip, username, dict(headers))


def filters_http_requests(context: ServerContext) -> bool:
    """Whether HTTP requests go through the scripting engine: when an HTTP filter is
    defined, or Lua is in use (requests then wait for a running Lua callback, as in
    Orthanc). Cheap (no lock)."""
    engine = engine_of(context)
    return engine is not None and (engine.main is not None
                                   or engine.defines("IncomingHttpRequestFilter"))


def incoming_find_identifier(context: ServerContext, identifier: Dataset,
                             origin: Mapping[str, str]) -> Dataset:
    """``IncomingFindRequestFilter(query, origin)``: the C-FIND identifier the SCP will run
    (*origin*: RemoteIp, RemoteAet, CalledAet, Manufacturer, as Orthanc's FormatOrigin)."""
    engine = engine_of(context)
    if engine is None or not engine.defines("IncomingFindRequestFilter"):
        return identifier
    table = engine.fix_find_query("IncomingFindRequestFilter", identifier_table(identifier),
                                  dict(origin))
    return identifier_from_table(identifier, table)


def outgoing_find_identifier(context: ServerContext, identifier: Dataset,
                             remote_aet: str) -> Dataset:
    """``OutgoingFindRequestFilter(query, modality)``: the identifier sent to a remote C-FIND
    SCP (*modality* is its AET, as in Orthanc)."""
    engine = engine_of(context)
    if engine is None or not engine.defines("OutgoingFindRequestFilter"):
        return identifier
    table = engine.fix_find_query("OutgoingFindRequestFilter", identifier_table(identifier),
                                  remote_aet)
    return identifier_from_table(identifier, table)


class ScriptingHooks(ScriptHooks):
    """The hooks of :mod:`app.context.hooks`, answered by the scripting engine (installed
    on the context while it runs)."""

    def filter_incoming_instance(self, context: ServerContext, data: bytes,
                                 parsed: ParsedInstance, origin: Mapping[str, str]) -> int | None:
        return filter_incoming_instance(context, data, parsed, origin)

    def instance_stored(self, context: ServerContext, data: bytes, parsed: ParsedInstance,
                        origin: Mapping[str, str]) -> None:
        instance_stored(context, data, parsed, origin)

    def outgoing_find_identifier(self, context: ServerContext, identifier: Dataset,
                                 remote_aet: str) -> Dataset:
        return outgoing_find_identifier(context, identifier, remote_aet)
