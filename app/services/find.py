"""``/tools/find``, ``/tools/lookup``, RequestedTags and labels: the shared query service.

QIDO-RS and C-FIND build the same ``FindQuery`` through ``build_query`` and read values
through ``app.index.find.tag_values``: one matching engine for every door.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from app import orthanc_api_at_least
from app.context import ServerContext
from app.dicom.levels import Level
from app.dicom.matching import Constraint, Kind, WildcardNotAllowed, parse_constraint
from app.dicom.tag_values import format_tags
from app.dicom.tags import format_tag, parse_tag, tag_name
from app.errors import (
    BadRequest,
    InexistentItem,
    ParameterOutOfRange,
    PharosError,
    UnknownResource,
)
from app.index import find as index_find
from app.index import repository
from app.index.db import Connection
from app.index.find import (
    FindQuery,
    LeveledConstraint,
    MetadataConstraint,
    OrderKey,
    level_of_keyword,
)
from app.services.browse import (
    METADATA_NUMBERS,
    RESPONSE_CONTENT,
    Content,
    expand_content,
    get_row_or_404,
    metadata_name,
    resources_json,
)
from app.validation import MAX_INT64, is_digits

# Bounds on the extended fields (Orthanc has none): each OrderBy key may join a table,
# and SQLite joins at most 64 tables in one statement.
MAX_ORDER_BY_KEYS = 32
MAX_METADATA_CONSTRAINTS = 64

LABEL_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

# Orthanc's StringToResourceType (case-insensitive).
REST_LEVELS = {"patient": Level.PATIENT, "patients": Level.PATIENT, "study": Level.STUDY,
               "studies": Level.STUDY, "series": Level.SERIES, "instance": Level.INSTANCE,
               "instances": Level.INSTANCE, "image": Level.INSTANCE, "images": Level.INSTANCE}


class UnknownDicomTag(PharosError):
    """Orthanc's ErrorCode_UnknownDicomTag (27). Orthanc 1.10.1 answers it with HTTP 500;
    a name that is no tag is the client's error: 400 here (see the find differential)."""

    orthanc_code, orthanc_message, http_status = 27, "Unknown DICOM tag", 400


def keyword_of(name: str) -> tuple[int, str]:
    """(tag, keyword) for a keyword or ``gggg,eeee``; computed tags keep their names."""
    if name in index_find.COMPUTED_TAGS:
        from pydicom.datadict import tag_for_keyword
        return int(tag_for_keyword(name) or 0), name
    try:
        tag = parse_tag(name)
    except ValueError as error:
        raise UnknownDicomTag(f"Unknown DICOM tag: {name}") from error
    keyword = tag_name(tag)
    return int(tag), keyword if keyword != "Unknown Tag & Data" else format_tag(tag)


def build_query(level: Level, query: dict[str, str], *, case_sensitive: bool = True,
                since: int = 0, limit: int = 0, labels: Sequence[str] = (),
                labels_constraint: str = "All", cfind: bool = False) -> FindQuery:
    """A DICOM query (QIDO-RS, C-MOVE keys; C-FIND with *cfind*, see app.dicom.matching);
    a value the rules refuse (a sequence, a misplaced wildcard) is a BadRequest."""
    constraints = []
    for name, value in query.items():
        tag, keyword = keyword_of(name)
        try:
            constraint = parse_constraint(tag, keyword, value, case_sensitive_pn=case_sensitive,
                                          cfind=cfind)
        except ValueError as error:
            raise BadRequest(str(error)) from error
        constraints.append(LeveledConstraint(constraint, level_of_keyword(keyword, level)))
    return FindQuery(level, constraints, list(labels), labels_constraint, since, limit)


def build_rest_query(level: Level, query: dict[str, str], *, case_sensitive: bool,
                     since: int = 0, limit: int = 0, candidate_cap: int = 0,
                     labels: Sequence[str] = (), labels_constraint: str = "All") -> FindQuery:
    """A ``/tools/find`` query, parsed like Orthanc's ``DatabaseLookup::AddRestConstraint``:
    empty values are universal and skipped, ``CaseSensitive`` applies to every tag."""
    constraints = []
    for name, value in query.items():
        if value == "":
            continue
        tag, keyword = keyword_of(name)
        try:
            constraint = parse_constraint(tag, keyword, value, rest=True,
                                          case_sensitive=case_sensitive)
        except WildcardNotAllowed as error:
            raise ParameterOutOfRange(str(error)) from error
        constraints.append(LeveledConstraint(constraint, level_of_keyword(keyword, level)))
    return FindQuery(level, constraints, list(labels), labels_constraint, since, limit,
                     rest=True, candidate_cap=candidate_cap)


