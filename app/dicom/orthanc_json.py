"""Orthanc's JSON views of a dataset: ``/tags`` (full), ``?short``, ``?simplify``, ``/header``.

This module reproduces, from the bytes pydicom read, what Orthanc 1.10.1 (DCMTK 3.6.7)
answers.  The rules below come from Orthanc's ``FromDcmtkBridge::DatasetToJson`` /
``ConvertLeafElement`` / ``Toolbox::ConvertToUtf8`` and were checked against a running
Orthanc 1.10.1 on the whole test corpus.

Which elements appear in ``/tags`` (``DicomToJsonFlags_Default``: private, unknown and
binary elements included, binary converted to null, stop after PixelData):

* every element of the dataset, in tag order, except (fffc,fffc) which DCMTK drops; at
  the top level nothing after PixelData (7fe0,0010) is shown;
* sequences are ``{"Type": "Sequence", "Value": [item, ...]}``, items in the same format;
* private elements whose creator is known carry ``"PrivateCreator"`` (JsonCpp sorts the
  keys: Name, PrivateCreator, Type, Value).

Leaf values (``ConvertLeafElement``):

* text VRs (AE AS CS DA DS DT IS LO LT PN SH ST TM UC UI UR UT): the bytes as stored
  (DS and IS are *not* reformatted), trailing padding removed (spaces, or NULs for UI),
  then cut at the first NUL (C string), then converted to UTF-8 with the dataset's
  character set; multi-values stay ``a\\b``; leading spaces, tabs and CR/LF are kept;
* US SS UL SL FL FD: the numbers (``boost::lexical_cast``, i.e. ``%.17g`` for FL and FD),
  joined with ``\\``; a value shorter than one number (empty) is ``Null``;
* AT: ``gggg,eeee`` of the first value;
* UN: a ``String`` of the raw bytes if the dictionary knows the tag (with its private
  creator) as a text VR and the bytes are printable ASCII, else ``Null``;
* OF, OD, OL (Orthanc 1.12.11+): the numbers, as FL, FD and UL;
* OB, OW, OV, SV, UV, PixelData, and implicit VR "xs"/"lt"/"ox" elements
  (except the xs tags that ``DcmItem::checkAndUpdateVR`` resolves with PixelRepresentation
  of the same item): ``Null``;
* a value of more than 256 UTF-8 bytes is ``{"Type": "TooLong", "Value": null}``.

``/header`` (``DicomToJsonFlags_None``): the meta header without binary elements (so
without (0002,0001)) nor unknown tags, no length limit, ASCII charset.

``?short`` / ``?simplify`` (``Toolbox::SimplifyDicomAsJson``): ``String`` values as is,
``Null``/``TooLong``/``Binary`` as null; ``?simplify`` keys are the names, sorted, the
last tag winning when two share a name (e.g. ``Unknown Tag & Data``).

MainDicomTags (``ExtractDicomSummary``, :func:`decode_value`): the same strings; values
that are null or longer than 256 UTF-8 bytes are not stored (checked on Orthanc).

Character sets (``FromDcmtkBridge::DetectEncoding``): only the *first non-empty* term of
SpecificCharacterSet (0008,0005) of the top-level dataset chooses one decoder for every
string of the dataset (nested items included); an unsupported term gives ASCII (only
printable 7-bit characters and LF kept); no SpecificCharacterSet gives Orthanc's
``DefaultEncoding`` (Latin1).  With several terms (ISO 2022 code extensions) the decoded
text is then stripped of ISO 2022 escape sequences and shift codes.  ICU's Shift_JIS
(ISO_IR 13) maps 0x5C to YEN SIGN, so even the value separators became ``¥`` up to Orthanc
1.12.8; from 1.12.9 on (and so in Pharos, which answers as a later version) 0x5C stays a
backslash (JIS X 0201 Roman is only used for the 8-bit half).

Names are those of DCMTK's dictionaries (``dicom.dic`` and ``private.dic``, which Orthanc
1.10.1 loads from ``/usr/share/libdcmtk17``), patched by Orthanc's
``DicomTag::GetMainTagsName`` (e.g. ``OtherPatientIDs`` instead of
``RETIRED_OtherPatientIDs``): ``RETIRED_StudyComments``, ``PrivateCreator``,
``GenericGroupLength``, names of private tags found through their private creator, and
``Unknown Tag & Data`` otherwise.  The files are looked up in ``PHAROS_DCMTK_DICT_DIR``,
in a ``dcmtk`` directory next to this module, then in ``/usr/share/libdcmtk*``; without
them we fall back to pydicom's keywords (identical for almost every current standard
tag, but private tags are then ``Unknown Tag & Data`` and retired tags lack the
``RETIRED_`` prefix).

Values are computed from pydicom's *raw* elements (``Dataset.get_item``), which is what a
dataset freshly read with ``pydicom.dcmread`` holds until ``ds[...]``/``ds.Keyword``
converts them.  Already converted elements (datasets built in memory) are rendered from
their Python values: the same strings, except that pydicom has already decoded the text
with its own (more correct) character set handling.

Checked against Orthanc 1.10.1 on the 201 DICOM files of the test corpus (plus synthetic
files, see ``tests/unit/test_orthanc_json.py``): everything matches except

* ``TransferSyntaxes/1.2.840.10008.1.2.4.50.dcm``: its meta header group length (172)
  also covers (0008,0000), which DCMTK therefore puts in ``/header`` and not in
  ``/tags``; pydicom reads the meta header by group number (not reproduced, malformed
  file);
* text bytes invalid in the declared character set are dropped by Python's codecs where
  ICU (boost::locale) may drop or replace them differently (no case in the corpus).
"""

