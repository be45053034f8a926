"""The WebDAV share's tree (Orthanc 1.8.0+ ``/webdav/``): virtual folders over the index,
and the ``uploads`` folder whose files are ingested.

The tree and its names are Orthanc's (``OrthancServer/Sources/OrthancWebDav.cpp``):

* ``by-patients/{PatientID} - {PatientName}/{StudyDate} - {StudyDescription}/
  {Modality} - {SeriesDescription}/{instance ID}.dcm``
* ``by-studies/{PatientID} - {PatientName} - {StudyDescription}/{series as above}/...``
* ``by-dates/{YYYY}/{YYYY-MM}/{study as in by-studies}/{series}/...`` (by StudyDate)
* ``by-uids/{StudyInstanceUID}/{SeriesInstanceUID}/{SOPInstanceUID}.dcm``, plus
  ``study.json`` and ``series.json`` (``GET /studies/{id}``, ``/series/{id}``)
* ``uploads/``: a file written there is stored through the one ingest path (a ZIP: each
  DICOM file in it) and leaves the folder; folders made there (MKCOL) stay until empty.

Names as Orthanc builds them: the template's tags replaced by the main DICOM tags, the
tags missing left blank, non-ASCII and control characters dropped (Windows XP), slashes
removed, outer spaces stripped; names two resources share get `` (1)``, `` (2)``...
in the order of the resources' IDs. Orthanc keeps the suffixes it gave in memory; here
they are computed at each request, so a suffix may move when a same-named resource is
added or deleted, but a path read at one time names one resource.

Where Pharos answers differently, on purpose: a folder that does not exist (an unknown
name, UID, year or month) is a 404, where Orthanc lists it as an empty folder (its file
managers then "see" any path a user types); DELETE of a folder that no longer exists
still succeeds, as in Orthanc, so that recursive deletions by clients end well. Times
are the index's local stamps converted to UTC (Orthanc labels its local time "Z").
``uploads/`` is a folder of the local file system shared by the processes of one host,
where Orthanc keeps it in its process memory; files are ingested during the PUT (Orthanc
queues them), so a client sees the instance in the archive as soon as PUT answers.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson

from app.context import ServerContext
from app.dicom.levels import Level
from app.errors import BadFileFormat, ReadOnlyMode, UnknownResource
from app.index import webdav_repository as index
from app.index.db import Connection
from app.index.records import InstanceRecord, ResourceRecord, StudyRecord
from app.services import ingest
from app.services.delete import delete_resource
from app.services.resources import resource as resource_json

log = logging.getLogger(__name__)

BY_PATIENTS, BY_STUDIES, BY_DATES, BY_UIDS, UPLOADS = \
    "by-patients", "by-studies", "by-dates", "by-uids", "uploads"
STUDY_INFO, SERIES_INFO = "study.json", "series.json"
DICOM_MIME, JSON_MIME, BINARY_MIME = "application/dicom", "application/json", \
    "application/octet-stream"

# Orthanc's templates (OrthancWebDav's constructor), per tree and level.
_SERIES_TEMPLATE = "{{Modality}} - {{SeriesDescription}}"
_PATIENTS_TEMPLATES = {Level.PATIENT: "{{PatientID}} - {{PatientName}}",
                       Level.STUDY: "{{StudyDate}} - {{StudyDescription}}",
                       Level.SERIES: _SERIES_TEMPLATE}
_STUDIES_TEMPLATES = {Level.STUDY: "{{PatientID}} - {{PatientName}} - {{StudyDescription}}",
                      Level.SERIES: _SERIES_TEMPLATE}
_UNMATCHED = re.compile(r"\{\{.*?\}\}")
_YEAR, _MONTH = re.compile(r"^\d{4}$"), re.compile(r"^(\d{4})-(\d{2})$")
# Orthanc removes the empty folders of uploads/ after 30 s without any upload.
EMPTY_FOLDER_AGE = 30.0


@dataclass(frozen=True, slots=True)
class Entry:
    """One item of a folder's listing (a PROPFIND answer's ``D:response``)."""

    name: str
    is_folder: bool
    created: datetime
    modified: datetime
    size: int = 0
    mime: str = BINARY_MIME


@dataclass(frozen=True, slots=True)
class WebDavFile:
    """A file of the share: an instance (streamed from the store) or a small document."""

    name: str
    mime: str
    modified: datetime
    size: int
    instance: InstanceRecord | None = None
    data: bytes | None = None


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _stamp_time(stamp: str | None) -> datetime:
    """An index stamp (local ``YYYYMMDDTHHMMSS``) in UTC; now when there is none."""
    if stamp:
        try:
            return datetime.strptime(stamp[:15], "%Y%m%dT%H%M%S").astimezone(UTC)
        except ValueError:
            pass
    return now()


def _ascii_name(text: str) -> str:
    """Orthanc's ``Toolbox::ConvertToAscii``: ASCII, no control character but newlines."""
    return "".join(c for c in text if c == "\n" or 32 <= ord(c) < 127)