def effective_limit(context: ServerContext, level: Level, requested: int) -> int:
    """Orthanc: LimitFindInstances at instance level, LimitFindResults elsewhere."""
    configured = configured_limit(context, level)
    if configured and (not requested or requested > configured):
        return configured
    return requested


def configured_limit(context: ServerContext, level: Level) -> int:
    settings = context.settings
    return (settings.limit_find_instances if level == Level.INSTANCE
            else settings.limit_find_results) or 0


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise BadRequest(message)


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _json_bool(body: dict[str, Any], key: str) -> bool:
    """jsoncpp's ``asBool()``: Booleans, numbers and null convert; other types fail (an
    unhandled exception, HTTP 500, in Orthanc 1.10.1: a 400 here)."""
    value = body.get(key, False)
    _require(value is None or isinstance(value, (bool, int, float)),
             f'Field "{key}" should be a Boolean')
    return bool(value)


@dataclass
class FindRequest:
    """A parsed ``/tools/find`` or ``/tools/count-resources`` body."""

    query: FindQuery
    parent: tuple[Level, str] | None = None  # (level, public ID) of ParentPatient...
    content: Content | None = None  # None: IDs only
    requested: list[str] = field(default_factory=list)
    fmt: str = "simplify"


def tools_find(context: ServerContext, body: Any) -> list[Any]:
    """Validate an Orthanc ``/tools/find`` request (same checks, order and messages as
    ``OrthancRestResources.cpp``) and answer it."""
    request = parse_find(context, body, count=False)
    with context.db.read() as conn:
        if not _resolve_parent(conn, request):
            return []
        matches = index_find.find_matches(conn, request.query)
        if request.content is None:
            return [public_id for _, public_id in matches]
        level = request.query.level
        rows = repository.get_rows_by_pk(conn, level, [pk for pk, _ in matches])
        return expanded(conn, level, rows, request.requested, request.fmt, request.content,
                        context.settings.user_metadata)


def count_resources(context: ServerContext, body: Any) -> dict[str, int]:
    """``/tools/count-resources`` (Orthanc 1.12.5): how many resources ``/tools/find``
    would match, without Since, Limit nor LimitFindResults; refused, as by Orthanc, for
    case-sensitive queries and queries on tags its index does not hold."""
    request = parse_find(context, body, count=True)
    with context.db.read() as conn:
        if not _resolve_parent(conn, request):
            return {"Count": 0}
        return {"Count": index_find.count_matches(conn, request.query)}


