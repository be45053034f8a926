"""Orthanc's JSON views of a dataset (app.dicom.orthanc_json).

The expected answers in ``orthanc_json_truth/*.json`` were captured from a real Orthanc
1.10.1 (DCMTK 3.6.7 dictionaries) by uploading the very bytes that ``build_*`` below
produce and reading back ``/instances/{id}/tags``, ``?short``, ``/simplified-tags``,
``/header`` and the ``MainDicomTags`` of the instance and of its parents.  To refresh
them, run this module as a script next to an Orthanc listening on localhost:8043:
``python tests/unit/test_orthanc_json.py http://localhost:8043``.
"""

from __future__ import annotations

import io
import json
import os
import struct
import sys
from pathlib import Path

import orjson
import pydicom
import pytest
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.tag import Tag

from app.dicom import orthanc_json as oj

TRUTH = Path(__file__).with_name("orthanc_json_truth")
REPO = Path(__file__).resolve().parents[2]
CORPUS = Path(os.environ.get("PHAROS_TEST_CORPUS", REPO.parent / "shared" / "data" / "dicom"))

# Level -> (tag, keyword) of the MainDicomTags checked against the captured truth.
MAIN = {
    "patient": [(0x00100010, "PatientName"), (0x00100020, "PatientID"),
                (0x00100030, "PatientBirthDate"), (0x00100040, "PatientSex")],
    "study": [(0x0020000D, "StudyInstanceUID"), (0x00081030, "StudyDescription"),
              (0x00080020, "StudyDate"), (0x00080050, "AccessionNumber"),
              (0x00080090, "ReferringPhysicianName"), (0x00200010, "StudyID")],
    "series": [(0x0020000E, "SeriesInstanceUID"), (0x00080060, "Modality"),
               (0x0008103E, "SeriesDescription"), (0x00200011, "SeriesNumber"),
               (0x00200037, "ImageOrientationPatient")],
    "instance": [(0x00080018, "SOPInstanceUID"), (0x00200013, "InstanceNumber"),
                 (0x00200032, "ImagePositionPatient"), (0x00280008, "NumberOfFrames")],
}


# ------------------------------------------------------------------------------------
# Synthetic files (raw bytes are forced where the padding matters)
# ------------------------------------------------------------------------------------


def _base(name: str, charset: str | None) -> Dataset:
    ds = Dataset()
    uid = "1.2.826.0.1.3680043.8.498.4242." + str(sum(map(ord, name)))
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    meta.MediaStorageSOPInstanceUID = uid + ".3"
    meta.TransferSyntaxUID = "1.2.840.10008.1.2.1"
    meta.ImplementationClassUID = "1.2.826.0.1.3680043.8.498.1"
    meta.ImplementationVersionName = "PHAROS_TEST"
    ds.file_meta = meta
    if charset is not None:
        ds.add(RawDataElement(Tag(0x00080005), "CS", len(charset), charset.encode(), 0,
                              False, True))
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = uid + ".1"
    ds.SeriesInstanceUID = uid + ".2"
    ds.PatientID = "PHAROS-" + name
    ds.Modality = "OT"
    return ds


def _raw(ds: Dataset, tag: int, vr: str, value: bytes) -> None:
    ds.add(RawDataElement(Tag(tag), vr, len(value), value, 0, False, True))