from __future__ import annotations

import glob
import logging
import os
import re
import struct
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydicom.datadict import keyword_for_tag
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence

from app import orthanc_api_at_least
from app.dicom import dictionary as user_dictionary

log = logging.getLogger(__name__)

MAX_STRING_LENGTH = 256
PIXEL_DATA = 0x7FE00010
SPECIFIC_CHARACTER_SET = 0x00080005
UNKNOWN_NAME = "Unknown Tag & Data"

TRAILING_PADDING = 0xFFFCFFFC
# DCMTK's IsBinaryTag(): left out of /header (shown as Null in /tags).
BINARY_VRS = frozenset({"OB", "OW", "UN", "ox", "OB or OW", "px"})
# Implicit VR "xs" tags that DcmItem::checkAndUpdateVR() turns into US/SS.
_XS_BY_PIXEL_REPRESENTATION = frozenset({
    0x00280120, 0x00280121, 0x00603004, 0x00603006, 0x00189810,
    0x00280106, 0x00280107, 0x00280108, 0x00280109, 0x00283002, 0x00409211, 0x00409216})
_ASCII_BYTES = re.compile(rb"[\n\x20-\x7e]*")
TEXT_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST",
                      "TM", "UC", "UI", "UR", "UT"})
_NUMBER_FORMATS = {"US": ("H", None), "SS": ("h", None), "UL": ("L", None),
                   "SL": ("l", None), "FL": ("f", ".17g"), "FD": ("d", ".17g")}
if orthanc_api_at_least(1, 12, 11):
    # Orthanc 1.12.11: OF, OD and OL values are shown as their numbers, as FL, FD and UL.
    _NUMBER_FORMATS.update({"OF": ("f", ".17g"), "OD": ("d", ".17g"), "OL": ("L", None)})

# --------------------------------------------------------------------------------------
# Character sets
# --------------------------------------------------------------------------------------

ASCII = "ascii"  # Orthanc's Encoding_Ascii: keep printable 7-bit characters and "\n"
DEFAULT_ENCODING = "latin_1"  # Orthanc's "DefaultEncoding": "Latin1"
_default_encoding_source: Callable[[], str] | None = None


def set_default_encoding_source(source: Callable[[], str] | None) -> None:
    """Where :func:`default_encoding` reads the codec (the server's runtime setting,
    ``PUT /tools/default-encoding``, shared by every process); None: Latin1."""
    global _default_encoding_source
    _default_encoding_source = source


