"""The reads every level shares (``/{level}``, ``/{level}/{id}``, its relatives, statistics,
metadata, attachment names), each in one read transaction of its own.

The doors call these with the server context; the transaction (one snapshot: a resource
deleted meanwhile is wholly in the answer or wholly absent) is opened here, never by a
door. They compose :mod:`app.services.browse` (the JSON of resources) and
:mod:`app.services.find` (``RequestedTags``, tag formats).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from app.context import ServerContext
from app.dicom.levels import Level
from app.index import attachments_repository, repository
from app.services import browse
from app.services.attachments import DICOM, name_of
from app.services.browse import Content, get_row_or_404
from app.services.find import expanded


def list_resources(context: ServerContext, level: Level, *, since: int, limit: int | None,
                   content: Content | None, requested: Sequence[str],
                   fmt: str) -> list[str] | list[dict[str, Any]]:
    """``GET /{level}``: the IDs in index order, or (with *content*) the resources' JSON;
    paged by *since*/*limit* (a limit of 0 answers nothing, as Orthanc 1.12.4; None: no
    limit)."""
    if limit == 0:
        return []
    with context.db.read() as conn:
        ids = repository.list_public_ids(conn, level, since=since, limit=limit or 0)
        if content is None:
            return [r.public_id for r in ids]
        rows = repository.get_rows_by_pk(conn, level, [r.pk for r in ids])
        return expanded(conn, level, rows, requested, fmt, content,
                        context.settings.user_metadata)


def resource(context: ServerContext, level: Level, public_id: str, requested: Sequence[str],
             fmt: str) -> dict[str, Any]:
    """``GET /{level}/{id}`` (404 when unknown)."""
    with context.db.read() as conn:
        row = get_row_or_404(conn, level, public_id)
        return expanded(conn, level, [row], requested, fmt)[0]


def relatives(context: ServerContext, level: Level, public_id: str, target: Level, *,
              expand: bool, requested: Sequence[str],
              fmt: str) -> dict[str, Any] | list[str] | list[dict[str, Any]]:
    """``/{level}/{id}/{target}``: the one ancestor at *target*, or the descendants (their
    JSON, or their IDs without *expand*)."""
    with context.db.read() as conn:
        row = get_row_or_404(conn, level, public_id)
        if target.depth < level.depth:
            current_level, current = level, row
            while current_level != target:
                current = repository.parent_row(conn, current_level, current)
                current_level = current_level.parent  # type: ignore[assignment]
            return expanded(conn, target, [current], requested, fmt)[0]
        rows = repository.get_rows_by_pk(
            conn, target, repository.descendant_pks(conn, level, row.pk, target))
        if not expand:
            return [r.public_id for r in rows]
        return expanded(conn, target, rows, requested, fmt)


def statistics(context: ServerContext, level: Level, public_id: str) -> dict[str, Any]:
    """``/{level}/{id}/statistics``."""
    with context.db.read() as conn:
        return browse.resource_statistics(conn, level, public_id)


def metadata(context: ServerContext, level: Level, public_id: str) -> dict[str, str]:
    """``/{level}/{id}/metadata?expand``: automatic and stored metadata, in Orthanc's order
    (404 when the resource is unknown)."""
    with context.db.read() as conn:
        row = get_row_or_404(conn, level, public_id)
        return browse.resource_metadata(conn, level, row, context.settings.user_metadata)


def tags_and_metadata(context: ServerContext, level: Level,
                      public_id: str) -> tuple[dict[str, Any], dict[str, str]] | None:
    """The main DICOM tags (a study's without the patient's) and the metadata of a
    resource, read together; None when it is gone (the scripts' OnStable* callbacks)."""
    with context.db.read() as conn:
        row = repository.get_row(conn, level, public_id)
        if row is None:
            return None
        return orjson.loads(row.main_tags), browse.resource_metadata(conn, level, row)


def attachments(context: ServerContext, level: Level, public_id: str) -> list[tuple[str, int]]:
    """``/{level}/{id}/attachments``: (name, content type) of every attachment, the DICOM
    file of an instance first, then the user attachments in numeric order."""
    with context.db.read() as conn:
        row = get_row_or_404(conn, level, public_id)
        user = attachments_repository.content_types(conn, level, row.pk)
    return ([("dicom", DICOM)] if level == Level.INSTANCE else []) + \
        [(name_of(context, content_type), content_type) for content_type in user]


def require(context: ServerContext, level: Level, public_id: str) -> None:
    """Nothing when the resource exists; UnknownResource (404) otherwise."""
    with context.db.read() as conn:
        get_row_or_404(conn, level, public_id)
