"""Reading stored instances: the file, its tags, its header, raw content and metadata."""

from __future__ import annotations

import logging
import struct
from typing import Any, Protocol

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from app import orthanc_api_at_least
from app.blobstore.stored import StoredFile
from app.context import ServerContext
from app.dicom import fast_json, orthanc_json
from app.dicom.levels import Level
from app.dicom.parse import read_dataset
from app.dicom.tags import parse_tag
from app.errors import InexistentFile, InexistentItem, UnknownResource
from app.index import repository
from app.index.records import InstanceRecord
from app.services.browse import get_row_or_404
from app.validation import is_digits

log = logging.getLogger(__name__)

PIXEL_DATA = 0x7FE00010


def instance_row(context: ServerContext, public_id: str) -> InstanceRecord:
    with context.db.read() as conn:
        return get_row_or_404(conn, Level.INSTANCE, public_id)


class FileColumns(Protocol):
    """Where an instance's file is (what records and retrieve items carry)."""

    @property
    def blob_key(self) -> str: ...
    @property
    def file_size(self) -> int: ...
    @property
    def compression(self) -> int: ...


def stored_file(context: ServerContext, row: FileColumns) -> StoredFile:
    """The DICOM file of an instance row (``blob_key``, ``file_size``, ``compression``):
    every reader of instance files goes through it, so that files stored compressed
    (``StorageCompression``) read as received."""
    return StoredFile(context.blobs, row.blob_key, int(row.file_size), int(row.compression))


def read_file(context: ServerContext, row: InstanceRecord) -> bytes:
    try:
        return stored_file(context, row).read()
    except FileNotFoundError as error:
        raise missing_file(row) from error


def missing_file(row: InstanceRecord) -> InexistentFile:
    return InexistentFile(f"The file of instance {row.public_id} is missing from the storage")


def instance_file_or_none(context: ServerContext, public_id: str) -> bytes | None:
    """The stored file of an instance, or None when the instance (or its file) is gone:
    jobs working through a list of instances skip those instead of failing."""
    with context.db.read() as conn:
        row = repository.get_row(conn, Level.INSTANCE, public_id)
    if row is None:
        return None
    try:
        return stored_file(context, row).read()
    except FileNotFoundError:
        log.warning("Instance %s has lost its file", public_id)
        return None


def dataset_of(context: ServerContext, public_id: str, *,
               stop_before_pixels: bool = False) -> Dataset:
    row = instance_row(context, public_id)
    if stop_before_pixels:
        return dataset_until_pixels(context, row)
    return read_dataset(read_file(context, row), stop_before_pixels=stop_before_pixels)


def dataset_until_pixels(context: ServerContext, row: InstanceRecord) -> Dataset:
    """The dataset up to the pixel data, read from the start of the file only: a large
    file is neither downloaded whole (S3) nor uncompressed whole (StorageCompression)."""
    try:
        with stored_file(context, row).open() as stream:
            return read_dataset(stream, stop_before_pixels=True)
    except FileNotFoundError as error:
        raise missing_file(row) from error


def tags_json(context: ServerContext, public_id: str, mode: str = "full",
              ignore_length: frozenset[int] = frozenset(), whole: bool = False
              ) -> dict[str, Any]:
    """``/tags`` in Orthanc's ``full``, ``short`` or ``simplify`` format (*whole*: with the
    tags after the pixel data)."""
    full = orthanc_json.dataset_to_json(dataset_of(context, public_id),
                                        ignore_length=ignore_length, whole=whole)
    return format_tags(full, mode)


def _instance_tags_until_pixels(context: ServerContext, row: InstanceRecord,
                                ignore_length: frozenset[int]) -> dict[str, Any]:
    dataset = dataset_until_pixels(context, row)
    return orthanc_json.dataset_to_json(dataset, ignore_length=ignore_length)


def instances_tags(context: ServerContext, level: Level, public_id: str, mode: str = "full",
                   ignore_length: frozenset[int] = frozenset()) -> dict[str, Any]:
    """``/{level}/{id}/instances-tags``: the tags of every instance below, by instance ID."""
    with context.db.read() as conn:
        row = get_row_or_404(conn, level, public_id)
        instances = repository.instances_below(conn, level, row.pk)
    return {instance.public_id: format_tags(
        _instance_tags_until_pixels(context, instance, ignore_length), mode)
        for instance in instances}


