"""``/tools`` itself, ``/tools/dicom-conformance`` and ``/tools/invalidate-tags``.

The conformance statement describes the DIMSE door: it is read from that door's own lists.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import PlainTextResponse

from app.api.responses import JsonResponse, json_answer
from app.dimse.conformance import conformance_statement

router = APIRouter(tags=["System"])


@router.get("/tools", operation_id="list_tools", response_model=list[str])
def list_tools(request: Request) -> JsonResponse:
    """The routes below ``/tools`` (Orthanc answers a GET on an inner node of its REST
    tree with the sorted names of its children)."""
    names = set()
    for route in request.app.routes:
        path = getattr(route, "path", "")
        if path.startswith("/tools/"):
            names.add(path[len("/tools/"):].split("/")[0])
    return json_answer(sorted(n for n in names if n and not n.startswith("{")))


@router.get("/tools/dicom-conformance", operation_id="get_dicom_conformance",
            response_class=PlainTextResponse,
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}})
def dicom_conformance() -> PlainTextResponse:
    """The DICOM conformance statement of the DIMSE server, as text."""
    return PlainTextResponse(conformance_statement())


@router.post("/tools/invalidate-tags", operation_id="invalidate_tags",
             response_class=PlainTextResponse,
             responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}})
def invalidate_tags() -> PlainTextResponse:
    """Orthanc (< 1.9.1) kept a JSON cache of each instance's tags and dropped it here.
    Pharos computes tags from the stored file each time: nothing to invalidate, the route
    answers as Orthanc does (an empty text)."""
    return PlainTextResponse("")
