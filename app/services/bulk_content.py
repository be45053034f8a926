"""``POST /tools/bulk-content`` (Orthanc 1.9.4): describe many resources in one call.

``{"Resources": [IDs of any level], "Level": ..., "Metadata": true, "Short"/"Full": ...}``.
Without ``Level`` each known ID answers its own resource, in the order given (unknown IDs
are skipped).  With ``Level`` every ID is followed up or down the hierarchy to the
resources of that level, each answered once, sorted by ID (Orthanc collects them in a
``std::set``).  Each resource carries its ``Metadata`` unless ``"Metadata": false``.
"""

from __future__ import annotations

from typing import Any

from app.context import ServerContext
from app.dicom import orthanc_json
from app.dicom.levels import Level
from app.errors import BadRequest
from app.index import repository
from app.services import browse


def _format(request: dict[str, Any]) -> str:
    for key, fmt in (("Simplify", "simplify"), ("Short", "short"), ("Full", "full")):
        value = request.get(key, False)
        if not isinstance(value, bool):
            raise BadRequest(f'"{key}" must be a Boolean value')
        if value:
            return fmt
    return "simplify"


def _level(value: Any) -> Level:
    if not isinstance(value, str):
        raise BadRequest('"Level" must be a string')
    for level in Level:
        if level.value.lower() == value.strip().lower():
            return level
    raise BadRequest(f"Unknown resource level: {value!r}")


def bulk_content(context: ServerContext, request: Any) -> list[dict[str, Any]]:
    if not isinstance(request, dict):
        raise BadRequest("The body must contain a JSON object")
    resources = request.get("Resources")
    if not isinstance(resources, list) or not all(isinstance(r, str) for r in resources):
        raise BadRequest('"Resources" must be a list of Orthanc identifiers')
    fmt = _format(request)
    metadata = request.get("Metadata", True)
    if not isinstance(metadata, bool):
        raise BadRequest('"Metadata" must be a Boolean value')
    target = _level(request["Level"]) if "Level" in request else None
    answer = []
    with context.db.read() as conn:
        found = []
        for public_id in resources:
            located = _locate(conn, public_id)
            if located is not None:
                found.append(located)
        if target is not None:
            found = _at_level(conn, found, target)
        for level, row in found:
            item = browse.resources_json(conn, level, [row])[0]
            if metadata:
                item["Metadata"] = browse.resource_metadata(conn, level, row)
            answer.append(orthanc_json.format_resource_tags(item, fmt))
    return answer


def _locate(conn: Any, public_id: str) -> tuple[Level, Any] | None:
    for level in Level:
        row = repository.get_row(conn, level, public_id)
        if row is not None:
            return level, row
    return None


def _at_level(conn: Any, found: list[tuple[Level, Any]], target: Level) -> list[tuple[Level, Any]]:
    rows: dict[str, Any] = {}
    for level, row in found:
        if level == target:
            rows[row.public_id] = row
        elif level.depth < target.depth:
            pks = repository.descendant_pks(conn, level, row.pk, target)
            for child in repository.get_rows_by_pk(conn, target, pks):
                rows[child.public_id] = child
        else:
            current_level, current = level, row
            while current_level != target:
                current = repository.parent_row(conn, current_level, current)
                current_level = current_level.parent  # type: ignore[assignment]
            rows[current.public_id] = current
    return [(target, rows[key]) for key in sorted(rows)]
