"""DICOM JSON (PS3.18 F) and Native DICOM Model XML (PS3.19 A) helpers for DICOMweb.

Pure functions: attribute selection for QIDO-RS answers, the default return attributes
of PS3.18 Tables 10.6.3-3..5, BulkDataURI rewriting of the stored JSON, and the XML
rendering of STOW-RS answers. No DB, no files, no HTTP.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, cast
from xml.sax.saxutils import escape, quoteattr

import orjson
from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword

from app.dicom.levels import Level
from app.dicom.parse import BULK_DATA_MARKER

# --- PS3.18 Table 10.6.3-3: Study's default return attributes ---------------------------
STUDY_DEFAULTS: tuple[str, ...] = (
    "00080005",  # SpecificCharacterSet
    "00080020",  # StudyDate
    "00080030",  # StudyTime
    "00080050",  # AccessionNumber
    "00080056",  # InstanceAvailability
    "00080061",  # ModalitiesInStudy
    "00080090",  # ReferringPhysicianName
    "00080201",  # TimezoneOffsetFromUTC
    "00081190",  # RetrieveURL
    "00100010",  # PatientName
    "00100020",  # PatientID
    "00100030",  # PatientBirthDate
    "00100040",  # PatientSex
    "0020000D",  # StudyInstanceUID
    "00200010",  # StudyID
    "00201206",  # NumberOfStudyRelatedSeries
    "00201208",  # NumberOfStudyRelatedInstances
)
# --- PS3.18 Table 10.6.3-4: Series' default return attributes ---------------------------
SERIES_DEFAULTS: tuple[str, ...] = (
    "00080005",  # SpecificCharacterSet
    "00080060",  # Modality
    "00080201",  # TimezoneOffsetFromUTC
    "0008103E",  # SeriesDescription
    "00081190",  # RetrieveURL
    "0020000E",  # SeriesInstanceUID
    "00200011",  # SeriesNumber
    "00201209",  # NumberOfSeriesRelatedInstances
    "00400244",  # PerformedProcedureStepStartDate
    "00400245",  # PerformedProcedureStepStartTime
    "00400275",  # RequestAttributesSequence
)
# --- PS3.18 Table 10.6.3-5: Instance's default return attributes ------------------------
INSTANCE_DEFAULTS: tuple[str, ...] = (
    "00080005",  # SpecificCharacterSet
    "00080016",  # SOPClassUID
    "00080018",  # SOPInstanceUID
    "00080056",  # InstanceAvailability
    "00080201",  # TimezoneOffsetFromUTC
    "00081190",  # RetrieveURL
    "00200013",  # InstanceNumber
    "00280010",  # Rows
    "00280011",  # Columns
    "00280100",  # BitsAllocated
    "00280008",  # NumberOfFrames
)
DEFAULTS: dict[Level, tuple[str, ...]] = {
    Level.STUDY: STUDY_DEFAULTS, Level.SERIES: SERIES_DEFAULTS,
    Level.INSTANCE: INSTANCE_DEFAULTS,
}
# Attributes every answer of a level carries, whatever was asked (the unique keys).
UNIQUE_KEYS: dict[Level, str] = {
    Level.STUDY: "0020000D", Level.SERIES: "0020000E", Level.INSTANCE: "00080018",
}

RETRIEVE_URL = "00081190"
INSTANCE_AVAILABILITY = "00080056"
# Computed attributes (PS3.18 Table 10.6.3-3/4 and PS3.4 C.6.1.1): from the index.
COMPUTED: dict[str, tuple[str, str, Level]] = {
    "00080061": ("ModalitiesInStudy", "CS", Level.STUDY),
    "00080062": ("SOPClassesInStudy", "UI", Level.STUDY),
    "00201206": ("NumberOfStudyRelatedSeries", "IS", Level.STUDY),
    "00201208": ("NumberOfStudyRelatedInstances", "IS", Level.STUDY),
    "00201209": ("NumberOfSeriesRelatedInstances", "IS", Level.SERIES),
    "00201200": ("NumberOfPatientRelatedStudies", "IS", Level.PATIENT),
    "00201202": ("NumberOfPatientRelatedSeries", "IS", Level.PATIENT),
    "00201204": ("NumberOfPatientRelatedInstances", "IS", Level.PATIENT),
}


def tag_key(name: str) -> str | None:
    """``PatientName`` or ``00100010`` (any case) -> ``00100010``; None when unknown."""
    text = name.strip()
    if len(text) == 8 and all(c in "0123456789abcdefABCDEF" for c in text):
        return text.upper()
    tag = tag_for_keyword(text)
    return None if tag is None else f"{tag:08X}"


def keyword_of(key: str) -> str:
    """``00100010`` -> ``PatientName`` (or the key itself for unknown/private tags)."""
    return keyword_for_tag(int(key, 16)) or key


def vr_of(key: str) -> str:
    try:
        vr = dictionary_VR(int(key, 16))
    except KeyError:
        return "UN"
    return vr.split(" or ")[0] if vr else "UN"


def computed_element(key: str, value: str | None) -> dict[str, Any] | None:
    """The DICOM JSON of a computed attribute, or None when empty (never ``{"vr": "CS"}``
    alone: OHIF crashes on computed attributes without a value)."""
    if not value:
        return None
    _, vr, _ = COMPUTED[key]
    if vr == "IS":
        return {"vr": vr, "Value": [int(value)]}
    return {"vr": vr, "Value": value.split("\\")}


def url_element(url: str) -> dict[str, Any]:
    return {"vr": "UR", "Value": [url]}


def strip_bulk(element: dict[str, Any]) -> dict[str, Any] | None:
    """An element without stored bulk-data markers (QIDO answers carry no bulk data)."""
    if "BulkDataURI" in element or "InlineBinary" in element:
        return None
    return element


def rewrite_bulk_uris(document: bytes, instance_url: str) -> bytes:
    """Turn the stored ``bulk:<TAG>`` markers into absolute URIs (PS3.18 8.6.3 / F.2.6)."""
    marker = b'"BulkDataURI":"' + BULK_DATA_MARKER.encode()
    if marker not in document:
        return document
    return document.replace(marker, b'"BulkDataURI":"' + instance_url.encode() + b"/bulk/")


# Group lengths (gggg,0000: retired, PS3.5 7.2) and dataset trailing padding (FFFC,FFFC)
# have no place in DICOM JSON (dcm4che and Orthanc drop them too).
# An empty string as an array element (never inside a string: quotes are escaped there).
_EMPTY_IN_ARRAY = re.compile(rb'(?<=[\[,])""(?=[,\]])')
_GROUP_LENGTH = re.compile(rb'"[0-9A-F]{4}0000":\{"vr":"UL"')


def _without_retired(document: dict[str, Any]) -> dict[str, Any]:
    answer = {}
    for key, element in document.items():
        if key.endswith("0000") or key == "FFFCFFFC":
            continue
        if element.get("vr") == "SQ" and element.get("Value"):
            element = {**element, "Value": [_without_retired(item) if isinstance(item, dict)
                                            else item for item in element["Value"]]}
        answer[key] = element
    return answer


def drop_retired(document: bytes) -> bytes:
    """The stored JSON without group lengths and trailing padding (no parsing when absent,
    which is the common case), and empty sequences without a "Value" (PS3.18 F.2.5: an
    attribute without value has no Value field; pydicom writes ``"Value": []``)."""
    document = document.replace(b',"Value":[]', b"")
    # Stored by earlier releases: a code-extension character set kept its empty first value.
    document = document.replace(b'"00080005":{"vr":"CS","Value":["",', b'"00080005":{"vr":"CS","Value":[')
    if b'""' in document:  # empty values of multi-valued elements are null (PS3.18 F.2.5)
        document = _EMPTY_IN_ARRAY.sub(b"null", document)
    if (b'0000":{"vr":"UL"' not in document or _GROUP_LENGTH.search(document) is None) \
            and b'"FFFCFFFC"' not in document:
        return document
    return orjson.dumps(_without_retired(orjson.loads(document)))


# --- DS values: text (Orthanc 1.12.6+) or numbers (before) -----------------------------------
# The stored JSON keeps DS values as their text (app.dicom.parse); rows stored by releases
# before that hold pydicom's numbers. Either is turned into the form the reported Orthanc
# version answers, on the bytes (no parsing): a DS "Value" array holds only numbers and
# nulls, or only strings and nulls, and a DS string has no quote nor backslash.
_DS_NUMBERS = re.compile(rb'"vr":"DS","Value":\[([-+0-9.eE,null]*)\]')
_DS_TEXTS = re.compile(rb'"vr":"DS","Value":\[((?:null|"[^"\\]*")(?:,(?:null|"[^"\\]*"))*)\]')


def _number_as_text(token: bytes) -> bytes:
    # pydicom made every DS a float ("2800" stored as 2800.0): its text without ".0"
    return token if token == b"null" else b'"' + token.removesuffix(b".0") + b'"'


def _text_as_number(token: bytes) -> bytes:
    if token == b"null":
        return token
    try:
        return orjson.dumps(float(token[1:-1]))
    except ValueError:  # not a decimal string: kept as it is
        return token


def _rewrite_ds(match: re.Match[bytes], convert: Any) -> bytes:
    values = b",".join(convert(token) for token in match.group(1).split(b","))
    return b'"vr":"DS","Value":[' + values + b"]"


def decimal_values(document: bytes, text: bool) -> bytes:
    """The DS values of a stored DICOM JSON document as text (*text*: Orthanc 1.12.6+,
    PS3.18 F.2.3 allows a JSON String to keep the value as written) or as numbers."""
    if b'"vr":"DS","Value":[' not in document:
        return document
    if text:
        return _DS_NUMBERS.sub(lambda m: _rewrite_ds(m, _number_as_text), document)
    return _DS_TEXTS.sub(lambda m: _rewrite_ds(m, _text_as_number), document)


def decimal_values_of(element: dict[str, Any], text: bool) -> dict[str, Any]:
    """``decimal_values`` for one parsed element (sequences included)."""
    values = element.get("Value")
    if not values or element.get("vr") not in ("DS", "SQ"):
        return element
    if element["vr"] == "SQ":
        return {**element, "Value": [
            {key: decimal_values_of(child, text) for key, child in item.items()}
            if isinstance(item, dict) else item for item in values]}
    return {**element, "Value": [_ds_value(value, text) for value in values]}


def _ds_value(value: Any, text: bool) -> Any:
    if value is None:
        return None
    if text:
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return value if isinstance(value, str) else str(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def find_bulk_element(document: dict[str, Any], key: str) -> dict[str, Any] | None:
    """The element *key* (top level first, then depth-first in sequences)."""
    if key in document:
        return cast(dict[str, Any], document[key])
    for element in document.values():
        if element.get("vr") == "SQ":
            for item in element.get("Value") or ():
                if isinstance(item, dict):
                    found = find_bulk_element(item, key)
                    if found is not None:
                        return found
    return None


# --- Native DICOM Model (PS3.19 A.1) -------------------------------------------------------

_XML_HEADER = ('<?xml version="1.0" encoding="utf-8"?>\n'
               '<NativeDicomModel xmlns="http://dicom.nema.org/PS3.19/models/NativeDICOM">')
_PN_COMPONENTS = ("FamilyName", "GivenName", "MiddleName", "NamePrefix", "NameSuffix")


def to_xml(document: dict[str, Any]) -> str:
    """A DICOM JSON dataset as a Native DICOM Model document (application/dicom+xml)."""
    out = [_XML_HEADER]
    _xml_dataset(document, out)
    out.append("</NativeDicomModel>\n")
    return "".join(out)


def _xml_dataset(document: dict[str, Any], out: list[str]) -> None:
    for key in sorted(document):
        element = document[key]
        vr = element.get("vr", "UN")
        keyword = keyword_for_tag(int(key, 16)) or ""
        out.append(f'<DicomAttribute tag="{key}" vr="{vr}"'
                   + (f' keyword="{keyword}"' if keyword else "") + ">")
        if "BulkDataURI" in element:
            out.append(f"<BulkData uri={quoteattr(element['BulkDataURI'])}/>")
        elif "InlineBinary" in element:
            out.append(f"<InlineBinary>{escape(element['InlineBinary'])}</InlineBinary>")
        for number, value in enumerate(element.get("Value") or (), start=1):
            if vr == "SQ":
                out.append(f'<Item number="{number}">')
                _xml_dataset(value or {}, out)
                out.append("</Item>")
            elif vr == "PN" and isinstance(value, dict):
                out.append(f'<PersonName number="{number}">')
                for group in ("Alphabetic", "Ideographic", "Phonetic"):
                    if value.get(group):
                        out.append(f"<{group}>")
                        for name, part in zip(_PN_COMPONENTS, value[group].split("^"),
                                              strict=False):
                            if part:
                                out.append(f"<{name}>{escape(part)}</{name}>")
                        out.append(f"</{group}>")
                out.append("</PersonName>")
            elif value is not None:
                out.append(f'<Value number="{number}">{escape(str(value))}</Value>')
        out.append("</DicomAttribute>")


def sequence(items: Iterable[dict[str, Any]]) -> dict[str, Any]:
    values = list(items)
    return {"vr": "SQ", "Value": values} if values else {"vr": "SQ"}