def format_name(template: str, tags: dict[str, Any]) -> str:
    """A folder's name from its template and the resource's main tags (Orthanc's
    ``ResourcesIndex::Register``)."""
    name = template
    for tag, value in tags.items():
        if isinstance(value, str):
            name = name.replace("{{" + tag + "}}", value)
    name = _UNMATCHED.sub("", name)
    name = _ascii_name(name).replace("/", "").replace("\\", "")
    return name.strip(" \t\n\v\f\r")


def unique_names(named: Sequence[tuple[str, str]]) -> dict[str, str]:
    """``{name: resource ID}`` from (resource ID, wanted name): in the order of the IDs,
    a name already given gets `` (1)``, `` (2)``..."""
    answer: dict[str, str] = {}
    for public_id, name in sorted(named):
        candidate, count = name, 0
        while candidate in answer or not candidate:
            count += 1
            candidate = f"{name} ({count})"
        answer[candidate] = public_id
    return answer


# --- the tree over the index --------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Node:
    """A resource folder: its level and record, and the templates of the levels below."""

    level: Level
    record: ResourceRecord
    templates: dict[Level, str]


def _tags(record: ResourceRecord) -> dict[str, Any]:
    value = orjson.loads(record.main_tags)
    return value if isinstance(value, dict) else {}


def _named(conn: Connection, level: Level, records: Sequence[ResourceRecord],
           template: str) -> dict[str, ResourceRecord]:
    """The folders of *records* by name (studies also get their patient's tags)."""
    patients: dict[int, bytes] = {}
    if level == Level.STUDY:
        patients = index.patient_tags(conn, [r.patient_pk for r in records
                                             if isinstance(r, StudyRecord)])
    by_id = {r.public_id: r for r in records}
    named = []
    for record in records:
        tags = _tags(record)
        if isinstance(record, StudyRecord) and record.patient_pk in patients:
            patient = orjson.loads(patients[record.patient_pk])
            tags = {**patient, **tags} if isinstance(patient, dict) else tags
        named.append((record.public_id, format_name(template, tags)))
    return {name: by_id[public_id] for name, public_id in unique_names(named).items()}


def _children_named(conn: Connection, node: _Node) -> dict[str, ResourceRecord]:
    child = node.level.child
    assert child is not None and child != Level.INSTANCE
    return _named(conn, child, index.children(conn, child, node.record.pk),
                  node.templates[child])


def _folder_entries(named: dict[str, ResourceRecord]) -> list[Entry]:
    entries = []
    for name, record in sorted(named.items()):
        stamp = _stamp_time(None if isinstance(record, InstanceRecord) else record.last_update)
        entries.append(Entry(name, True, stamp, stamp))
    return entries


def _instance_entries(instances: Sequence[InstanceRecord],
                      name: Callable[[InstanceRecord], str]) -> list[Entry]:
    entries = []
    for record in instances:
        stamp = _stamp_time(record.received_at)
        entries.append(Entry(name(record) + ".dcm", False, stamp, stamp, record.file_size,
                             DICOM_MIME))
    return entries


def _instance_file(name: str, record: InstanceRecord) -> WebDavFile:
    return WebDavFile(name, DICOM_MIME, _stamp_time(record.received_at), record.file_size,
                      instance=record)


