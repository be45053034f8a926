"""Reading stored instances: the file, its tags, its header, raw content and metadata."""

from __future__ import annotations

import logging
import struct
from typing import Any

import orjson
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from sqlalchemy import Row

from app.dicom import orthanc_json
from app.dicom.levels import Level
from app.dicom.parse import index_in_series_text, read_dataset
from app.dicom.tags import parse_tag
from app.errors import InexistentFile, InexistentItem, UnknownResource
from app.index import repository
from app.services.browse import get_row_or_404
from app.services.context import ServerContext
from app.validation import is_digits

log = logging.getLogger(__name__)

PIXEL_DATA = 0x7FE00010


def instance_row(context: ServerContext, public_id: str) -> Row:
    with context.db.read() as conn:
        return get_row_or_404(conn, Level.INSTANCE, public_id)


def read_file(context: ServerContext, row: Row) -> bytes:
    try:
        return context.blobs.read(row.blob_key)
    except FileNotFoundError as error:
        raise InexistentFile(f"The file of instance {row.public_id} is missing from the storage") \
            from error


def instance_file_or_none(context: ServerContext, public_id: str) -> bytes | None:
    """The stored file of an instance, or None when the instance (or its file) is gone:
    jobs working through a list of instances skip those instead of failing."""
    with context.db.read() as conn:
        row = repository.get_row(conn, Level.INSTANCE, public_id)
    if row is None:
        return None
    try:
        return context.blobs.read(row.blob_key)
    except FileNotFoundError:
        log.warning("Instance %s has lost its file", public_id)
        return None


def dataset_of(context: ServerContext, public_id: str, *,
               stop_before_pixels: bool = False) -> Dataset:
    row = instance_row(context, public_id)
    return read_dataset(read_file(context, row), stop_before_pixels=stop_before_pixels)


def tags_json(context: ServerContext, public_id: str, mode: str = "full") -> dict[str, Any]:
    """``/tags`` in Orthanc's ``full``, ``short`` or ``simplify`` format."""
    full = orthanc_json.dataset_to_json(dataset_of(context, public_id))
    return format_tags(full, mode)


def format_tags(full: dict[str, Any], mode: str) -> dict[str, Any]:
    if mode == "short":
        return orthanc_json.to_short(full)
    if mode == "simplify":
        return orthanc_json.to_simplified(full)
    return full


def header_json(context: ServerContext, public_id: str, mode: str = "full") -> dict[str, Any]:
    dataset = dataset_of(context, public_id, stop_before_pixels=True)
    return format_tags(orthanc_json.header_json(dataset.file_meta), mode)


def shared_tags(context: ServerContext, level: Level, public_id: str,
                mode: str = "full") -> dict[str, Any]:
    """Tags whose value is the same in every instance below the resource."""
    with context.db.read() as conn:
        row = get_row_or_404(conn, level, public_id)
        instances = repository.instances_below(conn, level, row.pk)
    shared: dict[str, Any] | None = None
    for instance in instances:
        dataset = read_dataset(read_file(context, instance), stop_before_pixels=True)
        tags = {k: v for k, v in orthanc_json.dataset_to_json(dataset).items()
                if v["Type"] == "String"}
        if shared is None:
            shared = tags
        else:
            shared = {k: v for k, v in shared.items() if tags.get(k) == v}
    return format_tags(shared or {}, mode)


def content(context: ServerContext, public_id: str, path: list[str]) -> list[str] | bytes:
    """``/content/...``: a tag list, a sequence's item indexes, or a leaf's raw value.

    As Orthanc (``ParsedDicomFile::SendPathValue``), a leaf answers the bytes of the value
    as stored in the file, padding included, in the file's byte order; PixelData answers
    its blocks: ``["0"]`` for native pixels, one index per item of an encapsulated pixel
    sequence (the basic offset table is item 0), each block then readable on its own.
    """
    node: Any = dataset_of(context, public_id)
    if path and _is_pixel_data(path[0]) and len(path) <= 2:
        return _pixel_data_blocks(node, path[1] if len(path) == 2 else None)
    for step in path:
        if isinstance(node, Dataset):
            try:
                tag = parse_tag(step)
            except ValueError as error:
                raise InexistentItem(str(error)) from error
            if tag not in node:
                raise UnknownResource(f"Tag {step} is absent")
            element = node.get_item(tag)
            if element.VR == "SQ" or element.VR is None and isinstance(node[tag].value, Sequence):
                node = list(node[tag].value)
            else:
                node = element
        elif isinstance(node, list):
            if not is_digits(step) or int(step) >= len(node):
                raise UnknownResource(f"No item {step} in this sequence")
            node = node[int(step)]
        else:
            raise UnknownResource("A leaf value has no children")
    if isinstance(node, Dataset):
        return [f"{e.tag >> 16:04x}-{e.tag & 0xFFFF:04x}" for e in node]
    if isinstance(node, list):
        return [str(i) for i in range(len(node))]
    return raw_value(node)


