"""Orthanc's JSON views of a dataset: ``/tags`` (full), ``?short``, ``?simplify``, ``/header``.

(First version: the differential tests against Orthanc drive its refinement.)
"""

from __future__ import annotations

from typing import Any

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from app.dicom.tags import format_tag, tag_name

BINARY_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "UN", "OB or OW", "US or OW", "US or SS or OW"}
MAX_STRING_LENGTH = 256


def decode_value(elem: DataElement) -> str | None:
    """Orthanc's string for a leaf element (multi-values joined with ``\\``), None for binary."""
    if elem.VR in BINARY_VRS or elem.VR == "SQ":
        return None
    value = elem.value
    if value is None:
        return ""
    if isinstance(value, MultiValue | list | tuple):
        return "\\".join(_scalar(v) for v in value)
    return _scalar(value)


def _scalar(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return str(value).strip()


def dataset_to_json(ds: Dataset, *, max_length: int = MAX_STRING_LENGTH) -> dict[str, Any]:
    """The ``full`` format: ``{"gggg,eeee": {"Name", "Type", "Value"}}``."""
    out: dict[str, Any] = {}
    for elem in ds:
        if elem.tag == 0x7FE00010:
            continue
        key = format_tag(elem.tag)
        name = tag_name(elem.tag)
        if elem.VR == "SQ":
            out[key] = {"Name": name, "Type": "Sequence",
                        "Value": [dataset_to_json(item, max_length=max_length)
                                  for item in elem.value]}
            continue
        text = decode_value(elem)
        if text is None:
            out[key] = {"Name": name, "Type": "Null", "Value": None}
        elif max_length and len(text) > max_length:
            out[key] = {"Name": name, "Type": "TooLong", "Value": None}
        else:
            out[key] = {"Name": name, "Type": "String", "Value": text}
    return out


def to_short(full: dict[str, Any]) -> dict[str, Any]:
    """``?short``: tag keys, plain values."""
    return {k: ([to_short(i) for i in v["Value"]] if v["Type"] == "Sequence" else v["Value"])
            for k, v in full.items()}


def to_simplified(full: dict[str, Any]) -> dict[str, Any]:
    """``?simplify``: keyword keys, plain values."""
    return {v["Name"]: ([to_simplified(i) for i in v["Value"]] if v["Type"] == "Sequence"
                        else v["Value"])
            for v in full.values()}
