"""What every send to a remote shares (modalities, Orthanc peers, C-MOVE): the resources
asked for and their instances, their files, the exports log (``LogExportedResources``),
and the options of a store request (``Synchronous``, ``Priority``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from app.context import ServerContext
from app.dicom.identifiers import is_orthanc_id
from app.dicom.levels import Level
from app.errors import (
    BadFileFormat,
    UnknownResource,
)
from app.index import network_repository as network_index
from app.index import repository
from app.index.records import InstanceRecord
from app.services.instances import stored_file
from app.timeutil import now_stamp

DESCRIPTION = "REST API"  # the Description of the jobs the REST API submits


# --- resources to send -----------------------------------------------------------------

def resolve_resources(context: ServerContext, ids: list[Any]) -> list[tuple[Level, str]]:
    """The level of each Orthanc ID (any level), refusing malformed and unknown ones."""
    resolved: list[tuple[Level, str]] = []
    with context.db.read() as conn:
        for public_id in ids:
            if not isinstance(public_id, str) or not is_orthanc_id(public_id):
                raise BadFileFormat(f"This string is not a valid Orthanc identifier: {public_id}")
            for level in Level:
                if repository.get_row(conn, level, public_id) is not None:
                    resolved.append((level, public_id))
                    break
            else:
                raise UnknownResource(f"Unknown resource: {public_id}")
    return resolved


def instances_of(context: ServerContext, resources: list[tuple[Level, str]]) -> list[str]:
    """The instance IDs below the resources, each once, in hierarchy order."""
    seen: set[str] = set()
    answer: list[str] = []
    with context.db.read() as conn:
        for level, public_id in resources:
            row = repository.get_row(conn, level, public_id)
            if row is None:
                continue
            for instance in repository.instances_below(conn, level, row.pk):
                if instance.public_id not in seen:
                    seen.add(instance.public_id)
                    answer.append(instance.public_id)
    return answer


def log_exports(context: ServerContext, resources: list[tuple[Level, str]], remote: str) -> None:
    """``LogExportedResources``: one ``/exports`` entry per resource asked for (at
    submission, as Orthanc does)."""
    if not context.settings.log_exported_resources:
        return
    date = now_stamp()
    with context.db.write() as conn:
        for level, public_id in resources:
            network_index.log_export(conn, level, public_id, remote, date)


def instance_files(context: ServerContext, instance_ids: list[str],
                    missing: list[str]) -> Iterator[tuple[str, bytes]]:
    for public_id in instance_ids:
        with context.db.read() as conn:
            row: InstanceRecord | None = repository.get_row(conn, Level.INSTANCE, public_id)
        if row is None:
            missing.append(public_id)
            continue
        try:
            data = stored_file(context, row).read()
        except FileNotFoundError:
            missing.append(public_id)
            continue
        yield public_id, data


def parse_store_body(body: Any) -> tuple[list[Any], dict[str, Any]]:
    """Orthanc's three forms: one ID as text, a JSON list of IDs, or an object with
    ``Resources`` and options."""
    if isinstance(body, str):
        return [body.strip()], {}
    if isinstance(body, list):
        return body, {}
    if isinstance(body, dict):
        resources = body.get("Resources")
        if isinstance(resources, str):
            resources = [resources]
        if not isinstance(resources, list):
            raise BadFileFormat("The body must contain a list of Resources")
        return resources, body
    raise BadFileFormat("The body must be an Orthanc ID, a list of IDs or a JSON object")


def synchronous(options: dict[str, Any]) -> bool:
    """Orthanc's ``Synchronous`` (default true) and ``Asynchronous`` (its negation)."""
    if "Asynchronous" in options:
        return not bool(options["Asynchronous"])
    return bool(options.get("Synchronous", True))


def priority(options: dict[str, Any]) -> int:
    try:
        return int(options.get("Priority", 0))
    except (TypeError, ValueError) as error:
        raise BadFileFormat("Priority must be an integer") from error