def default_encoding() -> str:
    """The codec of strings in data sets without SpecificCharacterSet (Orthanc's
    ``GetDefaultDicomEncoding``)."""
    source = _default_encoding_source
    if source is None:
        return DEFAULT_ENCODING
    try:
        return source()
    except Exception:  # noqa: BLE001 - decoding must never fail for this
        log.exception("Cannot read the default encoding; using Latin1")
        return DEFAULT_ENCODING

_DICOM_ENCODINGS = {
    "ISO_IR 6": ASCII, "ISO 2022 IR 6": ASCII,
    "ISO_IR 192": "utf_8",
    "ISO_IR 100": "latin_1", "ISO 2022 IR 100": "latin_1",
    "ISO_IR 101": "iso8859_2", "ISO 2022 IR 101": "iso8859_2",
    "ISO_IR 109": "iso8859_3", "ISO 2022 IR 109": "iso8859_3",
    "ISO_IR 110": "iso8859_4", "ISO 2022 IR 110": "iso8859_4",
    "ISO_IR 148": "iso8859_9", "ISO 2022 IR 148": "iso8859_9",
    "ISO_IR 144": "iso8859_5", "ISO 2022 IR 144": "iso8859_5",
    "ISO_IR 127": "iso8859_6", "ISO 2022 IR 127": "iso8859_6",
    "ISO_IR 126": "iso8859_7", "ISO 2022 IR 126": "iso8859_7",
    "ISO_IR 138": "iso8859_8", "ISO 2022 IR 138": "iso8859_8",
    "ISO_IR 166": "tis_620", "ISO 2022 IR 166": "tis_620",
    "ISO_IR 13": "shift_jis", "ISO 2022 IR 13": "shift_jis",
    "GB18030": "gb18030", "GBK": "gb18030",
    "ISO 2022 IR 149": "euc_kr",
    "ISO 2022 IR 87": "iso2022_jp",
    "ISO 2022 IR 58": "gb2312",
}

_ISO2022_CONTROLS = re.compile(
    "[\x0e\x0f]|\x1b[\x6e\x6f\x4e\x4f\x7c\x7d\x7e]|[\x8e\x8f]\x1b[\x4e\x4f]"
    "|\x1b[\x20-\x2f]+[\x30-\x7f]")
_NOT_ASCII = re.compile("[^\n\x20-\x7e]+")


def charset_of(value: Any) -> tuple[str, bool]:
    """Orthanc's (encoding, has code extensions) for a SpecificCharacterSet value.

    *value* is the raw bytes, a string (``a\\b``), a list of terms, or None (absent).
    The encoding is a Python codec name, or ``ASCII`` for Orthanc's ASCII filter.
    """
    if value is None:
        return default_encoding(), False
    if isinstance(value, bytes | bytearray):
        value = _c_string(bytes(value)).decode("latin_1")
    if isinstance(value, str):
        terms = value.split("\\")
    else:
        terms = [str(term) for term in value]
    extensions = len(terms) > 1
    for term in terms:
        term = term.strip().upper().replace("ISO_IR_", "ISO_IR ").replace(
            "ISO_2022_IR_", "ISO 2022 IR ")
        if term:
            return _DICOM_ENCODINGS.get(term, ASCII), extensions
    return default_encoding(), extensions


def dataset_charset(ds: Dataset) -> tuple[str, bool]:
    """The (encoding, code extensions) Orthanc uses for every string of *ds*."""
    elem = ds.get_item(SPECIFIC_CHARACTER_SET) if SPECIFIC_CHARACTER_SET in ds else None
    if elem is None:
        return default_encoding(), False
    value = elem.value
    if value is None or value == b"" or value == "":
        return default_encoding(), False
    return charset_of(value)


def _to_utf8(data: bytes, charset: tuple[str, bool]) -> str:
    encoding, extensions = charset
    if encoding == ASCII:
        return _NOT_ASCII.sub("", data.decode("latin_1"))
    text = data.decode(encoding, "ignore")
    if encoding == "shift_jis" and not orthanc_api_at_least(1, 12, 9):
        # ICU's Shift_JIS of Orthanc <= 1.12.8: JIS X 0201 Roman in the 7-bit half
        text = text.replace("\\", "\u00a5").replace("~", "\u203e")
    if extensions:
        text = _ISO2022_CONTROLS.sub("", text)
    return text


