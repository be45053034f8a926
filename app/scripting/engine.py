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
  transaction) and applied in order by one thread;
* Python hooks (:mod:`app.scripting.hooks`) receive the same events and filters.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from app.errors import PharosError
from app.scripting.hooks import PythonHooks, load_hooks
from app.scripting.lua_state import LuaState, load_toolbox

if TYPE_CHECKING:
    from app.services.context import ServerContext

log = logging.getLogger(__name__)

CONTEXT_KEY = "scripting"


class ScriptingEngine:
    """Everything scripting for one :class:`ServerContext`; built by :func:`start`."""

    def __init__(self, context: ServerContext) -> None:
        self.context = context
        settings = context.settings
        self.lua_enabled = settings.lua_in_use
        self.execute_enabled = settings.execute_lua_enabled
        self.main: LuaState | None = None
        self.filter: LuaState | None = None
        self.hooks: PythonHooks | None = load_hooks(settings)
        self._events: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._heart_beat: threading.Thread | None = None
        self._stopping = threading.Event()
        if self.lua_enabled:
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

    # --- life cycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Start the event thread, call Initialize(), start the heart beat."""
        self._thread = threading.Thread(target=self._consume, name="pharos-lua-events",
                                        daemon=True)
        self._thread.start()
        self.enqueue_call("Initialize")
        period = self.context.settings.lua_heart_beat_period
        if period > 0 and self.main is not None and self.main.has_function("OnHeartBeat") \
                or period > 0 and self.hooks is not None and self.hooks.has("OnHeartBeat"):
            self._heart_beat = threading.Thread(target=self._beat, args=(period,),
                                                name="pharos-lua-heartbeat", daemon=True)
            self._heart_beat.start()

    def stop(self) -> None:
        """Call Finalize(), drain the queued events, stop the threads."""
        self.enqueue_call("Finalize")
        self._events.put(None)
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self._heart_beat is not None:
            self._heart_beat.join(timeout=5)

    # --- events ----------------------------------------------------------------------------

    def enqueue(self, event: Callable[[], None]) -> None:
        self._events.put(event)

    def enqueue_call(self, name: str, *arguments: Any) -> None:
        """Queue a plain callback (Lua function and Python hook of the same name)."""
        self.enqueue(lambda: self.call_everywhere(name, *arguments))

    def call_everywhere(self, name: str, *arguments: Any) -> None:
        """Call the Lua callback *name* (main state) then the Python hook, if defined."""
        if self.main is not None:
            self.main.call_if_exists(name, *arguments)
        if self.hooks is not None:
            self.hooks.call(name, *arguments)

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

    # --- /tools/execute-script ------------------------------------------------------------

    def execute_script(self, code: bytes) -> str:
        """Run code in the main state; answer what it printed."""
        assert self.main is not None
        return self.main.execute(code)


def start(context: ServerContext) -> ScriptingEngine | None:
    """Build and start the engine when Lua or Python hooks are configured (else None)."""
    settings = context.settings
    if not settings.lua_in_use and not settings.hooks:
        return None
    engine = ScriptingEngine(context)
    context.extras[CONTEXT_KEY] = engine
    engine.start()
    return engine


def stop(context: ServerContext) -> None:
    engine = context.extras.pop(CONTEXT_KEY, None)
    if isinstance(engine, ScriptingEngine):
        engine.stop()


def engine_of(context: ServerContext) -> ScriptingEngine | None:
    engine = context.extras.get(CONTEXT_KEY)
    return engine if isinstance(engine, ScriptingEngine) else None
