"""User attachments: ``/{level}/{id}/attachments/{name}`` like Orthanc 1.10.1.

A name is a content type: a number, or a name declared in the ``UserContentType``
configuration option (``{"name": 1024}`` or ``{"name": [1024, "mime/type"]}``). Only
user types (1024..65535) can be written or deleted (403 otherwise); the built-in types
(``dicom`` 1, ``dicom-as-json`` 2, ``dicom-until-pixel-data`` 3) are Orthanc's own.

The content lives in the blob store (``Uuid``), as given or zlib-compressed in Orthanc's
format (:mod:`app.blobstore.compression`), chosen by ``StorageCompression`` on upload and
changed by ``compress``/``uncompress``. Its sizes and MD5s live in the ``attachments``
table. The ``dicom`` attachment of an instance is its DICOM file (the ``instances`` row
describes it, see :func:`app.services.instances.stored_file`): readable here like the
others, compressed and uncompressed the same way, never written nor deleted. A new
content is written to a new blob before its row is committed; the previous blob is
removed after the commit, so a failure never leaves a row pointing at a missing or
half-written blob.

Revisions: the ETag is ``"{revision}-{md5}"`` (Orthanc 1.9.2+). ``If-Match`` on PUT and
DELETE must name the current revision and MD5 (else 409); with ``CheckRevisions``,
replacing or deleting an existing attachment requires it. ``If-None-Match`` on GET answers
304 when the content has not changed. Deliberate difference: Orthanc 1.10.1 on SQLite keeps
every attachment at revision 0 (its PUT answers revision 1 it never stores); Pharos stores
the revisions it announces, as Orthanc does on PostgreSQL.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

from app.blobstore.base import new_key
from app.blobstore.compression import COMPRESSION_NONE, COMPRESSION_ZLIB
from app.blobstore.stored import StoredFile, write_content
from app.context import ServerContext, blob_deletion
from app.dicom.levels import Level
from app.errors import (
    CorruptedFile,
    InexistentFile,
    InexistentItem,
    ParameterOutOfRange,
    PharosError,
    UnknownResource,
)
from app.index import attachments_repository as repository
from app.index import repository as index_repository
from app.index.db import Connection, note_events
from app.index.records import AttachmentRecord, InstanceRecord
from app.services.browse import get_row_or_404
from app.services.instances import instance_row
from app.validation import is_digits

USER_RANGE = range(1024, 65536)
SYSTEM_TYPES = {"dicom": 1, "dicom-as-json": 2, "dicom-until-pixel-data": 3}
DICOM = SYSTEM_TYPES["dicom"]
DEFAULT_MIME = "application/octet-stream"
# Orthanc's list of operations on an attachment (the order it answers them in).
OPERATIONS = ["compress", "compressed-data", "compressed-md5", "compressed-size", "data",
              "info", "is-compressed", "md5", "size", "uncompress", "verify-md5", "uuid"]


class SystemAttachment(PharosError):
    """Writing or deleting a built-in attachment (Orthanc answers a bare 403)."""

    orthanc_code, orthanc_message, http_status = 8, "Bad request", 403


class RevisionConflict(PharosError):
    orthanc_code, orthanc_message, http_status = 43, "A bad revision number was provided, " \
        "which might indicate conflict between multiple writers", 409


# What the index knows of one attachment; the doors name it so.
AttachmentInfo = AttachmentRecord


def etag(info: AttachmentInfo) -> str:
    """``"{revision}-{md5}"``, Orthanc's ETag of an attachment (1.9.2+)."""
    return f'"{info.revision}-{info.uncompressed_md5}"'


def info_json(info: AttachmentInfo) -> dict[str, Any]:
    """The answer of ``.../attachments/{name}/info``."""
    return {"CompressedMD5": info.compressed_md5, "CompressedSize": info.compressed_size,
            "ContentType": info.content_type, "UncompressedMD5": info.uncompressed_md5,
            "UncompressedSize": info.uncompressed_size, "Uuid": info.uuid}


