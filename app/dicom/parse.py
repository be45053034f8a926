"""Parse one DICOM file once, extracting everything the index needs.

``parse_instance`` is the single place where ingest reads a dataset: identifiers, main
tags per level (Orthanc's strings), the DICOM JSON without bulk data (PS3.18 F) that
WADO-RS metadata and QIDO-RS answer from, and the facts Orthanc keeps as metadata.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import orjson
import pydicom
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from app.dicom.identifiers import ResourceIds
from app.dicom.levels import Level
from app.dicom.orthanc_json import dataset_charset, decode_value
from app.dicom.tags import MAIN_TAGS
from app.errors import BadFileFormat

# Binary elements larger than this are replaced by a BulkDataURI in the stored DICOM JSON.
BULK_DATA_THRESHOLD = 1024
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

    def tag(self, level: Level, keyword: str) -> str | None:
        return self.main_tags[level].get(keyword)


def read_dataset(data: bytes | io.BufferedIOBase, *, stop_before_pixels: bool = False) -> Dataset:
    """Read a DICOM Part 10 stream, or a bare dataset as DCMTK does; BadFileFormat otherwise."""
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
            raise BadFileFormat(f"Cannot parse an invalid DICOM file (size: {size} bytes)")
    except Exception as error:  # noqa: BLE001
        raise BadFileFormat(f"Cannot parse an invalid DICOM file: {error}") from error
    if not stop_before_pixels:
        _check_not_truncated(ds)
    return ds


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
        return _extract(ds)
    except BadFileFormat:
        raise
    except Exception as error:  # noqa: BLE001 — malformed values surface while decoding
        raise BadFileFormat(f"Cannot decode the DICOM file: {error}") from error


def _required(ds: Dataset, keyword: str, charset: tuple[str, bool] | None,
              allow_empty: bool = False) -> str:
    elem = ds.get_item(tag_for_keyword(keyword))
    value = "" if elem is None else (decode_value(elem, charset=charset) or "")
    if not value and not allow_empty:
        raise BadFileFormat(f"Missing the DICOM tag {keyword}")
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
    )


def dicom_json_of(ds: Dataset) -> dict[str, Any]:
    """PS3.18 F DICOM JSON with bulk data replaced by ``bulk:<tag path>`` markers.

    The markers are rewritten into absolute BulkDataURIs when WADO-RS answers, from the
    request's own host, so the stored JSON does not depend on any address.
    """
    def handler(elem: Any) -> str:
        return f"{BULK_DATA_MARKER}{elem.tag:08X}"

    return ds.to_json_dict(bulk_data_threshold=BULK_DATA_THRESHOLD,
                           bulk_data_element_handler=handler)


def _int_or_none(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(float(text.split("\\")[0]))
    except ValueError:
        return None


def _index_in_series(instance_tags: dict[str, str]) -> int | None:
    """Orthanc: InstanceNumber, else ImageIndex."""
    for keyword in ("InstanceNumber", "ImageIndex"):
        value = _int_or_none(instance_tags.get(keyword))
        if value is not None:
            return value
    return None


def expected_instances(series_tags: dict[str, str]) -> int | None:
    """Orthanc's ``ComputeExpectedNumberOfInstances`` (ServerIndex.cpp)."""
    images = _int_or_none(series_tags.get("ImagesInAcquisition"))
    positions = _int_or_none(series_tags.get("NumberOfTemporalPositions"))
    if images is not None and positions is not None:
        total = images * positions
        return total if total > 0 else None
    for keyword in ("NumberOfSlices", "CardiacNumberOfImages"):
        value = _int_or_none(series_tags.get(keyword))
        if value is not None:
            return value if value > 0 else None
    return None
