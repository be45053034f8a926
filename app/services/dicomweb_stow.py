"""STOW-RS (PS3.18 10.5): store the parts of a spooled multipart body, answer the
Store Instances Response Module (PS3.18 Table 10.5.3-1 / 10.5.3-3).

Every instance goes through ``ingest_instance`` (the one ingest path). Each part is
read back from the spool one at a time, so memory stays flat whatever the body size.
Instances that do not belong to the study of the request URL are refused (PS3.18
10.5.1: "the Study Instance UID ... shall match"), as Orthanc's plugin does, with
Failure Reason 0x0110 (Processing failure).
"""

from __future__ import annotations

import io
import logging
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import orjson
import pydicom
from pydicom.errors import InvalidDicomError

from app.context import ServerContext
from app.dicom.dicomweb_json import sequence, url_element
from app.dicom.instance_from_json import BulkPart, build_instance
from app.dicom.limits import check_deflated_dataset
from app.dicom.parse import ParsedInstance
from app.errors import BadFileFormat, MissingRequiredTag, PharosError
from app.protocols.multipart import Part, SpooledBody, parse_media_type
from app.services.dicomweb import instance_url, study_url
from app.services.ingest import ingest_instance
from app.validation import check_json_depth

log = logging.getLogger(__name__)

# PS3.18 Table 10.5.3-2 / PS3.4 Annex C status codes used as Failure Reasons.
PROCESSING_FAILURE = 0x0110
OUT_OF_RESOURCES = 0xA700
CANNOT_UNDERSTAND = 0xC000
SOP_CLASS_NOT_SUPPORTED = 0x0122

DICOM_PART_TYPES = {"application/dicom", ""}
JSON_PART_TYPES = {"application/dicom+json", "application/json"}


@dataclass
class Failure:
    """One part not stored. *malformed*: the part is not a usable DICOM instance (not
    DICOM, or without its identifiers), which makes a request that stored nothing a 400;
    other failures (another study than the URL's, storage refused) make it a 409."""

    reason: int
    message: str
    sop_class: str | None = None
    sop_instance: str | None = None
    malformed: bool = False


@dataclass
class StoreReport:
    """What happened to each instance of one STOW-RS request."""

    root: str
    stored: list[tuple[str, str, str, str]] = field(default_factory=list)  # class, sop, study, series
    failures: list[Failure] = field(default_factory=list)

    @property
    def status(self) -> int:
        """PS3.18 Table 10.5.3-1: 200 all stored, 202 some stored; none stored: 400 when a
        part is not a usable DICOM instance (as Orthanc's plugin), else 409 (a conflict,
        such as an instance of another study than the URL's)."""
        if not self.failures:
            return 200
        if self.stored:
            return 202
        return 400 if any(f.malformed for f in self.failures) else 409

    def warning(self) -> str | None:
        """The Warning header of a partial or failed store (PS3.18 8.? / RFC 7234 5.5)."""
        if not self.failures:
            return None
        first = self.failures[0]
        text = (f"{len(self.failures)} instance(s) not stored; first FailureReason "
                f"0x{first.reason:04X}: {first.message}")
        text = text.replace('"', "'").replace("\r", " ").replace("\n", " ")[:500]
        return f'299 Pharos "{text}"'

    def response(self, study: str | None) -> dict[str, Any]:
        """The Store Instances Response Module (PS3.18 Table 10.5.3-3), shaped as Orthanc's
        plugin (1.19) shapes it: the Retrieve URL of the study once something is stored,
        the Failed SOP Sequence only when a listed instance failed, the Referenced SOP
        Sequence always (empty when nothing was stored)."""
        answer: dict[str, Any] = {"00080005": {"vr": "CS", "Value": ["ISO_IR 192"]}}
        studies = {item[2] for item in self.stored}
        if self.stored and study is not None:
            answer["00081190"] = url_element(study_url(self.root, study))
        elif len(studies) == 1:
            answer["00081190"] = url_element(study_url(self.root, next(iter(studies))))
        # Items need both UIDs (Type 1): a part that is not DICOM cannot be listed.
        listed = [f for f in self.failures if f.sop_class and f.sop_instance]
        if listed:
            answer["00081198"] = sequence(self._failed_item(f) for f in listed)
        answer["00081199"] = sequence(
            {"00081150": {"vr": "UI", "Value": [sop_class]},
             "00081155": {"vr": "UI", "Value": [sop]},
             "00081190": url_element(instance_url(self.root, study_uid, series, sop))}
            for sop_class, sop, study_uid, series in self.stored)
        return answer

    @staticmethod
    def _failed_item(failure: Failure) -> dict[str, Any]:
        return {"00081150": {"vr": "UI", "Value": [failure.sop_class]},
                "00081155": {"vr": "UI", "Value": [failure.sop_instance]},
                "00081197": {"vr": "US", "Value": [failure.reason]}}