def build_latin1() -> Dataset:
    """No SpecificCharacterSet (Orthanc's default Latin1), padding and number formats."""
    ds = _base("latin1", None)
    _raw(ds, 0x00100010, "PN", b"  Fran\xe7ois^J\xe9r\xf4me ")  # leading spaces are kept
    _raw(ds, 0x00081030, "LO", b"Study\x00junk after NUL ")  # cut at the first NUL
    _raw(ds, 0x0008103E, "LO", b"Trailing spaces   ")
    _raw(ds, 0x00200010, "SH", b" ")  # empty after stripping
    _raw(ds, 0x00080008, "CS", b"ORIGINAL\\PRIMARY\\\\AXIAL ")
    _raw(ds, 0x00200032, "DS", b" +1.500\\-0002\\3e2 ")  # DS kept as written
    _raw(ds, 0x00200013, "IS", b"+007")
    _raw(ds, 0x00200037, "DS", b"1\\0\\0\\0\\1\\0 ")
    _raw(ds, 0x00280008, "IS", b"")
    _raw(ds, 0x00080020, "DA", b"20240229")
    _raw(ds, 0x00080050, "SH", b"")
    _raw(ds, 0x00081010, "SH", b"tab\there\r\n")
    _raw(ds, 0x00081090, "LO", b"X" * 256)  # exactly the limit: still a String
    _raw(ds, 0x00081080, "LO", b"Y" * 258)  # above: TooLong
    _raw(ds, 0x00204000, "LT", b"line1\r\nline2  ")
    _raw(ds, 0x00280010, "US", struct.pack("<H", 512))
    _raw(ds, 0x00280011, "US", b"")  # empty US: Null
    _raw(ds, 0x00280030, "DS", b"0.5\\0.5")
    _raw(ds, 0x00281052, "DS", b"-1024")
    _raw(ds, 0x00189219, "SS", struct.pack("<hhh", -1, 2, -32768))  # SS multi-valued
    _raw(ds, 0x00189306, "FD", struct.pack("<d", 0.1))
    _raw(ds, 0x00189307, "FD", struct.pack("<dd", 1.0, -2.5e-10))
    _raw(ds, 0x00189352, "FL", struct.pack("<fff", 0.679, 1.0, 3.3e38))
    _raw(ds, 0x00181310, "US", struct.pack("<HHHH", 0, 256, 256, 0))
    _raw(ds, 0x00200100, "UL", struct.pack("<L", 4000000000))
    _raw(ds, 0x00189145, "SL", struct.pack("<l", -7))
    _raw(ds, 0x00209165, "AT", struct.pack("<HHHH", 0x0020, 0x9056, 0x0020, 0x9057))
    _raw(ds, 0x00420011, "OB", b"%PDF")  # binary: Null
    _raw(ds, 0x00181030, "UN", b"PROTOCOL")  # UN, but a known LO tag in ASCII: a String
    _raw(ds, 0x00181400, "UN", b"caf\xe9")  # UN, not ASCII: Null
    _raw(ds, 0x00540081, "US", struct.pack("<H", 3))
    return ds


def build_utf8() -> Dataset:
    ds = _base("utf8", "ISO_IR 192")
    _raw(ds, 0x00100010, "PN", "Wang^XiaoDong=王^小東=".encode())
    _raw(ds, 0x00081030, "LO", "Étude ünïcode ".encode())
    _raw(ds, 0x00081040, "LO", b"bad \xff\xfe utf8")  # invalid UTF-8 bytes are skipped
    _raw(ds, 0x00081090, "LO", ("é" * 129).encode())  # 258 UTF-8 bytes: TooLong
    _raw(ds, 0x00080090, "PN", ("é" * 128).encode())  # 256 bytes: a String
    return ds


def build_iso2022() -> Dataset:
    """Code extensions: Orthanc decodes with the first term only (here ASCII)."""
    ds = _base("iso2022", "ISO 2022 IR 6\\ISO 2022 IR 149")
    _raw(ds, 0x00100010, "PN",
         b"Hong^Gildong=\x1b$)C\xfb\xf3^\x1b$)C\xd1\xce\xd4\xd7=\x1b$)C\xc8\xab^\x1b$)C"
         b"\xb1\xe6\xb5\xbf")
    _raw(ds, 0x00081030, "LO", b"Plain text")
    return ds


def build_japanese() -> Dataset:
    ds = _base("japanese", "\\ISO 2022 IR 87")
    _raw(ds, 0x00100010, "PN",
         b"Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B=\x1b$B$d$^$@\x1b(B^"
         b"\x1b$B$?$m$&\x1b(B")
    return ds


def build_greek() -> Dataset:
    ds = _base("greek", "ISO_IR 126")
    _raw(ds, 0x00100010, "PN", b"\xc4\xe9\xef\xed\xf5\xf3\xe9\xef\xf2")
    return ds


