"""User metadata (``/{level}/{id}/metadata/{name}``) with revisions, and patient protection.

A name is writable when the configuration declares it in ``UserMetadata`` or when it is a
number in Orthanc's user range (1024..65535); Orthanc's automatic metadata (and numbers
below 1024) answer 403 as in Orthanc, Pharos' internal ``pharos:`` names and undeclared
names 400.

Revisions are Orthanc's (1.9.2, stored by the SQLite index since 1.12.8): a value's ETag
is ``"{revision}-{md5 of the value}"``, 0 when it is created and one more at each change.
``If-Match`` (quoted or not) names the value a write expects: a revision or MD5 that is not
the current one answers 409. With ``CheckRevisions``, updating or deleting without
``If-Match`` answers 409 too (creating needs none).
"""

from __future__ import annotations

import hashlib

from app.context import ServerContext
from app.dicom.levels import Level
from app.errors import ParameterOutOfRange, PharosError, UnknownResource
from app.index import curation_repository
from app.index.db import note_events
from app.index.repository import INTERNAL_METADATA_PREFIX
from app.services.attachments import RevisionConflict, parse_revision_header
from app.services.browse import METADATA_NUMBERS, get_row_or_404
from app.validation import is_digits

_USER_RANGE = range(1024, 65536)


class SystemMetadata(PharosError):
    """Writing or deleting an automatic metadata (Orthanc answers 403)."""

    orthanc_code, orthanc_message, http_status = 8, "Bad request", 403


def etag(revision: int, value: str) -> str:
    """Orthanc's ETag of a metadata value (``SetStringContentETag``)."""
    return f'"{revision}-{md5_of(value)}"'


def md5_of(value: str) -> str:
    return hashlib.md5(value.encode("utf-8"), usedforsecurity=False).hexdigest()


def _check_name(context: ServerContext, name: str) -> str:
    if name.startswith(INTERNAL_METADATA_PREFIX):
        raise ParameterOutOfRange(f"Metadata {name!r} is reserved")
    declared = context.settings.user_metadata or {}
    if name in declared:
        return name
    if name in METADATA_NUMBERS or (is_digits(name) and int(name) < _USER_RANGE.start):
        raise SystemMetadata(f"Metadata {name!r} is a system metadata: it cannot be changed")
    if is_digits(name) and int(name) in _USER_RANGE:
        for declared_name, number in declared.items():
            if int(number) == int(name):
                return declared_name
        return name
    raise ParameterOutOfRange(f"Metadata {name!r} is neither declared in UserMetadata nor a "
                              "number between 1024 and 65535")


def stored_revision(context: ServerContext, level: Level, public_id: str, name: str) -> int:
    """The revision of a stored metadata; 0 for automatic metadata (never revised)."""
    with context.db.read() as conn:
        row = get_row_or_404(conn, level, public_id)
        current = curation_repository.get_metadata(conn, level, row.pk, name)
    return int(current.revision or 0) if current is not None else 0


def _check_expected(current_value: str, current_revision: int,
                    wanted: tuple[int, str] | None) -> None:
    if wanted is not None and wanted != (current_revision, md5_of(current_value)):
        raise RevisionConflict(f"The metadata is at revision "
                               f"{etag(current_revision, current_value)}, not "
                               f'"{wanted[0]}-{wanted[1]}"')


def set_metadata(context: ServerContext, level: Level, public_id: str, name: str,
                 value: str, if_match: str | None) -> int:
    """Store a user metadata; answer its new revision (Orthanc's ``SetMetadata``)."""
    name = _check_name(context, name)
    wanted = parse_revision_header(if_match, "If-Match")
    with context.db.write() as conn:
        row = get_row_or_404(conn, level, public_id)
        current = curation_repository.get_metadata(conn, level, row.pk, name)
        if current is not None:
            if wanted is None and context.settings.check_revisions:
                raise RevisionConflict('HTTP header "If-Match" is missing, as '
                                       '"CheckRevisions" is "true"')
            _check_expected(current.value, int(current.revision or 0), wanted)
        revision = curation_repository.set_metadata(conn, level, row.pk, name, value)
        if revision is None:
            raise UnknownResource(f"Unknown {level.value.lower()}: {public_id}")
        note_events(conn, [("UpdatedMetadata", level, public_id)])  # OnUpdated* (Lua)
        return revision


def delete_metadata(context: ServerContext, level: Level, public_id: str, name: str,
                    if_match: str | None) -> None:
    """Orthanc's ``DeleteMetadata``: 409 without If-Match under CheckRevisions (checked
    first), 404 when the resource has no such metadata."""
    name = _check_name(context, name)
    wanted = parse_revision_header(if_match, "If-Match")
    if wanted is None and context.settings.check_revisions:
        raise RevisionConflict('HTTP header "If-Match" is missing, as "CheckRevisions" is '
                               '"true"')
    with context.db.write() as conn:
        row = get_row_or_404(conn, level, public_id)
        current = curation_repository.get_metadata(conn, level, row.pk, name)
        if current is None:
            raise UnknownResource(f"No metadata {name!r} on this resource")
        _check_expected(current.value, int(current.revision or 0), wanted)
        curation_repository.delete_metadata(conn, level, row.pk, name)
        note_events(conn, [("UpdatedMetadata", level, public_id)])  # OnUpdated* (Lua)


def is_protected(context: ServerContext, public_id: str) -> bool:
    with context.db.read() as conn:
        return bool(get_row_or_404(conn, Level.PATIENT, public_id).is_protected)


def set_protected(context: ServerContext, public_id: str, protected: bool) -> None:
    with context.db.write() as conn:
        row = get_row_or_404(conn, Level.PATIENT, public_id)
        curation_repository.set_protected(conn, row.pk, protected)
