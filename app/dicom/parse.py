"""Parse one DICOM file once, extracting everything the index needs.

``parse_instance`` is the single place where ingest reads a dataset: identifiers, main
tags per level (Orthanc's strings), the DICOM JSON without bulk data (PS3.18 F) that
WADO-RS metadata and QIDO-RS answer from, and the facts Orthanc keeps as metadata.
"""

from __future__ import annotations

import io
import re
import struct
from dataclasses import dataclass
from typing import Any, BinaryIO

import orjson
import pydicom
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from app import orthanc_api_at_least
from app.dicom import fast_json
from app.dicom.identifiers import ResourceIds
from app.dicom.levels import Level
from app.dicom.limits import check_deflated_dataset
from app.dicom.orthanc_json import dataset_charset, dataset_to_json, decode_value
from app.dicom.tags import MAIN_TAGS
from app.errors import BadFileFormat, MissingRequiredTag, PharosError

# Binary elements (OB, OW, OF, OD, OL, OV, UN) longer than this are replaced by a
# BulkDataURI in the stored DICOM JSON: all non-empty ones, as Orthanc's DICOMweb plugin
# writes its WADO-RS metadata (PS3.18 F.2.6 leaves the choice to the origin server).
BULK_DATA_THRESHOLD = 0
BULK_DATA_MARKER = "bulk:"


@dataclass(slots=True)
class ParsedInstance:
    ids: ResourceIds
    patient_id: str
    study_uid: str
    series_uid: str
    sop_uid: str
    sop_class_uid: str
    transfer_syntax: str
    main_tags: dict[Level, dict[str, str]]
    dicom_json: bytes
    index_in_series: int | None
    expected_instances: int | None
    # Orthanc's "IndexInSeries" metadata: the stripped InstanceNumber (else ImageIndex) text.
    index_in_series_text: str | None = None
    # Orthanc's "PixelDataOffset" metadata (1.9.1+): file offset of the top-level (7fe0,0010).
    pixel_data_offset: int | None = None
    # Orthanc's "PixelDataVR" metadata (1.12.1+): the VR of PixelData when not the expected one.
    pixel_data_vr: str | None = None
    # Orthanc's "MainDicomSequences" metadata of a new series (1.12.5+, where the series
    # main tags include RequestAttributesSequence): {"Version": 1, "Sequences": {...}}.
    series_sequences: str | None = None

    def tag(self, level: Level, keyword: str) -> str | None:
        return self.main_tags[level].get(keyword)


def read_dataset(data: bytes | io.BufferedIOBase | BinaryIO, *,
                 stop_before_pixels: bool = False) -> Dataset:
    """Read a DICOM Part 10 stream, or a bare dataset as DCMTK does; BadFileFormat otherwise.

    A deflated dataset is first measured against ``MaxInflatedSize`` (app.dicom.limits):
    pydicom would inflate all of it in memory."""
    if isinstance(data, bytes | bytearray | memoryview):
        check_deflated_dataset(data)
    stream = io.BytesIO(data) if isinstance(data, bytes | bytearray | memoryview) else data
    try:
        ds = pydicom.dcmread(stream, stop_before_pixels=stop_before_pixels)
    except InvalidDicomError:
        stream.seek(0)
        try:
            ds = pydicom.dcmread(stream, force=True, stop_before_pixels=stop_before_pixels)
        except Exception as error:  # noqa: BLE001 — any parser failure is a bad file
            raise BadFileFormat(f"Cannot parse an invalid DICOM file: {error}") from error
        if "SOPInstanceUID" not in ds:
            size = len(data) if isinstance(data, bytes | bytearray) else "?"
            raise BadFileFormat(f"Cannot parse an invalid DICOM file (size: {size} bytes)") from None
        _record_detected_syntax(ds)
    except Exception as error:  # noqa: BLE001
        raise BadFileFormat(f"Cannot parse an invalid DICOM file: {error}") from error
    _drop_stray_delimiters(ds)
    if not stop_before_pixels:
        try:
            _check_not_truncated(ds)
        except PharosError:
            raise
        except Exception as error:  # noqa: BLE001 — a value pydicom cannot convert
            raise BadFileFormat(f"Cannot parse an invalid DICOM file: {error}") from error
    return ds


def _drop_stray_delimiters(ds: Dataset) -> None:
    """Item and delimitation tags (FFFE,xxxx) are not data elements: one found at the top
    level (a stray sequence delimiter after the last element) carries nothing, and is
    dropped as DCMTK skips it, instead of failing every later read of the dataset."""
    for tag in [t for t in ds.keys() if t >> 16 == 0xFFFE]:
        del ds[tag]


