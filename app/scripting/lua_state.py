"""One Lua 5.3 interpreter with Orthanc's framework functions, used under one lock.

Orthanc links liblua5.3; Pharos embeds the same language through ``lupa.lua53``. A
:class:`LuaState` is what Orthanc's ``LuaContext`` is: a Lua state whose globals persist
between calls, with ``print`` captured (the answer of ``/tools/execute-script``),
``ParseJson``, ``DumpJson``, and the functions the server adds (``RestApiGet``...,
see :mod:`app.scripting.lua_api`). Every use goes through :meth:`LuaState.run`, which
gives mutual exclusion like Orthanc's ``LuaScripting::Lock``.

Re-entrance across threads. Orthanc's lock is a recursive mutex and its internal REST
calls (``RestApiGet`` from Lua) run on the calling thread, so a script may call a route
that itself needs Lua (``/modalities/{id}/query`` runs ``OutgoingFindRequestFilter``).
In Pharos an internal REST call runs on the event loop and in worker threads, and lupa
keeps the interpreter locked to the thread that entered it. So the thread holding the
state records a :class:`_Session` in a context variable that internal calls carry along
(``contextvars`` follow asyncio tasks and Starlette's thread pool); a thread of the same
call chain that needs the state hands its work back to the holding thread, which runs it
while it waits for the internal call. Unrelated threads simply wait for the lock.
"""

from __future__ import annotations

import contextvars
import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from importlib import resources
from typing import Any, TypeVar

import lupa.lua53 as lua
import orjson

from app.errors import CannotExecuteLua, PharosError
from app.scripting.lua_values import from_lua, lua_text, to_lua

log = logging.getLogger(__name__)

T = TypeVar("T")

# The chunk name Orthanc gives to executed code: errors read '[string "line"]:1: ...'.
CHUNK_NAME = "line"

# print() as Orthanc's LuaContext::PrintToLog formats it: each argument through the
# global tostring, joined by ", " once something was written (so an empty first
# argument leaves no leading separator), "<No conversion to string>" when tostring
# gives no string. Defined in Lua so that tostring and nil arguments behave natively.
_PRINT = b"""
local sink = ...
function print(...)
   local count = select('#', ...)
   local line = ''
   for i = 1, count do
      local text = tostring((select(i, ...)))
      if type(text) ~= 'string' then
         text = '<No conversion to string>'
      end
      if #line > 0 then
         line = line .. ', '
      end
      line = line .. text
   end
   sink(line)
end
"""

# The callbacks Orthanc calls (Orthanc 1.12): their presence is tracked after each use of
# a state (LuaState.defined).
CALLBACKS = (
    "Initialize", "Finalize", "OnHeartBeat", "OnStoredInstance", "OnStablePatient",
    "OnStableStudy", "OnStableSeries", "OnDeletedPatient", "OnDeletedStudy",
    "OnDeletedSeries", "OnDeletedInstance", "OnUpdatedPatient", "OnUpdatedStudy",
    "OnUpdatedSeries", "OnUpdatedInstance", "OnJobSubmitted", "OnJobSuccess",
    "OnJobFailure", "ReceivedInstanceFilter", "ReceivedCStoreInstanceFilter",
    "IncomingHttpRequestFilter", "IncomingFindRequestFilter", "OutgoingFindRequestFilter",
)

# Lua source only: precompiled bytecode is not verified by Lua 5.3 and a crafted chunk can
# crash the process. The chunks Pharos runs are loaded in text mode; so are the ones a
# script loads itself (the optional env argument keeps its "given or not" meaning).
_TEXT_ONLY = b"""
local rawload, rawloadfile = load, loadfile
function load(chunk, name, mode, ...)
   if select('#', ...) > 0 then
      return rawload(chunk, name, 't', ...)
   end
   return rawload(chunk, name, 't')
end
function loadfile(filename, mode, ...)
   if select('#', ...) > 0 then
      return rawloadfile(filename, 't', ...)
   end
   return rawloadfile(filename, 't')
end
function dofile(filename)
   local chunk = assert(loadfile(filename))
   return chunk()
end
"""

_sessions: contextvars.ContextVar[tuple[_Session, ...]] = \
    contextvars.ContextVar("pharos_lua_sessions", default=())


def _deny_attributes(obj: Any, name: Any, is_setting: bool) -> Any:
    """Lua never reaches Python attributes of the functions it is given (no sandbox escape
    through ``f.__globals__``)."""
    raise AttributeError("Python attributes are not accessible from Lua")