def _c_string(data: bytes) -> bytes:
    cut = data.find(b"\0")
    return data if cut < 0 else data[:cut]


# --------------------------------------------------------------------------------------
# DCMTK dictionaries
# --------------------------------------------------------------------------------------

_RANGE = re.compile(r"^([0-9A-Fa-f]{2,4})(?:-([oeuOEU])-([0-9A-Fa-f]{4})|-([0-9A-Fa-f]{4}))?$")


def _parse_range(text: str) -> tuple[int, int, str]:
    match = _RANGE.match(text.strip())
    if match is None:
        raise ValueError(text)
    low = int(match.group(1), 16)
    if match.group(3):
        return low, int(match.group(3), 16), match.group(2).lower()
    if match.group(4):
        return low, int(match.group(4), 16), "e"
    return low, low, "u"


def _in_range(value: int, low: int, high: int, restriction: str) -> bool:
    if value < low or value > high:
        return False
    if restriction == "o":
        return value % 2 == 1
    if restriction == "e":
        return value % 2 == 0
    return True


class _Dictionary:
    """DCMTK's data dictionary: exact entries, then repeating ranges (narrowest first)."""

    def __init__(self) -> None:
        self.exact: dict[tuple[str | None, int], tuple[str, str]] = {}
        self.repeating: list[tuple[Any, ...]] = []
        self.loaded = False

    def load(self, path: Path) -> None:
        with open(path, encoding="latin_1") as handle:
            for line in handle:
                if not line.strip() or line.startswith("#"):
                    continue
                fields = line.rstrip("\n").split("\t")
                if len(fields) < 3:
                    continue
                # DCMTK strips every whitespace of the fields (but not of private creators)
                key, vr, name = fields[0].strip(), fields[1].strip(), "".join(fields[2].split())
                inner = key[1:-1]
                creator: str | None = None
                if '"' in inner:
                    first = inner.index('"')
                    last = inner.rindex('"')
                    creator = inner[first + 1:last]
                    group_text = inner[:first].rstrip(",")
                    elem_text = inner[last + 1:].lstrip(",")
                else:
                    group_text, elem_text = inner.split(",")
                try:
                    g_lo, g_hi, g_r = _parse_range(group_text)
                    e_lo, e_hi, e_r = _parse_range(elem_text)
                except ValueError:
                    continue
                if g_lo == g_hi and e_lo == e_hi:
                    self.exact[(creator, (g_lo << 16) | e_lo)] = (vr, name)
                else:
                    span = (g_hi - g_lo + 1) * (e_hi - e_lo + 1)
                    self.repeating.append((span, len(self.repeating), creator, g_lo, g_hi, g_r,
                                           e_lo, e_hi, e_r, vr, name))
        self.repeating.sort()
        self.loaded = True

    def lookup(self, tag: int, creator: str | None) -> tuple[str, str] | None:
        entry = self.exact.get((creator, tag))
        if entry is None and creator is not None:
            entry = self.exact.get((creator, tag & 0xFFFF00FF))
        if entry is not None:
            return entry
        group, element = tag >> 16, tag & 0xFFFF
        for item in self.repeating:
            if item[2] != creator:
                continue
            if _in_range(group, item[3], item[4], item[5]) and (
                    _in_range(element, item[6], item[7], item[8])
                    or (creator is not None and _in_range(element & 0xFF, *item[6:9]))):
                return item[9], item[10]
        return None


def _dictionary_dirs() -> list[Path]:
    dirs = []
    env = os.environ.get("PHAROS_DCMTK_DICT_DIR")
    if env:
        dirs.append(Path(env))
    dirs.append(Path(__file__).with_name("dcmtk"))
    dirs.extend(Path(p) for p in sorted(glob.glob("/usr/share/libdcmtk*"), reverse=True))
    dirs.append(Path("/usr/share/dcmtk"))
    return dirs


@lru_cache(maxsize=1)
def _dictionary() -> _Dictionary:
    dictionary = _Dictionary()
    for directory in _dictionary_dirs():
        if (directory / "dicom.dic").is_file():
            dictionary.load(directory / "dicom.dic")
            if (directory / "private.dic").is_file():
                dictionary.load(directory / "private.dic")
            break
    return dictionary