def parse_find(context: ServerContext, body: Any, *, count: bool) -> FindRequest:
    """The checks of Orthanc's ``Find<FindType>`` in its order (the fields of Orthanc
    1.10 keep its messages), then the query."""
    _require(isinstance(body, dict), "The body must contain a JSON object")
    _require(isinstance(body.get("Level"), str),
             'Field "Level" is missing, or should be a string')
    query = body.get("Query")
    _require(isinstance(query, dict), 'Field "Query" is missing, or should be a JSON object')
    _require("CaseSensitive" not in body or isinstance(body["CaseSensitive"], bool),
             'Field "CaseSensitive" should be a Boolean')
    if not count:
        for name in ("Limit", "Since"):
            _require(name not in body or _is_integer(body[name]),
                     f'Field "{name}" should be an integer')
    requested = body.get("RequestedTags", []) if not count else []
    _require(isinstance(requested, list) and all(isinstance(x, str) for x in requested),
             'Field "RequestedTags" should be an array of strings')
    labels = body.get("Labels", [])
    _require(isinstance(labels, list) and all(isinstance(x, str) for x in labels),
             'Field "Labels" should be an array of strings')
    labels_constraint = body.get("LabelsConstraint", "All")
    _require(labels_constraint in ("All", "Any", "None"),
             'Field "LabelsConstraint" must be "All", "Any" or "None"')
    for label in labels:
        check_label(label)
    _check_extended_fields(body, count)
    expand = _json_bool(body, "Expand") if not count else False
    case_sensitive = body.get("CaseSensitive", False)  # Orthanc's default: insensitive
    limit, since = (0, 0) if count else (body.get("Limit", 0), body.get("Since", 0))
    for name, value in (("Limit", limit), ("Since", since)):
        if value < 0:
            raise ParameterOutOfRange(f'Field "{name}" should be a positive integer')
        if value > MAX_INT64:  # beyond what the index databases store
            raise ParameterOutOfRange(f'Field "{name}" should be below 2^63')
    level = REST_LEVELS.get(body["Level"].lower())
    if level is None:
        raise ParameterOutOfRange(f"Unknown resource level: {body['Level']}")
    for name, value in query.items():
        _require(isinstance(value, str), f'Tag "{name}" should be associated with a string')
    if count and case_sensitive:
        raise ParameterOutOfRange('Setting "CaseSensitive" to "true" is not supported by '
                                  "/tools/count-resources")
    fmt = "full" if _json_bool(body, "Full") else (
        "short" if _json_bool(body, "Short") else "simplify")
    find_query = build_rest_query(level, query, case_sensitive=case_sensitive,
                                  labels=labels, labels_constraint=labels_constraint)
    find_query.unlabelled = (labels_constraint == "None" and not labels
                             and orthanc_api_at_least(1, 12, 11))
    find_query.metadata = _metadata_query(context, body.get("MetadataQuery", {}),
                                          case_sensitive)
    if not count:
        find_query.order_by = _order_by(context, body.get("OrderBy", []))
    request = FindRequest(find_query, _parent(body), fmt=fmt)
    storage = index_find.needs_storage(find_query)
    if count:
        if storage:
            raise BadRequest("Unable to count resources when querying tags that are not "
                             "stored as MainDicomTags in the Database or when using case "
                             "sensitive queries.")
        return request
    if since and storage:
        raise BadRequest("Unable to use 'Since' in tools/find when querying tags that are "
                         "not stored as MainDicomTags in the Database")
    _set_limits(find_query, configured_limit(context, level), limit, since, storage)
    request.content = _response_content(body, expand)
    request.requested = list(requested)
    if request.content is not None and orthanc_api_at_least(1, 12, 5):
        request.requested += _lookup_tags(find_query, requested)
    return request


def _check_extended_fields(body: dict[str, Any], count: bool) -> None:
    """The types of Orthanc 1.12.5's fields (its messages)."""
    _require(isinstance(body.get("MetadataQuery", {}), dict),
             'Field "MetadataQuery" must be an JSON object')
    for name in ("ParentPatient", "ParentStudy", "ParentSeries"):
        _require(name not in body or isinstance(body[name], str),
                 f'Field "{name}" must be a string')
    if count:
        return
    _require("ResponseContent" not in body or isinstance(body["ResponseContent"], list),
             'Field "ResponseContent" must be an array')
    _require("OrderBy" not in body or isinstance(body["OrderBy"], list),
             'Field "OrderBy" must be an array')


def _set_limits(query: FindQuery, cap: int, limit: int, since: int, storage: bool) -> None:
    """Orthanc 1.12.5+ (an index with ExtendedFind): ``Limit`` 0 is no limit;
    LimitFindResults / LimitFindInstances bound the answers when the index answers the
    whole query, else the resources read from the index before their files are read
    (``Limit`` then counts matches, which Orthanc 1.12.5 applies to the resources read:
    Pharos never answers fewer than ``Limit`` matches while more exist)."""
    query.since = since
    if storage:
        query.limit, query.candidate_cap = limit, cap
    else:
        query.limit = min(limit, cap) if limit and cap else (limit or cap)


def _response_content(body: dict[str, Any], expand: bool) -> Content | None:
    """``ResponseContent`` (Orthanc 1.12.5, overriding ``Expand``), else ``Expand``."""
    if "ResponseContent" not in body:
        return expand_content() if expand else None
    content = Content.REQUESTED_TAGS
    for name in body["ResponseContent"]:
        if not isinstance(name, str) or name not in RESPONSE_CONTENT:
            raise ParameterOutOfRange(f'Unrecognized value for "ResponseContent": {name}')
        content |= RESPONSE_CONTENT[name]
    return content


