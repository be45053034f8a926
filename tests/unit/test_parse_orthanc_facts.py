"""The facts ingest derives the way Orthanc 1.10.1 does (checked against it by the
differential test on the whole corpus): PixelDataOffset, IndexInSeries, expected count."""

from __future__ import annotations

import io

import pydicom
import pytest

from app.dicom.parse import (
    expected_instances,
    index_in_series_text,
    parse_instance,
    pixel_data_offset,
)
from app.errors import BadFileFormat, MissingRequiredTag
from tests.helpers import make_dicom


def _rewrite(data: bytes, **changes: object) -> bytes:
    ds = pydicom.dcmread(io.BytesIO(data))
    for keyword, value in changes.items():
        if value is None:
            delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    out = io.BytesIO()
    ds.save_as(out)
    return out.getvalue()


def test_pixel_data_offset_is_the_offset_of_the_pixel_data_tag() -> None:
    data = make_dicom()
    offset = pixel_data_offset(data)
    assert offset is not None and data[offset:offset + 4] == b"\xe0\x7f\x10\x00"
    assert parse_instance(data).pixel_data_offset == offset


def test_pixel_data_offset_skips_sequences() -> None:
    ds = pydicom.dcmread(io.BytesIO(make_dicom()))
    item = pydicom.Dataset()
    item.ReferencedSOPInstanceUID = "1.2.3"
    item.add_new(0x7FE00010, "OB", b"\x7f" * 4)  # a PixelData tag inside an item
    ds.ReferencedImageSequence = [item]
    out = io.BytesIO()
    ds.save_as(out)
    data = out.getvalue()
    offset = pixel_data_offset(data)
    assert offset == data.rindex(b"\xe0\x7f\x10\x00")


def test_no_pixel_data_offset_without_preamble_or_pixels() -> None:
    data = make_dicom()
    assert pixel_data_offset(data[128:]) is None  # no preamble: Orthanc gives up
    assert pixel_data_offset(_rewrite(data, PixelData=None)) is None
    assert pixel_data_offset(b"junk" * 100) is None


def test_index_in_series_text_is_instance_number_even_when_empty() -> None:
    assert index_in_series_text({"InstanceNumber": " 12 ", "ImageIndex": "3"}) == "12"
    assert index_in_series_text({"InstanceNumber": "", "ImageIndex": "3"}) == ""
    assert index_in_series_text({"ImageIndex": "3"}) == "3"
    assert index_in_series_text({}) is None


@pytest.mark.parametrize(("tags", "expected"), [
    ({"ImagesInAcquisition": "10", "NumberOfTemporalPositions": "3"}, 30),
    ({"ImagesInAcquisition": "10"}, None),  # the pair is needed
    ({"NumberOfSlices": "45"}, None),  # without NumberOfTimeSlices, as Orthanc
    ({"NumberOfSlices": "45", "NumberOfTimeSlices": "2"}, 90),
    ({"NumberOfSlices": "45", "CardiacNumberOfImages": "20"}, 20),
    ({"CardiacNumberOfImages": "0"}, None),
    ({"ImagesInAcquisition": "1.5", "NumberOfTemporalPositions": "3",
      "CardiacNumberOfImages": "20"}, None),  # bad_lexical_cast ends it all
])
def test_expected_instances_follows_orthanc(tags: dict[str, str], expected: int | None) -> None:
    assert expected_instances(tags) == expected


def test_missing_and_empty_uids() -> None:
    data = make_dicom()
    with pytest.raises(MissingRequiredTag):
        parse_instance(_rewrite(data, SeriesInstanceUID=None))
    with pytest.raises(BadFileFormat, match="missing StudyInstanceUID"):
        parse_instance(_rewrite(data, SeriesInstanceUID=""))
