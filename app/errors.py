"""One exception hierarchy for every door.

Each error carries Orthanc's error code (``OrthancStatus``), its HTTP status and the
DIMSE status a DIMSE door answers with. The HTTP doors render it once, as Orthanc's
error JSON (see :mod:`app.api.errors`).
"""

from __future__ import annotations


class PharosError(Exception):
    """Base class: an Orthanc ``ErrorCode`` with its HTTP and DIMSE statuses."""

    orthanc_code: int = -1
    orthanc_message: str = "Internal error"
    http_status: int = 500
    dimse_status: int = 0xC000  # PS3.4 C.4.2.1.4: "Cannot understand"

    def __init__(self, details: str | None = None) -> None:
        super().__init__(details or self.orthanc_message)
        self.details = details


class NotImplementedYet(PharosError):
    orthanc_code, orthanc_message, http_status = 2, "Not implemented yet", 501


class ParameterOutOfRange(PharosError):
    orthanc_code, orthanc_message, http_status = 3, "Parameter out of range", 400


class BadParameterType(PharosError):
    orthanc_code, orthanc_message, http_status = 5, "Bad type for a parameter", 400


class InexistentItem(PharosError):
    orthanc_code, orthanc_message, http_status = 7, "Accessing an inexistent item", 404


class BadRequest(PharosError):
    orthanc_code, orthanc_message, http_status = 8, "Bad request", 400


class NetworkProtocol(PharosError):
    orthanc_code, orthanc_message, http_status = 9, "Error in the network protocol", 500


class UnprocessableQuery(NetworkProtocol):
    """A remote answered C-FIND with "unable to process" (Cxxx, PS3.4 C.4.1.1.4): Orthanc
    answers 422, the query being likely invalid for that remote."""

    http_status = 422


class NoPresentationContext(PharosError):
    """No storage SOP class is left to propose (``AcceptedSopClasses`` and
    ``RejectedSopClasses`` exclude them all): Orthanc's code 2015."""

    orthanc_code, http_status = 2015, 500
    orthanc_message = "DicomUserConnection: No acceptable presentation context for modality"


class Database(PharosError):
    orthanc_code, orthanc_message, http_status = 11, "Error with the database engine", 500


class UriSyntax(PharosError):
    orthanc_code, orthanc_message, http_status = 12, "Badly formatted URI", 400


class InexistentFile(PharosError):
    orthanc_code, orthanc_message, http_status = 13, "Inexistent file", 404


class CannotWriteFile(PharosError):
    orthanc_code, orthanc_message, http_status = 14, "Cannot write to file", 500
    dimse_status = 0xA700  # Out of resources


class BadFileFormat(PharosError):
    orthanc_code, orthanc_message, http_status = 15, "Bad file format", 400
    dimse_status = 0xC000


class UnknownResource(PharosError):
    orthanc_code, orthanc_message, http_status = 17, "Unknown resource", 404


class FullStorage(PharosError):
    orthanc_code, orthanc_message, http_status = 19, "The file storage is full", 507
    dimse_status = 0xA700  # Refused: out of resources


class CorruptedFile(PharosError):
    orthanc_code, orthanc_message, http_status = 20, "Corrupted file (e.g. inconsistent MD5 hash)", 500


class ReadOnlyMode(PharosError):
    """A write while the server runs with ``ReadOnly`` (Orthanc 1.12.5): nothing may change
    the index or the storage. Orthanc's code is 22 ("ReadOnly"), which has no HTTP status
    there (a 500); Pharos answers 403, RFC 9110's status for a request the server
    understood and refuses. C-STORE answers Orthanc's "Refused: out of resources"."""

    orthanc_code, orthanc_message, http_status = 22, \
        "Cannot modify a read-only data structure", 403
    dimse_status = 0xA700


class InexistentTag(PharosError):
    orthanc_code, orthanc_message, http_status = 21, "Inexistent tag", 404


class BadJson(PharosError):
    orthanc_code, orthanc_message, http_status = 28, "Cannot parse a JSON document", 400


class Unauthorized(PharosError):
    orthanc_code, orthanc_message, http_status = 29, "Bad credentials were provided to an HTTP request", 401


class PayloadTooLarge(PharosError):
    """A body over the configured limit (Pharos' own; Orthanc has no such limit)."""

    orthanc_code, orthanc_message, http_status = 8, "Bad request", 413


class ZipBomb(PharosError):
    """A ZIP whose declared sizes or compression ratio exceed the configured limits."""

    orthanc_code, orthanc_message, http_status = 15, "Bad file format", 413


class DecompressionLimit(PharosError):
    """An input that would inflate or decode beyond a configured limit (a deflated dataset,
    a gzip body, pixel data): refused as a possible decompression bomb, never attempted."""

    orthanc_code, orthanc_message, http_status = 15, "Bad file format", 400
    dimse_status = 0xC000


class UnsupportedContentEncoding(PharosError):
    """A request body in a content coding Pharos does not decode (RFC 9110 15.5.16)."""

    orthanc_code, orthanc_message, http_status = 8, "Bad request", 415


class StorageUnavailable(PharosError):
    """The blob store (an S3 endpoint) failed after botocore's retries.

    Orthanc's object-storage plugins answer 500 with code 43 (StorageAreaPlugin); Pharos
    keeps the code and answers 503, which tells clients the failure is transient and the
    request can be sent again (nothing was stored: see README, object storage).
    """

    orthanc_code, orthanc_message, http_status = 43, \
        "Error in the plugin implementing a custom storage area", 503
    dimse_status = 0xA700  # PS3.4 B.2.3: Refused, out of resources (the sender retries)


class MissingRequiredTag(PharosError):
    """An upload without StudyInstanceUID/SeriesInstanceUID/SOPInstanceUID.

    Orthanc 1.10.1 answers 404 "Inexistent tag" (code 21) here; a 404 on ``POST
    /instances`` tells HTTP clients the route does not exist, so Pharos answers 400 with
    the same Orthanc code 21 in the body (deliberate difference, see README).
    """

    orthanc_code, orthanc_message, http_status = 21, "Inexistent tag", 400


class CannotOrderSlices(PharosError):
    """Orthanc's code 2040 (Orthanc answers 500; a series that cannot be ordered is a
    property of the data, so Pharos answers 400)."""

    orthanc_code, orthanc_message, http_status = 2040, "Unable to order the slices of the series", 400


class CannotExecuteLua(PharosError):
    """A Lua chunk or callback raised an error (Orthanc answers 500 with the Lua message
    in ``Details``)."""

    orthanc_code, orthanc_message, http_status = 2031, "Cannot execute a Lua command", 500


class LuaBadOutput(PharosError):
    orthanc_code, orthanc_message, http_status = \
        2033, "The Lua function does not give the expected number of outputs", 500


class NotLuaPredicate(PharosError):
    orthanc_code, orthanc_message, http_status = \
        2034, "The Lua function is not a predicate (only true/false outputs allowed)", 500


class LuaReturnsNoString(PharosError):
    orthanc_code, orthanc_message, http_status = \
        2035, "The Lua function does not return a string", 500


class HookFailed(PharosError):
    """A Python hook (``Pharos.Hooks``) raised: Orthanc's plugin error, as its Python
    plugin reports an exception of a callback."""

    orthanc_code, orthanc_message, http_status = 1, "Error encountered within the plugin engine", 500


class StartupError(Exception):
    """The server cannot start: the message is the one line ``pharos`` prints (no Orthanc
    error: nothing answers yet)."""
