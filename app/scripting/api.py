"""What Python hooks can call: the Python side of Orthanc's Lua functions.

Use it from a hooks module (see :mod:`app.scripting.hooks`)::

    from app.scripting import api

    def OnStoredInstance(instance_id, tags, metadata, origin):
        if origin["RequestOrigin"] != "Plugins":          # not our own uploads
            api.rest_api_post("/modalities/pacs/store", instance_id)
            api.rest_api_delete(f"/instances/{instance_id}")

``rest_api_*`` call the server's own REST API (no authentication, origin ``Plugins``, as
Orthanc's Python plugin) and raise :class:`RestApiError` unless the answer is 200.
``send_to_modality``, ``send_to_peer``, ``modify_instance``, ``delete`` and
``call_system`` queue the same operations as their Lua namesakes (one job submitted when
the hook returns; allowed in ``OnStoredInstance`` and ``OnStable*``).
"""

from __future__ import annotations

from typing import Any

import orjson

from app.scripting.hooks import current_engine, current_job


class RestApiError(RuntimeError):
    """A ``rest_api_*`` call answered another status than 200."""

    def __init__(self, method: str, uri: str, status: int, body: bytes) -> None:
        super().__init__(f"{method} {uri} answered HTTP {status}: {body[:300]!r}")
        self.status = status
        self.body = body


def _request(method: str, uri: str, body: bytes | str | Any = b"",
             headers: dict[str, str] | None = None) -> bytes:
    engine = current_engine.get()
    if engine is None:
        raise RuntimeError("app.scripting.api is only available inside a hook")
    if not isinstance(body, bytes | str):
        body = orjson.dumps(body)
    data = body.encode() if isinstance(body, str) else body
    answer = engine.http.request(method, uri, data, headers, origin="Plugins")
    if answer.status != 200:
        raise RestApiError(method, uri, answer.status, answer.body)
    return answer.body


def rest_api_get(uri: str, headers: dict[str, str] | None = None) -> bytes:
    return _request("GET", uri, b"", headers)


def rest_api_post(uri: str, body: bytes | str | Any = b"",
                  headers: dict[str, str] | None = None) -> bytes:
    """POST *body* (bytes, text, or any JSON value, which is serialized)."""
    return _request("POST", uri, body, headers)


def rest_api_put(uri: str, body: bytes | str | Any = b"",
                 headers: dict[str, str] | None = None) -> bytes:
    return _request("PUT", uri, body, headers)


def rest_api_delete(uri: str, headers: dict[str, str] | None = None) -> None:
    _request("DELETE", uri, b"", headers)


def _queue(operation: dict[str, Any]) -> None:
    job = current_job.get()
    if job is None:
        raise RuntimeError("send_to_modality()... are only available in OnStoredInstance "
                           "and OnStable* hooks")
    job.append(operation)


def send_to_modality(instance_id: str, modality: str, local_aet: str | None = None) -> str:
    _queue({"Operation": "store-scu", "Resource": instance_id, "Modality": modality,
            "LocalAet": local_aet})
    return instance_id


def send_to_peer(instance_id: str, peer: str) -> str:
    _queue({"Operation": "store-peer", "Resource": instance_id, "Peer": peer})
    return instance_id


def delete(instance_id: str) -> None:
    _queue({"Operation": "delete", "Resource": instance_id})


def modify_instance(instance_id: str, replacements: dict[str, str] | None = None,
                    removals: list[str] | None = None,
                    remove_private_tags: bool = False) -> str:
    """Returns ``""``: the next operation then works on the modified copy."""
    if instance_id == "":
        raise ValueError("Cannot modify twice an resource")
    _queue({"Operation": "modify", "Resource": instance_id, "Replace": replacements,
            "Remove": removals, "RemovePrivateTags": remove_private_tags})
    return ""


def call_system(instance_id: str, command: str, arguments: list[str] | None = None) -> str:
    _queue({"Operation": "call-system", "Resource": instance_id, "Command": command,
            "Arguments": arguments or []})
    return instance_id
