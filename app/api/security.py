"""Orthanc's HTTP security: RemoteAccessAllowed and Basic authentication (RegisteredUsers).

A pure ASGI middleware, so that every route (REST, DICOMweb, /jobs, static files) is
covered, and cheap on the hot path.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from app.config import Settings
from app.scripting.internal_http import internal_origin


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return host == "localhost"


class SecurityMiddleware:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.authenticate = settings.effective_authentication
        self.users = {name.encode(): str(pw).encode()
                      for name, pw in settings.registered_users.items()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or internal_origin(scope):
            # Scripts' own REST calls (Lua RestApiGet...) are not authenticated (Orthanc).
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        if not self.settings.remote_access_allowed and not is_loopback(client[0] if client else None):
            await _refuse(scope, send, 403, "Remote access is not allowed (RemoteAccessAllowed)")
            return
        if self.authenticate and scope.get("method") != "OPTIONS":
            user = self._user(scope)
            if user is None:
                await _refuse(scope, send, 401, "Bad credentials were provided to an HTTP request")
                return
            scope.setdefault("state", {})["username"] = user
        await self.app(scope, receive, send)

    def _user(self, scope: Scope) -> str | None:
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                scheme, _, token = value.partition(b" ")
                if scheme.lower() != b"basic":
                    return None
                try:
                    decoded = base64.b64decode(token.strip(), validate=True)
                except (binascii.Error, ValueError):
                    return None
                user, _, password = decoded.partition(b":")
                expected = self.users.get(user)
                if expected is not None and hmac.compare_digest(expected, password):
                    return user.decode("utf-8", "replace")
                return None
        return None


async def _refuse(scope: Scope, send: Send, status: int, message: str) -> None:
    code = 29 if status == 401 else 8
    phrase = "Unauthorized" if status == 401 else "Forbidden"
    body = orjson.dumps({"HttpError": phrase, "HttpStatus": status, "Message": message,
                         "Method": scope.get("method"), "OrthancError": message,
                         "OrthancStatus": code, "Uri": scope.get("path")})
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b'Basic realm="Orthanc Secure Area"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