def parse_response_content(text: str) -> Content:
    """``?response-content=A;B`` of the list routes (Orthanc 1.12.5)."""
    content = Content.REQUESTED_TAGS
    for name in {part for part in text.split(";") if part}:
        if name not in RESPONSE_CONTENT:
            raise ParameterOutOfRange(f'Unrecognized value for "ResponseContent": {name}')
        content |= RESPONSE_CONTENT[name]
    return content


def _lookup_tags(query: FindQuery, requested: Sequence[str]) -> list[str]:
    """Orthanc 1.12.5+ answers, as RequestedTags, the tags of the query it could not
    match on its index alone (tags that are no main tags, computed tags)."""
    already = {keyword_of(name)[1] for name in requested}
    extra = []
    for item in query.constraints:
        keyword = item.constraint.keyword
        if not index_find.is_main_tag(keyword) and keyword not in already:
            already.add(keyword)
            extra.append(keyword)
    return extra


def _parent(body: dict[str, Any]) -> tuple[Level, str] | None:
    """``ParentPatient``, else ``ParentStudy``, else ``ParentSeries`` (Orthanc's order)."""
    for name, level in (("ParentPatient", Level.PATIENT), ("ParentStudy", Level.STUDY),
                        ("ParentSeries", Level.SERIES)):
        if name in body:
            return level, body[name]
    return None


def _resolve_parent(conn: Connection, request: FindRequest) -> bool:
    """Turn the parent's public ID into its pk; False when no such resource exists."""
    if request.parent is None:
        return True
    level, public_id = request.parent
    row = repository.get_row(conn, level, public_id)
    if row is None:
        return False
    request.query.parent = (level, row.pk)
    return True


def metadata_key(context: ServerContext, name: str) -> str:
    """The name a metadata is kept under, for Orthanc's ``StringToMetadata``: automatic
    and declared (``UserMetadata``) names, or numbers; another name is unknown (404)."""
    user = context.settings.user_metadata or {}
    if name in METADATA_NUMBERS or name in user:
        return name
    if is_digits(name.lstrip("-")):
        return metadata_name(str(int(name)), user)
    raise InexistentItem(f"Unknown metadata: {name}")


def _metadata_query(context: ServerContext, query: dict[str, Any],
                    case_sensitive: bool) -> list[MetadataConstraint]:
    """``MetadataQuery``: ``A\\B`` lists, ``*``/``?`` wildcards, else equality; an empty
    value is no constraint."""
    if len(query) > MAX_METADATA_CONSTRAINTS:
        raise ParameterOutOfRange(f'At most {MAX_METADATA_CONSTRAINTS} items in '
                                  '"MetadataQuery"')
    constraints = []
    for name, value in query.items():
        _require(isinstance(value, str), f'Tag "{name}" must be associated with a string')
        key = metadata_key(context, name)
        if not value:
            continue
        if "\\" in value:
            kind, values = Kind.LIST, tuple(value.split("\\"))
        elif "*" in value or "?" in value:
            kind, values = Kind.WILDCARD, (value,)
        else:
            kind, values = Kind.EQUAL, (value,)
        try:
            constraint = Constraint(0, key, kind, values, case_sensitive=case_sensitive)
        except ValueError as error:  # QueryTooComplex: a pattern or list beyond bounds
            raise ParameterOutOfRange(str(error)) from error
        constraints.append(MetadataConstraint(key, constraint))
    return constraints


_DIRECTION_ERROR = 'Field "Direction" must be "ASC" or "DESC"'