# Orthanc's DicomTag::GetMainTagsName(): names that win over the dictionary's.
_MAIN_TAG_NAMES = {
    0x00080050: "AccessionNumber", 0x00080018: "SOPInstanceUID", 0x00100020: "PatientID",
    0x0020000E: "SeriesInstanceUID", 0x0020000D: "StudyInstanceUID", 0x7FE00010: "PixelData",
    0x00541330: "ImageIndex", 0x00200013: "InstanceNumber", 0x00540081: "NumberOfSlices",
    0x00280008: "NumberOfFrames", 0x00181090: "CardiacNumberOfImages",
    0x00201002: "ImagesInAcquisition", 0x00100010: "PatientName",
    0x00200032: "ImagePositionPatient", 0x00200037: "ImageOrientationPatient",
    0x00101000: "OtherPatientIDs",
}


@lru_cache(maxsize=4096)
def _entry(tag: int, creator: str | None) -> tuple[str | None, str]:
    """(dictionary VR or None, Orthanc's name) of *tag* with its private creator.

    Entries of the ``Dictionary`` configuration option come first (:mod:`app.dicom.dictionary`).
    """
    registered = user_dictionary.lookup(tag, creator)
    if registered is not None:
        return registered.vr, registered.name
    dictionary = _dictionary()
    if dictionary.loaded:
        entry = dictionary.lookup(tag, creator)
        if entry is None:
            return None, UNKNOWN_NAME
        if tag in _MAIN_TAG_NAMES:
            return entry[0], _MAIN_TAG_NAMES[tag]
        return entry
    if tag >> 16 & 1:
        if tag & 0xFFFF == 0:
            return "UL", "PrivateGroupLength"
        if 0x10 <= tag & 0xFFFF <= 0xFF:
            return "LO", "PrivateCreator"
        return None, UNKNOWN_NAME
    if tag & 0xFFFF == 0:
        return "UL", "GenericGroupLength"
    from pydicom.datadict import dictionary_VR
    try:
        return dictionary_VR(tag), keyword_for_tag(tag) or UNKNOWN_NAME
    except KeyError:
        return None, UNKNOWN_NAME


def forget_cached_entries() -> None:
    """Called when the ``Dictionary`` option registers tags: names and VRs may change."""
    _entry.cache_clear()


def tag_name(tag: int, private_creator: str | None = None) -> str:
    """Orthanc's ``Name`` of a tag (DCMTK dictionary name, ``Unknown Tag & Data``)."""
    return _entry(int(tag), private_creator)[1]


def format_tag(tag: int) -> str:
    return f"{tag >> 16:04x},{tag & 0xFFFF:04x}"


# --------------------------------------------------------------------------------------
# Leaf values
# --------------------------------------------------------------------------------------

NULL = object()  # Orthanc's DicomValue "null" (Type "Null")


def _text_from_bytes(data: bytes, vr: str, charset: tuple[str, bool]) -> str:
    pad = b"\0" if vr == "UI" else b" "
    data = _c_string(data.rstrip(pad))
    if not data:
        return ""
    if data.isascii() and charset[0] not in (ASCII, "shift_jis") and not charset[1]:
        return data.decode("ascii")
    return _to_utf8(data, charset)


def _numbers_from_bytes(data: bytes, vr: str, little_endian: bool) -> Any:
    code, fmt = _NUMBER_FORMATS[vr]
    size = struct.calcsize("<" + code)
    if len(data) < size:
        return NULL
    count = len(data) // size if len(data) % size == 0 else 1
    values = struct.unpack(("<" if little_endian else ">") + code * count, data[:size * count])
    return "\\".join(_format_number(v, fmt) for v in values)


def _format_number(value: Any, fmt: str | None) -> str:
    if fmt is None:
        return str(int(value))
    if value != value:  # NaN
        return "-nan" if str(value).startswith("-") else "nan"
    if value in (float("inf"), float("-inf")):
        return "inf" if value > 0 else "-inf"
    return format(value, fmt)