def clean_lua_error(error: BaseException) -> str:
    """The message of a Lua error as Orthanc reports it: no traceback, no lupa prefix."""
    text = str(error.args[0] if error.args else error)
    text = text.split("\nstack traceback:", 1)[0]
    for prefix in ("error loading code: ",):
        if text.startswith(prefix):
            text = text[len(prefix):]
    return text.replace('[string "<python>"]', f'[string "{CHUNK_NAME}"]')


class _Session:
    """One thread's exclusive use of a state, and the work other threads of its call
    chain hand back to it while it waits for an internal call."""

    def __init__(self, state: LuaState) -> None:
        self.state = state
        self.thread = threading.get_ident()
        self.inbox: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]] | None] = \
            queue.SimpleQueue()
        self._guard = threading.Lock()
        self.closed = False

    def delegate(self, work: Callable[[], T]) -> tuple[bool, T | None]:
        """Run *work* on the holding thread (called from another thread of the chain):
        (True, result); (False, None) without running it when the session has ended
        meanwhile (the caller then takes the lock itself): see :meth:`LuaState.run`."""
        done: Future[T] = Future()
        with self._guard:
            if self.closed:
                return False, None
            self.inbox.put((work, done))
        return True, done.result()

    def close(self) -> None:
        """End the session (lock still held): run what was handed back too late."""
        with self._guard:
            self.closed = True
        while True:
            try:
                item = self.inbox.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                self._serve(*item)

    def _serve(self, work: Callable[[], Any], done: Future[Any]) -> None:
        if done.set_running_or_notify_cancel():
            try:
                done.set_result(work())
            except BaseException as error:  # noqa: BLE001 — handed to the waiting thread
                done.set_exception(error)

    def wait(self, pending: Future[T]) -> T:
        """Wait for *pending* on the holding thread, serving handed-back work meanwhile."""
        pending.add_done_callback(lambda _: self.inbox.put(None))
        while not pending.done():
            item = self.inbox.get()
            if item is not None:
                self._serve(*item)
        return pending.result()


def current_session() -> _Session | None:
    """The innermost session of the calling chain (for internal calls that must wait)."""
    chain = _sessions.get()
    return chain[-1] if chain else None


def wait_in_chain(pending: Future[T]) -> T:
    """Wait for *pending*; if this thread holds a Lua state, keep serving its chain."""
    session = current_session()
    if session is not None and session.thread == threading.get_ident():
        return session.wait(pending)
    return pending.result()


class FairLock:
    """A first-come, first-served lock: the event thread, which takes the state once per
    event, must not starve HTTP requests and /tools/execute-script waiting for it."""

    def __init__(self) -> None:
        self._condition = threading.Condition(threading.Lock())
        self._next_ticket = 0
        self._serving = 0

    def __enter__(self) -> None:
        with self._condition:
            ticket = self._next_ticket
            self._next_ticket += 1
            while self._serving != ticket:
                self._condition.wait()

    def __exit__(self, *exc: object) -> None:
        with self._condition:
            self._serving += 1
            self._condition.notify_all()


