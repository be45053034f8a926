"""Derive Orthanc's anonymization profiles (2008, 2017c, 2021b) from a real Orthanc.

Run by hand (``python -m tests.interop.probe_anonymization_profiles``): it builds one
instance holding every public tag of pydicom's dictionary, asks a throw-away Debian
Orthanc to anonymize it with each ``DicomVersion``, and prints the tags it removed,
emptied or replaced by new UIDs. The output is pasted into ``app/dicom/anonymize.py``,
so the tables are Orthanc's own behaviour rather than a hand copy of the standard.
"""

from __future__ import annotations

import io
import sys
import tempfile
from pathlib import Path

import pydicom
from pydicom.datadict import DicomDictionary
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian

from tests.interop.orthanc import running_orthanc

_VALUES: dict[str, object] = {
    "AE": "AE1", "AS": "030Y", "AT": 0x00100010, "CS": "CSV", "DA": "20000101", "DS": "1.5",
    "DT": "20000101120000", "FL": 1.5, "FD": 1.5, "IS": "7", "LO": "LOVAL", "LT": "LTVAL",
    "OB": b"\x01\x02", "OD": b"\0" * 8, "OF": b"\0" * 4, "OL": b"\0" * 4, "OV": b"\0" * 8,
    "OW": b"\x01\x02", "PN": "PN^VAL", "SH": "SHV", "SL": 1, "SS": 1, "ST": "STV", "SV": 1,
    "TM": "120000", "UC": "UCV", "UL": 1, "UN": b"\x01\x02", "UR": "http://x", "US": 1,
    "UT": "UTV", "UV": 1,
}
_SKIPPED_VRS = {"SV", "UV", "OV"}  # unknown to some DCMTK builds


def build() -> tuple[bytes, dict[int, str]]:
    ds = Dataset()
    vrs: dict[int, str] = {}
    for tag, (vr, _vm, _name, _retired, keyword) in DicomDictionary.items():
        group = tag >> 16
        if group in (0x0000, 0x0002, 0xFFFE) or group >= 0x7FE0 or not keyword:
            continue
        vr = vr.split(" or ")[0]
        if vr in _SKIPPED_VRS:
            continue
        if vr == "SQ":
            item = Dataset()
            item.CodeMeaning = "ITEM"
            ds.add_new(tag, "SQ", Sequence([item]))
        elif vr == "UI":
            ds.add_new(tag, "UI", f"1.2.3.{tag}")
        else:
            ds.add_new(tag, vr, _VALUES[vr])
        vrs[tag] = vr
    for tag, vr in ((0x60003000, "OW"), (0x60004000, "LT"), (0x50003000, "OW")):
        ds.add_new(tag, vr, _VALUES[vr])
        vrs[tag] = vr
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.PatientID = "PROBE"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue(), vrs


def classify(original: Dataset, anonymized: Dataset) -> dict[str, list[int]]:
    result: dict[str, list[int]] = {"clear": [], "remove": [], "uid": []}
    for element in original:
        tag = int(element.tag)
        if tag not in anonymized:
            result["remove"].append(tag)
            continue
        after = anonymized[tag]
        if element.VR == "SQ":
            if len(after.value) == 0:
                result["clear"].append(tag)
        elif after.value in (None, "", b"") and element.value not in (None, "", b""):
            result["clear"].append(tag)
        elif element.VR == "UI" and str(after.value) != str(element.value):
            result["uid"].append(tag)
    return result


def main() -> None:
    data, _ = build()
    original = pydicom.dcmread(io.BytesIO(data))
    with tempfile.TemporaryDirectory() as tmp, running_orthanc(Path(tmp)) as orthanc:
        client = orthanc.client()
        instance = client.post("/instances", content=data).raise_for_status().json()["ID"]
        for version in ("2008", "2017c", "2021b"):
            answer = client.post(f"/instances/{instance}/anonymize",
                                 json={"DicomVersion": version}).raise_for_status()
            anonymized = pydicom.dcmread(io.BytesIO(answer.content))
            table = classify(original, anonymized)
            name = version.upper()
            print(f"# DicomVersion {version}: {anonymized.DeidentificationMethod}")
            for kind in ("clear", "remove", "uid"):
                values = ", ".join(f"0x{t:08X}" for t in sorted(table[kind]))
                print(f"_{name}_{kind.upper()} = ({values},)\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