def _is_pixel_data(step: str) -> bool:
    try:
        return int(parse_tag(step)) == PIXEL_DATA
    except ValueError:
        return False


def _pixel_data_blocks(ds: Dataset, block: str | None) -> list[str] | bytes:
    if PIXEL_DATA not in ds:
        raise UnknownResource("No pixel data in this instance")
    data = ds.get_item(PIXEL_DATA).value or b""
    fragments: list[bytes] | None = None
    if ds.file_meta.get("TransferSyntaxUID") and ds.file_meta.TransferSyntaxUID.is_encapsulated:
        fragments = _items_of_pixel_sequence(data)
    count = 1 if fragments is None else len(fragments)
    if block is None:
        return [str(i) for i in range(count)]
    if not is_digits(block) or int(block) >= count:
        raise UnknownResource(f"No block {block} in the pixel data")
    return data if fragments is None else fragments[int(block)]


def _items_of_pixel_sequence(data: bytes) -> list[bytes] | None:
    """The items (offset table first) of an encapsulated pixel sequence; None if not one."""
    items: list[bytes] = []
    offset = 0
    while offset + 8 <= len(data):
        group, element, length = struct.unpack_from("<HHL", data, offset)
        offset += 8
        if (group, element) == (0xFFFE, 0xE0DD):
            break
        if (group, element) != (0xFFFE, 0xE000) or length == 0xFFFFFFFF:
            return None
        items.append(bytes(data[offset:offset + length]))
        offset += length
    return items


def raw_value(element: Any) -> bytes:
    """The value of an element as stored (a raw element read by pydicom keeps its bytes)."""
    value = element.value
    if isinstance(value, bytes):
        return value
    text = orthanc_json.decode_value(element, max_length=0)
    return (text or "").encode("utf-8")


# In the order of Orthanc's MetadataType numbers, the order in which it lists them.

INSTANCE_METADATA = ("IndexInSeries", "ReceptionDate", "RemoteAET", "Origin", "TransferSyntax",
                     "SopClassUid", "RemoteIP", "CalledAET", "HttpUsername", "PixelDataOffset")


def instance_metadata(row: Row) -> dict[str, str]:
    """Orthanc's automatic metadata of an instance, in Orthanc's listing order.

    IndexInSeries is Orthanc's text (InstanceNumber, else ImageIndex, stripped), which may
    be empty or not a number; the integer of ``GET /instances/{id}`` comes from it.
    PixelDataOffset is present on rows read by ``repository.get_row``.
    """
    offset = getattr(row, "pixel_data_offset", None)
    values = {
        "IndexInSeries": index_in_series_text(orjson.loads(row.main_tags)),
        "ReceptionDate": row.received_at, "RemoteAET": row.remote_aet, "Origin": row.origin,
        "TransferSyntax": row.transfer_syntax, "SopClassUid": row.sop_class_uid,
        "RemoteIP": row.remote_ip or None, "HttpUsername": row.http_username
        if row.origin == "RestApi" else None,
        "CalledAET": row.called_aet or None,
        "PixelDataOffset": offset,
    }
    return {k: v for k in INSTANCE_METADATA if (v := values[k]) is not None}


def resource_metadata(level: Level, row: Row) -> dict[str, str]:
    if level == Level.INSTANCE:
        return instance_metadata(row)
    answer = {"LastUpdate": row.last_update}
    return answer
