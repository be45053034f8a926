"""The fast DICOM JSON writer gives exactly pydicom's ``to_json_dict``."""

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


def _both(data: bytes) -> tuple[bytes, bytes]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fast = to_json_dict(pydicom.dcmread(io.BytesIO(data), force=True),
                            bulk_data_threshold=1024, bulk_data_element_handler=_handler)
        slow = pydicom.dcmread(io.BytesIO(data), force=True).to_json_dict(
            bulk_data_threshold=1024, bulk_data_element_handler=_handler)
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


def test_pydicom_test_files():
    checked = 0
    for path, data in _readable(get_testdata_files("*.dcm")):
        fast, slow = _both(data)
        assert fast == slow, path
        checked += 1
    assert checked > 50


def test_sample_corpus(corpus):
    paths = [p for p in corpus.rglob("*") if p.is_file()
             and p.suffix not in (".png", ".md", ".pdf", ".raw", ".dump")]
    checked = 0
    for path, data in _readable(paths):
        fast, slow = _both(data)
        assert fast == slow, path
        checked += 1
    if not checked:
        pytest.skip("no readable file in the corpus")
