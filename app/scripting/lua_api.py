"""The functions Orthanc's server adds to its Lua states.

From ``LuaScripting``: ``RestApiGet(uri, [builtin], [headers])``, ``RestApiPost(uri,
body, [builtin], [headers])``, ``RestApiPut`` (same), ``RestApiDelete(uri, [builtin],
[headers])`` and ``GetOrthancConfiguration()``. From ``LuaContext`` built with libcurl:
``HttpGet(url, [headers])``, ``HttpPost(url, [body], [headers])``, ``HttpPut``,
``HttpDelete(url, [headers])``, ``SetHttpCredentials(user, password)``,
``SetHttpTimeout(seconds)``.

Their contracts, as Orthanc implements them: bad arguments log an error and give
``nil``; ``RestApi*`` give the answer body (``true`` for ``RestApiDelete``) when the
route answers 200, else ``nil``; ``Http*`` give the answer body whatever the HTTP status
(``nil`` when the server cannot be reached), ``HttpDelete`` gives ``"SUCCESS"`` on a 2xx
answer. Headers given to ``RestApi*`` are lower-cased; those of ``Http*`` are sent as
written. Each Lua state has its own HTTP client settings (credentials, timeout).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from app.scripting.lua_values import from_lua, lua_text

if TYPE_CHECKING:
    from app.scripting.engine import ScriptingEngine
    from app.scripting.lua_state import LuaState

log = logging.getLogger(__name__)

DEFAULT_HTTP_TIMEOUT = 60.0  # Orthanc's HttpTimeout default, seconds


def server_functions(engine: ScriptingEngine) -> dict[str, Callable[..., Any]]:
    """Global name -> ``f(state, *lua_arguments)``, fresh for each state."""
    document = engine.context.settings.document
    timeout = document.get("HttpTimeout", DEFAULT_HTTP_TIMEOUT)
    client = _HttpClientSettings(timeout=float(timeout) if timeout else DEFAULT_HTTP_TIMEOUT)
    rest = _RestApi(engine)
    return {
        "GetOrthancConfiguration": lambda state, *_: state.to_lua(document),
        "RestApiGet": rest.get, "RestApiPost": rest.post, "RestApiPut": rest.put,
        "RestApiDelete": rest.delete,
        "HttpGet": client.get, "HttpPost": client.post, "HttpPut": client.put,
        "HttpDelete": client.delete, "SetHttpCredentials": client.set_credentials,
        "SetHttpTimeout": client.set_timeout,
    }


def _is_string(value: Any) -> bool:
    """Lua's ``lua_isstring``: strings and numbers."""
    return isinstance(value, bytes | str | int | float) and not isinstance(value, bool)


def _headers(value: Any, lower: bool) -> dict[str, str] | None:
    """A Lua table of headers as a dict (None when absent); None for a non-table."""
    if value is None:
        return {}
    converted = from_lua(value, keep_strings=True)
    if converted == []:
        return {}
    if not isinstance(converted, dict):
        return None
    return {(k.lower() if lower else k): v if isinstance(v, str) else str(v)
            for k, v in converted.items()}


class _RestApi:
    """RestApiGet/Post/Put/Delete: the server's own REST API, no authentication."""

    def __init__(self, engine: ScriptingEngine) -> None:
        self.engine = engine

    def get(self, state: LuaState, *arguments: Any) -> Any:
        if not 1 <= len(arguments) <= 3 or not _is_string(arguments[0]) \
                or (len(arguments) >= 2 and not isinstance(arguments[1], bool)):
            log.error("Lua: Bad parameters to RestApiGet()")
            return None
        return self._call("GET", arguments[0], b"", arguments[1:], "RestApiGet()")

    def post(self, state: LuaState, *arguments: Any) -> Any:
        return self._post_or_put("POST", arguments, "RestApiPost()")

    def put(self, state: LuaState, *arguments: Any) -> Any:
        return self._post_or_put("PUT", arguments, "RestApiPut()")

    def delete(self, state: LuaState, *arguments: Any) -> Any:
        if not 1 <= len(arguments) <= 3 or not _is_string(arguments[0]) \
                or (len(arguments) >= 2 and not isinstance(arguments[1], bool)):
            log.error("Lua: Bad parameters to RestApiDelete()")
            return None
        answer = self._call("DELETE", arguments[0], b"", arguments[1:], "RestApiDelete()")
        return True if answer is not None else None

    def _post_or_put(self, method: str, arguments: tuple[Any, ...], name: str) -> Any:
        if not 2 <= len(arguments) <= 4 or not _is_string(arguments[0]) \
                or not _is_string(arguments[1]) \
                or (len(arguments) >= 3 and not isinstance(arguments[2], bool)):
            log.error("Lua: Bad parameters to %s", name)
            return None
        body = arguments[1] if isinstance(arguments[1], bytes) \
            else lua_text(arguments[1]).encode()
        return self._call(method, arguments[0], body, arguments[2:], name)

    def _call(self, method: str, uri: Any, body: bytes, options: tuple[Any, ...],
              name: str) -> bytes | None:
        uri_text = lua_text(uri)
        builtin = bool(options[0]) if options else False
        headers = _headers(options[1] if len(options) > 1 else None, lower=True) or {}
        try:
            answer = self.engine.http.request(method, uri_text, body, headers,
                                              origin="Lua", builtin=builtin)
        except Exception as error:  # noqa: BLE001 — a failed call is nil for the script
            log.error("Lua: %s", error)
            answer = None
        if answer is not None and answer.status == 200:
            return answer.body
        log.error("Lua: Error in %s for URI: %s%s", name, uri_text,
                  f" (HTTP {answer.status}: {answer.body[:200]!r})" if answer else "")
        return None