def _record_detected_syntax(ds: Dataset) -> None:
    """A bare dataset (no meta header): note the transfer syntax pydicom detected."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian
    meta = getattr(ds, "file_meta", None)
    if meta is None:
        meta = ds.file_meta = FileMetaDataset()
    if "TransferSyntaxUID" not in meta:
        implicit = getattr(ds, "original_encoding", (None, None))[0]
        little = getattr(ds, "original_encoding", (None, True))[1]
        meta.TransferSyntaxUID = ImplicitVRLittleEndian if implicit else (
            ExplicitVRLittleEndian if little else ExplicitVRBigEndian)


def _check_not_truncated(ds: Dataset) -> None:
    """pydicom silently keeps a short last value; a truncated upload must be refused."""
    for elem in reversed(list(ds.elements())):
        length = getattr(elem, "length", None)
        value = getattr(elem, "value", None)
        if length is not None and length != 0xFFFFFFFF and isinstance(value, bytes) \
                and len(value) < length:
            raise BadFileFormat(f"Truncated DICOM file: element ({elem.tag.group:04X},"
                                f"{elem.tag.element:04X}) declares {length} bytes, "
                                f"{len(value)} present")
        break


def parse_instance(data: bytes) -> ParsedInstance:
    """Parse a DICOM file held in memory; raise BadFileFormat for anything unusable."""
    ds = read_dataset(data)
    try:
        parsed = _extract(ds)
    except PharosError:
        raise
    except Exception as error:  # noqa: BLE001 — malformed values surface while decoding
        raise BadFileFormat(f"Cannot decode the DICOM file: {error}") from error
    parsed.pixel_data_offset = pixel_data_offset(data)
    if parsed.pixel_data_offset is not None:
        parsed.pixel_data_vr = nonstandard_pixel_data_vr(ds, parsed.transfer_syntax)
    parsed.series_sequences = series_main_sequences(ds)
    return parsed


_SERIES_MAIN_SEQUENCES = (0x00400275,)  # RequestAttributesSequence


def sop_instance_uid_of(data: bytes) -> str | None:
    """The SOPInstanceUID of a file, read up to that tag only (no full parse); None when
    the header cannot be read or has none. A quick look, not a validation."""
    try:
        ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True, force=True,
                             specific_tags=["SOPInstanceUID"])
        uid = str(ds.get("SOPInstanceUID", "") or "").strip()
    except Exception:  # noqa: BLE001 — a quick look: any failure is "unknown"
        return None
    return uid or None


def series_main_sequences(ds: Dataset) -> str | None:
    """The serialized ``MainDicomSequences`` metadata of the series of *ds*, or None."""
    present = [tag for tag in _SERIES_MAIN_SEQUENCES if tag in ds]
    if not present or not orthanc_api_at_least(1, 12, 5):
        return None
    subset = Dataset()
    if "SpecificCharacterSet" in ds:
        subset.SpecificCharacterSet = ds.SpecificCharacterSet
    for tag in present:
        subset[tag] = ds[tag]
    sequences = {key: node for key, node in dataset_to_json(subset).items()
                 if node["Type"] == "Sequence"}
    if not sequences:
        return None
    return orjson.dumps({"Sequences": sequences, "Version": 1}).decode()


def nonstandard_pixel_data_vr(ds: Dataset, transfer_syntax: str) -> str | None:
    """Orthanc's ``PixelDataVR`` metadata (1.12.1+): the VR of PixelData when it is not the
    one PS3.5 A.1-A.4 expects (explicit VR: OW above 8 bits allocated, else OB; implicit
    VR: OW; encapsulated: OB), e.g. 8-bit pixels written as OW; None when as expected."""
    if _PIXEL_DATA not in ds:
        return None
    if transfer_syntax == _IMPLICIT:
        return None  # always OW, as expected
    if transfer_syntax not in (_EXPLICIT_LITTLE, _BIG_ENDIAN):
        return None  # encapsulated: always OB
    actual = ds.get_item(_PIXEL_DATA).VR
    bits = ds.get_item(0x00280100) if 0x00280100 in ds else None
    try:
        allocated = int(ds[0x00280100].value) if bits is not None else 8
    except (TypeError, ValueError):
        allocated = 8
    expected = "OW" if allocated > 8 else "OB"
    return actual if actual in ("OB", "OW") and actual != expected else None


def _required(ds: Dataset, keyword: str, charset: tuple[str, bool] | None,
              allow_empty: bool = False) -> str:
    tag = tag_for_keyword(keyword)
    assert tag is not None, keyword  # the callers name DICOM keywords
    elem = ds.get_item(tag)
    if elem is None and not allow_empty:
        # Orthanc's DicomInstanceHasher reads the three UIDs with DicomMap::GetValue(),
        # which throws InexistentTag (code 21, HTTP 404) when the tag is absent; Pharos
        # keeps the code but answers 400 (a deliberate difference, see app/errors.py)...
        raise MissingRequiredTag(f"Missing the DICOM tag {keyword}")
    value = "" if elem is None else (decode_value(elem, charset=charset) or "")
    if not value and not allow_empty:
        # ... and BadFileFormat (HTTP 400), with this very message, when it is empty.
        raise BadFileFormat("missing StudyInstanceUID, SeriesInstanceUID or SOPInstanceUID")
    return value


def main_tags_of(ds: Dataset, charset: tuple[str, bool] | None = None) -> dict[Level, dict[str, str]]:
    """Orthanc's MainDicomTags values per level (decoded as Orthanc decodes them)."""
    if charset is None:
        charset = dataset_charset(ds)
    tags: dict[Level, dict[str, str]] = {}
    for level, entries in MAIN_TAGS.items():
        values: dict[str, str] = {}
        for tag, keyword in entries:
            if tag in ds:
                text = decode_value(ds.get_item(tag), charset=charset)
                if text is not None:
                    values[keyword] = text
        tags[level] = values
    return tags


