"""Response classes: orjson-encoded JSON (Orthanc's content type) and plain text."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse


class JsonResponse(JSONResponse):
    """Starlette's ``JSONResponse`` rendered with orjson.

    Being a ``JSONResponse``, FastAPI documents the answers of routes that use it as
    ``application/json`` with their declared ``response_model`` (or ``responses`` model).
    Routes return it already built, so FastAPI never validates nor re-serialises answers.
    """

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


def json_answer(content: Any, status_code: int = 200) -> JsonResponse:
    return JsonResponse(content, status_code=status_code)