@dataclass
class _HttpClientSettings:
    """HttpGet/Post/Put/Delete with the credentials and timeout a script set."""

    timeout: float = DEFAULT_HTTP_TIMEOUT
    credentials: tuple[str, str] | None = None

    def set_credentials(self, state: LuaState, *arguments: Any) -> None:
        if len(arguments) != 2 or not all(_is_string(a) for a in arguments):
            log.error("Lua: Bad parameters to SetHttpCredentials()")
            return
        self.credentials = (lua_text(arguments[0]), lua_text(arguments[1]))

    def set_timeout(self, state: LuaState, *arguments: Any) -> None:
        if len(arguments) != 1 or not isinstance(arguments[0], int | float) \
                or isinstance(arguments[0], bool):
            log.error("Lua: Bad parameters to SetHttpTimeout()")
            return
        # Orthanc: 0 means no timeout (libcurl's default).
        self.timeout = float(arguments[0])

    def get(self, state: LuaState, *arguments: Any) -> Any:
        if not 1 <= len(arguments) <= 2 or not _is_string(arguments[0]):
            log.error("Lua: Bad parameters to HttpGet()")
            return None
        return self._send("GET", arguments[0], None, arguments[1] if len(arguments) > 1
                          else None, "HttpGet()")

    def post(self, state: LuaState, *arguments: Any) -> Any:
        return self._post_or_put("POST", arguments, "HttpPost()")

    def put(self, state: LuaState, *arguments: Any) -> Any:
        return self._post_or_put("PUT", arguments, "HttpPut()")

    def delete(self, state: LuaState, *arguments: Any) -> Any:
        if not 1 <= len(arguments) <= 2 or not _is_string(arguments[0]):
            log.error("Lua: Bad parameters to HttpDelete()")
            return None
        response = self._exchange("DELETE", arguments[0], None,
                                  arguments[1] if len(arguments) > 1 else None, "HttpDelete()")
        if response is None or not response.is_success:
            return None
        return b"SUCCESS"

    def _post_or_put(self, method: str, arguments: tuple[Any, ...], name: str) -> Any:
        if not 1 <= len(arguments) <= 3 or not _is_string(arguments[0]) or \
                (len(arguments) >= 2 and arguments[1] is not None
                 and not _is_string(arguments[1])):
            log.error("Lua: Bad parameters to HttpPost() or HttpPut()")
            return None
        body = arguments[1] if len(arguments) >= 2 else None
        if body is not None and not isinstance(body, bytes):
            body = lua_text(body).encode()
        return self._send(method, arguments[0], body or None,
                          arguments[2] if len(arguments) > 2 else None, name)

    def _send(self, method: str, url: Any, body: bytes | None, headers: Any,
              name: str) -> bytes | None:
        response = self._exchange(method, url, body, headers, name)
        return None if response is None else response.content

    def _exchange(self, method: str, url: Any, body: bytes | None, headers: Any,
                  name: str) -> httpx.Response | None:
        address = lua_text(url)
        given = _headers(headers, lower=False)
        try:
            return httpx.request(method, address, content=body, headers=given or None,
                                 auth=self.credentials,
                                 timeout=self.timeout if self.timeout > 0 else None)
        except (httpx.HTTPError, ValueError) as error:
            log.error("Lua: Error in %s for URL %s: %s", name, address, error)
            return None
