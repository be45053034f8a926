"""Python hooks: Orthanc's Lua callbacks as plain Python functions.

``"Pharos": {"Hooks": "mysite.hooks"}`` (a module name) or ``"Hooks": "hooks.py"`` (a
file, relative to the configuration file's folder) names a module whose functions named
like the Lua callbacks (``OnStoredInstance``, ``ReceivedInstanceFilter``,
``IncomingHttpRequestFilter``...) are called on the same events, with the same arguments
as Python values (dicts, lists, str, int, float, bool, None), after the Lua callback of
the same name. Filters return a bool (both Lua and Python must accept); ``On*``
callbacks run asynchronously, in order, on the scripting event thread. The functions of
:mod:`app.scripting.api` (``rest_api_get``..., ``send_to_modality``...) are the Python
side of Lua's ``RestApiGet``... and ``SendToModality``...

Unlike Lua, hooks have no single-state requirement: each HTTP process imports the module
once, so module globals are per process.
"""

from __future__ import annotations

import contextvars
import importlib
import importlib.util
import logging
import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any

from app.errors import HookFailed, PharosError
from app.services.lua_operations import submit_operations

if TYPE_CHECKING:
    from app.config import Settings
    from app.scripting.engine import ScriptingEngine

log = logging.getLogger(__name__)

# The engine and the job operations of the hook running on this thread (app.scripting.api).
current_engine: contextvars.ContextVar[ScriptingEngine | None] = \
    contextvars.ContextVar("pharos_hooks_engine", default=None)
current_job: contextvars.ContextVar[list[dict[str, Any]] | None] = \
    contextvars.ContextVar("pharos_hooks_job", default=None)


class PythonHooks:
    """The callbacks found in one module."""

    def __init__(self, module: ModuleType, engine: ScriptingEngine | None = None) -> None:
        self.module = module
        self.engine = engine

    def has(self, name: str) -> bool:
        return callable(getattr(self.module, name, None))

    def call(self, name: str, *arguments: Any) -> Any:
        function = getattr(self.module, name, None)
        if not callable(function):
            return None
        token = current_engine.set(self.engine)
        try:
            return function(*arguments)
        except PharosError:
            raise
        except Exception as error:  # noqa: BLE001 — a hook's bug is an error of that request
            log.exception("Python hook %s failed", name)
            raise HookFailed(f"Python hook {name}() failed: {error!r}") from error
        finally:
            current_engine.reset(token)

    def call_with_job(self, engine: ScriptingEngine, name: str, *arguments: Any) -> None:
        """Call a hook that may use send_to_modality()... then submit their job."""
        operations: list[dict[str, Any]] = []
        token = current_job.set(operations)
        try:
            self.call(name, *arguments)
        finally:
            current_job.reset(token)
        submit_operations(engine.context, operations)


def load_hooks(settings: Settings, engine: ScriptingEngine | None = None) -> PythonHooks | None:
    """Import the module named by ``Pharos.Hooks`` (None when unset)."""
    name = settings.hooks
    if not name:
        return None
    if name.endswith(".py") or "/" in name:
        path = settings.resolve_path(name).resolve()
        spec = importlib.util.spec_from_file_location(f"pharos_hooks_{path.stem}", path)
        if spec is None or spec.loader is None:
            raise ValueError(f"Pharos.Hooks: cannot load {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(name)
    log.info("Python hooks loaded from %s", getattr(module, "__file__", name))
    return PythonHooks(module, engine)
