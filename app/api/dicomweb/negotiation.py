"""Content negotiation for DICOMweb (PS3.18 8.7: Accept, media types, transfer syntaxes).

The ``Accept`` header (or the ``accept`` query parameter, PS3.18 8.3.3.1, which takes
precedence) is parsed into media ranges sorted by quality. Each resource kind then asks
for the best range it can serve; 406 is raised only when nothing acceptable remains.

Parameters are accepted quoted or bare (``type="application/dicom"`` or
``type=application/dicom``), in any case, with ``q`` values and ``*/*`` wildcards.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from fastapi import Request

from app.dicom import transcode
from app.errors import PharosError
from app.protocols.multipart import parse_media_type, split_header_list

EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
UNCOMPRESSED = frozenset({EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN})
ANY_SYNTAX = "*"

# PS3.18 Table 8.7.3-5: media types of compressed pixel data and their transfer syntaxes
# (the first one is the default of the media type: lossless JPEG SV1 for image/jpeg).
PIXEL_MEDIA_TYPES: dict[str, tuple[str, ...]] = {
    "image/jpeg": ("1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.50",
                   "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.57"),
    "image/jls": ("1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"),
    "image/jp2": ("1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91"),
    "image/jpx": ("1.2.840.10008.1.2.4.92", "1.2.840.10008.1.2.4.93"),
    "image/x-dicom-rle": ("1.2.840.10008.1.2.5",),
    "image/dicom-rle": ("1.2.840.10008.1.2.5",),
    "video/mpeg": ("1.2.840.10008.1.2.4.100", "1.2.840.10008.1.2.4.101"),
    "video/mp4": ("1.2.840.10008.1.2.4.102", "1.2.840.10008.1.2.4.103",
                  "1.2.840.10008.1.2.4.104", "1.2.840.10008.1.2.4.105",
                  "1.2.840.10008.1.2.4.106"),
    "video/H265": ("1.2.840.10008.1.2.4.107", "1.2.840.10008.1.2.4.108"),
}
SYNTAX_MEDIA_TYPE: dict[str, str] = {
    syntax: media for media, syntaxes in PIXEL_MEDIA_TYPES.items() for syntax in syntaxes
    if media != "image/dicom-rle"}


class NotAcceptable(PharosError):
    """None of the acceptable media types can be served.

    400, as Orthanc's DICOMweb plugin answers (and its release tests check, e.g.
    ``test_accept_negotiation``), where PS3.18 8.7.1 would answer 406: a deliberate
    difference listed in the README, kept because Orthanc clients test for it.
    """

    orthanc_code, orthanc_message, http_status = 8, "Bad request", 400


class UnsupportedMediaType(PharosError):
    """PS3.18 10.5.3: the request body is of a media type the service does not take."""

    orthanc_code, orthanc_message, http_status = 8, "Bad request", 415


@dataclass(frozen=True)
class MediaRange:
    """One element of an Accept header: ``type/subtype`` plus lower-cased parameters."""

    media_type: str
    params: dict[str, str] = field(default_factory=dict)
    quality: float = 1.0

    @property
    def related_type(self) -> str | None:
        """The ``type`` parameter of a ``multipart/related`` range (lower case)."""
        value = self.params.get("type")
        return value.lower() if value else None

    @property
    def transfer_syntax(self) -> str | None:
        return self.params.get("transfer-syntax")

    def matches(self, media_type: str) -> bool:
        """Whether this range accepts the concrete *media_type* (``*/*``, ``image/*``...)."""
        if self.media_type == "*/*":
            return True
        main, _, sub = self.media_type.partition("/")
        other_main, _, other_sub = media_type.lower().partition("/")
        return main == other_main and (sub == "*" or sub == other_sub)


_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")


def _well_formed(params: dict[str, str]) -> bool:
    """A range with an empty parameter (``range=``) or a transfer syntax that is neither
    ``*`` nor a UID cannot be honoured: it is dropped (then 400 if nothing remains)."""
    if any(not value for value in params.values()):
        return False
    syntax = params.get("transfer-syntax")
    return syntax is None or syntax == ANY_SYNTAX or bool(_UID.match(syntax))


def parse_accept(values: Iterable[str]) -> list[MediaRange]:
    """Media ranges of one or more Accept values, best quality first (stable), q=0 and
    malformed ranges dropped."""
    ranges: list[MediaRange] = []
    for value in values:
        for item in split_header_list(value):
            media_type, params = parse_media_type(item)
            if not media_type or not _well_formed(params):
                continue
            if media_type == "*":  # some clients send a bare "*"
                media_type = "*/*"
            try:
                quality = float(params.pop("q", "1") or 1)
            except ValueError:
                quality = 1.0
            if quality > 0:
                ranges.append(MediaRange(media_type, params, quality))
    ranges.sort(key=lambda r: -r.quality)
    return ranges


def accept_ranges(request: Request) -> list[MediaRange]:
    """The acceptable media ranges: ``?accept=`` first (PS3.18 8.3.3.1), else the header.

    An absent or empty Accept means anything (RFC 7231 5.3.2): ``*/*``; one where every
    range is refused (q=0) or malformed is a 400.
    """
    query = [v for v in request.query_params.getlist("accept") if v.strip()]
    given = query or [v for v in request.headers.getlist("accept") if v.strip()]
    if not given:
        return [MediaRange("*/*")]
    ranges = parse_accept(given)
    if not ranges:
        raise NotAcceptable(f"No usable media type in Accept: {', '.join(given)!r}")
    return ranges


# --- choices per resource kind -----------------------------------------------------------

JSON_TYPES = ("application/dicom+json", "application/json")
XML_TYPES = ("application/dicom+xml", "application/xml", "text/xml")
DICOM_JSON = "application/dicom+json"
DICOM_XML = "application/dicom+xml"


def choose_json(ranges: Sequence[MediaRange], *, xml_part: bool = False,
                xml_bare: bool = False) -> str:
    """DICOM JSON or DICOM XML, for QIDO-RS, metadata and STOW-RS answers.

    JSON answers are always typed ``application/dicom+json`` (also when the client asked
    ``application/json``, as Orthanc's plugin answers). XML is chosen for
    ``multipart/related; type="application/dicom+xml"`` when *xml_part*, and for a bare
    ``application/dicom+xml`` (or ``application/xml``, ``text/xml``) when *xml_bare*.
    """
    for media_range in ranges:
        kind = media_range.media_type
        if kind == "multipart/related":
            if xml_part and media_range.related_type == DICOM_XML and \
                    media_range.transfer_syntax is None:  # metadata has no transfer syntax
                return DICOM_XML
            continue
        if kind in XML_TYPES:
            if xml_bare:
                return DICOM_XML
            continue
        if any(media_range.matches(candidate) for candidate in JSON_TYPES):
            return DICOM_JSON
    raise NotAcceptable("Cannot answer with any of the accepted media types "
                        f"({describe(ranges)}); this resource is available as "
                        "application/dicom+json" + (
                            ' or multipart/related; type="application/dicom+xml"'
                            if xml_part or xml_bare else ""))


def dicom_syntaxes(ranges: Sequence[MediaRange]) -> list[str]:
    """For WADO-RS instance retrieval: acceptable transfer syntaxes, best first.

    ``*`` means "as stored". Without a transfer-syntax parameter, Explicit VR Little
    Endian (PS3.18 8.7.3.5.2 since 2016c, and Orthanc's plugin since 1.5).
    """
    syntaxes: list[str] = []
    for media_range in ranges:
        kind = media_range.media_type
        if kind == "multipart/related":
            related = media_range.related_type
            if related not in (None, "application/dicom", "application/*", "*/*"):
                continue
        elif not media_range.matches("application/dicom"):
            continue
        syntax = media_range.transfer_syntax or EXPLICIT_VR_LITTLE_ENDIAN
        if syntax not in syntaxes:
            syntaxes.append(syntax)
    if not syntaxes:
        raise NotAcceptable(f"Cannot answer with any of the accepted media types "
                            f"({describe(ranges)}); instances are available as "
                            'multipart/related; type="application/dicom"')
    return syntaxes


def pick_syntax(stored: str, acceptable: Sequence[str]) -> str | None:
    """The transfer syntax to send an instance stored in *stored*, or None when none fits:
    the stored one (``*`` or asked), else the first acceptable syntax Pharos encodes."""
    for syntax in acceptable:
        if syntax == ANY_SYNTAX or syntax == stored:
            return stored
        if transcode.can_encode(syntax):
            return syntax
    return None


@dataclass(frozen=True)
class PixelChoice:
    """How to send frames or bulk pixel data: a media type and a transfer syntax."""

    media_type: str  # application/octet-stream, image/jpeg, ...
    transfer_syntax: str  # the syntax of the bytes sent


OCTET_STREAM = "application/octet-stream"


def choose_pixel(ranges: Sequence[MediaRange], stored: str) -> PixelChoice:
    """For frames and pixel bulk data (PS3.18 8.7.3.5.2, Table 8.7.3-5).

    ``application/octet-stream`` (also ``*/*``, or no Accept) is uncompressed, Explicit
    VR Little Endian unless another native syntax is asked; ``transfer-syntax=*`` (what
    OHIF sends) takes the stored frames as they are. An image or video media type is
    served in its default syntax, the stored one when it is one of the type's, or the
    asked one: stored frames are sent as they are, others are transcoded.
    """
    stored_media = SYNTAX_MEDIA_TYPE.get(stored)
    for media_range in ranges:
        kind = media_range.media_type
        if kind == "multipart/related":
            kind = media_range.related_type or OCTET_STREAM
        choice = _octet_choice(kind, media_range.transfer_syntax, stored) \
            if kind in ("*/*", "application/*", OCTET_STREAM) \
            else _image_choice(kind, media_range.transfer_syntax, stored, stored_media)
        if choice is not None:
            return choice
    raise NotAcceptable(f"Cannot answer with any of the accepted media types "
                        f"({describe(ranges)}); the pixel data is stored as {stored} and "
                        "available as application/octet-stream (uncompressed or stored "
                        f"syntax){' or ' + stored_media if stored_media else ''}")


def _octet_choice(kind: str, syntax: str | None, stored: str) -> PixelChoice | None:
    if syntax is None:
        return PixelChoice(OCTET_STREAM, EXPLICIT_VR_LITTLE_ENDIAN)
    if syntax == ANY_SYNTAX or (syntax == stored and stored not in UNCOMPRESSED):
        return _stored_choice(stored, OCTET_STREAM)
    if syntax in UNCOMPRESSED:
        return PixelChoice(OCTET_STREAM, syntax)
    return None


def _image_choice(kind: str, syntax: str | None, stored: str,
                  stored_media: str | None) -> PixelChoice | None:
    if kind in ("image/*", "video/*"):
        if stored_media is None or not MediaRange(kind).matches(stored_media):
            return None
        kind = stored_media
    candidates = PIXEL_MEDIA_TYPES.get(kind)
    if candidates is None:
        return None
    if syntax == ANY_SYNTAX:
        if stored not in candidates:
            return None
        syntax = stored
    syntax = syntax or candidates[0]
    if syntax not in candidates:
        return None
    if syntax == stored or transcode.can_encode(syntax):
        return PixelChoice(kind, syntax)
    return None


def _stored_choice(stored: str, media_type: str) -> PixelChoice:
    """The stored frames as they are; native syntaxes are always sent little endian."""
    if stored not in SYNTAX_MEDIA_TYPE:
        return PixelChoice(OCTET_STREAM, EXPLICIT_VR_LITTLE_ENDIAN)
    return PixelChoice(media_type, stored)


RENDERED_TYPES = ("image/jpeg", "image/png", "image/gif")


def choose_rendered(ranges: Sequence[MediaRange]) -> str:
    """For rendered and thumbnail resources (PS3.18 8.7.4): JPEG by default, or PNG."""
    for media_range in ranges:
        kind = media_range.media_type
        if kind == "multipart/related":
            kind = media_range.related_type or "*/*"
        for candidate in ("image/jpeg", "image/png"):
            if MediaRange(kind).matches(candidate):
                return candidate
    raise NotAcceptable(f"Cannot answer with any of the accepted media types "
                        f"({describe(ranges)}); rendered images are available as image/jpeg "
                        "or image/png")


def choose_bulk(ranges: Sequence[MediaRange]) -> None:
    """For non-pixel bulk data: application/octet-stream (PS3.18 8.7.3.3.1)."""
    for media_range in ranges:
        kind = media_range.media_type
        if kind == "multipart/related":
            kind = media_range.related_type or "application/octet-stream"
        if MediaRange(kind).matches("application/octet-stream"):
            return
    raise NotAcceptable(f"Cannot answer with any of the accepted media types "
                        f"({describe(ranges)}); bulk data is available as "
                        'multipart/related; type="application/octet-stream"')


def describe(ranges: Sequence[MediaRange]) -> str:
    return ", ".join(r.media_type + "".join(f"; {k}={v}" for k, v in r.params.items())
                     for r in ranges) or "none"