def _order_by(context: ServerContext, items: list[Any]) -> list[OrderKey]:
    """``OrderBy``: ``{"Type": "DicomTag[AsInt|AsFloat]"|"Metadata[AsInt|AsFloat]",
    "Key", "Direction": "ASC"|"DESC"}`` items (case-insensitive type and direction)."""
    if len(items) > MAX_ORDER_BY_KEYS:
        raise ParameterOutOfRange(f'At most {MAX_ORDER_BY_KEYS} items in "OrderBy"')
    keys = []
    for item in items:
        _require(isinstance(item, dict), 'Field "OrderBy" must contain objects')
        _require(isinstance(item.get("Key"), str), 'Field "Key" must be a string')
        _require(isinstance(item.get("Direction"), str), _DIRECTION_ERROR)
        direction = item["Direction"].lower()
        _require(direction in ("asc", "desc"), _DIRECTION_ERROR)
        _require(isinstance(item.get("Type"), str),
                 'Field "Type" must be "DicomTag" or "Metadata"')
        kind = item["Type"].lower()
        cast = "int" if kind.endswith("asint") else "float" if kind.endswith("asfloat") \
            else "string"
        if kind.startswith("dicomtag"):
            keys.append(OrderKey("tag", keyword_of(item["Key"])[1], cast, direction == "desc"))
        elif kind.startswith("metadata"):
            keys.append(OrderKey("metadata", metadata_key(context, item["Key"]), cast,
                                 direction == "desc"))
        else:
            raise BadRequest('Field "Type" must be "DicomTag", "DicomTagAsInt", '
                             '"DicomTagAsFloat" or "Metadata", "MetadataAsInt", '
                             '"MetadataAsFloat"')
    return keys


def expanded(conn: Connection, level: Level, rows: Sequence[Any], requested: Sequence[str],
             fmt: str = "simplify", content: Content | None = None,
             user_metadata: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Resources as ``GET /{level}/{id}`` shows them (or the parts *content* names), plus
    ``RequestedTags`` when asked (see ``index.find.requested_tag_values``), tags in
    Orthanc's *fmt* (``simplify``, ``short`` or ``full``)."""
    answers = resources_json(conn, level, rows, content, user_metadata)
    if requested:
        tags = list(dict.fromkeys(keyword_of(name) for name in requested))
        values = index_find.requested_tag_values(conn, level, rows, tags)
        for answer, row in zip(answers, rows, strict=True):
            answer["RequestedTags"] = format_tags(values[row.pk], fmt)
    if fmt != "simplify":
        for answer in answers:
            for key in ("MainDicomTags", "PatientMainDicomTags"):
                if key in answer:
                    answer[key] = format_tags(
                        {int(parse_tag(keyword)): value for keyword, value in answer[key].items()},
                        fmt)
    return answers


def parse_requested_tags(text: str | None) -> list[str]:
    """``requested-tags`` / ``requestedTags`` of browsing routes: names or ``gggg,eeee``
    separated by ``;`` (Orthanc's ``ParseListOfTags``); an unknown name answers 400."""
    names = [name.strip() for name in (text or "").split(";") if name.strip()]
    for name in names:
        keyword_of(name)
    return names


def lookup(context: ServerContext, text: str) -> list[dict[str, str]]:
    """``/tools/lookup``: resources whose PatientID or UID is *text* (case ignored, as
    Orthanc compares its upper-cased identifiers)."""
    with context.db.read() as conn:
        found = index_find.lookup_identifier(conn, text.strip())
    return [{"ID": public_id, "Path": f"/{level.plural}/{public_id}", "Type": level.value}
            for level, public_id in found]


# --- labels ---------------------------------------------------------------------------------

def check_label(label: str) -> None:
    if not LABEL_PATTERN.match(label):
        raise ParameterOutOfRange(f"Invalid label {label!r}: use 1-64 characters of "
                                  "[A-Za-z0-9_-]")


def add_label(context: ServerContext, level: Level, public_id: str, label: str) -> None:
    check_label(label)
    with context.db.write() as conn:
        row = get_row_or_404(conn, level, public_id)
        if not repository.lock_resource(conn, level, row.pk):  # deleted meanwhile
            raise UnknownResource(f"Unknown {level.value.lower()}: {public_id}")
        repository.add_label(conn, level, row.pk, label)


def remove_label(context: ServerContext, level: Level, public_id: str, label: str) -> None:
    check_label(label)
    with context.db.write() as conn:
        row = get_row_or_404(conn, level, public_id)
        repository.remove_label(conn, level, row.pk, label)


def labels_of(context: ServerContext, level: Level, public_id: str) -> list[str]:
    with context.db.read() as conn:
        row = get_row_or_404(conn, level, public_id)
        return repository.labels_of(conn, level, [row.pk])[row.pk]


def all_labels(context: ServerContext) -> list[str]:
    with context.db.read() as conn:
        return repository.all_labels(conn)