def _leaf_from_raw(raw: RawDataElement, vr: str, charset: tuple[str, bool]) -> Any:
    data = raw.value
    if data is None:
        data = b""
    if vr in TEXT_VRS:
        return _text_from_bytes(data, vr, charset)
    if vr in _NUMBER_FORMATS:
        return _numbers_from_bytes(data, vr, raw.is_little_endian)
    if vr == "AT":
        if len(data) < 4:
            return NULL
        group, element = struct.unpack("<HH" if raw.is_little_endian else ">HH", data[:4])
        return f"{group:04x},{element:04x}"
    return NULL


def _leaf_from_value(elem: DataElement, vr: str, charset: tuple[str, bool]) -> Any:
    value = elem.value
    if vr in TEXT_VRS:
        if value is None:
            return ""
        if isinstance(value, bytes):
            return _text_from_bytes(value, vr, charset)
        items = value if isinstance(value, MultiValue | list | tuple) else [value]
        text = "\\".join(_text_item(v) for v in items)
        text = text.rstrip("\0" if vr == "UI" else " ")
        cut = text.find("\0")
        text = text if cut < 0 else text[:cut]
        if charset[0] == ASCII:
            text = _NOT_ASCII.sub("", text)
        elif charset[0] == "shift_jis" and not orthanc_api_at_least(1, 12, 9):
            text = text.replace("\\", "\u00a5").replace("~", "\u203e")
        return text
    if vr in _NUMBER_FORMATS:
        if value is None or value == b"":
            return NULL
        if isinstance(value, bytes):
            return _numbers_from_bytes(value, vr, True)
        items = value if isinstance(value, MultiValue | list | tuple) else [value]
        if not items:
            return NULL
        fmt = _NUMBER_FORMATS[vr][1]
        if vr == "FL":
            items = [struct.unpack("<f", struct.pack("<f", v))[0] for v in items]
        return "\\".join(_format_number(v, fmt) for v in items)
    if vr == "AT":
        if value is None:
            return NULL
        items = value if isinstance(value, MultiValue | list | tuple) else [value]
        if not items:
            return NULL
        return format_tag(int(items[0]))
    return NULL


def _text_item(value: Any) -> str:
    if value is None:
        return ""
    original = getattr(value, "original_string", None)
    if isinstance(original, str):
        return original
    if isinstance(value, bytes):
        return value.decode("latin_1")
    return str(value)


def _unknown_vr_text(data: bytes, tag: int, creator: str | None) -> Any:
    """UN element: a string if the dictionary says so and the bytes (up to the first NUL,
    as a C string) are plain ASCII; the value is kept with its padding otherwise."""
    data = _c_string(data)
    dict_vr = _entry(tag, creator)[0]
    if dict_vr not in TEXT_VRS or not _ASCII_BYTES.fullmatch(data):
        return NULL
    return data.decode("ascii")


def _leaf(elem: DataElement | RawDataElement, vr: str, creator: str | None,
          charset: tuple[str, bool]) -> Any:
    """Orthanc's ConvertLeafElement(): a str, or NULL."""
    if isinstance(elem, RawDataElement):
        if vr == "UN":
            return _unknown_vr_text(elem.value or b"", int(elem.tag), creator)
        return _leaf_from_raw(elem, vr, charset)
    if vr == "UN":
        value = elem.value
        if isinstance(value, bytes):
            return _unknown_vr_text(value, int(elem.tag), creator)
        return NULL
    return _leaf_from_value(elem, vr, charset)


def _resolve_vr(item: Dataset, elem: DataElement | RawDataElement, tag: int,
                dict_vr: str | None) -> str:
    """The VR DCMTK gives an element: the file's, or (implicit VR) the dictionary's."""
    vr = elem.VR
    if vr is None:
        vr = dict_vr or "UN"
        if vr == "xs" and tag in _XS_BY_PIXEL_REPRESENTATION:
            # DcmItem::checkAndUpdateVR(), from PixelRepresentation of the same item
            representation = _pixel_representation(item)
            if representation is not None:
                vr = "SS" if representation == 1 else "US"
    return str(vr)


