"""User metadata (``/{level}/{id}/metadata/{name}``) with revisions, and patient protection.

A name is writable when the configuration declares it in ``UserMetadata`` or when it is a
number in Orthanc's user range (1024..65535); Orthanc's automatic metadata and Pharos'
internal ``pharos:`` names are refused. With ``CheckRevisions``, updating or deleting an
existing value needs ``If-Match`` with its current revision (the ETag of a GET).
"""

from __future__ import annotations

from app.dicom.levels import Level
from app.errors import BadRequest, ParameterOutOfRange, PharosError, UnknownResource
from app.index import curation_repository
from app.index.db import note_events
from app.index.repository import INTERNAL_METADATA_PREFIX
from app.services.browse import get_row_or_404
from app.services.context import ServerContext
from app.validation import is_digits

_USER_RANGE = range(1024, 65536)


class RevisionMismatch(PharosError):
    orthanc_code, orthanc_message, http_status = 43, "A bad revision number was provided, " \
        "which might indicate conflict between multiple writers", 409


class RevisionRequired(PharosError):
    orthanc_code, orthanc_message, http_status = 43, "A bad revision number was provided, " \
        "which might indicate conflict between multiple writers", 428


def _check_name(context: ServerContext, name: str) -> str:
    if name.startswith(INTERNAL_METADATA_PREFIX):
        raise ParameterOutOfRange(f"Metadata {name!r} is reserved")
    declared = context.settings.user_metadata or {}
    if name in declared:
        return name
    if is_digits(name) and int(name) in _USER_RANGE:
        for declared_name, number in declared.items():
            if int(number) == int(name):
                return declared_name
        return name
    raise ParameterOutOfRange(f"Metadata {name!r} is neither declared in UserMetadata nor a "
                              "number between 1024 and 65535 (automatic metadata are "
                              "read-only)")


def _revision(if_match: str | None) -> int | None:
    if if_match is None:
        return None
    text = if_match.strip().strip('"')
    if not is_digits(text):
        raise BadRequest(f"Bad If-Match header: {if_match!r}")
    return int(text)


def get_revision(context: ServerContext, level: Level, public_id: str, name: str) -> int | None:
    with context.db.read() as conn:
        row = get_row_or_404(conn, level, public_id)
        current = curation_repository.get_metadata(conn, level, row.pk, name)
    return int(current.revision) if current is not None else None


def set_metadata(context: ServerContext, level: Level, public_id: str, name: str,
                 value: str, if_match: str | None) -> int:
    name = _check_name(context, name)
    wanted = _revision(if_match)
    with context.db.write() as conn:
        row = get_row_or_404(conn, level, public_id)
        current = curation_repository.get_metadata(conn, level, row.pk, name)
        if current is not None and context.settings.check_revisions:
            if wanted is None:
                raise RevisionRequired("Updating a metadata needs If-Match when "
                                       "CheckRevisions is true")
            if wanted != int(current.revision):
                raise RevisionMismatch(f"Revision {wanted} is not the current one "
                                       f"({current.revision})")
        revision = curation_repository.set_metadata(conn, level, row.pk, name, value)
        if not revision:
            raise UnknownResource(f"Unknown {level.value.lower()}: {public_id}")
        note_events(conn, [("UpdatedMetadata", level, public_id)])  # OnUpdated* (Lua)
        return revision


def delete_metadata(context: ServerContext, level: Level, public_id: str, name: str,
                    if_match: str | None) -> None:
    name = _check_name(context, name)
    wanted = _revision(if_match)
    with context.db.write() as conn:
        row = get_row_or_404(conn, level, public_id)
        current = curation_repository.get_metadata(conn, level, row.pk, name)
        if current is None:
            raise UnknownResource(f"No metadata {name!r} on this resource")
        if context.settings.check_revisions:
            if wanted is None:
                raise RevisionRequired("Deleting a metadata needs If-Match when "
                                       "CheckRevisions is true")
            if wanted != int(current.revision):
                raise RevisionMismatch(f"Revision {wanted} is not the current one "
                                       f"({current.revision})")
        curation_repository.delete_metadata(conn, level, row.pk, name)
        note_events(conn, [("UpdatedMetadata", level, public_id)])  # OnUpdated* (Lua)


def is_protected(context: ServerContext, public_id: str) -> bool:
    with context.db.read() as conn:
        return bool(get_row_or_404(conn, Level.PATIENT, public_id).is_protected)


def set_protected(context: ServerContext, public_id: str, protected: bool) -> None:
    with context.db.write() as conn:
        row = get_row_or_404(conn, Level.PATIENT, public_id)
        curation_repository.set_protected(conn, row.pk, protected)