def _extract(ds: Dataset) -> ParsedInstance:
    charset = dataset_charset(ds)
    patient_id = _required(ds, "PatientID", charset, allow_empty=True)
    study_uid = _required(ds, "StudyInstanceUID", charset)
    series_uid = _required(ds, "SeriesInstanceUID", charset)
    sop_uid = _required(ds, "SOPInstanceUID", charset)
    meta = getattr(ds, "file_meta", None)
    transfer_syntax = str(meta.TransferSyntaxUID) if meta is not None and "TransferSyntaxUID" in meta \
        else "1.2.840.10008.1.2"
    sop_class = _required(ds, "SOPClassUID", charset, allow_empty=True)
    main = main_tags_of(ds, charset)
    return ParsedInstance(
        ids=ResourceIds.compute(patient_id, study_uid, series_uid, sop_uid),
        patient_id=patient_id, study_uid=study_uid, series_uid=series_uid, sop_uid=sop_uid,
        sop_class_uid=sop_class, transfer_syntax=transfer_syntax, main_tags=main,
        dicom_json=orjson.dumps(dicom_json_of(ds)),
        index_in_series=_index_in_series(main[Level.INSTANCE]),
        expected_instances=expected_instances(main[Level.SERIES]),
        index_in_series_text=index_in_series_text(main[Level.INSTANCE]),
    )


def dicom_json_of(ds: Dataset) -> dict[str, Any]:
    """PS3.18 F DICOM JSON with bulk data replaced by ``bulk:<tag path>`` markers.

    The path is Orthanc's plugin's: lower-case tags, and for an element inside a sequence
    ``<sequence tag>/<item number from 1>/<tag>`` (``bulk:60031010/1/60031011``). The
    markers are rewritten into absolute BulkDataURIs when WADO-RS answers, from the
    request's own host, so the stored JSON does not depend on any address.
    """
    def handler(elem: Any) -> str:
        return f"{BULK_DATA_MARKER}{elem.tag:08x}"

    groups = _person_name_group_counts(ds)  # read before pydicom decodes the names
    # Same output as ds.to_json_dict(...), 2-3x faster (tests/unit/test_fast_json.py),
    # except DS values: kept as their text, which numbers cannot give back ("4.50", "1E3");
    # WADO-RS and QIDO-RS turn them into numbers when answering as an Orthanc before 1.12.6
    # (app.dicom.dicomweb_json.decimal_values).
    document = fast_json.to_json_dict(ds, bulk_data_threshold=BULK_DATA_THRESHOLD,
                                      bulk_data_element_handler=handler, decimal_text=True)
    _bulk_paths(document, "")
    _charset_without_leading_empty(document)
    _person_name_groups(document, groups)
    return document


_PN_GROUPS = ("Alphabetic", "Ideographic", "Phonetic")


def _person_name_group_counts(ds: Dataset) -> dict[str, int]:
    """The component groups of the single-valued top-level names, counted in the stored
    bytes ('=' (0x3D) never occurs inside a multi-byte character of DICOM's character
    sets): pydicom drops empty trailing groups when it decodes the names."""
    counts: dict[str, int] = {}
    for element in ds.elements():
        if element.VR != "PN" or not isinstance(element.value, bytes):
            continue
        raw = element.value.rstrip(b" \x00")
        if b"=" in raw and b"\\" not in raw:
            counts[f"{element.tag:08X}"] = min(raw.count(b"=") + 1, 3)
    return counts


