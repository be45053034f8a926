"""The functions Orthanc's server adds to its Lua states (``LuaScripting`` and
``LuaContext`` with libcurl): ``GetOrthancConfiguration``, ``RestApiGet/Post/Put/Delete``,
``HttpGet/Post/Put/Delete``, ``SetHttpCredentials``, ``SetHttpTimeout``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.scripting.engine import ScriptingEngine


def server_functions(engine: ScriptingEngine) -> dict[str, Callable[..., Any]]:
    """The server functions of one Lua state (each state gets its own HTTP client
    settings, as each Orthanc LuaContext has its own)."""
    document = engine.context.settings.document
    return {"GetOrthancConfiguration": lambda state, *_: state.to_lua(document)}
