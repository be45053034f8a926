"""The scripting engine of one server process: Lua states, Python hooks, event thread.

What Orthanc's ``LuaScripting`` (two of them) and ``LuaServerListener`` do:

* the **main state** runs ``/tools/execute-script``, the asynchronous callbacks
  (``OnStoredInstance``, ``OnStable*``, ``OnDeleted*``, ``OnUpdated*``, ``OnJob*``,
  ``OnHeartBeat``, ``Initialize``/``Finalize``) and the request filters
  (``IncomingHttpRequestFilter``, ``IncomingFindRequestFilter``,
  ``OutgoingFindRequestFilter``);
* the **filter state** runs ``ReceivedInstanceFilter`` and
  ``ReceivedCStoreInstanceFilter``, so that filtering an incoming instance never waits
  for a slow callback of the main state. Both load the toolbox and ``LuaScripts``; code
  sent to ``/tools/execute-script`` only reaches the main state, exactly as in Orthanc
  (a filter installed that way is not applied: install filters with ``LuaScripts``);
* events are queued by the doors and services after the fact (never inside the ingest
  transaction) and applied in order by one thread; a failing callback is logged and the
  next event goes on;
* Python hooks (:mod:`app.scripting.hooks`) receive the same events and filters, after
  the Lua callback of the same name.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import lupa.lua53 as lua

from app.context.hooks import NO_HOOKS
from app.dicom.levels import Level
from app.errors import LuaBadOutput, NotLuaPredicate, PharosError
from app.scripting.hooks import PythonHooks, load_hooks
from app.scripting.internal_http import ASGIApp, InternalHttp
from app.scripting.lua_state import LuaState, load_toolbox
from app.scripting.lua_values import LuaConversionError, from_lua
from app.services import resources
from app.services.lua_operations import submit_operations

if TYPE_CHECKING:
    from app.context import IndexEvent, ServerContext

log = logging.getLogger(__name__)

CONTEXT_KEY = "scripting"

# Index events -> callback names (Orthanc's LuaScripting::SignalChange, SignalJobEvent).
_STABLE = {"StablePatient": "OnStablePatient", "StableStudy": "OnStableStudy",
           "StableSeries": "OnStableSeries"}
_UPDATED = ("UpdatedAttachment", "UpdatedMetadata")
_JOBS = {"JobSubmitted": "OnJobSubmitted", "JobSuccess": "OnJobSuccess",
         "JobFailure": "OnJobFailure"}


class ScriptingEngine:
    """Everything scripting for one :class:`ServerContext`; built by :func:`start`."""

    def __init__(self, context: ServerContext, http: InternalHttp | None = None) -> None:
        self.context = context
        self._http = http
        settings = context.settings
        self.execute_enabled = settings.execute_lua_enabled
        self.main: LuaState | None = None
        self.filter: LuaState | None = None
        self.hooks: PythonHooks | None = load_hooks(settings, self)
        self._events: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._heart_beat: threading.Thread | None = None
        self._stopping = threading.Event()
        if settings.lua_in_use:
            from app.scripting.lua_api import server_functions
            self.main = self._new_state("main", server_functions(self))
            self.filter = self._new_state("filter", server_functions(self))

    def _new_state(self, name: str, functions: dict[str, Callable[..., Any]]) -> LuaState:
        state = LuaState(name, functions)
        load_toolbox(state)
        for script in self.context.settings.lua_scripts:
            path = self.context.settings.resolve_path(script)
            log.info("Installing the Lua scripts from: %s", path)
            state.execute(path.read_bytes())
        return state

    @property
    def http(self) -> InternalHttp:
        """The server's own REST API (RestApiGet... of Lua, ``rest_api_*`` of hooks)."""
        if self._http is None:
            raise RuntimeError("the REST API is not available to scripts in this process")
        return self._http

    def defines(self, name: str, state: LuaState | None = None) -> bool:
        """Whether a callback exists (Lua in *state*, the main one by default, or Python);
        lock-free, from what the states noted after their last use."""
        lua_state = state or self.main
        return (lua_state is not None and name in lua_state.defined) or \
            (self.hooks is not None and self.hooks.has(name))

    # --- life cycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Start the event thread, queue Initialize(), start the heart beat."""
        self.context.db.add_listener(self.on_index_events)
        self._thread = threading.Thread(target=self._consume, name="pharos-lua-events",
                                        daemon=True)
        self._thread.start()
        self.enqueue_call("Initialize")
        period = self.context.settings.lua_heart_beat_period
        if period > 0 and self.defines("OnHeartBeat"):
            log.info("Starting the Lua HeartBeat thread with a period of %d seconds", period)
            self._heart_beat = threading.Thread(target=self._beat, args=(period,),
                                                name="pharos-lua-heartbeat", daemon=True)
            self._heart_beat.start()

    def stop(self) -> None:
        """Queue Finalize(), apply the events already queued, stop the threads."""
        self.context.db.remove_listener(self.on_index_events)
        self.enqueue_call("Finalize")
        self._events.put(None)
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self._heart_beat is not None:
            self._heart_beat.join(timeout=5)

    # --- the event thread ------------------------------------------------------------------

    def enqueue(self, event: Callable[[], None]) -> None:
        self._events.put(event)

    def enqueue_call(self, name: str, *arguments: Any) -> None:
        """Queue a plain callback (Lua function and Python hook of the same name)."""
        if self.defines(name):
            self.enqueue(lambda: self.call_everywhere(name, *arguments))

    def call_everywhere(self, name: str, *arguments: Any, with_job: bool = False) -> None:
        """Call the Lua callback *name* (main state) then the Python hook, if defined; a
        failure of one is logged and does not keep the other from running. *with_job*:
        the routing functions may be used (their operations become a job)."""
        if self.main is not None and name in self.main.defined:
            try:
                if with_job:
                    self._call_with_job(name, *arguments)
                else:
                    self.main.call_if_exists(name, *arguments)
            except PharosError as error:
                log.error("Error in the Lua callback %s(): %s", name, error.details or error)
        if self.hooks is not None and self.hooks.has(name):
            try:
                if with_job:
                    self.hooks.call_with_job(self, name, *arguments)
                else:
                    self.hooks.call(name, *arguments)
            except PharosError as error:
                log.error("Error in the Python hook %s(): %s", name, error.details or error)

    def _call_with_job(self, name: str, *arguments: Any) -> None:
        """Orthanc's InitializeJob / callback / SubmitJob, in one hold of the main state."""
        state = self.main
        assert state is not None

        def work() -> list[Any]:
            state.call("_InitializeJob")
            state.call(name, *arguments)
            return from_lua(state.call("_AccessJob"), keep_strings=True) or []
        operations = state.run(work)
        if not isinstance(operations, list):
            raise LuaBadOutput("The Lua job queue (_job) is not a list")
        submit_operations(self.context, operations)

    def _consume(self) -> None:
        while True:
            event = self._events.get()
            if event is None:
                return
            try:
                event()
            except PharosError as error:
                log.error("Error while processing Lua events: %s", error.details or error)
            except Exception:  # noqa: BLE001 — a script error never stops the event thread
                log.exception("Error while processing scripting events")

    def _beat(self, period: int) -> None:
        while not self._stopping.wait(period):
            try:
                self.call_everywhere("OnHeartBeat")
            except PharosError as error:
                log.error("Error in OnHeartBeat: %s", error.details or error)
            except Exception:  # noqa: BLE001
                log.exception("Error in OnHeartBeat")

    # --- events ----------------------------------------------------------------------------

    def signal_stored_instance(self, instance_id: str, tags: dict[str, Any],
                               origin: dict[str, str], extra: dict[str, str]) -> None:
        """Queue OnStoredInstance(instanceId, tags, metadata, origin)."""
        def event() -> None:
            metadata = {**self._metadata(Level.INSTANCE, instance_id), **extra}
            self.call_everywhere("OnStoredInstance", instance_id, tags, metadata, origin,
                                 with_job=True)
        self.enqueue(event)

    def on_index_events(self, events: list[IndexEvent]) -> None:
        """Called after each committed write transaction: queue the callbacks."""
        for kind, level, public_id in events:
            if kind in _STABLE and self.defines(_STABLE[kind]):
                self.enqueue(lambda k=kind, lv=level, i=public_id: self._stable(k, lv, i))
            elif kind == "Deleted" and isinstance(level, Level):
                self.enqueue_call(f"OnDeleted{level.value}", public_id)
            elif kind in _UPDATED and isinstance(level, Level):
                self.enqueue_call(f"OnUpdated{level.value}", public_id)
            elif kind in _JOBS:
                self.enqueue_call(_JOBS[kind], public_id)

    def _stable(self, kind: str, level: Level, public_id: str) -> None:
        """OnStable*(id, tags, metadata): main DICOM tags (a study's without the patient's)
        and metadata, read when the event is applied; skipped if the resource is gone."""
        read = resources.tags_and_metadata(self.context, level, public_id)
        if read is None:
            return
        tags, metadata = read
        self.call_everywhere(_STABLE[kind], public_id, tags, metadata, with_job=True)

    def _metadata(self, level: Level, public_id: str) -> dict[str, str]:
        read = resources.tags_and_metadata(self.context, level, public_id)
        return {} if read is None else read[1]

    # --- filters ---------------------------------------------------------------------------

    def filters_incoming_instances(self) -> bool:
        return any(self.defines(name, self.filter) for name in
                   ("ReceivedInstanceFilter", "ReceivedCStoreInstanceFilter"))

    def filter_instance(self, tags: dict[str, Any], origin: dict[str, str],
                        info: dict[str, Any], *, cstore: bool) -> int | None:
        """None: store. Else the DIMSE status of the refusal (see events.py)."""
        name = "ReceivedInstanceFilter"
        if self.filter is not None and name in self.filter.defined:
            if not _predicate(self.filter, name, tags, origin, info):
                return 0  # Orthanc answers success to keep old modalities happy
        if self.hooks is not None and self.hooks.has(name) \
                and not self.hooks.call(name, tags, origin, info):
            return 0
        if not cstore:
            return None
        name = "ReceivedCStoreInstanceFilter"
        status = 0
        if self.filter is not None and name in self.filter.defined:
            status = _status(self.filter.call(name, tags, origin, info))
        if not status and self.hooks is not None and self.hooks.has(name):
            status = _status(self.hooks.call(name, tags, origin, info))
        return status or None

    def allow_http_request(self, method: str, uri: str, ip: str, username: str,
                           headers: dict[str, str]) -> bool:
        name = "IncomingHttpRequestFilter"
        if self.main is not None:
            if name not in self.main.defined:
                self.main.wait_until_free()  # Orthanc takes the Lua lock for each request
            elif not _predicate(self.main, name, method, uri, ip, username, headers):
                return False
        return not (self.hooks is not None and self.hooks.has(name)
                    and not self.hooks.call(name, method, uri, ip, username, headers))

    def fix_find_query(self, name: str, query: dict[str, str], argument: Any) -> dict[str, str]:
        """Incoming/OutgoingFindRequestFilter: the query a callback returns (a table of
        ``gggg,eeee`` -> string; Orthanc's ExecuteToDicom)."""
        if self.main is not None and name in self.main.defined:
            state = self.main
            result = state.run(lambda: _dicom_table(state.call(name, query, argument)))
            query = result
        if self.hooks is not None and self.hooks.has(name):
            answer = self.hooks.call(name, dict(query), argument)
            if not isinstance(answer, dict):
                raise LuaBadOutput(f"The Python hook {name} must return a dict")
            query = {str(k): "" if v is None else str(v) for k, v in answer.items()}
        return query

    # --- /tools/execute-script ------------------------------------------------------------

    def execute_script(self, code: bytes) -> str:
        """Run code in the main state; answer what it printed."""
        assert self.main is not None
        return self.main.execute(code)