def _person_name_groups(document: dict[str, Any], counts: dict[str, int]) -> None:
    """Empty component groups kept as Orthanc keeps them: ``Wang^XiaoDong=王^小东=`` has an
    empty Phonetic group."""
    for key, groups in counts.items():
        element = document.get(key)
        values = element.get("Value") if isinstance(element, dict) else None
        if not values or len(values) != 1 or not isinstance(values[0], dict):
            continue
        name = values[0]
        for group in _PN_GROUPS[:groups]:
            name.setdefault(group, "")
        values[0] = {group: name[group] for group in _PN_GROUPS if group in name}


def _charset_without_leading_empty(document: dict[str, Any]) -> None:
    r"""``\ISO 2022 IR 149`` (code extensions, the default repertoire first) is written
    ``["ISO 2022 IR 149"]``, as Orthanc writes it (DicomWebJsonVisitor)."""
    element = document.get("00080005")
    if not isinstance(element, dict):
        return
    values = element.get("Value")
    if isinstance(values, list) and len(values) > 1 and values[0] in ("", None):
        element["Value"] = values[1:]


def _bulk_paths(document: dict[str, Any], prefix: str) -> None:
    """Give the bulk markers nested in sequences their path (the handler sees no parents)."""
    for key, element in document.items():
        if prefix and "BulkDataURI" in element:
            element["BulkDataURI"] = f"{BULK_DATA_MARKER}{prefix}{key.lower()}"
        elif element.get("vr") == "SQ":
            for number, item in enumerate(element.get("Value") or (), start=1):
                if isinstance(item, dict):
                    _bulk_paths(item, f"{prefix}{key.lower()}/{number}/")


_INTEGER = re.compile(r"[+-]?[0-9]+")


def _int_or_none(text: str | None) -> int | None:
    """``boost::lexical_cast<int64_t>``: a plain integer, nothing else (no spaces, no dot)."""
    if text is None or not _INTEGER.fullmatch(text):
        return None
    return int(text)


def index_in_series_text(instance_tags: dict[str, str]) -> str | None:
    """Orthanc's IndexInSeries metadata: InstanceNumber if present (even empty), else
    ImageIndex, with spaces stripped (``StatelessDatabaseOperations::Store``)."""
    for keyword in ("InstanceNumber", "ImageIndex"):
        if keyword in instance_tags:
            return instance_tags[keyword].strip(" ")
    return None


def _index_in_series(instance_tags: dict[str, str]) -> int | None:
    """The integer of the IndexInSeries metadata, when it is one (``LookupIntegerMetadata``)."""
    return _int_or_none(index_in_series_text(instance_tags))


def expected_instances(series_tags: dict[str, str]) -> int | None:
    """Orthanc's ``ComputeExpectedNumberOfInstances`` (StatelessDatabaseOperations.cpp).

    The first pair of tags present decides, and a value that is not a plain integer
    aborts the whole computation (``bad_lexical_cast``), as it does in Orthanc.
    """
    pairs = (("ImagesInAcquisition", "NumberOfTemporalPositions"),
             ("NumberOfSlices", "NumberOfTimeSlices"))
    for first, second in pairs:
        if first in series_tags and second in series_tags:
            left, right = (_int_or_none(series_tags[first].strip(" ")),
                           _int_or_none(series_tags[second].strip(" ")))
            if left is None or right is None:
                return None
            return left * right if left * right > 0 else None
    if "CardiacNumberOfImages" in series_tags:
        value = _int_or_none(series_tags["CardiacNumberOfImages"].strip(" "))
        return value if value is not None and value > 0 else None
    return None


# --- PixelDataOffset (Orthanc's DicomStreamReader::LookupPixelDataOffset) -----------------

_SHORT_EXPLICIT_VRS = frozenset(
    b"AE AS AT CS DA DS DT FL FD IS LO LT PN SH SL SS ST TM UI UL US".split())
_ITEM, _ITEM_END, _SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_PIXEL_DATA = 0x7FE00010
_BIG_ENDIAN = "1.2.840.10008.1.2.2"
_IMPLICIT = "1.2.840.10008.1.2"
_EXPLICIT_LITTLE = "1.2.840.10008.1.2.1"


