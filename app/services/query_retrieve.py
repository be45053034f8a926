"""Query/Retrieve as an SCU, as Orthanc does it: ``/modalities/{name}/query|move|get`` and
``/queries/{id}/...`` (Orthanc's ``QueryRetrieveHandler``, ``DicomControlUserConnection``,
``DicomMoveScuJob`` and ``DicomGetScuJob``).

Identifiers (:func:`encode_identifier`). Keys are tag names or ``gggg,eeee`` with string
values. They are encoded in the server's default encoding (``DefaultEncoding``, named by
SpecificCharacterSet) exactly as given, as DCMTK puts strings: a value that cannot be
encoded, or that a binary VR cannot hold, is a bad request (400) before any association.

C-FIND (:func:`query`). With ``Normalize`` (default true), keys that do not belong to the
query level are dropped (the main tags of the level and the levels above, the level's
``NumberOf*Related*`` counters, SpecificCharacterSet); then the unique keys of the level
and the levels above are added when missing, empty (``*`` for a ``GE`` modality);
``GenericNoWildcardInDates`` / ``GenericNoUniversalWildcard`` modalities get ``*`` turned
into empty values (dates only / everywhere). Answers are kept with their
QueryRetrieveLevel, without sequences (Orthanc's ``ExtractDicomSummary``).

C-MOVE and C-GET (:func:`move`, :func:`get`, :func:`retrieve`) run as jobs (synchronous
by default), one command per resource; the job's ``Query`` shows each resource's keys
(for answers of a query: QueryRetrieveLevel, PatientID, StudyInstanceUID,
SeriesInstanceUID, SOPInstanceUID and AccessionNumber when present) in the ``Short``
format unless ``Full`` or ``Simplify`` is asked. A C-MOVE identifier carries the unique
keys of the level (and of the levels above below the study), as Orthanc sends it.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.tag import Tag

from app.config import Modality, retrieve_method
from app.context import ServerContext
from app.dicom import orthanc_json, storage_classes
from app.dicom.encodings import ENCODINGS, Encoding
from app.dicom.levels import Level
from app.dicom.tags import MAIN_TAG_KEYWORDS, parse_tag, tag_name
from app.errors import (
    BadFileFormat,
    BadRequest,
    NetworkProtocol,
    NoPresentationContext,
    ParameterOutOfRange,
    UnknownResource,
)
from app.index import network_repository as network_index
from app.index.records import QueryRecord
from app.jobs import queue
from app.jobs.kinds import CancelCheck, JobInterrupted, ProgressCallback
from app.protocols import dimse_scu
from app.services import modalities, outgoing, remotes, runtime
from app.services.ingest import ingest_instance
from app.validation import is_digits

QUERY_RETRIEVE_SIZE = 100  # Orthanc's QueryRetrieveSize default
MOVE_JOB = "DicomMoveScu"
GET_JOB = "DicomGetScu"
DESCRIPTION = outgoing.DESCRIPTION

QUERY_RETRIEVE_LEVEL = 0x00080052
SPECIFIC_CHARACTER_SET = 0x00080005
_LEVEL_NAMES = {Level.PATIENT: "PATIENT", Level.STUDY: "STUDY", Level.SERIES: "SERIES",
                Level.INSTANCE: "IMAGE"}
_ORDER = (Level.PATIENT, Level.STUDY, Level.SERIES, Level.INSTANCE)
# Keys C-FIND adds at each level when missing (Orthanc's DicomControlUserConnection::Find).
_FIND_KEYS: dict[Level, tuple[str, ...]] = {
    Level.PATIENT: ("PatientID",),
    Level.STUDY: ("AccessionNumber", "StudyInstanceUID"),
    Level.SERIES: ("SeriesInstanceUID",),
    Level.INSTANCE: ("SOPInstanceUID",),
}
# Keys a C-MOVE sends per level (Orthanc's DicomControlUserConnection::Move).
_MOVE_KEYS: dict[Level, tuple[str, ...]] = {
    Level.PATIENT: ("PatientID",),
    Level.STUDY: ("StudyInstanceUID",),
    Level.SERIES: ("StudyInstanceUID", "SeriesInstanceUID"),
    Level.INSTANCE: ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"),
}
# A C-GET resource may name the SOP classes it holds: they choose the storage contexts the
# C-GET proposes (Orthanc 1.12.6); they are not sent in the identifier.
SOP_CLASSES_IN_STUDY = "SOPClassesInStudy"
# PS3.8 9.3.2.2: 128 presentation contexts, one of them for the Q/R Get model.
MAX_GET_STORAGE_CONTEXTS = 127
# Keys of a C-FIND answer a retrieve keeps (Orthanc's DicomMoveScuJob::AddFindAnswer).
_ANSWER_KEYS = ("QueryRetrieveLevel", "PatientID", "StudyInstanceUID", "SeriesInstanceUID",
                "SOPInstanceUID", "AccessionNumber")
_COUNTERS: dict[Level, tuple[str, ...]] = {
    Level.PATIENT: ("NumberOfPatientRelatedStudies", "NumberOfPatientRelatedSeries",
                    "NumberOfPatientRelatedInstances"),
    Level.STUDY: ("ModalitiesInStudy", "NumberOfStudyRelatedSeries",
                  "NumberOfStudyRelatedInstances", "SOPClassesInStudy"),
    Level.SERIES: ("NumberOfSeriesRelatedInstances",),
    Level.INSTANCE: (),
}
UTF8 = ENCODINGS["UTF8"]
_TEXT_VRS = {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM",
             "UC", "UI", "UR", "UT"}


def _tag(keyword: str) -> int:
    return int(parse_tag(keyword))


def _levels_down_to(level: Level) -> tuple[Level, ...]:
    return _ORDER[:_ORDER.index(level) + 1]


def allowed_tags(level: Level) -> set[int]:
    """What a normalized C-FIND at *level* may ask (Orthanc's NormalizeFindQuery)."""
    allowed = {_tag(k) for current in _levels_down_to(level)
               for k in MAIN_TAG_KEYWORDS[current]}
    allowed.update(_tag(k) for k in _COUNTERS[level])
    allowed.add(SPECIFIC_CHARACTER_SET)
    return allowed


def parse_level(value: Any) -> Level:
    if not isinstance(value, str):
        raise BadFileFormat("The JSON body must contain field Level")
    try:
        return Level.parse(value)
    except ValueError as error:
        raise BadFileFormat(f"Unknown resource level: {value}") from error


def parse_keys(keys: Any, what: str = "Query") -> dict[int, str]:
    """``{tag: value}`` of a REST body (names or ``gggg,eeee``; strings, or numbers)."""
    if not isinstance(keys, dict):
        raise BadFileFormat(f"The field {what} must contain a JSON object")
    parsed: dict[int, str] = {}
    for key, value in keys.items():
        try:
            tag = int(parse_tag(str(key)))
        except ValueError as error:
            raise BadFileFormat(f"Unknown DICOM tag: {key}") from error
        if value is None:
            value = ""
        elif isinstance(value, bool) or not isinstance(value, str | int | float):
            raise BadFileFormat(f"The value of {key} in {what} must be a string")
        parsed[tag] = str(value)
    return parsed


# --- identifiers -----------------------------------------------------------------------

def encode_identifier(level: Level, keys: dict[int, str], encoding: Encoding) -> Dataset:
    """The identifier on the wire: QueryRetrieveLevel, SpecificCharacterSet of the
    *encoding* (the default encoding), every key as given; BadRequest when a value cannot
    be encoded."""
    ds = Dataset()
    if encoding.term:
        ds.SpecificCharacterSet = encoding.term
    for tag in sorted(keys):
        if tag in (QUERY_RETRIEVE_LEVEL, SPECIFIC_CHARACTER_SET) or Tag(tag).element == 0:
            continue
        _put(ds, tag, keys[tag], encoding.codec, encoding.name)
    ds.QueryRetrieveLevel = _LEVEL_NAMES[level]
    return ds


def _vr(tag: int) -> str:
    try:
        return dictionary_VR(tag)
    except KeyError:
        return "LO"  # private or unknown: a string, as Orthanc's queries carry them


def _put(ds: Dataset, tag: int, value: str, codec: str, encoding_name: str) -> None:
    vr = _vr(tag)
    name = tag_name(tag)
    if vr == "SQ":
        if value:
            raise BadRequest(f"The sequence {name} can only be a return key (empty)")
        ds.add_new(tag, "SQ", Sequence())
        return
    if vr in _TEXT_VRS or " or " in vr:
        try:
            data = value.encode("ascii" if codec == "ascii" else codec)
        except UnicodeEncodeError as error:
            raise BadRequest(f"The value of {name} cannot be encoded in the default "
                             f"encoding ({encoding_name}): {value!r}") from error
        vr = "LO" if " or " in vr else vr
        if len(data) % 2:
            data += b"\0" if vr == "UI" else b" "
        ds[tag] = RawDataElement(Tag(tag), vr, len(data), data, 0, True, True)
        return
    try:
        element = DataElement(tag, vr, _binary_value(vr, value))
    except (ValueError, TypeError, OverflowError) as error:
        raise BadRequest(f"The value of {name} is not valid for its VR {vr}: {value!r}") \
            from error
    ds.add(element)


def _binary_value(vr: str, value: str) -> Any:
    if not value:
        return None
    parts = value.split("\\")
    if vr in ("US", "SS", "UL", "SL", "UV", "SV"):
        numbers: list[Any] = [int(p) for p in parts]
    elif vr in ("FL", "FD"):
        numbers = [float(p) for p in parts]
    elif vr == "AT":
        numbers = [int(parse_tag(p)) for p in parts]
    else:  # OB, OW, UN...: bytes as given
        return value.encode("latin_1")
    return numbers[0] if len(numbers) == 1 else numbers


def find_keys(level: Level, keys: dict[int, str], *, normalize: bool,
              modality: Modality) -> dict[int, str]:
    """The keys a C-FIND sends (normalization, level keys, manufacturer fixes)."""
    if normalize:
        allowed = allowed_tags(level)
        keys = {tag: value for tag, value in keys.items() if tag in allowed}
    else:
        keys = dict(keys)
    universal = "*" if modality.manufacturer == "GE" else ""
    for current in _levels_down_to(level):
        for keyword in _FIND_KEYS[current]:
            keys.setdefault(_tag(keyword), universal)
    if modality.manufacturer in ("GenericNoWildcardInDates", "GenericNoUniversalWildcard"):
        everywhere = modality.manufacturer == "GenericNoUniversalWildcard"
        for tag, value in keys.items():
            if value == "*" and (everywhere or _vr(tag) == "DA"):
                keys[tag] = ""
    return keys


def move_keys(level: Level, keys: dict[str, str]) -> dict[str, str]:
    """The keys a C-MOVE/C-GET sends for one resource: the level's unique keys when the
    resource has them (as Orthanc), else the resource's keys as given."""
    wanted = _MOVE_KEYS[level]
    if all(keys.get(k) for k in wanted):
        return {k: keys[k] for k in wanted}
    return {k: v for k, v in keys.items() if k not in ("QueryRetrieveLevel", SOP_CLASSES_IN_STUDY)}


# --- C-FIND --------------------------------------------------------------------------

def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadFileFormat("Must provide a JSON object")
    return body


def _timeout(options: dict[str, Any]) -> int | None:
    value = options.get("Timeout")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadFileFormat("Timeout must be a positive integer")
    return value


def query(context: ServerContext, name: str, body: Any) -> dict[str, str]:
    """``POST /modalities/{name}/query``: ``{Level, Query, Normalize, LocalAet, Timeout}``."""
    options = _object(body)
    level = parse_level(options.get("Level"))
    normalize = options.get("Normalize", True)
    if not isinstance(normalize, bool):
        raise BadFileFormat("The field Normalize must contain a Boolean")
    if "LocalAet" in options and not isinstance(options["LocalAet"], str):
        raise BadFileFormat("The field LocalAet must contain a string")
    keys = parse_keys(options.get("Query", {}))
    modality = remotes.get_modality(context, name)
    settings = {"Normalize": normalize,
                "LocalAet": modalities.local_aet(context, modality, options),
                "Timeout": _timeout(options),
                "Remote": remotes.modality_json(modality) | {"LocalAet": modality.local_aet}}
    return _run_query(context, name, modality, level, keys, settings)


def find_answers(context: ServerContext, modality: Modality, level: Level,
                 keys: dict[int, str], settings: dict[str, Any]) -> list[dict[str, Any]]:
    """One C-FIND; the answers in Orthanc's full JSON form."""
    encoding = runtime.current(context).default_encoding
    identifier = encode_identifier(level, find_keys(level, keys, normalize=settings["Normalize"],
                                                    modality=modality), encoding)
    identifier = context.hooks.outgoing_find_identifier(  # OutgoingFindRequestFilter
        context, identifier, modality.aet)
    timeout = settings["Timeout"]
    found = dimse_scu.find(
        modality, level.value, identifier, local_aet=settings["LocalAet"],
        timeout=timeout if timeout is not None else modalities.scu_timeout(context, modality, {}))
    return [_answer_json(level, answer) for answer in found]


def _run_query(context: ServerContext, name: str, modality: Modality, level: Level,
               keys: dict[int, str], settings: dict[str, Any]) -> dict[str, str]:
    answers = find_answers(context, modality, level, keys, settings)
    encoding = runtime.current(context).default_encoding
    asked = orthanc_json.dataset_to_json(encode_identifier(level, keys, encoding))
    asked.pop("0008,0052", None)
    asked.pop("0008,0005", None)
    query_id = str(uuid.uuid4())
    with context.db.write() as conn:
        network_index.insert_query(
            conn, query_id=query_id, modality=name, level=level.value,
            query=orjson.dumps(asked), answers=orjson.dumps(answers), created=time.time(),
            options=orjson.dumps(settings))
        network_index.forget_old_queries(conn, QUERY_RETRIEVE_SIZE)
    return {"ID": query_id, "Path": f"/queries/{query_id}"}


def _answer_json(level: Level, answer: Dataset) -> dict[str, Any]:
    """An answer as Orthanc keeps it: leaf elements only, QueryRetrieveLevel present."""
    full = orthanc_json.dataset_to_json(answer)
    kept = {key: value for key, value in full.items()
            if not (isinstance(value, dict) and value.get("Type") == "Sequence")}
    kept.setdefault("0008,0052", {"Name": "QueryRetrieveLevel", "Type": "String",
                                  "Value": _LEVEL_NAMES[level]})
    return dict(sorted(kept.items()))


def query_children(context: ServerContext, query_id: str, index: str, child: Level,
                   body: Any) -> dict[str, str]:
    """``/queries/{id}/answers/{index}/query-studies|series|instances``: a C-FIND of the
    children of one answer, on the same modality with the same options."""
    row = query_row(context, query_id)
    answer = query_answer(row, index)
    parent = Level(row.level)
    if _ORDER.index(child) <= _ORDER.index(parent):
        raise UnknownResource(f"No {child.plural} below a {parent.value} query")
    options = _object(body)
    settings = _settings(context, row)
    timeout = _timeout(options)
    if timeout is not None:
        settings["Timeout"] = timeout
    keys = parse_keys(options.get("Query", {}))
    short = orthanc_json.to_short(answer)
    for keyword in _MOVE_KEYS[parent]:  # the parent's keys, as Orthanc's CopyStringTag
        value = short.get(_key(keyword))
        if isinstance(value, str):
            keys[_tag(keyword)] = value
    modality = _query_modality(context, row, settings)
    return _run_query(context, row.modality, modality, child, keys, settings)


def _key(keyword: str) -> str:
    tag = _tag(keyword)
    return f"{tag >> 16:04x},{tag & 0xFFFF:04x}"


def _settings(context: ServerContext, row: QueryRecord) -> dict[str, Any]:
    """The options a query was run with (queries of Pharos 0.1 have none stored)."""
    stored = orjson.loads(row.options) if row.options else {}
    settings: dict[str, Any] = {"Normalize": True, "Timeout": None}
    settings.update(stored)
    if "LocalAet" not in settings:
        settings["LocalAet"] = context.settings.dicom_aet
    return settings


def _query_modality(context: ServerContext, row: QueryRecord, settings: dict[str, Any]) -> Modality:
    remote = settings.get("Remote")
    if isinstance(remote, dict):
        return modalities.remote_of({"Modality": row.modality, "Remote": remote})
    return remotes.get_modality(context, row.modality)


def query_row(context: ServerContext, query_id: str) -> QueryRecord:
    with context.db.read() as conn:
        row = network_index.get_query(conn, query_id)
    if row is None:
        raise UnknownResource(f"Unknown query: {query_id}")
    return row


def list_queries(context: ServerContext) -> list[str]:
    with context.db.read() as conn:
        return network_index.list_queries(conn)


def delete_query(context: ServerContext, query_id: str) -> None:
    with context.db.write() as conn:
        if not network_index.delete_query(conn, query_id):
            raise UnknownResource(f"Unknown query: {query_id}")


def query_answers(row: QueryRecord) -> list[dict[str, Any]]:
    answers: list[dict[str, Any]] = orjson.loads(row.answers)
    return answers


def query_answer(row: QueryRecord, index: str) -> dict[str, Any]:
    answers = query_answers(row)
    if not is_digits(index) or int(index) >= len(answers):
        raise ParameterOutOfRange(f"No answer {index} in query {row.id}")
    return answers[int(index)]


# --- C-MOVE and C-GET jobs ---------------------------------------------------------------

def _query_format(options: dict[str, Any]) -> str:
    """Orthanc's ``GetDicomFormat(body, Short)``: Simplify, Short or Full."""
    for key, name in (("Simplify", "Simplify"), ("Short", "Short"), ("Full", "Full")):
        value = options.get(key)
        if value is not None and not isinstance(value, bool):
            raise BadFileFormat(f"{key} must be a Boolean")
        if value:
            return name
    return "Short"


def _formatted(level: Level, keys: dict[str, str], query_format: str) -> dict[str, Any]:
    tags = {_tag(k): v for k, v in keys.items() if k != "QueryRetrieveLevel"}
    ds = encode_identifier(level, tags, UTF8)  # shown as JSON: any encoding decodes back
    if "SpecificCharacterSet" in ds:
        del ds.SpecificCharacterSet  # Orthanc removes it from the job's Query (1.9.4)
    if "QueryRetrieveLevel" in keys:
        ds.QueryRetrieveLevel = keys["QueryRetrieveLevel"]
    full = orthanc_json.dataset_to_json(ds)
    if query_format == "Full":
        return full
    if query_format == "Simplify":
        return orthanc_json.to_simplified(full)
    return orthanc_json.to_short(full)


def retrieve_content(payload: dict[str, Any], modality: Modality) -> dict[str, Any]:
    """The public content of a C-MOVE/C-GET job (Orthanc's DicomMoveScuJob)."""
    level = Level(payload["Level"])
    query_format = payload.get("QueryFormat", "Short")
    items = [_resource_keys(level, r) for r in payload["Resources"]]
    return {"Description": DESCRIPTION, "LocalAet": payload["LocalAet"],
            "Query": [_formatted(level, item, query_format) for item in items],
            "RemoteAet": modality.aet}


def _resource_keys(level: Level, resource: dict[str, Any]) -> dict[str, str]:
    keys = {_keyword(k): str(v) for k, v in resource.items()
            if v is not None and k != SOP_CLASSES_IN_STUDY}
    keys.setdefault("QueryRetrieveLevel", _LEVEL_NAMES[level])
    return keys


def _keyword(key: str) -> str:
    """A tag given as a keyword or ``gggg,eeee``, as its keyword when it has one."""
    from pydicom.datadict import keyword_for_tag
    tag = int(parse_tag(str(key)))
    return keyword_for_tag(tag) or _key_hex(tag)


def _key_hex(tag: int) -> str:
    return f"{tag >> 16:04x},{tag & 0xFFFF:04x}"


def _identifier_of(level: Level, resource: dict[str, str], encoding: Encoding) -> Dataset:
    keys = move_keys(level, resource)
    return encode_identifier(level, {int(parse_tag(k)): v for k, v in keys.items()}, encoding)


def _retrieve_payload(context: ServerContext, modality: Modality, name: str, level: Level,
                      resources: list[dict[str, str]], *, local_aet: str, timeout: int,
                      target: str | None, query_format: str = "Short") -> dict[str, Any]:
    encoding = runtime.current(context).default_encoding
    for resource in resources:  # bad keys or values are refused now, not in the job
        _identifier_of(level, resource, encoding)
    payload: dict[str, Any] = {
        "Modality": name, "Remote": remotes.modality_json(modality)
        | {"LocalAet": modality.local_aet},
        "Level": level.value, "Resources": resources, "LocalAet": local_aet,
        "Timeout": timeout, "QueryFormat": query_format}
    if target is not None:
        payload["TargetAet"] = target
    return payload


def _resources(options: dict[str, Any], level: Level) -> list[dict[str, str]]:
    resources = options.get("Resources")
    if not isinstance(resources, list):
        raise BadFileFormat("Must provide a JSON body containing fields Resources and Level")
    answer = []
    for resource in resources:
        if not isinstance(resource, dict):
            raise BadFileFormat("Each resource must be a JSON object of DICOM tags")
        keys = parse_keys(resource, "Resources")
        answer.append({_keyword(_key_hex(tag)): value for tag, value in keys.items()
                       if tag != QUERY_RETRIEVE_LEVEL})
    return answer


def move(context: ServerContext, name: str, body: Any) -> dict[str, Any]:
    """``POST /modalities/{name}/move``: ``{Level, Resources, TargetAet, LocalAet,
    Timeout, Synchronous, Priority}``; the job's content when synchronous."""
    options = _object(body)
    level = parse_level(options.get("Level"))
    resources = _resources(options, level)
    modality = remotes.get_modality(context, name)
    target = options.get("TargetAet") or context.settings.dicom_aet
    if not isinstance(target, str):
        raise BadFileFormat("TargetAet must be a string")
    payload = _retrieve_payload(
        context, modality, name, level, resources,
        local_aet=modalities.local_aet(context, modality, options),
        timeout=modalities.scu_timeout(context, modality, options), target=target)
    return queue.submit_or_run(context, MOVE_JOB, payload,
                               synchronous=outgoing.synchronous(options),
                               content=retrieve_content(payload, modality),
                               priority=outgoing.priority(options),
                               user_data=queue.user_data_of(options))


def get(context: ServerContext, name: str, body: Any) -> dict[str, Any]:
    """``POST /modalities/{name}/get``: ``{Level, Resources, Timeout, Synchronous}``
    (C-GET into this archive); the job's content when synchronous."""
    options = _object(body)
    level = parse_level(options.get("Level"))
    resources = _resources(options, level)
    modality = remotes.get_modality(context, name)
    payload = _retrieve_payload(
        context, modality, name, level, resources,
        local_aet=modalities.local_aet(context, modality, options),
        timeout=modalities.scu_timeout(context, modality, options), target=None)
    content = retrieve_content(payload, modality) | {"Details": []}
    return queue.submit_or_run(context, GET_JOB, payload,
                               synchronous=outgoing.synchronous(options), content=content,
                               priority=outgoing.priority(options),
                               user_data=queue.user_data_of(options))


def retrieve(context: ServerContext, row: QueryRecord, indices: list[int], body: Any) -> dict[str, Any]:
    """``/queries/{id}/retrieve`` and ``/answers/{n}/retrieve``: C-MOVE answers to a
    target AET (the body as text, or ``{"TargetAet", "Timeout", "Synchronous", "Full",
    "Simplify"...}``; DicomAet when missing)."""
    options: dict[str, Any] = {}
    if isinstance(body, dict):
        options = body
    elif isinstance(body, str) and body.strip():
        options = {"TargetAet": body.strip()}
    elif body not in (None, ""):
        raise BadFileFormat("The body must be a target AET or a JSON object")
    target = options.get("TargetAet") or context.settings.dicom_aet
    if not isinstance(target, str):
        raise BadFileFormat("TargetAet must be a string")
    level = Level(row.level)
    settings = _settings(context, row)
    modality = _query_modality(context, row, settings)
    method = retrieve_method_of(context, modality, options)
    answers = query_answers(row)
    resources = [_answer_keys(answers[i], method == "C-GET") for i in indices]
    timeout = _timeout(options)
    if timeout is None:
        timeout = settings["Timeout"] if settings["Timeout"] is not None \
            else modalities.scu_timeout(context, modality, {})
    payload = _retrieve_payload(context, modality, row.modality, level, resources,
                                local_aet=settings["LocalAet"], timeout=timeout,
                                target=target if method == "C-MOVE" else None,
                                query_format=_query_format(options))
    content = retrieve_content(payload, modality)
    if method == "C-GET":
        content |= {"Details": []}
    return queue.submit_or_run(context, MOVE_JOB if method == "C-MOVE" else GET_JOB, payload,
                               synchronous=outgoing.synchronous(options), content=content,
                               priority=outgoing.priority(options),
                               user_data=queue.user_data_of(options))


def retrieve_method_of(context: ServerContext, modality: Modality,
                       options: dict[str, Any]) -> str:
    """How ``/queries/{id}/retrieve`` fetches (Orthanc 1.12.6): the request's
    ``RetrieveMethod``, else the modality's, else ``DicomDefaultRetrieveMethod``."""
    asked = options.get("RetrieveMethod")
    if asked is not None:
        try:
            return retrieve_method(asked)
        except ValueError as error:
            raise BadFileFormat(f"RetrieveMethod {error}") from None
    return modality.retrieve_method or context.settings.dicom_default_retrieve_method


def _answer_keys(answer: dict[str, Any], get: bool = False) -> dict[str, str]:
    """The keys of a C-FIND answer a retrieve keeps (Orthanc's AddFindAnswer); for a
    C-GET, also its SOPClassesInStudy (they choose the storage contexts proposed)."""
    short = orthanc_json.to_short(answer)
    keys: dict[str, str] = {}
    for keyword in _ANSWER_KEYS + ((SOP_CLASSES_IN_STUDY,) if get else ()):
        value = short.get(_key(keyword))
        if isinstance(value, str):
            keys[keyword] = value
    return keys


def _level_of(resource: dict[str, str], default: Level) -> Level:
    name = resource.get("QueryRetrieveLevel", "")
    try:
        return Level.parse("Instance" if name.upper() == "IMAGE" else name) if name else default
    except ValueError:
        return default


def run_move(context: ServerContext, payload: dict[str, Any], progress: ProgressCallback,
             cancel_check: CancelCheck) -> dict[str, Any]:
    """One C-MOVE per resource to the target AET."""
    modality = modalities.remote_of(payload)
    level = Level(payload["Level"])
    resources = payload["Resources"]
    for index, resource in enumerate(resources):
        if cancel_check():
            raise JobInterrupted()
        progress(index / max(1, len(resources)))
        current = _level_of(resource, level)
        identifier = _identifier_of(current, resource, runtime.current(context).default_encoding)
        report = dimse_scu.move(modality, current.value, identifier,
                                    payload["TargetAet"], local_aet=payload["LocalAet"],
                                    timeout=payload["Timeout"])
        failed = int(getattr(report, "failed", 0) or 0)
        if failed:
            raise NetworkProtocol(f"C-MOVE from {modality.aet} to {payload['TargetAet']}: "
                                  f"{failed} sub-operation(s) failed")
    return retrieve_content(payload, modality)


def _proposed_classes(context: ServerContext, resource: dict[str, Any]) -> list[str]:
    """The storage classes a C-GET proposes (Orthanc's ``DicomGetScuJob::Retrieve``): the
    resource's SOPClassesInStudy that are accepted, else the first accepted ones; none
    answers Orthanc's "no SOPClassUID have been accepted" error."""
    in_study = resource.get(SOP_CLASSES_IN_STUDY)
    proposed = storage_classes.proposed_for_get(
        context.settings.storage_sop_classes,
        str(in_study).split("\\") if in_study else None, MAX_GET_STORAGE_CONTEXTS)
    if not proposed:
        raise NoPresentationContext("Cannot perform C-Get, no SOPClassUID have been accepted "
                                    "by Orthanc.")
    return proposed


def run_get(context: ServerContext, payload: dict[str, Any], progress: ProgressCallback,
            cancel_check: CancelCheck) -> dict[str, Any]:
    """C-GET: the remote sends the instances back on the same association; each one is
    ingested as it arrives. ``Details`` lists, per resource, the DIMSE status and the
    IDs of the instances received (Orthanc 1.12.10's DicomGetScuJob)."""
    modality = modalities.remote_of(payload)
    level = Level(payload["Level"])
    origin = {"Origin": "DicomProtocol", "RemoteAET": modality.aet, "RemoteIP": modality.host,
              "CalledAET": payload["LocalAet"]}
    resources = payload["Resources"]
    content = retrieve_content(payload, modality)
    details: list[dict[str, Any]] = []
    total = 0
    for index, resource in enumerate(resources):
        if cancel_check():
            raise JobInterrupted()
        progress(index / max(1, len(resources)))
        received: list[str] = []

        def on_instance(data: bytes, received: list[str] = received) -> None:
            if cancel_check():
                raise JobInterrupted()
            received.append(ingest_instance(context, data, origin).parsed.ids.instance)

        current = _level_of(resource, level)
        identifier = _identifier_of(current, resource, runtime.current(context).default_encoding)
        report = dimse_scu.get(modality, current.value, identifier,
                                   local_aet=payload["LocalAet"], timeout=payload["Timeout"],
                                   on_instance=on_instance,
                                   storage_classes=_proposed_classes(context, resource))
        total += len(received)
        details.append({"DimseErrorStatus": 0 if report.status in (0, 0xFE00) else report.status,
                        "Query": content["Query"][index] if payload.get("QueryFormat") == "Short"
                        else _formatted(current, _resource_keys(current, resource), "Short"),
                        "ReceivedInstancesIds": received})
        failed = int(getattr(report, "failed", 0) or 0)
        if failed:
            raise NetworkProtocol(f"C-GET from {modality.aet}: {failed} sub-operation(s) "
                                  f"failed")
    return content | {"Details": details, "InstancesCount": total}