def decode_value(elem: DataElement | RawDataElement, *,
                 charset: tuple[str, bool] | None = None,
                 max_length: int = MAX_STRING_LENGTH,
                 private_creator: str | None = None) -> str | None:
    """Orthanc's string for a leaf element, as stored in its MainDicomTags.

    None when Orthanc has no string: binary VRs, sequences, "Null" values (e.g. an empty
    US) and, as Orthanc's ``ExtractDicomSummary``, values longer than *max_length* UTF-8
    bytes (0: no limit).  *charset* comes from :func:`dataset_charset` of the top-level
    dataset; without it, Latin1 (Orthanc's default) is assumed for raw elements.
    Pass raw elements (``ds.get_item(tag)`` before any ``ds[tag]``) for exact results.
    """
    tag = int(elem.tag)
    vr = elem.VR
    if vr is None:
        vr = _entry(tag, private_creator)[0] or "UN"
    if vr == "SQ" or tag == PIXEL_DATA:
        return None
    value = _leaf(elem, vr, private_creator, charset or (default_encoding(), False))
    if value is NULL:
        return None
    if _too_long(value, max_length):
        return None
    return str(value)


# --------------------------------------------------------------------------------------
# Datasets
# --------------------------------------------------------------------------------------


def _private_creator_of(item: Dataset, tag: int, creators: dict[int, str | None]) -> str | None:
    group = tag >> 16
    if not group & 1 or group <= 7 or group == 0xFFFF:
        return None
    element = tag & 0xFFFF
    if element < 0x1000:
        return None
    block = (group << 16) | (element >> 8)
    if block not in creators:
        creator = None
        if block in item:
            elem = item.get_item(block)
            value = elem.value
            if isinstance(elem, RawDataElement):
                raw = _c_string((value or b"").rstrip(b" "))
                creator = raw.decode("latin_1") if raw else None
            elif value is not None:
                creator = str(value).rstrip(" ") or None
        creators[block] = creator
    return creators[block]


def _too_long(value: str, max_length: int) -> bool:
    """More than *max_length* UTF-8 bytes (0: no limit)."""
    if not max_length or len(value) * 4 <= max_length:
        return False
    return len(value) > max_length or len(value.encode("utf-8")) > max_length


def _item_to_json(item: Dataset, charset: tuple[str, bool], max_length: int,
                  stop_after_pixels: bool, header: bool = False,
                  ignore_length: frozenset[int] = frozenset()) -> dict[str, Any]:
    out: dict[str, Any] = {}
    creators: dict[int, str | None] = {}
    for item_tag in sorted(item.keys()):
        tag = int(item_tag)
        if stop_after_pixels and tag > PIXEL_DATA:
            break  # DicomToJsonFlags_StopAfterPixelData
        if tag == TRAILING_PADDING:
            continue  # DCMTK drops (fffc,fffc) while reading
        elem = item.get_item(tag)
        creator = _private_creator_of(item, tag, creators)
        dict_vr, name = _entry(tag, creator)
        vr = _resolve_vr(item, elem, tag, dict_vr)
        key = format_tag(tag)
        if vr == "SQ" or (isinstance(elem, DataElement) and isinstance(elem.value, Sequence)):
            if isinstance(elem, RawDataElement):
                elem = item[tag]
            out[key] = {"Name": name, "Type": "Sequence", "Value": [
                _item_to_json(child, charset, max_length, False, ignore_length=ignore_length)
                for child in (elem.value or [])]}
            continue
        if header and (vr in BINARY_VRS or dict_vr is None and name == UNKNOWN_NAME):
            continue  # /header uses DicomToJsonFlags_None: no binary, no unknown tags
        value: Any = NULL if tag == PIXEL_DATA else _leaf(elem, vr, creator, charset)
        if value is NULL:
            out[key] = _leaf_node(name, creator, "Null", None)
        elif tag not in ignore_length and _too_long(value, max_length):
            out[key] = _leaf_node(name, creator, "TooLong", None)
        else:
            out[key] = _leaf_node(name, creator, "String", value)
    return out


def _leaf_node(name: str, creator: str | None, kind: str, value: Any) -> dict[str, Any]:
    if creator is None:
        return {"Name": name, "Type": kind, "Value": value}
    return {"Name": name, "PrivateCreator": creator, "Type": kind, "Value": value}