def _meta_uids(data: bytes) -> tuple[str | None, str | None]:
    """(SOP Class, SOP Instance) UIDs from the file meta information alone (never
    inflated): a deflated part refused unread is still identified in the answer."""
    from pydicom.filereader import _read_file_meta_info, read_preamble
    try:
        stream = io.BytesIO(data)
        read_preamble(stream, False)
        meta = _read_file_meta_info(stream)
    except Exception:  # noqa: BLE001 — no readable meta information
        return None, None
    sop_class = meta.get("MediaStorageSOPClassUID")
    sop = meta.get("MediaStorageSOPInstanceUID")
    return (str(sop_class).strip("\x00 ") if sop_class else None,
            str(sop).strip("\x00 ") if sop else None)


Uids = tuple[str | None, str | None, str | None, str | None]


def _peek_uids(data: bytes) -> Uids:
    """(SOP Class, SOP Instance, Study, Series) UIDs read cheaply, for checks and failure
    items."""
    try:
        ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True, force=True,
                             specific_tags=["SOPClassUID", "SOPInstanceUID",
                                            "StudyInstanceUID", "SeriesInstanceUID"])
    except (InvalidDicomError, Exception):  # noqa: BLE001 — anything unreadable
        return None, None, None, None

    def text(keyword: str) -> str | None:
        try:
            value = ds.get(keyword)
        except Exception:  # noqa: BLE001
            return None
        return str(value).strip("\x00 ") if value is not None else None
    return (text("SOPClassUID"), text("SOPInstanceUID"), text("StudyInstanceUID"),
            text("SeriesInstanceUID"))


Stored = tuple[str, str, str, str]  # SOP Class, SOP Instance, Study, Series UIDs

# Parts are ingested by a few threads: the blob fsync of one overlaps the parsing of
# the next (measured: 5.0 ms per instance sequentially, 2.8 ms with threads, here).
_INGESTERS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="pharos-stow")
_IN_FLIGHT = 8  # parts held in memory at once per request, at most...
_IN_FLIGHT_BYTES = 32 << 20  # ... and at most this many bytes of them (one part always)