def dicom_attachment(row: InstanceRecord) -> AttachmentInfo:
    """The ``dicom`` attachment of an instance. Its revision is always 0 (Orthanc never
    revises it), so its ETag is ``"0-{md5}"``, as in Orthanc 1.9.2+."""
    return AttachmentInfo(DICOM, row.blob_key, row.compression, row.file_size, row.md5,
                          row.stored_size, row.stored_md5, 0)


# --- names and content types ----------------------------------------------------------------

def _declared(context: ServerContext) -> dict[str, tuple[int, str]]:
    """``UserContentType``: name -> (number, MIME type)."""
    answer: dict[str, tuple[int, str]] = {}
    for name, value in (context.settings.user_content_type or {}).items():
        number, mime = (value[0], value[1] if len(value) > 1 else DEFAULT_MIME) \
            if isinstance(value, list | tuple) else (value, DEFAULT_MIME)
        try:
            answer[str(name)] = (int(number), str(mime))
        except (TypeError, ValueError):
            continue  # a malformed entry declares nothing
    return answer


def content_type_of(context: ServerContext, name: str) -> int:
    """The content type a URI names: a number, a built-in name or a declared name."""
    if is_digits(name):
        return int(name)
    if name in SYSTEM_TYPES:
        return SYSTEM_TYPES[name]
    declared = _declared(context)
    if name in declared:
        return declared[name][0]
    raise InexistentItem(f"Unknown attachment type {name!r}: neither a number nor a name "
                         "declared in UserContentType")


def name_of(context: ServerContext, content_type: int) -> str:
    """Orthanc's name for a content type: the declared name, else the number."""
    for name, (number, _mime) in _declared(context).items():
        if number == content_type:
            return name
    for name, number in SYSTEM_TYPES.items():
        if number == content_type:
            return name
    return str(content_type)


def mime_of(context: ServerContext, content_type: int) -> str:
    """Orthanc's GetFileContentMime: the declared MIME type of a user type, else
    application/dicom for the DICOM file, else application/octet-stream."""
    if content_type == DICOM:
        return "application/dicom"
    for number, mime in _declared(context).values():
        if number == content_type:
            return mime
    return DEFAULT_MIME


def is_user_type(content_type: int) -> bool:
    return content_type in USER_RANGE


def _writable(context: ServerContext, name: str) -> int:
    content_type = content_type_of(context, name)
    if not is_user_type(content_type):
        raise SystemAttachment(f"Attachment {name!r} is not a user attachment (content types "
                               "1024..65535): it cannot be written or deleted")
    return content_type


# --- revisions --------------------------------------------------------------------------------

def parse_revision_header(value: str | None, header: str) -> tuple[int, str] | None:
    """``"{revision}-{md5}"`` from If-Match / If-None-Match, or None when absent."""
    if value is None:
        return None
    text = value.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1]
    revision, dash, md5 = text.partition("-")
    if dash and is_digits(revision):
        return int(revision), md5
    raise ParameterOutOfRange(f'The "{header}" HTTP header should contain the ETag (revision '
                              f"followed by MD5 hash), but found: {value}")


def _check_revision(current: AttachmentInfo | None, wanted: tuple[int, str] | None,
                    check_revisions: bool, action: str) -> None:
    if wanted is None:
        if current is not None and check_revisions:
            raise RevisionConflict(f'HTTP header "If-Match" is missing, as "CheckRevisions" is '
                                   f'"true": cannot {action} an existing attachment')
        return
    if current is not None and (current.revision, current.uncompressed_md5) != wanted:
        raise RevisionConflict(f"The attachment is at revision {etag(current)}, not "
                               f'"{wanted[0]}-{wanted[1]}"')


# --- reading ----------------------------------------------------------------------------------

def _resource_pk(conn: Connection, level: Level, public_id: str) -> int:
    return int(get_row_or_404(conn, level, public_id).pk)