def _pixel_representation(item: Dataset) -> int | None:
    if 0x00280103 not in item:
        return None
    elem = item.get_item(0x00280103)
    value = elem.value
    if isinstance(value, bytes):
        if len(value) < 2:
            return None
        little = elem.is_little_endian if isinstance(elem, RawDataElement) else True
        return int(struct.unpack("<H" if little else ">H", value[:2])[0])
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def dataset_to_json(ds: Dataset, *, max_length: int = MAX_STRING_LENGTH,
                    ignore_length: frozenset[int] = frozenset(),
                    whole: bool = False) -> dict[str, Any]:
    """The ``full`` format of ``/instances/{id}/tags``: ``{"gggg,eeee": {Name, Type, Value}}``.

    Private elements whose creator is known also carry ``"PrivateCreator"``.  The tags of
    *ignore_length* (``?ignore-length=``) are given whatever their length.  *whole*
    (``?whole``, Orthanc 1.12.4) also gives the top-level tags after the pixel data.
    """
    return _item_to_json(ds, dataset_charset(ds), max_length, not whole,
                         ignore_length=ignore_length)


def header_json(file_meta: Dataset | None) -> dict[str, Any]:
    """``/instances/{id}/header``: the meta header (group 0002) in the ``full`` format."""
    if file_meta is None:
        return {}
    return _item_to_json(file_meta, (ASCII, False), 0, False, header=True)


def to_short(full: dict[str, Any]) -> dict[str, Any]:
    """``?short``: tag keys, plain values (null for Null, TooLong and Binary)."""
    out: dict[str, Any] = {}
    for key, node in full.items():
        kind = node["Type"]
        if kind == "Sequence":
            out[key] = [to_short(item) for item in node["Value"]]
        elif kind == "String":
            out[key] = node["Value"]
        else:
            out[key] = None
    return out


def to_simplified(full: dict[str, Any]) -> dict[str, Any]:
    """``?simplify``: names as keys (sorted as JsonCpp does; the last tag wins a clash)."""
    out: dict[str, Any] = {}
    for key in sorted(full):
        node = full[key]
        kind = node["Type"]
        if kind == "Sequence":
            out[node["Name"]] = [to_simplified(item) for item in node["Value"]]
        elif kind == "String":
            out[node["Name"]] = node["Value"]
        else:
            out[node["Name"]] = None
    return dict(sorted(out.items()))


# Keys of a resource's JSON that hold tags by keyword (GET /{level}/{id}, ?expand, find).
RESOURCE_TAG_KEYS = ("MainDicomTags", "PatientMainDicomTags", "RequestedTags")


def format_resource_tags(resource: Any, fmt: str) -> Any:
    """A resource's JSON (or a list of them) in Orthanc's tag format (1.9.4+).

    ``simplify`` (the default of the resource routes) keeps keywords; ``short`` gives
    ``{"gggg,eeee": value}`` and ``full`` ``{"gggg,eeee": {Name, Type, Value}}``, as
    Orthanc's ``?short`` / ``?full`` on ``/patients/{id}``, ``?expand`` lists and relatives.
    """
    if fmt == "simplify":
        return resource
    if isinstance(resource, list):
        return [format_resource_tags(item, fmt) for item in resource]
    if not isinstance(resource, dict):
        return resource
    out = dict(resource)
    for key in RESOURCE_TAG_KEYS:
        tags = out.get(key)
        if isinstance(tags, dict):
            out[key] = _keyword_tags_as(tags, fmt)
    return out


def _keyword_tags_as(tags: dict[str, Any], fmt: str) -> dict[str, Any]:
    from pydicom.datadict import tag_for_keyword

    out: dict[str, Any] = {}
    for keyword, value in tags.items():
        number = tag_for_keyword(keyword)
        if number is None:
            registered = user_dictionary.find_name(keyword)
            number = registered.tag if registered is not None else None
        key = format_tag(number) if number is not None else keyword
        if fmt == "short":
            out[key] = value
        else:
            kind = "String" if isinstance(value, str) else (
                "Sequence" if isinstance(value, list) else "Null")
            out[key] = {"Name": keyword, "Type": kind, "Value": value}
    return dict(sorted(out.items()))
