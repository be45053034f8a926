"""``/webdav/``: Orthanc's WebDAV share (1.8.0+), for file managers that mount it
(davfs2, Windows Explorer, macOS Finder, Cyberduck, rclone).

The HTTP side of Orthanc's ``HttpServer::HandleWebDav`` and ``IWebDavBucket``; the
tree is ``app/services/webdav.py``. PROPFIND answers the same properties whatever the
request body asks (displayname, creationdate, getlastmodified, resourcetype, and for
files getcontentlength and getcontenttype), dates as Orthanc writes them (ISO 8601 with
"Z", which Windows 7+ needs); LOCK, UNLOCK and PROPPATCH are answered without effect, as
Orthanc does, for the clients that will not write without them (Windows, macOS, davfs2).

Where Pharos answers differently, on purpose: ``Depth: infinity`` is refused with 403
and RFC 4918's ``propfind-finite-depth`` condition, a Depth that is not 0 or 1 with 400,
and no Depth at all is read as 1 (as SabreDAV does; Orthanc answers 400 to infinity, 500
to another number or no Depth); PROPFIND of a file answers that file alone (Orthanc adds
its folder first); OPTIONS answers on every path of the share (Orthanc: its root only);
MOVE and COPY answer 403 (the tree is derived from the archive; Orthanc does not know
the methods: 400).

These routes are left out of the OpenAPI document: its generated clients and fuzzers
know HTTP's standard methods only, and WebDAV has its own clients.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from urllib.parse import quote
from uuid import uuid4
from xml.sax.saxutils import escape

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from app.api.blob_responses import blob_answer
from app.api.deps import get_context, rest_origin, spool_body
from app.errors import BadRequest
from app.services import instances as instance_service
from app.services import webdav
from app.services.webdav import Entry, WebDavFile

router = APIRouter(tags=["WebDAV"])

ROOT = "/webdav"
# Every method a WebDAV client sends; MOVE and COPY are refused (see above).
METHODS = ["GET", "HEAD", "PUT", "DELETE", "OPTIONS", "PROPFIND", "PROPPATCH", "MKCOL",
           "LOCK", "UNLOCK", "MOVE", "COPY"]
_ALLOW = "GET, PUT, DELETE, OPTIONS, PROPFIND, HEAD, LOCK, UNLOCK, PROPPATCH, MKCOL"
_XML = "application/xml; charset=UTF-8"
_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'


def _components(request: Request) -> list[str]:
    """The request's path below ``/webdav`` (percent-decoded), as components. ``.``,
    ``..``, backslashes and NUL are refused (400): ``uploads/`` is a real folder, and
    ``uploads/../x`` (or ``%2e%2e``, which the scope's path holds decoded) would reach
    files outside it."""
    parts = [part for part in request.scope["path"][len(ROOT):].split("/") if part]
    if any(part in (".", "..") or "\\" in part or "\0" in part for part in parts):
        raise BadRequest("WebDAV paths cannot hold '.', '..', backslashes or NUL")
    return parts


def _time(value: datetime) -> str:
    # Orthanc's to_iso_extended_string + "Z": "Adding the Z suffix is mandatory on Windows >= 7"
    return value.strftime("%Y-%m-%dT%H:%M:%S") + "Z"


def _href(path: str) -> str:
    """Orthanc's ``Toolbox::UriEncode``: all but A-Z a-z 0-9 - _ . ~ / percent-encoded."""
    return quote(path, safe="/-_.~")


def _response(href: str, entry: Entry) -> str:
    if entry.is_folder:
        kind = "<D:resourcetype><D:collection/></D:resourcetype>"
    else:
        kind = (f"<D:resourcetype/><D:getcontentlength>{entry.size}</D:getcontentlength>"
                f"<D:getcontenttype>{entry.mime}</D:getcontenttype>")
    return (f"<D:response><D:href>{escape(_href(href))}</D:href><D:propstat>"
            "<D:status>HTTP/1.1 200 OK</D:status><D:prop>"
            f"<D:displayname>{escape(entry.name)}</D:displayname>"
            f"<D:creationdate>{_time(entry.created)}</D:creationdate>"
            f"<D:getlastmodified>{_time(entry.modified)}</D:getlastmodified>"
            f"{kind}</D:prop></D:propstat></D:response>\n")


def _multistatus(responses: Sequence[str]) -> Response:
    body = _DECLARATION + '<D:multistatus xmlns:D="DAV:">\n' + "".join(responses) + \
        "</D:multistatus>\n"
    return Response(body.encode(), status_code=207, media_type=_XML)


def _folder_answer(path: list[str], entries: list[Entry] | None, depth: int) -> Response:
    folder = ROOT + "".join("/" + p for p in path)
    now = webdav.now()
    name = path[-1] if path else ROOT.strip("/")
    responses = [_response(folder + "/", Entry(name, True, now, now))]
    if depth == 1:
        responses += [_response(folder + "/" + e.name, e) for e in entries or []]
    return _multistatus(responses)


def _file_entry(found: WebDavFile) -> Entry:
    return Entry(found.name, False, found.modified, found.modified, found.size, found.mime)


def _depth(request: Request) -> int | Response:
    value = request.headers.get("depth")
    if value is None:
        # RFC 4918 9.1 reads no Depth as infinity; clients that omit it (webdav4 asking
        # whether a path exists) get depth 1, as SabreDAV answers them, not an error.
        return 1
    value = value.strip().lower()
    if value == "infinity":
        body = _DECLARATION + '<D:error xmlns:D="DAV:"><D:propfind-finite-depth/></D:error>\n'
        return Response(body.encode(), status_code=403, media_type=_XML)
    if value not in ("0", "1"):
        return Response(f"WebDAV PROPFIND at unsupported depth (can only be 0 or 1): {value}",
                        status_code=400, media_type="text/plain")
    return int(value)


def _status(code: int) -> Response:
    return Response(status_code=code)


async def _propfind(request: Request, path: list[str]) -> Response:
    depth = _depth(request)
    if isinstance(depth, Response):
        return depth
    context = get_context(request)
    entries = await run_in_threadpool(webdav.list_folder, context, path)
    if entries is not None:
        return _folder_answer(path, entries, depth)
    found = await run_in_threadpool(webdav.find_file, context, path)
    if found is None:
        return _status(404)
    return _multistatus([_response(ROOT + "".join("/" + p for p in path), _file_entry(found))])


def _get(request: Request, path: list[str]) -> Response:
    context = get_context(request)
    found = webdav.find_file(context, path)
    if found is None:
        return _status(404)
    # "Last-Modified is necessary on Windows XP. The Z suffix is mandatory on Windows >= 7."
    headers = {"Last-Modified": _time(found.modified)}
    if request.method == "HEAD":
        return Response(status_code=200, media_type=found.mime,
                        headers={**headers, "Content-Length": str(found.size)})
    if found.instance is not None:
        record = found.instance
        return blob_answer(request, instance_service.stored_file(context, record), found.mime,
                           headers, lambda: instance_service.missing_file(record))
    return Response(found.data or b"", media_type=found.mime, headers=headers)


async def _put(request: Request, path: list[str]) -> Response:
    context = get_context(request)
    body, size = await spool_body(request, context)
    origin = {**rest_origin(request), "Origin": "WebDav"}
    try:
        stored = await run_in_threadpool(webdav.store_file, context, path, body, size, origin)
    finally:
        body.close()
    return _status(201 if stored else 403)


def _lock(request: Request) -> Response:
    """A lock that locks nothing (Orthanc's ``AnswerFakedLock``)."""
    token = "opaquelocktoken:0x" + uuid4().hex
    body = (_DECLARATION + '<D:prop xmlns:D="DAV:"><D:lockdiscovery><D:activelock>'
            "<D:locktype><D:write/></D:locktype><D:lockscope><D:exclusive/></D:lockscope>"
            "<D:depth>0</D:depth><D:timeout>Second-3599</D:timeout>"
            f"<D:lockroot><D:href>{escape(_href(request.scope['path']))}</D:href></D:lockroot>"
            f"<D:owner/><D:locktoken><D:href>{token}</D:href></D:locktoken>"
            "</D:activelock></D:lockdiscovery></D:prop>\n")
    # "Lock-Token" is necessary for davfs2
    return Response(body.encode(), status_code=201, media_type="application/xml",
                    headers={"Lock-Token": f"<{token}>"})


def _proppatch(request: Request) -> Response:
    """Properties set by clients (Windows' times) accepted and forgotten, as Orthanc."""
    body = (_DECLARATION + '<D:multistatus xmlns:D="DAV:"><D:response>'
            f"<D:href>{escape(_href(request.scope['path']))}</D:href><D:propstat/>"
            "</D:response></D:multistatus>\n")
    return Response(body.encode(), status_code=207, media_type="application/xml")


async def webdav_request(request: Request) -> Response:
    """Every request under ``/webdav``: dispatched on its method as Orthanc does."""
    method = request.method
    path = _components(request)
    context = get_context(request)
    if method == "OPTIONS":
        return Response(status_code=200, headers={"DAV": "1,2", "Allow": _ALLOW,
                                                  "MS-Author-Via": "DAV"})
    if method == "PROPFIND":
        return await _propfind(request, path)
    if method in ("GET", "HEAD"):
        return await run_in_threadpool(_get, request, path)
    if method == "PUT":
        return await _put(request, path)
    if method == "DELETE":
        deleted = await run_in_threadpool(webdav.delete_item, context, path)
        return _status(204 if deleted else 403)
    if method == "MKCOL":
        created = await run_in_threadpool(webdav.create_folder, context, path)
        return _status(201 if created else 403)
    webdav.check_writable(context)  # LOCK, UNLOCK, PROPPATCH: writes of a client
    if method == "LOCK":
        return _lock(request)
    if method == "UNLOCK":
        return _status(204)
    if method == "PROPPATCH":
        return _proppatch(request)
    return _status(403)  # MOVE, COPY


router.add_api_route(ROOT, webdav_request, methods=METHODS, include_in_schema=False,
                     response_class=Response, name="webdav_root")
router.add_api_route(ROOT + "/{path:path}", webdav_request, methods=METHODS,
                     include_in_schema=False, response_class=Response, name="webdav_path")
