"""Tag values as Orthanc shows them in ``MainDicomTags`` and ``RequestedTags``.

A value is Orthanc's text of a leaf element (multiple values joined by ``\\``), ``None``
for what Orthanc shows as ``Null`` (binary data), or, for a sequence, a list of items,
each a ``{tag: value}`` dict. ``format_tags`` renders such values in Orthanc's three
formats: ``simplify`` (``{"PatientName": "..."}``, the default of browsing routes),
``short`` (``{"0010,0010": "..."}``) and ``full`` (``{"0010,0010": {"Name", "Type",
"Value"}}``), as ``FromDcmtkBridge::ToJson`` does.
"""

from __future__ import annotations

from typing import Any

from app.dicom.tags import format_tag, tag_name

TagValue = str | None | list[dict[int, Any]]

_NAME_GROUPS = ("Alphabetic", "Ideographic", "Phonetic")


def from_dicom_json(element: dict[str, Any]) -> TagValue:
    """One element of a PS3.18 F DICOM JSON document (as stored at ingest) as Orthanc's
    value: text for leaves, items for sequences, None for binary (bulk or inline) data."""
    if element.get("vr") == "SQ":
        return [{int(key, 16): from_dicom_json(child) for key, child in sorted(item.items())}
                for item in element.get("Value") or []]
    if "InlineBinary" in element or "BulkDataURI" in element:
        return None
    values = element.get("Value")
    if values is None:
        return ""
    return "\\".join(_text(value) for value in values)


def _text(value: Any) -> str:
    if isinstance(value, dict):  # PN: Alphabetic=Ideographic=Phonetic, trailing groups off
        groups = [value.get(group, "") for group in _NAME_GROUPS]
        while len(groups) > 1 and not groups[-1]:
            groups.pop()
        return "=".join(groups)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if value is None:
        return ""
    return str(value)


def name_of(tag: int) -> str:
    """The keyword Orthanc shows for a tag (``gggg,eeee`` when the dictionary has none)."""
    name = tag_name(tag)
    return format_tag(tag) if name == "Unknown Tag & Data" else name


def format_tags(values: dict[int, TagValue], fmt: str) -> dict[str, Any]:
    """``{tag: value}`` in Orthanc's ``simplify``, ``short`` or ``full`` JSON, keys sorted
    as Orthanc's JSON writer sorts them."""
    if fmt == "simplify":
        out = {name_of(tag): _format_value(value, fmt) for tag, value in values.items()}
    elif fmt == "short":
        out = {format_tag(tag): _format_value(value, fmt) for tag, value in values.items()}
    else:
        out = {format_tag(tag): _full(tag, value) for tag, value in values.items()}
    return dict(sorted(out.items()))


def _format_value(value: TagValue, fmt: str) -> Any:
    if isinstance(value, list):
        return [format_tags(item, fmt) for item in value]
    return value


def _full(tag: int, value: TagValue) -> dict[str, Any]:
    shown: Any
    if isinstance(value, list):
        kind, shown = "Sequence", [format_tags(item, "full") for item in value]
    elif value is None:
        kind, shown = "Null", None
    else:
        kind, shown = "String", value
    return {"Name": tag_name(tag), "Type": kind, "Value": shown}