class _Refused(PharosError):
    """A part that is a DICOM file but not one STOW-RS stores here (see ``_store_one``)."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


def _stow_rules(study: str | None) -> Callable[[ParsedInstance], None]:
    """What STOW-RS asks of a part beyond what every door asks, checked on the one parse
    of the ingest path (``ingest_instance(check=...)``)."""
    def check(parsed: ParsedInstance) -> None:
        if not parsed.sop_class_uid:
            # PS3.18 10.5.1 stores SOP Instances: without these it is not one (Orthanc's
            # plugin refuses it too, "Cannot understand" when the SOP UIDs are known).
            raise _Refused(Failure(CANNOT_UNDERSTAND, _NOT_AN_INSTANCE, None,
                                   parsed.sop_uid or None, malformed=True))
        if study is not None and parsed.study_uid != study:
            raise _Refused(Failure(
                PROCESSING_FAILURE, f"the instance belongs to study {parsed.study_uid}, "
                f"not to the study {study} of the request", parsed.sop_class_uid,
                parsed.sop_uid))
    return check


_NOT_AN_INSTANCE = ("not a DICOM instance with SOPClassUID, SOPInstanceUID, "
                    "StudyInstanceUID and SeriesInstanceUID")


def _store_one(context: ServerContext, data: bytes, study: str | None,
               origin: dict[str, str]) -> Stored | Failure:
    try:
        check_deflated_dataset(data)  # before any parse: a bomb is refused unread
    except PharosError as error:
        return Failure(CANNOT_UNDERSTAND, str(error), *_meta_uids(data), malformed=True)
    try:
        # Parsed once, by the ingest path; races with concurrent writers are retried there.
        result = ingest_instance(context, data, origin, check=_stow_rules(study))
    except _Refused as refused:
        return refused.failure
    except PharosError as error:
        # The part's UIDs, read again only for the answer's Failed SOP Sequence.
        sop_class, sop, study_uid, series_uid = _peek_uids(data)
        if isinstance(error, BadFileFormat | MissingRequiredTag):
            if not (sop_class and sop and study_uid and series_uid):
                return Failure(CANNOT_UNDERSTAND, _NOT_AN_INSTANCE, sop_class, sop,
                               malformed=True)
            return Failure(CANNOT_UNDERSTAND, str(error), sop_class, sop, malformed=True)
        reason = OUT_OF_RESOURCES if error.dimse_status == 0xA700 else PROCESSING_FAILURE
        return Failure(reason, str(error), sop_class, sop)
    parsed = result.parsed
    return (parsed.sop_class_uid, parsed.sop_uid, parsed.study_uid, parsed.series_uid)


def _record(report: StoreReport, outcome: Stored | Failure) -> None:
    if isinstance(outcome, Failure):
        report.failures.append(outcome)
    else:
        report.stored.append(outcome)


def store_dicom_parts(context: ServerContext, body: SpooledBody, *, study: str | None,
                      root: str, origin: dict[str, str]) -> StoreReport:
    """``multipart/related; type="application/dicom"``: one DICOM file per part."""
    report = StoreReport(root)
    pending: deque[Future[Stored | Failure]] = deque()
    sizes: dict[Future[Stored | Failure], int] = {}
    held = 0  # bytes of the parts in flight
    try:
        for part in body.parts:
            media_type, _ = parse_media_type(part.content_type)
            if media_type not in DICOM_PART_TYPES:
                pending.append(_done(Failure(
                    CANNOT_UNDERSTAND, f"a part of type {media_type!r} in an "
                    "application/dicom request", malformed=True)))
                continue
            while pending and (len(pending) >= _IN_FLIGHT or
                               held + part.size > _IN_FLIGHT_BYTES):
                done = pending.popleft()
                held -= sizes.pop(done, 0)
                _record(report, done.result())
            future = _INGESTERS.submit(_store_one, context, body.read(part), study, origin)
            sizes[future] = part.size
            held += part.size
            pending.append(future)
        while pending:
            _record(report, pending.popleft().result())
    finally:
        wait(pending)  # an unexpected error: let the parts in flight finish first
    return report


def _done(outcome: Stored | Failure) -> Future[Stored | Failure]:
    future: Future[Stored | Failure] = Future()
    future.set_result(outcome)
    return future


def _normalize_location(location: str) -> str:
    text = location.strip().strip("<>")
    if text.lower().startswith("cid:"):
        text = text[4:]
    return text


def _bulk_resolver(body: SpooledBody, parts: list[Part]) -> Callable[[str], BulkPart | None]:
    by_location: dict[str, Part] = {}
    by_name: dict[str, Part] = {}
    for part in parts:
        location = part.content_location
        if location:
            key = _normalize_location(location)
            by_location[key] = part
            by_name.setdefault(key.rstrip("/").rsplit("/", 1)[-1], part)

    def resolve(uri: str) -> BulkPart | None:
        key = _normalize_location(uri)
        part = by_location.get(key) or by_name.get(key.rstrip("/").rsplit("/", 1)[-1])
        if part is None:
            return None
        media_type, params = parse_media_type(part.content_type)
        return BulkPart(media_type, body.read(part), params.get("transfer-syntax"))
    return resolve


def store_json_parts(context: ServerContext, body: SpooledBody, *, study: str | None,
                     root: str, origin: dict[str, str]) -> StoreReport:
    """``multipart/related; type="application/dicom+json"``: metadata parts holding DICOM
    JSON datasets, bulk-data parts referenced by BulkDataURI = their Content-Location."""
    report = StoreReport(root)
    metadata_parts: list[Part] = []
    bulk_parts: list[Part] = []
    for part in body.parts:
        media_type, _ = parse_media_type(part.content_type)
        (metadata_parts if media_type in JSON_PART_TYPES else bulk_parts).append(part)
    if not metadata_parts:
        report.failures.append(Failure(CANNOT_UNDERSTAND, "no application/dicom+json part",
                                       malformed=True))
        return report
    resolve = _bulk_resolver(body, bulk_parts)
    for part in metadata_parts:
        try:
            documents = check_json_depth(orjson.loads(body.read(part)))
        except orjson.JSONDecodeError as error:
            report.failures.append(Failure(CANNOT_UNDERSTAND, f"invalid JSON: {error}",
                                           malformed=True))
            continue
        except PharosError as error:
            report.failures.append(Failure(CANNOT_UNDERSTAND, str(error)))
            continue
        for document in documents if isinstance(documents, list) else [documents]:
            try:
                data = build_instance(document, resolve, study_uid=study)
            except PharosError as error:
                sop_class, sop = _json_uids(document)
                report.failures.append(Failure(CANNOT_UNDERSTAND, str(error), sop_class, sop,
                                               malformed=True))
                continue
            _record(report, _store_one(context, data, study, origin))
    return report


def _json_uids(document: Any) -> tuple[str | None, str | None]:
    def first(key: str) -> str | None:
        try:
            return str(document[key]["Value"][0])
        except (KeyError, IndexError, TypeError):
            return None
    return first("00080016"), first("00080018")
