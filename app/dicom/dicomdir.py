"""The DICOMDIR of a DICOM media (PS3.10 section 8, PS3.3 annex F), as Orthanc writes it.

Orthanc's ``DicomDirWriter`` (on DCMTK) puts every file in ``IMAGES/IM0``, ``IMAGES/IM1``...
(8-character names, PS3.10 8.2) and writes one PATIENT / STUDY / SERIES / IMAGE record
per resource with the keys of the Basic Directory IOD: type 1 keys always, type 1C keys
when the file has a value, type 2 keys possibly empty; ``extended`` adds the type 3
SeriesDescription (Orthanc's extended SOP class). Record values are ASCII, as DCMTK
writes them for Orthanc. One difference: a PATIENT record always has its Type 1 PatientID
(``UNKNOWN`` when the file has none).

The offsets between records (PS3.3 F.3.2.1: bytes from the start of the file) do not
change the length of the encoding (they are UL values): the file is encoded once to
measure where each record starts, then again with the offsets filled in.
"""

from __future__ import annotations

import io
import time
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

MEDIA_STORAGE_DIRECTORY = UID("1.2.840.10008.1.3.10")
FILE_SET_ID = "ORTHANC_MEDIA"
IMAGES_FOLDER = "IMAGES"


def file_name(index: int) -> str:
    """``IM0``, ``IM1``... (Orthanc's names: at most 8 characters)."""
    return f"IM{index}"


def _ascii(value: object) -> str:
    """Orthanc converts record values to ASCII (accents dropped)."""
    text = "" if value is None else str(value)
    folded = unicodedata.normalize("NFKD", text)
    return "".join(c for c in folded if ord(c) < 128 and not unicodedata.combining(c))


def _value(ds: Dataset, keyword: str) -> str | None:
    """The value of an attribute (None when absent), multi-values joined by backslashes."""
    if keyword not in ds:
        return None
    value = ds.get(keyword)
    if value is None:
        return ""
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return str(value)


@dataclass
class _Record:
    kind: str
    values: dict[str, str]
    children: list[_Record] = field(default_factory=list)