class LuaState:
    """A Lua interpreter with Orthanc's framework functions, used in mutual exclusion."""

    def __init__(self, name: str,
                 functions: dict[str, Callable[..., Any]] | None = None) -> None:
        """*functions*: global name -> ``f(state, *lua_arguments)``."""
        self.name = name
        self._lock = FairLock()
        self._output: list[str] | None = None  # print()'s lines while execute() runs
        self.defined: frozenset[str] = frozenset()
        self.runtime = lua.LuaRuntime(encoding=None, unpack_returned_tuples=True,
                                      register_eval=False, register_builtins=False,
                                      attribute_filter=_deny_attributes)
        globals_ = self.runtime.globals()
        globals_[b"python"] = None
        self.runtime.execute(_PRINT, self._print)
        self.runtime.execute(_TEXT_ONLY)
        self.register("ParseJson", self._parse_json)
        self.register("DumpJson", self._dump_json)
        for function_name, function in (functions or {}).items():
            self.register(function_name, _bind(function, self))

    # --- exclusive access -------------------------------------------------------------

    def run(self, work: Callable[[], T]) -> T:
        """Run *work* with exclusive use of this state (re-entrant along a call chain)."""
        for session in reversed(_sessions.get()):
            if session.state is self and not session.closed:
                if session.thread == threading.get_ident():
                    return work()
                ran, result = session.delegate(work)
                if ran:
                    return result  # type: ignore[return-value]
                break  # the holder has finished meanwhile: take the lock
        with self._lock:
            session = _Session(self)
            token = _sessions.set((*_sessions.get(), session))
            try:
                return work()
            finally:
                _sessions.reset(token)
                session.close()
                self._note_definitions()

    def wait_until_free(self) -> None:
        """Wait for the work holding the state now (and earlier waiters) to finish, without
        running anything: Orthanc's HTTP server takes the Lua lock for every request (its
        IncomingHttpRequestFilter check), so a request never overtakes a running callback."""
        with self._lock:
            pass

    def _note_definitions(self) -> None:
        """Remember which callbacks are defined, so that the doors can skip the lock (and
        the work of preparing arguments) when a callback is absent."""
        globals_ = self.runtime.globals()
        self.defined = frozenset(name for name in CALLBACKS
                                 if lua.lua_type(globals_[name.encode()]) == "function")

    # --- what Orthanc's LuaContext offers ------------------------------------------------

    def register(self, name: str, function: Callable[..., Any]) -> None:
        self.runtime.globals()[name.encode()] = function

    def execute(self, code: str | bytes) -> str:
        """Run a chunk; answer what it printed (Orthanc's ``LuaContext::Execute``)."""
        source = code.encode("utf-8") if isinstance(code, str) else code

        def work() -> str:
            outer, self._output = self._output, []
            try:
                # mode "t": source only; precompiled bytecode can crash the interpreter.
                self.runtime.execute(source, name=CHUNK_NAME, mode="t")
                return "".join(line + "\n" for line in self._output)
            except PharosError:
                raise
            except Exception as error:  # noqa: BLE001 — LuaError, or what a Python function
                # called from Lua raised (lupa re-raises it as is once Lua has unwound)
                raise CannotExecuteLua(clean_lua_error(error)) from None
            finally:
                self._output = outer
        return self.run(work)

    def has_function(self, name: str) -> bool:
        return self.run(lambda: lua.lua_type(self.runtime.globals()[name.encode()])
                        == "function")

    def call(self, name: str, *arguments: Any) -> Any:
        """Call the global function *name* with JSON-like arguments; return its result
        (a lupa value: convert with :func:`from_lua`). Raises CannotExecuteLua."""
        def work() -> Any:
            function = self.runtime.globals()[name.encode()]
            if lua.lua_type(function) != "function":
                raise CannotExecuteLua(f"The Lua function {name}() is not defined")
            try:
                return function(*(to_lua(self.runtime, a) for a in arguments))
            except PharosError:
                raise
            except Exception as error:  # noqa: BLE001 — as in execute()
                raise CannotExecuteLua(clean_lua_error(error)) from None
        return self.run(work)

    def call_if_exists(self, name: str, *arguments: Any) -> tuple[bool, Any]:
        """(True, result) when the function exists, else (False, None); one lock hold."""
        def work() -> tuple[bool, Any]:
            if lua.lua_type(self.runtime.globals()[name.encode()]) != "function":
                return False, None
            return True, self.call(name, *arguments)
        return self.run(work)

    def to_lua(self, value: Any) -> Any:
        return to_lua(self.runtime, value)

    # --- framework functions -------------------------------------------------------------

    def _print(self, line: bytes) -> None:
        text = lua_text(line)
        log.warning("Lua says: %s", text)
        if self._output is not None:
            self._output.append(text)

    def _parse_json(self, *arguments: Any) -> Any:
        if len(arguments) != 1 or not isinstance(arguments[0], bytes | int | float) \
                or isinstance(arguments[0], bool):
            return None
        try:
            value = orjson.loads(lua_text(arguments[0]))
        except orjson.JSONDecodeError:
            return None
        return self.to_lua(value)

    def _dump_json(self, *arguments: Any) -> Any:
        if len(arguments) not in (1, 2) or (len(arguments) == 2
                                            and not isinstance(arguments[1], bool)):
            return None
        keep_strings = len(arguments) == 2 and arguments[1]
        return orjson.dumps(from_lua(arguments[0], keep_strings))


def _bind(function: Callable[..., Any], state: LuaState) -> Callable[..., Any]:
    return lambda *arguments: function(state, *arguments)


def load_toolbox(state: LuaState) -> None:
    """Install Pharos' Lua toolbox (PrintRecursive, SendToModality, Delete...)."""
    state.execute(resources.files("app.scripting").joinpath("toolbox.lua").read_bytes())
