"""The query arguments routes read, documented in the OpenAPI document.

Routes read their query arguments from ``request.query_params`` (through
:func:`app.api.deps.flag` and :func:`app.api.deps.int_param`) because Orthanc's rules are
not FastAPI's: a boolean flag is true when merely present (``?expand``), and a bad integer
is Orthanc's ``ParameterOutOfRange``, not a validation error. So these parameters are
declared for the schema only, through ``openapi_extra``: they never change how a request
is parsed. ``tests/api/test_openapi.py`` checks that what the routes read is declared.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from typing import Any

_BOOLEAN = {"type": "boolean"}
_PRESENT = " (Orthanc's flag: present without a value is true; 0, false and no are false)"


@dataclass(frozen=True)
class QueryParameter:
    name: str
    schema: dict[str, Any]
    description: str
    note: str = ""  # kept when the description is replaced for one route

    def __call__(self, description: str) -> QueryParameter:
        """The same parameter, described for one route."""
        return replace(self, description=description)

    def document(self) -> dict[str, Any]:
        return {"name": self.name, "in": "query", "required": False,
                "schema": copy.deepcopy(self.schema), "description": self.description + self.note}


def _flag(name: str, description: str) -> QueryParameter:
    return QueryParameter(name, dict(_BOOLEAN), description, _PRESENT)


EXPAND = _flag("expand", "Answer the full JSON of each item instead of its identifier")
SINCE = QueryParameter("since", {"type": "integer", "minimum": 0},
                       "Skip this many items (paging), or the changes up to this sequence number")
LIMIT = QueryParameter("limit", {"type": "integer", "minimum": 0},
                       "Answer at most this many items (0: no limit)")
REQUESTED_TAGS = QueryParameter(
    "requested-tags", {"type": "string"},
    "DICOM tags to add as RequestedTags, by keyword or gggg,eeee, separated by ';' "
    "(with expand on lists)")
REQUESTED_TAGS_OLD = QueryParameter(
    "requestedTags", {"type": "string"},
    "The spelling of requested-tags before Orthanc 1.12.4 (still accepted)")
RESPONSE_CONTENT = QueryParameter(
    "response-content", {"type": "string"},
    "What each resource holds (Orthanc 1.12.5, overrides expand): MainDicomTags, Metadata, "
    "Children, Parent, Labels, Status, IsStable, IsProtected, Attachments, separated by ';'")
TO = QueryParameter("to", {"type": "integer", "minimum": 0},
                    "Answer the changes up to this sequence number (included)")
CHANGE_TYPE = QueryParameter("type", {"type": "string"},
                             "Answer only the changes of these types, separated by ';'")
SHORT = _flag("short", "Tags as {gggg,eeee: value}")
SIMPLIFY = _flag("simplify", "Tags as {keyword: value}")
NUMERIC = _flag("numeric", "Name metadata by their Orthanc MetadataType numbers (LastUpdate: 7)")
FULL = _flag("full", "Answer {name: content type} instead of the names")
LAST = QueryParameter("last", {"type": "boolean"},
                      "Answer the latest change only (its presence counts, whatever its value)")
ACCEPT = QueryParameter(
    "accept", {"type": "string", "enum": ["image/png", "image/jpeg",
                                          "image/x-portable-arbitrarymap"]},
    "The image format, instead of the Accept header (default image/png)")
QUALITY = QueryParameter("quality", {"type": "integer", "minimum": 1, "maximum": 100},
                         "JPEG quality (default 90)")
WIDTH = QueryParameter("width", {"type": "integer", "minimum": 0},
                       "Scale the image down to fit this width (rendered)")
HEIGHT = QueryParameter("height", {"type": "integer", "minimum": 0},
                        "Scale the image down to fit this height (rendered)")
WINDOW_CENTER = QueryParameter("window-center", {"type": "number"},
                               "Window center (rendered; also read as WindowCenter)")
WINDOW_WIDTH = QueryParameter("window-width", {"type": "number"},
                              "Window width (rendered; also read as WindowWidth)")
RESCALE = QueryParameter("rescale", {"type": "boolean", "default": True},
                         "Apply the modality rescale (slope, intercept); 0 or false disables")
COMPRESS = _flag("compress", "Answer a compressed .npz instead of a .npy")
TRANSCODE = QueryParameter("transcode", {"type": "string"},
                           "Re-encode each instance in this transfer syntax (UID)")
FILENAME = QueryParameter("filename", {"type": "string"}, "The name of the downloaded file")
IMAGE = (ACCEPT, QUALITY, WIDTH, HEIGHT, WINDOW_CENTER, WINDOW_WIDTH)
FULL_TAGS = _flag("full", "Tags as {gggg,eeee: {Name, Type, Value}}")
IGNORE_LENGTH = QueryParameter(
    "ignore-length", {"type": "string"},
    "Tags (keywords or gggg-eeee, comma-separated) shown even when longer than 256 bytes")
WHOLE = QueryParameter("whole", {"type": "boolean"},
                       "Also the tags stored after the pixel data (Orthanc 1.12.4); present: true")
TAGS_FORMAT = (SHORT, SIMPLIFY, FULL_TAGS, IGNORE_LENGTH)
RESOURCE_TAGS_FORMAT = (SHORT, SIMPLIFY, FULL_TAGS)
# Browsing routes: RequestedTags, and the format of MainDicomTags and RequestedTags.
BROWSE_TAGS = (REQUESTED_TAGS, REQUESTED_TAGS_OLD, *RESOURCE_TAGS_FORMAT)


def query_parameters(*parameters: QueryParameter, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """``openapi_extra`` declaring these query arguments (merged into *extra*, if any)."""
    document = copy.deepcopy(extra) if extra else {}
    document.setdefault("parameters", []).extend(p.document() for p in parameters)
    return document
