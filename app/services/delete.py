"""Deleting resources: index rows first (one transaction, which also queues their blob
keys durably), then their blobs (see app/context/blob_deletion.py)."""

from __future__ import annotations

from typing import Any

from app.context import ServerContext, blob_deletion
from app.dicom.levels import Level
from app.errors import BadRequest, ParameterOutOfRange, UnknownResource
from app.index import repository
from app.index.db import Connection


def delete_resource(context: ServerContext, level: Level, public_id: str) -> dict[str, Any]:
    """``DELETE /{level}/{id}``: cascade down, remove emptied parents, answer like Orthanc."""
    def delete(conn: Connection) -> tuple[list[str], tuple[Level, str] | None]:
        row = repository.get_row(conn, level, public_id)
        if row is None:
            raise UnknownResource(f"Unknown {level.value.lower()}: {public_id}")
        # PostgreSQL: wait for the stores of this patient in flight, then look again
        # (see app/index/repository.py, "concurrent writers").
        patient = repository.patient_public_id(conn, level, row.pk)
        if patient is not None:
            repository.lock_patient(conn, patient)
            row = repository.get_row(conn, level, public_id)
        if patient is None or row is None:
            raise UnknownResource(f"Unknown {level.value.lower()}: {public_id}")
        keys, ancestor = repository.delete_resource(conn, level, row.pk)
        blob_deletion.schedule(conn, keys)  # with the commit: retried, never lost
        return keys, ancestor

    blob_keys, remaining = context.db.write_retrying(delete)
    blob_deletion.delete_scheduled(context, blob_keys)
    if remaining is None:
        return {"RemainingAncestor": None}
    parent_level, parent_id = remaining
    return {"RemainingAncestor": {"ID": parent_id, "Path": f"/{parent_level.plural}/{parent_id}",
                                  "Type": parent_level.value}}


def parse_bulk_resources(items: list[Any]) -> list[tuple[Level | None, str]]:
    """The ``Resources`` of ``/tools/bulk-delete``: IDs of any level, or (Orthanc 1.13)
    ``{"Level", "ID"}`` objects. Checked whole before anything is deleted (Orthanc
    stops at the first bad item, after deleting the ones before)."""
    parsed: list[tuple[Level | None, str]] = []
    for item in items:
        if isinstance(item, str):
            parsed.append((None, item))
        elif isinstance(item, dict) and isinstance(item.get("ID"), str) and \
                isinstance(item.get("Level"), str):
            try:
                parsed.append((Level.parse(item["Level"]), item["ID"]))
            except ValueError as error:
                raise ParameterOutOfRange(f"Unknown resource level: {item['Level']}") \
                    from error
        else:
            raise BadRequest("Invalid payload")
    return parsed


def bulk_delete(context: ServerContext, resources: list[tuple[Level | None, str]]) -> None:
    """``POST /tools/bulk-delete``: each resource deleted in its own transaction; unknown
    ones (or of another level than the one given) are skipped, as in Orthanc."""
    for level, public_id in resources:
        level = level if level is not None else find_level(context, public_id)
        if level is not None:
            try:
                delete_resource(context, level, public_id)
            except UnknownResource:
                pass  # deleted meanwhile, e.g. as the emptied parent of an earlier ID


def find_level(context: ServerContext, public_id: str) -> Level | None:
    with context.db.read() as conn:
        for level in Level:
            if repository.get_row(conn, level, public_id) is not None:
                return level
    return None