# Orthanc's DicomTag::AddTagsForModule() (PS3.3 tables C.7-1, C.7-3, C.7-5, C.12-1).
MODULE_TAGS: dict[str, frozenset[int]] = {
    "patient": frozenset({
        0x00100010, 0x00100020, 0x00100030, 0x00100040, 0x00081120, 0x00100032, 0x00101000,
        0x00101002, 0x00101001, 0x00102160, 0x00104000, 0x00102201, 0x00102202, 0x00102292,
        0x00102293, 0x00102294, 0x00102297, 0x00102298, 0x00102299, 0x00120062, 0x00120063,
        0x00120064, 0x00100021, 0x00100024}),
    "study": frozenset({
        0x0020000D, 0x00080020, 0x00080030, 0x00080090, 0x00080096, 0x00200010, 0x00080050,
        0x00080051, 0x00081030, 0x00081048, 0x00081049, 0x00081060, 0x00081062, 0x00321034,
        0x00081110, 0x00081032, 0x00401012}),
    "series": frozenset({
        0x00080060, 0x0020000E, 0x00200011, 0x00200060, 0x00080021, 0x00080031, 0x00081050,
        0x00081052, 0x00181030, 0x0008103E, 0x0008103F, 0x00081070, 0x00081072, 0x00081111,
        0x00081250, 0x00180015, 0x00185100, 0x00280108, 0x00290109, 0x00400275, 0x00102210,
        0x00400253, 0x00400244, 0x00400245, 0x00400254, 0x00400260, 0x00400280}),
    "instance": frozenset({
        0x00080016, 0x00080018, 0x00080005, 0x00080012, 0x00080013, 0x00080014, 0x0008001A,
        0x0008001B, 0x00080110, 0x00080201, 0x0018A001, 0x00200013, 0x01000410, 0x01000420,
        0x01000424, 0x01000426, 0x04000500, 0x04000561, 0x0040A390, 0x00280303, 0x4FFE0001,
        0xFFFAFFFA}),
}


def module_json(context: ServerContext, level: Level, public_id: str, module: str,
                mode: str = "full", ignore_length: frozenset[int] = frozenset()) -> dict[str, Any]:
    """``/{level}/{id}/module`` (and ``/studies/{id}/module-patient``): the tags of one DICOM
    module, read from the first instance of the resource (Orthanc's ``GetModule``)."""
    with context.db.read() as conn:
        row = get_row_or_404(conn, level, public_id)
        instances = [row] if isinstance(row, InstanceRecord) else \
            repository.instances_below(conn, level, row.pk)
    if not instances:
        return {}
    tags = _instance_tags_until_pixels(context, instances[0], ignore_length)
    wanted = MODULE_TAGS[module]
    return format_tags({key: node for key, node in tags.items()
                        if int(key.replace(",", ""), 16) in wanted}, mode)


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
                mode: str = "full", ignore_length: frozenset[int] = frozenset()) -> dict[str, Any]:
    """Tags whose value is the same in every instance below the resource."""
    with context.db.read() as conn:
        row = get_row_or_404(conn, level, public_id)
        instances = repository.instances_below(conn, level, row.pk)
    shared: dict[str, Any] | None = None
    for instance in instances:
        dataset = dataset_until_pixels(context, instance)
        tags = {k: v for k, v in orthanc_json.dataset_to_json(
            dataset, ignore_length=ignore_length).items()
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


def instance_dicomweb(context: ServerContext, public_id: str) -> dict[str, Any]:
    """The whole instance in DICOM JSON (PS3.18 F) with binary values inline, as Orthanc
    answers ``/instances/{id}/file`` to ``Accept: application/dicom+json`` (1.5.4+).

    PixelData carries the VR the file has: OW in implicit VR, OB when encapsulated (its
    fragments are not inlined: an empty InlineBinary, as Orthanc up to 1.12.5).
    """
    ds = dataset_of(context, public_id)
    encapsulated = ds.file_meta.get("TransferSyntaxUID") is not None and \
        ds.file_meta.TransferSyntaxUID.is_encapsulated
    pixels = ds.get_item(PIXEL_DATA) if PIXEL_DATA in ds else None
    if pixels is not None:
        del ds[PIXEL_DATA]
    document = fast_json.to_json_dict(ds, bulk_data_threshold=2**62,
                                      bulk_data_element_handler=lambda elem: "",
                                      decimal_text=orthanc_api_at_least(1, 12, 6))
    document = {k: v for k, v in document.items() if not k.endswith("0000")}  # group lengths
    if pixels is not None:
        vr = "OB" if encapsulated else (pixels.VR if pixels.VR in ("OB", "OW") else "OW")
        data = b"" if encapsulated else bytes(pixels.value or b"")
        import base64
        document["7FE00010"] = {"vr": vr, "InlineBinary": base64.b64encode(data).decode()}
    if orthanc_api_at_least(1, 12, 11):
        _numbers_of_binary_vrs(document)
    return document


# Orthanc 1.12.11 gives OF, OD and OL elements as their numbers ("Value"), not inline bytes.
_NUMERIC_BINARY_VRS = {"OF": "<f", "OD": "<d", "OL": "<L"}


def _numbers_of_binary_vrs(document: dict[str, Any]) -> None:
    import base64
    import struct
    for element in document.values():
        vr = element.get("vr")
        if vr == "SQ":
            for item in element.get("Value") or []:
                _numbers_of_binary_vrs(item)
        elif vr in _NUMERIC_BINARY_VRS and "InlineBinary" in element:
            data = base64.b64decode(element["InlineBinary"])
            code = _NUMERIC_BINARY_VRS[vr]
            size = struct.calcsize(code)
            if not data or len(data) % size:
                continue
            values = list(struct.unpack("<" + code[1] * (len(data) // size), data))
            del element["InlineBinary"]
            element["Value"] = values


def raw_value(element: Any) -> bytes:
    """The value of an element as stored (a raw element read by pydicom keeps its bytes)."""
    value = element.value
    if isinstance(value, bytes):
        return value
    text = orthanc_json.decode_value(element, max_length=0)
    return (text or "").encode("utf-8")

