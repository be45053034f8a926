"""The fast DICOM JSON writer gives exactly pydicom's ``to_json_dict`` (and, with
``decimal_text``, the same with DS values as the text pydicom read them from)."""

from __future__ import annotations

import io
import warnings

import orjson
import pydicom
import pytest
from pydicom.data import get_testdata_files

from app.dicom.fast_json import to_json_dict
from tests.helpers import make_dicom


def _handler(elem) -> str:  # noqa: ANN001
    return f"bulk:{elem.tag:08X}"


def _texts_of_ds(ds, document) -> None:  # noqa: ANN001 — the reference for decimal_text
    for elem in ds:
        key = f"{elem.tag:08X}"
        if key not in document:
            continue
        if elem.VR == "DS" and "Value" in document[key]:
            values = elem.value if elem.VM > 1 else [elem.value]
            document[key]["Value"] = [str(v).strip() or None if v is not None else None
                                      for v in values]
        elif elem.VR == "SQ":
            for item, item_doc in zip(elem.value, document[key].get("Value") or [],
                                      strict=False):
                _texts_of_ds(item, item_doc)


def _both(data: bytes, decimal_text: bool = False) -> tuple[bytes, bytes]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fast = to_json_dict(pydicom.dcmread(io.BytesIO(data), force=True),
                            bulk_data_threshold=1024, bulk_data_element_handler=_handler,
                            decimal_text=decimal_text)
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
        slow = ds.to_json_dict(bulk_data_threshold=1024, bulk_data_element_handler=_handler)
        if decimal_text:
            _texts_of_ds(ds, slow)
    return (orjson.dumps(fast, option=orjson.OPT_SORT_KEYS),
            orjson.dumps(slow, option=orjson.OPT_SORT_KEYS))


def test_synthetic_instance():
    fast, slow = _both(make_dicom(size=64, ImageType=["ORIGINAL", "", "AXIAL "],
                                  PixelSpacing=["0.7", "0.70"], SliceThickness="1e1",
                                  OperatorsName="A^B=C^D"))
    assert fast == slow


def _readable(paths):
    for path in paths:
        try:
            data = open(path, "rb").read()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pydicom.dcmread(io.BytesIO(data))
                pydicom.dcmread(io.BytesIO(data)).to_json_dict()
        except Exception:  # noqa: BLE001 — files pydicom itself cannot serialise
            continue
        yield path, data


def test_decimal_text_keeps_what_was_written():
    ds = pydicom.dcmread(io.BytesIO(make_dicom(
        size=8, PixelSpacing=["0.70", "1E1"], SliceThickness=" 4.50 ",
        ImagePositionPatient=["-1", "", "+2.0"])), force=True)
    document = to_json_dict(ds, bulk_data_threshold=1024, bulk_data_element_handler=_handler,
                            decimal_text=True)
    assert document["00280030"] == {"vr": "DS", "Value": ["0.70", "1E1"]}
    assert document["00180050"] == {"vr": "DS", "Value": ["4.50"]}
    assert document["00200032"] == {"vr": "DS", "Value": ["-1", None, "+2.0"]}
    fast, slow = _both(make_dicom(size=8, PixelSpacing=["0.70", "1E1"]), decimal_text=True)
    assert fast == slow


@pytest.mark.parametrize("decimal_text", [False, True])
def test_pydicom_test_files(decimal_text):
    checked = 0
    for path, data in _readable(get_testdata_files("*.dcm")):
        fast, slow = _both(data, decimal_text)
        assert fast == slow, path
        checked += 1
    assert checked > 50


@pytest.mark.parametrize("decimal_text", [False, True])
def test_sample_corpus(corpus, decimal_text):
    paths = [p for p in corpus.rglob("*") if p.is_file()
             and p.suffix not in (".png", ".md", ".pdf", ".raw", ".dump")]
    checked = 0
    for path, data in _readable(paths):
        fast, slow = _both(data, decimal_text)
        assert fast == slow, path
        checked += 1
    if not checked:
        pytest.skip("no readable file in the corpus")
