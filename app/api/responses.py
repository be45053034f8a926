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


_MAX_FILENAME = 255  # characters kept of a client-chosen file name
# RFC 5987 attr-char: what may stay unescaped in filename*=UTF-8''...
_ATTR_CHARS = "!#$&+-.^_`|~"


def content_disposition(filename: str) -> str:
    """``Content-Disposition`` for a download named *filename* (often client-chosen,
    ``?filename=``): Orthanc's ``filename="name"`` (quotes, backslashes and control
    characters dropped, so nothing can close the value or inject a header); a name
    outside printable ASCII gets an ASCII fallback plus RFC 6266 4.3's
    ``filename*=UTF-8''<percent-encoded>``, since header values must be Latin-1."""
    from urllib.parse import quote
    cleaned = "".join(c for c in filename if c.isprintable() and c not in '"\\')
    cleaned = cleaned[:_MAX_FILENAME].strip() or "download"
    if cleaned.isascii():
        return f'filename="{cleaned}"'
    fallback = "".join(c if c.isascii() else "_" for c in cleaned)
    encoded = quote(cleaned, safe=_ATTR_CHARS)
    return f"filename=\"{fallback}\"; filename*=UTF-8''{encoded}"