def build_unsupported_charset() -> Dataset:
    ds = _base("unsupported", "ISO_IR 999")
    _raw(ds, 0x00100010, "PN", b"Caf\xe9^Cr\xe8me\x01")
    return ds


def build_sequences_private() -> Dataset:
    ds = _base("private", "ISO_IR 100")
    _raw(ds, 0x00100010, "PN", b"Priv\xe9^Tags")
    _raw(ds, 0x00090010, "LO", b"GEMS_IDEN_01")  # known creator (DCMTK private.dic)
    _raw(ds, 0x00091001, "LO", b"full fidelity")
    _raw(ds, 0x00091002, "SH", b"SUITE")
    _raw(ds, 0x00091099, "LO", b"not in the dictionary")
    _raw(ds, 0x00290010, "LO", b"PHAROS PRIVATE ")  # unknown creator (trailing space)
    _raw(ds, 0x00291001, "LO", b"mine")
    _raw(ds, 0x00291002, "OB", b"\x00\x01")
    _raw(ds, 0x00311001, "LO", b"no creator")  # no reservation at all
    inner = Dataset()
    _raw(inner, 0x00080100, "SH", b"121327")
    _raw(inner, 0x00080102, "SH", b"DCM ")
    _raw(inner, 0x00080104, "LO", b"Caf\xe9 ")  # nested: dataset's charset
    _raw(inner, 0x00090010, "LO", b"GEMS_IDEN_01")
    _raw(inner, 0x00091004, "SH", b"PRODUCT")
    item = Dataset()
    item.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    item.add_new(0x00089215, "SQ", Sequence([inner]))
    ds.add_new(0x00081140, "SQ", Sequence([item, Dataset()]))
    ds.add_new(0x00081115, "SQ", Sequence([]))
    _raw(ds, 0x00180015, "CS", b"CHEST")
    _raw(ds, 0x7FE00010, "OB", b"\x00\x00")
    _raw(ds, 0x7FE10010, "LO", b"AFTER PIXELS")  # not shown (StopAfterPixelData)
    return ds


BUILDERS = {
    "latin1": build_latin1,
    "utf8": build_utf8,
    "iso2022": build_iso2022,
    "japanese": build_japanese,
    "greek": build_greek,
    "unsupported": build_unsupported_charset,
    "private": build_sequences_private,
}


def to_bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, implicit_vr=False, little_endian=True, enforce_file_format=True)
    return buffer.getvalue()


def reread(name: str) -> Dataset:
    return pydicom.dcmread(io.BytesIO(to_bytes(BUILDERS[name]())))


def main_tags(ds: Dataset) -> dict[str, dict[str, str]]:
    charset = oj.dataset_charset(ds)
    out: dict[str, dict[str, str]] = {}
    for level, entries in MAIN.items():
        values = {}
        for tag, keyword in entries:
            if tag in ds:
                text = oj.decode_value(ds.get_item(tag), charset=charset)
                if text is not None:
                    values[keyword] = text
        out[level] = values
    return out


# ------------------------------------------------------------------------------------
# Tests against the captured truth
# ------------------------------------------------------------------------------------


