"""Python hooks: Orthanc's Lua callbacks as plain Python functions.

``"Pharos": {"Hooks": "mysite.hooks"}`` (a module name) or ``"Hooks": "hooks.py"`` (a
file, relative to the configuration file's folder) names a module whose functions named
like the Lua callbacks (``OnStoredInstance``, ``ReceivedInstanceFilter``,
``IncomingHttpRequestFilter``...) are called on the same events, with the same arguments
as Python values (dicts, lists, str, int, float, bool, None), after the Lua callback of
the same name. Filters return a bool (both Lua and Python must accept); ``On*``
callbacks run asynchronously, in order, on the scripting event thread.

Unlike Lua, hooks have no single-state requirement: each HTTP process imports the module
once, so module globals are per process.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.config import Settings

log = logging.getLogger(__name__)


class PythonHooks:
    """The callbacks found in one module."""

    def __init__(self, module: ModuleType) -> None:
        self.module = module

    def has(self, name: str) -> bool:
        return callable(getattr(self.module, name, None))

    def call(self, name: str, *arguments: Any) -> Any:
        function = getattr(self.module, name, None)
        if not callable(function):
            return None
        return function(*arguments)


def load_hooks(settings: Settings) -> PythonHooks | None:
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
    return PythonHooks(module)
