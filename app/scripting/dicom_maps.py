"""C-FIND identifiers as the flat tables Orthanc gives find filters (``DicomMap``).

Orthanc hands ``IncomingFindRequestFilter`` and ``OutgoingFindRequestFilter`` the leaf
elements of the identifier as ``{"gggg,eeee": "value"}`` (empty string for empty or
binary values; sequences are not part of it) and builds the query again from the table
the callback returns: elements the callback removed are gone, new ones are added with
their dictionary VR (``LO`` for unknown tags), sequences of the original identifier are
kept.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag

from app.dicom.tags import parse_tag
from app.errors import BadRequest

_BINARY_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "UN"}


def identifier_table(identifier: Dataset) -> dict[str, str]:
    """The leaf elements of a C-FIND identifier as Orthanc's filters see them."""
    table: dict[str, str] = {}
    for element in identifier:
        if element.VR == "SQ" or element.tag.element == 0:  # sequences, group lengths
            continue
        key = f"{element.tag.group:04x},{element.tag.element:04x}"
        value = element.value
        if element.VR in _BINARY_VRS or value is None:
            table[key] = ""
        elif isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
            table[key] = "\\".join(str(v) for v in value)
        else:
            table[key] = str(value)
    return table


def identifier_from_table(original: Dataset, table: Mapping[str, str]) -> Dataset:
    """A new identifier: the table's elements plus the original's sequences."""
    answer = Dataset()
    for element in original:
        if element.VR == "SQ":
            answer.add(element)
    for key, value in table.items():
        try:
            tag = parse_tag(key)
        except (ValueError, KeyError) as error:
            raise BadRequest(f"A find filter returned an unknown DICOM tag: {key!r}") from error
        vr = _vr(original, tag)
        answer.add_new(tag, vr, _value(vr, value))
    return answer


def _vr(original: Dataset, tag: BaseTag) -> str:
    if tag in original:
        return str(original[tag].VR)
    try:
        return dictionary_VR(tag).split(" or ")[0]
    except KeyError:
        return "LO"


def _value(vr: str, text: str) -> object:
    """The text of a filter as a value pydicom accepts for the VR."""
    if not text:
        return None
    if vr in _NUMBERS:
        try:
            numbers = [_NUMBERS[vr](part) for part in text.split("\\")]
        except ValueError as error:
            raise BadRequest(f"A find filter returned {text!r} for a {vr} element") from error
        return numbers[0] if len(numbers) == 1 else numbers
    return text


_NUMBERS = {"US": int, "SS": int, "UL": int, "SL": int, "UV": int, "SV": int,
            "FL": float, "FD": float}
