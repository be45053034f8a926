"""``POST /tools/execute-script``: run Lua in the server's main Lua state."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response

from app.api.deps import get_context, read_body
from app.scripting import events as scripting_events
from app.scripting.engine import engine_of

log = logging.getLogger(__name__)

router = APIRouter()

# One media type (app/api/openapi.py says why); application/lua is read the same.
_LUA_BODY = {"requestBody": {"required": True, "description": "A Lua script", "content": {
    "text/plain": {"schema": {"type": "string"}}}}}


@router.post("/tools/execute-script", tags=["System"], operation_id="execute_script",
             response_class=Response, openapi_extra=_LUA_BODY,
             responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                              "description": "What the script printed"},
                        403: {"description": "ExecuteLuaEnabled is false"}})
async def execute_script(request: Request) -> Response:
    """Execute the body as Lua in the server's one (main) Lua state, whose globals persist
    between calls; answer what ``print`` printed. Refused (403, empty body, as Orthanc)
    unless ``ExecuteLuaEnabled`` is true: a script can do anything the server can."""
    context = get_context(request)
    engine = engine_of(context)
    if engine is None or not engine.execute_enabled:
        log.error("The URI /tools/execute-script is disallowed for security, check your "
                  "configuration option `ExecuteLuaEnabled`")
        return Response(status_code=403)
    code = await read_body(request, context)
    output = await scripting_events.run_waiting_for_lua(engine.execute_script, code)
    return Response(output.encode("utf-8"), media_type="text/plain")