def _truth(name: str) -> dict:
    return json.loads((TRUTH / f"{name}.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_full_short_simplified_header_match_orthanc(name: str) -> None:
    truth = _truth(name)
    ds = reread(name)
    full = oj.dataset_to_json(ds)
    assert full == truth["tags"]
    assert list(full) == list(truth["tags"])
    assert oj.to_short(full) == truth["short"]
    simplified = oj.to_simplified(full)
    assert simplified == truth["simplified"]
    assert list(simplified) == list(truth["simplified"])  # JsonCpp sorts the keys
    assert oj.header_json(ds.file_meta) == truth["header"]


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_main_dicom_tags_match_orthanc(name: str) -> None:
    truth = _truth(name)
    ours = main_tags(reread(name))
    for level, entries in MAIN.items():
        keywords = {keyword for _, keyword in entries}
        expected = {k: v for k, v in truth["main"][level].items() if k in keywords}
        assert ours[level] == expected, level


def test_selected_values_verified_against_orthanc() -> None:
    """A readable subset of the truth files, as observed on Orthanc 1.10.1."""
    full = oj.dataset_to_json(reread("latin1"))
    assert full["0010,0010"] == {"Name": "PatientName", "Type": "String",
                                 "Value": "  François^Jérôme"}
    assert full["0008,1030"]["Value"] == "Study"
    assert full["0020,0032"]["Value"] == "+1.500\\-0002\\3e2"
    assert full["0028,0011"] == {"Name": "Columns", "Type": "Null", "Value": None}
    assert full["0008,1080"] == {"Name": "AdmittingDiagnosesDescription", "Type": "TooLong",
                                 "Value": None}
    assert full["0018,9306"]["Value"] == "0.10000000000000001"
    assert full["0042,0011"]["Type"] == "Null"
    private = oj.dataset_to_json(reread("private"))
    assert private["0009,1001"] == {"Name": "FullFidelity", "PrivateCreator": "GEMS_IDEN_01",
                                    "Type": "String", "Value": "full fidelity"}
    assert private["0029,1001"]["Name"] == "Unknown Tag & Data"
    assert "7fe1,0010" not in private
    assert private["7fe0,0010"] == {"Name": "PixelData", "Type": "Null", "Value": None}


def test_decode_value_without_charset_and_on_converted_elements() -> None:
    ds = reread("latin1")
    assert oj.decode_value(ds.get_item(0x00100010)) == "  François^Jérôme"
    assert oj.decode_value(ds.get_item(0x00081080)) is None  # too long for MainDicomTags
    assert oj.decode_value(ds.get_item(0x00081080), max_length=0) == "Y" * 258
    assert oj.decode_value(ds.get_item(0x00420011)) is None  # binary
    # Converted elements (datasets built in memory) give the same strings.
    built = Dataset()
    built.PatientName = "Doe^John"
    built.ImagePositionPatient = ["1.5", "-2", "3"]
    built.Rows = 512
    built.add_new(0x00189306, "FD", 0.1)
    assert oj.decode_value(built["PatientName"]) == "Doe^John"
    assert oj.decode_value(built["ImagePositionPatient"]) == "1.5\\-2\\3"
    assert oj.decode_value(built["Rows"]) == "512"
    assert oj.decode_value(built[0x00189306]) == "0.10000000000000001"


def test_charset_detection() -> None:
    assert oj.charset_of(None) == ("latin_1", False)
    assert oj.charset_of("ISO_IR 192") == ("utf_8", False)
    assert oj.charset_of(["", "ISO 2022 IR 87"]) == ("iso2022_jp", True)
    assert oj.charset_of(b"ISO 2022 IR 6\\ISO 2022 IR 149") == (oj.ASCII, True)
    assert oj.charset_of("ISO_IR 999") == (oj.ASCII, False)


def test_without_dcmtk_dictionaries_falls_back_to_pydicom(monkeypatch) -> None:
    monkeypatch.setattr(oj, "_dictionary_dirs", lambda: [])
    oj._dictionary.cache_clear()
    oj._entry.cache_clear()
    try:
        full = oj.dataset_to_json(reread("private"))
        assert full["0010,0010"]["Name"] == "PatientName"
        assert full["0009,0010"]["Name"] == "PrivateCreator"
        assert full["0009,1001"]["Name"] == "Unknown Tag & Data"
    finally:
        oj._dictionary.cache_clear()
        oj._entry.cache_clear()


# ------------------------------------------------------------------------------------
# Corpus invariants (the differential test against Orthanc lives elsewhere)
# ------------------------------------------------------------------------------------


def _corpus_files() -> list[Path]:
    return sorted(p for p in CORPUS.rglob("*") if p.is_file())


@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"no DICOM corpus at {CORPUS} "
                    "(set PHAROS_TEST_CORPUS)")
def test_corpus_invariants() -> None:
    checked = 0
    for path in _corpus_files():
        try:
            ds = pydicom.dcmread(path, force=True)
        except Exception:  # noqa: BLE001 — not DICOM (PNG, README...)
            continue
        if "SOPInstanceUID" not in ds:
            continue
        full = oj.dataset_to_json(ds)
        orjson.dumps(full)
        orjson.dumps(oj.to_short(full))
        orjson.dumps(oj.to_simplified(full))
        orjson.dumps(oj.header_json(getattr(ds, "file_meta", None)))
        for node in full.values():
            assert node["Type"] in {"String", "Null", "TooLong", "Sequence"}
        assert all(len(v.encode()) <= oj.MAX_STRING_LENGTH
                   for v in _strings(full)), path
        checked += 1
    assert checked > 0


def _strings(full: dict) -> list[str]:
    out = []
    for node in full.values():
        if node["Type"] == "Sequence":
            for item in node["Value"]:
                out.extend(_strings(item))
        elif node["Type"] == "String":
            out.append(node["Value"])
    return out


# ------------------------------------------------------------------------------------
# Capturing the truth from a running Orthanc (not run by pytest)
# ------------------------------------------------------------------------------------


def _capture(base: str) -> None:  # pragma: no cover
    import urllib.request

    def get(uri: str) -> object:
        with urllib.request.urlopen(base + uri) as answer:
            return json.loads(answer.read())

    TRUTH.mkdir(exist_ok=True)
    for name, build in BUILDERS.items():
        request = urllib.request.Request(base + "/instances", data=to_bytes(build()),
                                         method="POST")
        with urllib.request.urlopen(request) as answer:
            upload = json.loads(answer.read())
        iid = upload["ID"]
        truth = {
            "tags": get(f"/instances/{iid}/tags"),
            "short": get(f"/instances/{iid}/tags?short"),
            "simplified": get(f"/instances/{iid}/simplified-tags"),
            "header": get(f"/instances/{iid}/header"),
            "main": {
                "patient": get(f"/patients/{upload['ParentPatient']}")["MainDicomTags"],
                "study": get(f"/studies/{upload['ParentStudy']}")["MainDicomTags"],
                "series": get(f"/series/{upload['ParentSeries']}")["MainDicomTags"],
                "instance": get(f"/instances/{iid}")["MainDicomTags"],
            },
        }
        (TRUTH / f"{name}.json").write_text(
            json.dumps(truth, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        print(name, upload["Status"])


if __name__ == "__main__":  # pragma: no cover
    sys.path.insert(0, str(REPO))
    _capture(sys.argv[1] if len(sys.argv) > 1 else "http://localhost:8043")


def _as_unknown_vr(data: bytes, tag: int, vr: bytes) -> bytes:
    """Rewrite one explicit VR element (short form) of *data* as UN (4-byte length)."""
    head = struct.pack("<HH", tag >> 16, tag & 0xFFFF) + vr
    start = data.index(head)
    length = struct.unpack_from("<H", data, start + 6)[0]
    value = data[start + 8:start + 8 + length]
    return (data[:start] + head[:4] + b"UN\0\0" + struct.pack("<L", len(value)) + value
            + data[start + 8 + length:])


def test_unknown_vr_text_is_read_as_a_c_string() -> None:
    """CP-246: public text elements relayed as UN keep their NUL padding; Orthanc 1.10.1
    shows them up to the first NUL (identifiers are then found at ingest), keeps a space
    padding, and shows UN numbers as Null (checked on Orthanc 1.10.1)."""
    ds = _base("un", "ISO_IR 100")
    ds.SOPInstanceUID = "1.2.3.4"  # written with its NUL padding
    ds.StudyTime = "100851.98"  # written with a space padding
    ds.NumberOfSlices = 227
    data = to_bytes(ds)
    for tag, vr in ((0x00080018, b"UI"), (0x00080030, b"TM"), (0x00540081, b"US")):
        data = _as_unknown_vr(data, tag, vr)
    ds = pydicom.dcmread(io.BytesIO(data))
    assert ds.get_item(0x00080018).VR == "UN"
    full = oj.dataset_to_json(ds)
    assert full["0008,0018"]["Value"] == "1.2.3.4"
    assert full["0008,0030"]["Value"] == "100851.98 "
    assert full["0054,0081"]["Type"] == "Null"
    assert oj.decode_value(ds.get_item(0x00080018)) == "1.2.3.4"