class _Walk:
    """Where a path of ``by-patients``, ``by-studies`` or ``by-dates`` leads."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def roots(self, tree: str, path: Sequence[str]) -> tuple[list[Entry] | None, _Node | None,
                                                             list[str]]:
        """(the listing of a virtual folder above resources, or the resource folder the
        path's head names, the rest of the path); (None, None, _) when nothing is there."""
        conn = self.conn
        if tree == BY_DATES:
            return self._dates(path)
        level = Level.PATIENT if tree == BY_PATIENTS else Level.STUDY
        templates = _PATIENTS_TEMPLATES if tree == BY_PATIENTS else _STUDIES_TEMPLATES
        named = _named(conn, level, index.all_resources(conn, level), templates[level])
        if not path:
            return _folder_entries(named), None, []
        record = named.get(path[0])
        if record is None:
            return None, None, []
        return None, _Node(level, record, templates), list(path[1:])

    def _dates(self, path: Sequence[str]) -> tuple[list[Entry] | None, _Node | None, list[str]]:
        dates = [d for d in index.study_dates(self.conn) if len(d) == 8 and d.isdigit()]
        stamp = now()
        if not path:
            years = sorted({d[:4] for d in dates})
            return [Entry(y, True, stamp, stamp) for y in years], None, []
        year = path[0]
        months = sorted({d[4:6] for d in dates if d.startswith(year)})
        if not _YEAR.match(year) or not months:
            return None, None, []
        if len(path) == 1:
            return [Entry(f"{year}-{m}", True, stamp, stamp) for m in months], None, []
        match = _MONTH.match(path[1])
        if match is None or match.group(1) != year or match.group(2) not in months:
            return None, None, []
        month = year + match.group(2)
        studies = index.studies_between(self.conn, month + "01", month + "31")
        named = _named(self.conn, Level.STUDY, studies, _STUDIES_TEMPLATES[Level.STUDY])
        if len(path) == 2:
            return _folder_entries(named), None, []
        record = named.get(path[2])
        if record is None:
            return None, None, []
        return None, _Node(Level.STUDY, record, _STUDIES_TEMPLATES), list(path[3:])

    def descend(self, node: _Node, path: Sequence[str]) -> tuple[_Node, list[str]] | None:
        """Follow *path* down resource folders until the series (None: a missing name)."""
        rest = list(path)
        while rest and node.level != Level.SERIES:
            record = _children_named(self.conn, node).get(rest[0])
            if record is None:
                return None
            child = node.level.child
            assert child is not None
            node = _Node(child, record, node.templates)
            rest = rest[1:]
        return node, rest

    def listing(self, node: _Node) -> list[Entry]:
        if node.level == Level.SERIES:
            return _instance_entries(index.children(self.conn, Level.INSTANCE, node.record.pk),
                                     lambda r: r.public_id)
        return _folder_entries(_children_named(self.conn, node))

    def instance(self, node: _Node, name: str) -> InstanceRecord | None:
        if node.level != Level.SERIES or not name.endswith(".dcm"):
            return None
        for record in index.children(self.conn, Level.INSTANCE, node.record.pk):
            if record.public_id + ".dcm" == name:
                return record  # type: ignore[no-any-return]
        return None


def _tree_listing(conn: Connection, tree: str, path: Sequence[str]) -> list[Entry] | None:
    walk = _Walk(conn)
    entries, node, rest = walk.roots(tree, path)
    if entries is not None or node is None:
        return entries
    found = walk.descend(node, rest)
    if found is None or found[1]:
        return None
    return walk.listing(found[0])


def _tree_file(conn: Connection, tree: str, path: Sequence[str]) -> WebDavFile | None:
    walk = _Walk(conn)
    _, node, rest = walk.roots(tree, path[:-1])
    if node is None:
        return None
    found = walk.descend(node, rest)
    if found is None or found[1]:
        return None
    record = walk.instance(found[0], path[-1])
    return None if record is None else _instance_file(path[-1], record)


# --- by-uids ------------------------------------------------------------------------------

def _uids_listing(context: ServerContext, conn: Connection,
                  path: Sequence[str]) -> list[Entry] | None:
    if not path:
        return _folder_entries({r.study_uid: r for r in index.all_resources(conn, Level.STUDY)
                                if _valid_name(r.study_uid)})
    if len(path) == 1:
        studies = index.studies_by_uid(conn, path[0])
        if not studies:
            return None
        series = index.series_by_uids(conn, path[0])
        extra = _virtual_entry(context, STUDY_INFO, _info(context, Level.STUDY, studies))
        return extra + _folder_entries({r.series_uid: r for r in series
                                        if _valid_name(r.series_uid)})
    if len(path) == 2:
        series = index.series_by_uids(conn, path[0], path[1])
        if not series:
            return None
        instances = index.instances_by_uids(conn, path[0], path[1])
        extra = _virtual_entry(context, SERIES_INFO, _info(context, Level.SERIES, series))
        return extra + _instance_entries([r for r in instances if _valid_name(r.sop_uid)],
                                         lambda r: r.sop_uid)
    return None


def _valid_name(name: str) -> bool:
    return bool(name) and "/" not in name and "\\" not in name and "\0" not in name


def _info(context: ServerContext, level: Level, records: Sequence[ResourceRecord]) -> bytes | None:
    """``study.json``/``series.json``: the resource's JSON as ``GET /{level}/{id}``
    answers it, indented with DOS newlines (Orthanc's ``toStyledString``); none when
    the UID matches two resources (Orthanc's "two matches => error")."""
    if len(records) != 1:
        return None
    document = resource_json(context, level, records[0].public_id, (), "simplify")  # "human"
    return json.dumps(document, indent=3, ensure_ascii=False).replace("\n", "\r\n") \
        .encode() + b"\r\n"


def _virtual_entry(context: ServerContext, name: str, data: bytes | None) -> list[Entry]:
    if data is None:
        return []
    stamp = now()
    return [Entry(name, False, stamp, stamp, len(data), JSON_MIME)]


def _uids_file(context: ServerContext, conn: Connection,
               path: Sequence[str]) -> WebDavFile | None:
    if len(path) == 2 and path[1] == STUDY_INFO:
        data = _info(context, Level.STUDY, index.studies_by_uid(conn, path[0]))
    elif len(path) == 3 and path[2] == SERIES_INFO:
        data = _info(context, Level.SERIES, index.series_by_uids(conn, path[0], path[1]))
    elif len(path) == 3 and path[2].endswith(".dcm"):
        found = index.instances_by_uids(conn, path[0], path[1], path[2][:-4])
        return _instance_file(path[2], found[0]) if len(found) == 1 else None
    else:
        return None
    return None if data is None else WebDavFile(path[-1], JSON_MIME, now(), len(data),
                                                data=data)


# --- uploads/ -----------------------------------------------------------------------------

def uploads_root(context: ServerContext) -> Path:
    """The folder behind ``uploads/``: one per archive (index) and host, in the system's
    temporary directory, shared by the server's processes."""
    settings = context.settings
    where = settings.database_url or str(settings.resolve_path(
        settings.index_directory or settings.storage_directory).resolve())
    digest = hashlib.sha1(where.encode()).hexdigest()[:16]
    root = Path(tempfile.gettempdir()) / f"pharos-webdav-{digest}"
    root.mkdir(mode=0o700, exist_ok=True)
    return root


def _upload_path(context: ServerContext, path: Sequence[str]) -> Path:
    """The file or folder of ``uploads/`` at *path*; never outside that folder (the door
    refuses ``..``; a symbolic link planted inside would be refused here)."""
    root = uploads_root(context)
    target = root.joinpath(*path)
    if not target.resolve().is_relative_to(root.resolve()):
        raise UnknownResource("outside uploads/")
    return target


def _file_time(seconds: float) -> datetime:
    return datetime.fromtimestamp(int(seconds), UTC)


def _uploads_listing(context: ServerContext, path: Sequence[str]) -> list[Entry] | None:
    _remove_empty_folders(context)
    folder = _upload_path(context, path)
    if not folder.is_dir():
        return None
    entries = []
    for item in sorted(folder.iterdir(), key=lambda p: (p.is_dir(), p.name)):
        try:
            stat = item.stat()
        except FileNotFoundError:
            continue  # removed meanwhile by another request
        if item.is_dir():
            entries.append(Entry(item.name, True, now(), _file_time(stat.st_mtime)))
        else:
            entries.append(Entry(item.name, False, _file_time(stat.st_mtime),
                                 _file_time(stat.st_mtime), stat.st_size))
    return entries


def _remove_empty_folders(context: ServerContext) -> None:
    """Remove the folders of ``uploads/`` left empty for 30 s (Orthanc does so after 30 s
    without upload: a client that just made a folder has time to write into it)."""
    limit = time.time() - EMPTY_FOLDER_AGE
    for folder, _subfolders, _files in os.walk(uploads_root(context), topdown=False):
        path = Path(folder)
        if path == uploads_root(context):
            continue
        try:
            if path.stat().st_mtime < limit:
                path.rmdir()  # only when empty
        except OSError:
            pass


# --- the share ----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class WebDavOptions:
    """``WebDavDeleteAllowed`` and ``WebDavUploadAllowed``; ``ReadOnly`` allows neither."""

    delete_allowed: bool
    upload_allowed: bool

    @classmethod
    def of(cls, context: ServerContext) -> WebDavOptions:
        settings = context.settings
        return cls(settings.web_dav_delete_allowed and not settings.read_only,
                   settings.web_dav_upload_allowed and not settings.read_only)


def root_listing(context: ServerContext) -> list[Entry]:
    stamp = now()
    names = [BY_DATES, BY_PATIENTS, BY_STUDIES, BY_UIDS]
    if WebDavOptions.of(context).upload_allowed:
        names.append(UPLOADS)
    return [Entry(name, True, stamp, stamp) for name in names]


def list_folder(context: ServerContext, path: Sequence[str]) -> list[Entry] | None:
    """The content of the folder at *path*, or None when *path* is no folder."""
    if not path:
        return root_listing(context)
    head, rest = path[0], list(path[1:])
    if head == UPLOADS:
        return _uploads_listing(context, rest) if WebDavOptions.of(context).upload_allowed \
            else None
    if head not in (BY_PATIENTS, BY_STUDIES, BY_DATES, BY_UIDS):
        return None
    with context.db.read() as conn:
        if head == BY_UIDS:
            return _uids_listing(context, conn, rest)
        return _tree_listing(conn, head, rest)


def find_file(context: ServerContext, path: Sequence[str]) -> WebDavFile | None:
    """The file at *path*, or None when there is none."""
    if len(path) < 2:
        return None
    head, rest = path[0], list(path[1:])
    if head == UPLOADS:
        if not WebDavOptions.of(context).upload_allowed:
            return None
        target = _upload_path(context, rest)
        if not target.is_file():
            return None
        data = target.read_bytes()  # only empty files stay in uploads/ (the others are stored)
        return WebDavFile(target.name, BINARY_MIME, _file_time(target.stat().st_mtime),
                          len(data), data=data)
    if head not in (BY_PATIENTS, BY_STUDIES, BY_DATES, BY_UIDS):
        return None
    with context.db.read() as conn:
        if head == BY_UIDS:
            return _uids_file(context, conn, rest)
        return _tree_file(conn, head, rest)


def check_writable(context: ServerContext) -> None:
    if context.settings.read_only:
        raise ReadOnlyMode("Pharos runs with \"ReadOnly\": the WebDAV share is read-only")


def store_file(context: ServerContext, path: Sequence[str], body: IO[bytes], size: int,
               origin: dict[str, str]) -> bool:
    """PUT: a file written into ``uploads/`` (False: refused, 403). An empty file stays
    (clients create one before writing it); any other is stored, a ZIP as its DICOM
    files, then leaves the folder whatever the outcome, as in Orthanc: a file that is
    not DICOM is dropped with a warning in the log, not refused."""
    target = _new_upload_target(context, path)
    if target is None or target.is_dir():
        return False
    try:
        if size == 0:
            target.touch()
            return True
        target.unlink(missing_ok=True)
        os.utime(target.parent)  # the folder was just used: not "empty for 30 s"
    except OSError:  # the folder went away meanwhile (removed, or emptied for 30 s)
        return False
    head = body.read(4)
    body.seek(0)
    try:
        if ingest.is_zip(head):
            results = ingest.ingest_zip_members(context, body, origin)
            log.info("WebDAV upload %s: %d instances from a ZIP archive",
                     "/".join(path), len(results))
        else:
            result = ingest.ingest_instance(context, body.read(), origin)
            log.info("Imported DICOM instance from WebDAV: %s (Orthanc ID: %s, %s)",
                     "/".join(path), result.parsed.ids.instance, result.status)
    except BadFileFormat as error:
        log.warning("Cannot import DICOM instance from WebDAV (maybe not a DICOM file): "
                    "%s (%s)", "/".join(path), error)
    return True


def _new_upload_target(context: ServerContext, path: Sequence[str]) -> Path | None:
    """Where PUT or MKCOL writes *path* (``uploads/...``), in an existing folder; None
    when refused (not in uploads/, uploads off, a bad name, no such folder)."""
    check_writable(context)
    if len(path) < 2 or path[0] != UPLOADS or not WebDavOptions.of(context).upload_allowed \
            or not all(_valid_name(p) for p in path):
        return None
    target = _upload_path(context, path[1:])
    return target if target.parent.is_dir() else None


def create_folder(context: ServerContext, path: Sequence[str]) -> bool:
    """MKCOL: only in ``uploads/``, in an existing folder, under a new name."""
    target = _new_upload_target(context, path)
    if target is None or target.exists():
        return False
    target.mkdir()
    return True


def delete_item(context: ServerContext, path: Sequence[str]) -> bool:
    """DELETE (False: refused, 403). In ``uploads/``: the file or folder. Elsewhere, with
    ``WebDavDeleteAllowed``: the resources the path names (a folder: all below it); a
    path that no longer exists (a folder emptied by a recursive deletion) succeeds, and
    ``study.json``/``series.json`` too, as in Orthanc."""
    if not path:
        return False
    check_writable(context)
    head, rest = path[0], list(path[1:])
    options = WebDavOptions.of(context)
    if head == UPLOADS:
        if not options.upload_allowed or not rest:
            return False
        target = _upload_path(context, rest)
        if target.is_dir():
            shutil.rmtree(target, ignore_errors=True)
        elif target.exists():
            target.unlink(missing_ok=True)
        else:
            return False
        return True
    if head not in (BY_PATIENTS, BY_STUDIES, BY_DATES, BY_UIDS) or not options.delete_allowed:
        return False
    if head == BY_UIDS and not 1 <= len(rest) <= 3:
        return False
    if not rest:
        return False  # a whole tree (Orthanc deletes every resource): refused here
    for level, public_id in _doomed(context, head, rest):
        try:
            delete_resource(context, level, public_id)
        except UnknownResource:
            pass  # deleted meanwhile
    return True


def _doomed(context: ServerContext, head: str, path: list[str]) -> list[tuple[Level, str]]:
    """The resources a DELETE of *path* removes."""
    with context.db.read() as conn:
        if head == BY_UIDS:
            return _uids_doomed(conn, path)
        walk = _Walk(conn)
        entries, node, rest = walk.roots(head, path)
        if node is None:
            if entries is None or head != BY_DATES:
                return []
            # a year or month of by-dates: every study of it
            return [(Level.STUDY, r.public_id) for r in _dates_studies(conn, path)]
        if not rest:
            return [(node.level, node.record.public_id)]
        found = walk.descend(node, rest[:-1] if rest[-1].endswith(".dcm") else rest)
        if found is None:
            return []
        series, left = found
        if left:
            return []
        if rest[-1].endswith(".dcm"):
            record = walk.instance(series, rest[-1])
            return [] if record is None else [(Level.INSTANCE, record.public_id)]
        return [(series.level, series.record.public_id)]


def _dates_studies(conn: Connection, path: list[str]) -> list[StudyRecord]:
    if len(path) == 1:
        return index.studies_between(conn, path[0] + "0101", path[0] + "1231")
    match = _MONTH.match(path[1])
    if match is None:
        return []
    month = match.group(1) + match.group(2)
    return index.studies_between(conn, month + "01", month + "31")


def _uids_doomed(conn: Connection, path: list[str]) -> list[tuple[Level, str]]:
    if len(path) == 1:
        return [(Level.STUDY, r.public_id) for r in index.studies_by_uid(conn, path[0])]
    if path[1] == STUDY_INFO:
        return []
    if len(path) == 2:
        return [(Level.SERIES, r.public_id) for r in index.series_by_uids(conn, *path)]
    if path[2] == SERIES_INFO or not path[2].endswith(".dcm"):
        return []
    return [(Level.INSTANCE, r.public_id)
            for r in index.instances_by_uids(conn, path[0], path[1], path[2][:-4])]