class DicomDir:
    """Collects the headers of the files of a media, then encodes the DICOMDIR."""

    def __init__(self, *, extended: bool = False) -> None:
        self.extended = extended
        self.patients: list[_Record] = []
        self._index: dict[tuple[str, str], _Record] = {}

    def add(self, file_id: str, ds: Dataset, transfer_syntax: str) -> None:
        """Record the file *file_id* (``IMAGES\\IM0``) whose header is *ds*."""
        key = ("IMAGE", str(ds.get("SOPInstanceUID", "")))
        if key in self._index:
            return
        image = self._new("IMAGE", key, self._image(ds, file_id, transfer_syntax))
        series_key = ("SERIES", str(ds.get("SeriesInstanceUID", "")))
        series = self._index.get(series_key)
        if series is None:
            series = self._new("SERIES", series_key, self._series(ds))
            study_key = ("STUDY", str(ds.get("StudyInstanceUID", "")))
            study = self._index.get(study_key)
            if study is None:
                study = self._new("STUDY", study_key, self._study(ds))
                patient_key = ("PATIENT", str(ds.get("PatientID", "") or ""))
                patient = self._index.get(patient_key)
                if patient is None:
                    patient = self._new("PATIENT", patient_key, self._patient(ds))
                    self.patients.append(patient)
                patient.children.append(study)
            study.children.append(series)
        series.children.append(image)

    def _new(self, kind: str, key: tuple[str, str], values: dict[str, str]) -> _Record:
        record = _Record(kind, values)
        self._index[key] = record
        return record

    @staticmethod
    def _copy(values: dict[str, str], ds: Dataset, keyword: str, kind: str) -> None:
        """Type 1: always (empty when missing); 1C: with a value only; 2: always, empty
        allowed; 3: when present (Orthanc's CopyString)."""
        value = _value(ds, keyword)
        if kind in ("1C", "3") and not value and not (kind == "3" and value is not None):
            return
        values[keyword] = _ascii(value)

    def _with_charset(self, values: dict[str, str], ds: Dataset) -> dict[str, str]:
        self._copy(values, ds, "SpecificCharacterSet", "1C")
        return values

    def _patient(self, ds: Dataset) -> dict[str, str]:
        # PS3.3 F.5.18: PatientID is Type 1 in a PATIENT record; Orthanc omits it when the
        # file has none, which readers (pydicom's FileSet among them) refuse.
        values: dict[str, str] = {"PatientID": _ascii(_value(ds, "PatientID")) or "UNKNOWN"}
        self._copy(values, ds, "PatientName", "2")
        return self._with_charset(values, ds)

    def _study(self, ds: Dataset) -> dict[str, str]:
        now = time.gmtime()
        date = next((v for k in ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate")
                     if (v := _value(ds, k)) is not None), time.strftime("%Y%m%d", now))
        clock = next((v for k in ("StudyTime", "SeriesTime", "AcquisitionTime", "ContentTime")
                      if (v := _value(ds, k)) is not None), time.strftime("%H%M%S", now))
        values = {"StudyDate": _ascii(date), "StudyTime": _ascii(clock)}
        self._copy(values, ds, "StudyDescription", "2")
        self._copy(values, ds, "StudyInstanceUID", "1")
        self._copy(values, ds, "StudyID", "1C")
        self._copy(values, ds, "AccessionNumber", "2")
        return self._with_charset(values, ds)

    def _series(self, ds: Dataset) -> dict[str, str]:
        values: dict[str, str] = {}
        self._copy(values, ds, "Modality", "1")
        self._copy(values, ds, "SeriesInstanceUID", "1")
        self._copy(values, ds, "SeriesNumber", "1C")
        if self.extended:
            self._copy(values, ds, "SeriesDescription", "3")
        return self._with_charset(values, ds)

    def _image(self, ds: Dataset, file_id: str, transfer_syntax: str) -> dict[str, str]:
        values: dict[str, str] = {}
        self._copy(values, ds, "InstanceNumber", "1")
        values["ReferencedFileID"] = file_id
        values["ReferencedSOPClassUIDInFile"] = str(ds.get("SOPClassUID", ""))
        values["ReferencedSOPInstanceUIDInFile"] = str(ds.get("SOPInstanceUID", ""))
        values["ReferencedTransferSyntaxUIDInFile"] = transfer_syntax
        return self._with_charset(values, ds)

    def _flatten(self) -> Iterable[tuple[_Record, list[_Record]]]:
        """Records depth first (as DCMTK writes them), each with its sibling list."""
        def walk(records: list[_Record]) -> Iterable[tuple[_Record, list[_Record]]]:
            for record in records:
                yield record, records
                yield from walk(record.children)
        return walk(self.patients)

    def encode(self) -> bytes:
        """The DICOMDIR file (explicit VR little endian)."""
        ordered = list(self._flatten())
        items = [self._item(record) for record, _ in ordered]
        ds = self._document(items)
        positions = self._item_positions(ds, len(items))
        where = {id(record): positions[i] for i, (record, _) in enumerate(ordered)}
        for i, (record, siblings) in enumerate(ordered):
            following = siblings.index(record) + 1
            items[i].OffsetOfTheNextDirectoryRecord = \
                where[id(siblings[following])] if following < len(siblings) else 0
            items[i].OffsetOfReferencedLowerLevelDirectoryEntity = \
                where[id(record.children[0])] if record.children else 0
        if self.patients:
            ds.OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity = where[id(self.patients[0])]
            ds.OffsetOfTheLastDirectoryRecordOfTheRootDirectoryEntity = \
                where[id(self.patients[-1])]
        return self._write(ds)

    @staticmethod
    def _item(record: _Record) -> Dataset:
        item = Dataset()
        item.OffsetOfTheNextDirectoryRecord = 0
        item.RecordInUseFlag = 0xFFFF
        item.OffsetOfReferencedLowerLevelDirectoryEntity = 0
        item.DirectoryRecordType = record.kind
        for keyword, value in record.values.items():
            setattr(item, keyword, value)
        return item

    @staticmethod
    def _document(items: list[Dataset]) -> Dataset:
        ds = Dataset()
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = MEDIA_STORAGE_DIRECTORY
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta = meta
        ds.FileSetID = FILE_SET_ID
        ds.OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity = 0
        ds.OffsetOfTheLastDirectoryRecordOfTheRootDirectoryEntity = 0
        ds.FileSetConsistencyFlag = 0
        ds.DirectoryRecordSequence = Sequence(items)
        return ds

    @staticmethod
    def _write(ds: Dataset) -> bytes:
        buffer = io.BytesIO()
        pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
        return buffer.getvalue()

    def _item_positions(self, ds: Dataset, count: int) -> list[int]:
        """Where each record's item starts in the encoded file (offsets from byte 0)."""
        encoded = self._write(ds)
        parsed = pydicom.dcmread(io.BytesIO(encoded))
        positions = [int(item.seq_item_tell) for item in parsed.DirectoryRecordSequence]
        if len(positions) != count:
            raise ValueError("The DICOMDIR records could not be located")
        return positions