def _predicate(state: LuaState, name: str, *arguments: Any) -> bool:
    """Orthanc's LuaFunctionCall::ExecutePredicate: the callback must return a boolean."""
    result = state.call(name, *arguments)
    if not isinstance(result, bool):
        raise NotLuaPredicate(f"{name}() must return true or false")
    return result


def _status(value: Any) -> int:
    """A C-STORE status returned by a filter (0: accept)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise LuaBadOutput("ReceivedCStoreInstanceFilter() must return a DIMSE status number")
    return int(value) & 0xFFFF


def _dicom_table(value: Any) -> dict[str, str]:
    """A table of DICOM tags to strings (Orthanc's ExecuteToDicom; an empty table is {})."""
    try:
        table = from_lua(value, keep_strings=True)
    except LuaConversionError as error:
        raise LuaBadOutput(str(error)) from error
    if table == []:
        return {}
    if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
        if lua.lua_type(value) != "table":
            raise LuaBadOutput("Lua: The script must return a table")
        raise LuaBadOutput("Lua: The script must return a table mapping names of DICOM tags "
                           "to strings")
    return table


def start(context: ServerContext, app: ASGIApp | None = None) -> ScriptingEngine | None:
    """Build and start the engine when Lua or Python hooks are configured (else None).

    Called from the app's lifespan, on the event loop that internal REST calls use."""
    settings = context.settings
    if not settings.lua_in_use and not settings.hooks:
        return None
    try:
        loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    engine = ScriptingEngine(context, InternalHttp(app, loop) if app is not None else None)
    context.extras[CONTEXT_KEY] = engine
    # What the services call (app/context/hooks.py) now reaches the engine. events.py
    # imports this module, hence the import here.
    from app.scripting.events import ScriptingHooks
    context.hooks = ScriptingHooks()
    engine.start()
    return engine


def stop(context: ServerContext) -> None:
    engine = context.extras.pop(CONTEXT_KEY, None)
    if isinstance(engine, ScriptingEngine):
        context.hooks = NO_HOOKS
        engine.stop()


def engine_of(context: ServerContext) -> ScriptingEngine | None:
    engine = context.extras.get(CONTEXT_KEY)
    return engine if isinstance(engine, ScriptingEngine) else None
