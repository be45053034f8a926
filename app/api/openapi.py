"""The OpenAPI document: FastAPI's, post-processed for code generators.

``create_app`` installs ``customize_openapi(app)`` as ``app.openapi``; ``pharos openapi``
(``make openapi``) writes its output to ``openapi/openapi.json`` and a test fails when that
file drifts from the app.

JSON answers need nothing here: ``JsonResponse`` is a ``JSONResponse``, so FastAPI
documents each route's ``response_model`` (or ``responses`` model) itself, and query
arguments are declared by the routes (``app/api/params.py``). What the post-processing
still does, and why:

* Errors: Pharos answers every error with Orthanc's error JSON (``OrthancError``) and
  validation errors with 400, never FastAPI's 422; every operation documents 400, 401, 403,
  404 (when it has path parameters) and a ``default`` for the rest (409, 413, 5xx).
* Raw bodies: Orthanc reads raw bodies whatever their Content-Type; each raw body is
  declared with one media type (the one its content is: application/dicom, text/plain...).
  Code generators map such types to bytes (openapi/openapi-python-client.yaml), and
  openapi-python-client 0.29 generates code that cannot be imported for a body with
  several media types.
* Authentication (HTTP Basic, optional), servers and tag descriptions.

The output is deterministic: ``pharos openapi`` sorts keys; lists are built sorted here.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI
from pydantic import TypeAdapter

from app.api.schemas import OrthancError

Document = dict[str, Any]

_SCHEMAS = "#/components/schemas/"
_RESPONSES = "#/components/responses/"
_JSON = "application/json"
_BINARY = {"schema": {"type": "string", "format": "binary"}}
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

# Tag descriptions; tags not listed here are still declared (sorted after these).
TAGS: dict[str, str] = {
    "System": "Server information, statistics and tools (find, lookup, labels, archives)",
    "Patients": "Patients: browse, delete, metadata, labels, attachments, archives",
    "Studies": "Studies: browse, delete, modify, anonymize, metadata, archives",
    "Series": "Series: browse, delete, modify, anonymize, metadata, archives",
    "Instances": "Instances: upload (POST /instances), tags, files, images, content",
    "Tracking changes": "The change log and the export log",
    "Networking": "DICOM modalities (DIMSE SCU), query/retrieve, Orthanc peers",
    "Jobs": "Asynchronous jobs: state, progress, cancel, pause, resume, resubmit",
    "DICOMweb": "QIDO-RS, WADO-RS and STOW-RS under /dicom-web",
}

SERVERS = [{"url": "http://localhost:8042",
            "description": "A local Pharos on Orthanc's default HTTP port (HttpPort)"}]

# Shared error answers, referenced by every operation.
ERROR_RESPONSES: dict[str, tuple[str, str]] = {
    "400": ("BadRequest", "Bad request: invalid parameter, body or DICOM file"),
    "401": ("Unauthorized", "Authentication is enabled and the credentials are missing or wrong"),
    "403": ("Forbidden", "Remote access is not allowed (RemoteAccessAllowed)"),
    "404": ("NotFound", "Unknown resource (no such identifier, name or item)"),
    "default": ("Error", "Any other error (conflict, body too large, internal error...)"),
}

SECURITY_SCHEMES = {"basicAuth": {
    "type": "http", "scheme": "basic",
    "description": "RegisteredUsers, when AuthenticationEnabled is true",
}}


def customize_openapi(app: FastAPI) -> Callable[[], Document]:
    """Return the ``openapi`` method to install on ``app`` (the document is built once)."""

    def openapi() -> Document:
        if app.openapi_schema is None:
            generated = FastAPI.openapi(app)  # FastAPI's document, cached on the app
            app.openapi_schema = build_document(copy.deepcopy(generated))
        return app.openapi_schema

    return openapi


def build_document(document: Document) -> Document:
    """Post-process FastAPI's document (see the module docstring)."""
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    _add_model(schemas, OrthancError)
    components["responses"] = {
        name: {"description": description,
               "content": {_JSON: {"schema": {"$ref": _SCHEMAS + "OrthancError"}}}}
        for name, description in ERROR_RESPONSES.values()}
    components["securitySchemes"] = SECURITY_SCHEMES
    document["security"] = [{}, {"basicAuth": []}]  # optional: only when enabled
    document["servers"] = SERVERS

    for operation in _operations(document):
        _add_error_responses(operation)

    document["tags"] = _tags(document)
    _prune_unreferenced(document)
    return document


def _operations(document: Document) -> Iterator[Document]:
    for item in document["paths"].values():
        for key, operation in item.items():
            if key in _METHODS:
                yield operation


def _add_model(schemas: Document, model: Any) -> Document:
    """The JSON schema of a type, its named models added to ``components.schemas``."""
    schema = TypeAdapter(model).json_schema(ref_template=_SCHEMAS + "{model}",
                                            mode="serialization")
    for name, definition in schema.pop("$defs", {}).items():
        schemas.setdefault(name, definition)
    if "title" in schema and "properties" in schema:  # a model: reference it by name
        name = schema["title"]
        schemas.setdefault(name, schema)
        return {"$ref": _SCHEMAS + name}
    return schema


def _add_error_responses(operation: Document) -> None:
    responses = operation.setdefault("responses", {})
    responses.pop("422", None)  # validation errors are Orthanc errors with status 400
    has_path_parameters = any(p.get("in") == "path" for p in operation.get("parameters", []))
    for status, (name, _) in ERROR_RESPONSES.items():
        if status == "404" and not has_path_parameters:
            continue
        declared = responses.get(status)
        if declared is None or _is_plain_error(declared):
            responses[status] = {"$ref": _RESPONSES + name}


def _is_plain_error(response: Document) -> bool:
    """A route's ``{status: {"model": OrthancError}}`` without its own description."""
    schema = response.get("content", {}).get(_JSON, {}).get("schema", {})
    return schema.get("$ref") == _SCHEMAS + "OrthancError" and \
        response.get("description") in (None, "Additional Response")


def _tags(document: Document) -> list[Document]:
    used = {tag for item in document["paths"].values() for operation in item.values()
            for tag in operation.get("tags", [])}
    known = [name for name in TAGS if name in used]
    others = sorted(used - set(TAGS))
    return [{"name": name, "description": TAGS[name]} for name in known] + \
        [{"name": name} for name in others]


def _prune_unreferenced(document: Document) -> None:
    """Drop component schemas nothing references (FastAPI's 422 models, for one)."""
    schemas = document["components"]["schemas"]
    while True:
        text = repr({key: value for key, value in document.items() if key != "components"}) + \
            repr({key: value for key, value in document["components"].items()
                  if key != "schemas"}) + repr(schemas)
        unused = [name for name in schemas if repr(_SCHEMAS + name) not in text]
        if not unused:
            return
        for name in unused:
            del schemas[name]
