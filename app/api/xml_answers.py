"""JSON answers as XML for clients that ask for it, as Orthanc's REST API does.

Orthanc (``RestApi::Handle``) splits the ``Accept`` header on ``;`` and, when one token is
exactly ``application/xml`` (and no later one is ``application/json``), converts every
JSON answer with ``Toolbox::JsonToXml``: the document element is ``<root>``, array
entries are ``<item>``, object members are elements named after their keys, scalars are
text (``null``, ``true``/``false``), indented by two spaces, in UTF-8.
"""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

XML_MEDIA_TYPE = "application/xml; charset=utf-8"


def wants_xml(scope: Scope) -> bool:
    """Orthanc's rule: the last of the ``application/xml``/``application/json`` tokens
    of the ``Accept`` header (split on ``;``) decides."""
    wanted = False
    for name, value in scope.get("headers", ()):
        if name != b"accept":
            continue
        for token in value.decode("latin-1").split(";"):
            if token == "application/xml":
                wanted = True
            elif token == "application/json":
                wanted = False
    return wanted


def json_to_xml(value: Any) -> str:
    lines = ['<?xml version="1.0" encoding="utf-8"?>']
    _element(lines, "root", value, 0)
    return "\n".join(lines) + "\n"


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return escape(str(value))


def _element(lines: list[str], name: str, value: Any, depth: int) -> None:
    indent = "  " * depth
    if isinstance(value, list):
        children = [("item", item) for item in value]
    elif isinstance(value, dict):
        children = sorted(value.items())
    else:
        lines.append(f"{indent}<{name}>{_scalar(value)}</{name}>")
        return
    if not children:
        lines.append(f"{indent}<{name} />")
        return
    lines.append(f"{indent}<{name}>")
    for child_name, child in children:
        _element(lines, str(child_name), child, depth + 1)
    lines.append(f"{indent}</{name}>")


class XmlAnswers:
    """ASGI middleware: ``application/json`` answers become XML when the client asks."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not wants_xml(scope):
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        body: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                content_type = dict(message.get("headers", ())).get(b"content-type", b"")
                if content_type.split(b";")[0].strip() == b"application/json":
                    start = message
                    return
                await send(message)
            elif start is not None and message["type"] == "http.response.body":
                body.append(message.get("body", b""))
                if not message.get("more_body", False):
                    await _send_xml(send, start, b"".join(body))
            else:
                await send(message)

        await self.app(scope, receive, capture)


async def _send_xml(send: Send, start: Message, payload: bytes) -> None:
    try:
        document = json_to_xml(orjson.loads(payload)).encode("utf-8")
        content_type = XML_MEDIA_TYPE.encode()
    except orjson.JSONDecodeError:
        document, content_type = payload, b"application/json"
    headers = [(k, v) for k, v in start.get("headers", ())
               if k not in (b"content-type", b"content-length")]
    headers += [(b"content-type", content_type), (b"content-length", str(len(document)).encode())]
    await send({**start, "headers": headers})
    await send({"type": "http.response.body", "body": document})