def is_instance_file(level: Level, content_type: int) -> bool:
    """The built-in DICOM file of an instance (the other built-in types are never stored:
    Pharos keeps no ``dicom-as-json`` and no ``dicom-until-pixel-data``)."""
    return level == Level.INSTANCE and content_type == DICOM


def get_info(context: ServerContext, level: Level, public_id: str, name: str) -> AttachmentInfo:
    content_type = content_type_of(context, name)
    if is_instance_file(level, content_type):
        return dicom_attachment(instance_row(context, public_id))
    with context.db.read() as conn:
        row = repository.get(conn, level, _resource_pk(conn, level, public_id), content_type)
    if row is None:
        raise UnknownResource(f"No attachment {name!r} on this {level.value.lower()}")
    return row


def content_file(context: ServerContext, info: AttachmentInfo) -> StoredFile:
    """The content of the attachment (``data``): uncompressed when stored compressed."""
    return StoredFile(context.blobs, info.uuid, info.uncompressed_size, info.compression)


def stored_blob(context: ServerContext, info: AttachmentInfo) -> StoredFile:
    """The blob as stored (``compressed-data``): compressed when the attachment is."""
    return StoredFile(context.blobs, info.uuid, info.compressed_size)


def missing_content(info: AttachmentInfo) -> Exception:
    return InexistentFile(f"The content of attachment {info.uuid} is missing from the storage")


def read_content(context: ServerContext, info: AttachmentInfo) -> bytes:
    try:
        return content_file(context, info).read()
    except FileNotFoundError as error:
        raise missing_content(info) from error


def _md5_of(chunks: Iterator[bytes]) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()


def verify_md5(context: ServerContext, level: Level, public_id: str, name: str) -> None:
    """Re-read the blob (streamed): its MD5, then the MD5 of its uncompressed content;
    500 if corrupted."""
    info = get_info(context, level, public_id, name)
    try:
        actual = _md5_of(stored_blob(context, info).chunks())
        if actual == info.compressed_md5 and info.compression != COMPRESSION_NONE:
            actual = _md5_of(content_file(context, info).chunks())
            expected = info.uncompressed_md5
        else:
            expected = info.compressed_md5
    except FileNotFoundError as error:
        raise missing_content(info) from error
    if actual != expected:
        raise CorruptedFile(f"Attachment {name!r} does not match its MD5")


# --- writing ----------------------------------------------------------------------------------




def _write(context: ServerContext, level: Level, public_id: str, content_type: int,
           content: bytes, compression: int, if_match: tuple[int, str] | None, *,
           check_revisions: bool, expect: AttachmentInfo | None = None) -> AttachmentInfo:
    """Store *content* in a new blob, then point the row at it (create or replace)."""
    key = new_key()
    written = write_content(context.blobs, key, content, compression)
    values: dict[str, Any] = {"uuid": key, "compression": compression,
                              "uncompressed_size": written.size,
              "uncompressed_md5": written.md5, "compressed_size": written.stored_size,
              "compressed_md5": written.stored_md5}
    old_key: str | None = None
    try:
        with context.db.write() as conn:
            resource_pk = _resource_pk(conn, level, public_id)
            row = repository.get(conn, level, resource_pk, content_type)
            current = row
            if expect is not None and (current is None or current.uuid != expect.uuid):
                raise RevisionConflict("The attachment changed while it was being rewritten")
            _check_revision(current, if_match, check_revisions, "replace")
            note_events(conn, [("UpdatedAttachment", level, public_id)])  # OnUpdated* (Lua)
            if current is None:
                repository.insert_attachment(conn, level, resource_pk, content_type, values)
                revision = 0
            else:
                if not repository.replace_attachment(conn, level, resource_pk, content_type,
                                                     current.revision, values):
                    raise RevisionConflict("The attachment changed meanwhile")
                revision, old_key = current.revision + 1, current.uuid
                blob_deletion.schedule(conn, [old_key])
    except repository.AttachmentExists as error:  # a concurrent writer created it first
        blob_deletion.discard(context, [key])
        raise RevisionConflict("The attachment was created meanwhile by another writer") \
            from error
    except BaseException:
        blob_deletion.discard(context, [key])
        raise
    if old_key is not None:
        blob_deletion.delete_scheduled(context, [old_key])
    return AttachmentInfo(content_type, key, compression, values["uncompressed_size"],
                          values["uncompressed_md5"], values["compressed_size"],
                          values["compressed_md5"], revision)