def pixel_data_offset(data: bytes) -> int | None:
    """Offset in the file of the top-level PixelData element header, as Orthanc finds it.

    Orthanc's stream reader needs a preamble, "DICM" and a meta header that starts with
    (0002,0000); it walks the dataset (skipping sequences) and stops at PixelData, then
    checks that the tag really is at that offset. Any surprise means "no offset".
    """
    try:
        offset = _scan_pixel_data(memoryview(data))
    except (ValueError, IndexError, struct.error):
        return None
    if offset is None:
        return None
    head = bytes(data[offset:offset + 4])
    expected = b"\x7f\xe0\x00\x10" if _scan_big_endian(data) else b"\xe0\x7f\x10\x00"
    return offset if head == expected else None


def _scan_big_endian(data: bytes) -> bool:
    try:
        return _meta_transfer_syntax(memoryview(data))[0] == _BIG_ENDIAN
    except (ValueError, IndexError, struct.error):
        return False


def _meta_transfer_syntax(data: memoryview) -> tuple[str, int]:
    """(transfer syntax, offset of the dataset) from the preamble and the meta header."""
    if len(data) < 144 or bytes(data[128:132]) != b"DICM" \
            or bytes(data[132:138]) != b"\x02\x00\x00\x00UL" \
            or struct.unpack_from("<H", data, 138)[0] != 4:
        raise ValueError("no DICOM preamble")
    length = struct.unpack_from("<I", data, 140)[0]
    block = data[144:144 + length]
    if len(block) < length:
        raise ValueError("truncated meta header")
    pos, syntax = 0, None
    while pos + 8 <= len(block):
        tag = (struct.unpack_from("<H", block, pos)[0] << 16) | struct.unpack_from(
            "<H", block, pos + 2)[0]
        vr = bytes(block[pos + 4:pos + 6])
        if vr in _SHORT_EXPLICIT_VRS:
            size = struct.unpack_from("<H", block, pos + 6)[0]
            start = pos + 8
        elif pos + 12 <= len(block):
            if struct.unpack_from("<H", block, pos + 6)[0] != 0:
                break
            size = struct.unpack_from("<I", block, pos + 8)[0]
            start = pos + 12
        else:
            raise ValueError("bad meta header")
        if tag == 0x00020010:
            value = bytes(block[start:start + size])
            if value[-1:] in (b" ", b"\x00"):
                value = value[:-1]
            syntax = value.decode("ascii")
        pos = start + size
    if pos != len(block) or syntax is None:
        raise ValueError("bad meta header")
    return syntax, 144 + length


def _scan_pixel_data(data: memoryview) -> int | None:
    syntax, pos = _meta_transfer_syntax(data)
    implicit = syntax == _IMPLICIT
    endian = ">" if syntax == _BIG_ENDIAN else "<"
    depth = 0
    end = len(data)
    while pos + 8 <= end:
        group, element = struct.unpack_from(endian + "HH", data, pos)
        tag = (group << 16) | element
        header = pos
        if depth == 0 and tag >= 0xFFFFFFFF:
            return None
        if tag in (_ITEM, _ITEM_END, _SEQUENCE_END):
            length = struct.unpack_from(endian + "I", data, pos + 4)[0]
            pos += 8
            if tag == _ITEM:
                if length != 0xFFFFFFFF:
                    pos += length  # an item of explicit length is skipped at once
            else:
                if length != 0 or depth == 0:
                    raise ValueError("unexpected delimiter")
                if tag == _SEQUENCE_END:
                    depth -= 1
            continue
        if implicit:
            length = struct.unpack_from("<I", data, pos + 4)[0]
            pos += 8
            if length == 0xFFFFFFFF:
                depth += 1
                continue
            if depth == 0 and pos + length <= end and tag == _PIXEL_DATA:
                return header
            if depth == 0 and tag > _PIXEL_DATA and pos + length <= end:
                return None
            pos += length
            continue
        vr = bytes(data[pos + 4:pos + 6])
        if vr == b"SQ":
            length = struct.unpack_from(endian + "I", data, pos + 8)[0]
            pos += 12
            if length != 0xFFFFFFFF:
                pos += length  # the whole sequence at once
            else:
                depth += 1
            continue
        if vr in _SHORT_EXPLICIT_VRS:
            length = struct.unpack_from(endian + "H", data, pos + 6)[0]
            pos += 8
            if depth == 0 and pos + length <= end and tag >= _PIXEL_DATA:
                return header if tag == _PIXEL_DATA else None
            pos += length
            continue
        if struct.unpack_from(endian + "H", data, pos + 6)[0] != 0:
            raise ValueError("reserved bytes are not zero")
        length = struct.unpack_from(endian + "I", data, pos + 8)[0]
        pos += 12
        if depth == 0 and tag >= _PIXEL_DATA:
            return header if tag == _PIXEL_DATA else None
        if length == 0xFFFFFFFF:
            depth += 1
        else:
            pos += length
    return None