def put_attachment(context: ServerContext, level: Level, public_id: str, name: str,
                   content: bytes, if_match: str | None) -> AttachmentInfo:
    """``PUT .../attachments/{name}``; answers the new revision (ETag)."""
    content_type = _writable(context, name)
    wanted = parse_revision_header(if_match, "If-Match")
    compression = COMPRESSION_ZLIB if context.settings.storage_compression else COMPRESSION_NONE
    return _write(context, level, public_id, content_type, content, compression, wanted,
                  check_revisions=context.settings.check_revisions)


def delete_attachment(context: ServerContext, level: Level, public_id: str, name: str,
                      if_match: str | None) -> None:
    content_type = _writable(context, name)
    wanted = parse_revision_header(if_match, "If-Match")
    with context.db.write() as conn:
        resource_pk = _resource_pk(conn, level, public_id)
        row = repository.get(conn, level, resource_pk, content_type)
        if row is None:
            raise UnknownResource(f"No attachment {name!r} on this {level.value.lower()}")
        current = row
        _check_revision(current, wanted, context.settings.check_revisions, "delete")
        if not repository.delete_attachment(conn, level, resource_pk, content_type,
                                            current.revision):
            raise RevisionConflict("The attachment changed meanwhile")
        blob_deletion.schedule(conn, [current.uuid])
        note_events(conn, [("UpdatedAttachment", level, public_id)])  # OnUpdated* (Lua)
    blob_deletion.delete_scheduled(context, [current.uuid])


def set_compression(context: ServerContext, level: Level, public_id: str, name: str,
                    compressed: bool) -> None:
    """``POST .../compress`` and ``.../uncompress``: rewrite the blob when it changes."""
    info = get_info(context, level, public_id, name)
    compression = COMPRESSION_ZLIB if compressed else COMPRESSION_NONE
    if info.compression == compression:
        return
    if is_instance_file(level, info.content_type):
        _set_instance_compression(context, public_id, info, compression)
        return
    _write(context, level, public_id, info.content_type, read_content(context, info),
           compression, None, check_revisions=False, expect=info)


def _set_instance_compression(context: ServerContext, public_id: str, info: AttachmentInfo,
                              compression: int) -> None:
    """Store an instance's DICOM file anew, *compression* changed (streamed through a new
    blob, checked against its MD5), then point the row at it and free the old blob."""
    key = new_key()
    source = content_file(context, info)
    try:
        written = write_content(context.blobs, key, source.chunks(), compression,
                                size=info.uncompressed_size)
    except FileNotFoundError as error:  # a failed put leaves nothing behind
        raise missing_content(info) from error
    try:
        if written.md5 != info.uncompressed_md5 or written.size != info.uncompressed_size:
            raise CorruptedFile(f"The file of instance {public_id} does not match its MD5")
        compressed = compression != COMPRESSION_NONE
        with context.db.write() as conn:
            if not index_repository.move_instance_blob(
                    conn, public_id, info.uuid, key, compression=compression,
                    compressed_size=written.stored_size if compressed else None,
                    compressed_md5=written.stored_md5 if compressed else None):
                raise RevisionConflict("The instance changed while its file was rewritten")
            blob_deletion.schedule(conn, [info.uuid])
            note_events(conn, [("UpdatedAttachment", Level.INSTANCE, public_id)])
    except BaseException:
        blob_deletion.discard(context, [key])
        raise
    blob_deletion.delete_scheduled(context, [info.uuid])
