"""WADO-RS rendering (window functions, per-frame rescale, viewport) and transcoding
(frames and instances in other syntaxes), against a live Pharos."""

from __future__ import annotations

import io
import math

import httpx
import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate, generate_frames
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

from tests.dicomweb.conftest import parse_multipart, stow
from tests.helpers import make_dicom


def _edit(data: bytes, **changes: object) -> pydicom.Dataset:
    ds = pydicom.dcmread(io.BytesIO(data))
    for keyword, value in changes.items():
        setattr(ds, keyword, value)
    return ds


def _bytes(ds: pydicom.Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _path(ds: pydicom.Dataset) -> str:
    return (f"/dicom-web/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
            f"/instances/{ds.SOPInstanceUID}")


@pytest.fixture(scope="module")
def multiframe(http: httpx.Client) -> pydicom.Dataset:
    """4 frames of 4x4 values 0, 16, 32...; frame k has its own rescale (intercept 100k)."""
    values = np.arange(16, dtype=np.uint16).reshape(4, 4) * 16
    ds = _edit(make_dicom(size=4), NumberOfFrames=4,
               PixelData=np.concatenate([values] * 4).tobytes())
    groups = []
    for k in range(4):
        item, transform = Dataset(), Dataset()
        transform.RescaleIntercept, transform.RescaleSlope = str(100 * k), "1"
        item.PixelValueTransformationSequence = Sequence([transform])
        groups.append(item)
    ds.PerFrameFunctionalGroupsSequence = Sequence(groups)
    assert stow(http, [_bytes(ds)]).status_code == 200
    return ds


def _png(http: httpx.Client, path: str, **params: str) -> np.ndarray:
    answer = http.get(path, params=params, headers={"Accept": "image/png"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "image/png"
    return np.asarray(Image.open(io.BytesIO(answer.content)))


def _round(value: float) -> int:
    """Orthanc's FloatToPixel: +0.5, saturated, truncated."""
    return int(min(max(value + 0.5, 0), 255))


def test_window_functions_on_modality_values(http: httpx.Client,
                                             multiframe: pydicom.Dataset) -> None:
    c, w = 127.0, 256.0
    functions = {
        "linear": lambda x: 0 if x <= c - 0.5 - (w - 1) / 2 else 255
        if x > c - 0.5 + (w - 1) / 2 else ((x - (c - 0.5)) / (w - 1) + 0.5) * 255,
        "linear-exact": lambda x: 0 if x <= c - w / 2 else 255 if x > c + w / 2
        else (x - c) / w * 255,
        "sigmoid": lambda x: 255 / (1 + math.exp(-4 * (x - c) / w)),
    }
    for frame, intercept in ((1, 0), (3, 200)):
        for name, function in functions.items():
            image = _png(http, _path(multiframe) + f"/frames/{frame}/rendered",
                         window=f"{c:g},{w:g},{name}")
            expected = [[_round(function(v * 16 + intercept)) for v in range(r * 4, r * 4 + 4)]
                        for r in range(4)]
            assert np.abs(image.astype(int) - np.array(expected)).max() <= 1, (frame, name)
    for bad in ("1", "1,0,linear", "1,2,cubic", "a,b,linear"):
        assert http.get(_path(multiframe) + "/frames/1/rendered",
                        params={"window": bad}).status_code == 400
    assert http.get(_path(multiframe) + "/frames/5/rendered").status_code == 400


def test_viewport_fits_on_a_black_canvas(http: httpx.Client,
                                         multiframe: pydicom.Dataset) -> None:
    image = _png(http, _path(multiframe) + "/rendered", viewport="8,4",
                 window="120,240,linear")
    assert image.shape == (4, 8)
    assert (image[:, :2] == 0).all() and (image[:, 6:] == 0).all()  # letterboxed
    # A source region, flipped horizontally by its negative width.
    region = _png(http, _path(multiframe) + "/rendered", viewport="2,2,0,0,-2,2",
                  window="120,240,linear")
    whole = _png(http, _path(multiframe) + "/rendered", window="120,240,linear")
    assert np.array_equal(region, whole[:2, :2][:, ::-1])
    for bad in ("1", "a,b", "-1,2", "1,2,3"):
        assert http.get(_path(multiframe) + "/rendered",
                        params={"viewport": bad}).status_code == 400


def test_default_window_is_the_instances(http: httpx.Client) -> None:
    values = (np.arange(64, dtype=np.uint16) * 64).reshape(8, 8)
    ds = _edit(make_dicom(size=8), PixelData=values.tobytes(), WindowCenter="1024",
               WindowWidth="512")
    assert stow(http, [_bytes(ds)]).status_code == 200
    image = _png(http, _path(ds) + "/rendered")
    assert image[0, 0] == 0 and image[7, 7] == 255 and 0 < image[2, 1] < 255
    # Without a window in the file: the whole dynamics.
    plain = _edit(make_dicom(size=8), PixelData=values.tobytes())
    assert stow(http, [_bytes(plain)]).status_code == 200
    image = _png(http, _path(plain) + "/rendered")
    assert image.min() == 0 and image.max() == 255


def test_frames_and_instances_transcoded(http: httpx.Client) -> None:
    values = (np.arange(32 * 40, dtype=np.uint16) % 4096).reshape(32, 40)
    ds = _edit(make_dicom(size=32), Columns=40, PixelData=values.tobytes())
    assert stow(http, [_bytes(ds)]).status_code == 200
    # image/jpeg without a syntax: its default, JPEG Lossless SV1 (PS3.18 Table 8.7.3-5).
    answer = http.get(_path(ds) + "/frames/1",
                      headers={"Accept": 'multipart/related; type="image/jpeg"'})
    (headers, frame), = parse_multipart(answer)
    assert headers["content-type"] == "image/jpeg; transfer-syntax=1.2.840.10008.1.2.4.70"
    check = _edit(_bytes(ds), PixelData=encapsulate([frame]))
    check.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.70"
    assert np.array_equal(check.pixel_array, values)
    # Lossy JPEG of a 12-bit image: not encodable here, 400.
    assert http.get(_path(ds) + "/frames/1", headers={
        "Accept": "multipart/related; type=image/jpeg; transfer-syntax=1.2.840.10008.1.2.4.50"
    }).status_code == 400
    # Whole instances in any encodable syntax.
    for syntax in ("1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.5", "1.2.840.10008.1.2"):
        answer = http.get(_path(ds), headers={
            "Accept": f"multipart/related; type=application/dicom; transfer-syntax={syntax}"})
        (_, content), = parse_multipart(answer)
        got = pydicom.dcmread(io.BytesIO(content))
        assert got.file_meta.TransferSyntaxUID == syntax
        assert np.array_equal(got.pixel_array, values)


def test_big_endian_frames_are_sent_little_endian(http: httpx.Client) -> None:
    values = np.arange(16, dtype=np.uint16).reshape(4, 4) * 250  # within BitsStored 12
    ds = _edit(make_dicom(size=4))
    ds.PixelData = values.astype(">u2").tobytes()
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.2"
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, little_endian=False, implicit_vr=False,
                     force_encoding=True)
    assert stow(http, [buffer.getvalue()]).status_code == 200
    (headers, frame), = parse_multipart(http.get(_path(ds) + "/frames/1"))
    assert headers["content-type"] == \
        "application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1"
    assert frame == values.astype("<u2").tobytes()
    answer = http.get(_path(ds), headers={"Accept": "multipart/related"})
    (_, content), = parse_multipart(answer)
    little = pydicom.dcmread(io.BytesIO(content))
    assert little.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert np.array_equal(little.pixel_array, values)


def test_videos_and_documents_render_as_themselves(http: httpx.Client) -> None:
    stream = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4
    video = _edit(make_dicom(), SOPClassUID="1.2.840.10008.5.1.4.1.1.77.1.4.1",
                  NumberOfFrames=10, PixelData=encapsulate([stream]))
    video.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.102"
    video["PixelData"].VR = "OB"
    assert stow(http, [_bytes(video)]).status_code == 200
    rendered = http.get(_path(video) + "/rendered")
    assert rendered.headers["content-type"] == "video/mp4"
    assert rendered.content == stream
    thumbnail = http.get(_path(video) + "/thumbnail")
    assert thumbnail.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(thumbnail.content)).size == (128, 128)

    pdf = b"%PDF-1.4 a tiny document %%EOF"
    document = Dataset()
    document.SOPClassUID = "1.2.840.10008.5.1.4.1.1.104.1"
    document.SOPInstanceUID, document.StudyInstanceUID = generate_uid(), generate_uid()
    document.SeriesInstanceUID = generate_uid()
    document.PatientID, document.Modality = "PDF", "DOC"
    document.MIMETypeOfEncapsulatedDocument = "application/pdf"
    document.EncapsulatedDocument = pdf
    document.file_meta = pydicom.dataset.FileMetaDataset()
    document.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.1"
    assert stow(http, [_bytes(document)]).status_code == 200
    rendered = http.get(_path(document) + "/rendered")
    assert rendered.headers["content-type"] == "application/pdf"
    assert rendered.content.rstrip(b"\x00") == pdf


def test_series_and_study_render_their_first_instance(http: httpx.Client) -> None:
    study, series = generate_uid(), generate_uid()
    first = make_dicom(study_uid=study, series_uid=series, instance_number=1,
                       pixels=np.full((8, 8), 100, np.uint16).tobytes())
    second = make_dicom(study_uid=study, series_uid=series, instance_number=2,
                        pixels=(np.arange(64, dtype=np.uint16) * 50).tobytes())
    assert stow(http, [second, first]).status_code == 200
    ds = pydicom.dcmread(io.BytesIO(first))
    one = http.get(_path(ds) + "/rendered").content
    assert http.get(f"/dicom-web/studies/{study}/series/{series}/rendered").content == one
    assert http.get(f"/dicom-web/studies/{study}/rendered").content == one
    assert next(generate_frames(encapsulate([b"ab"]), number_of_frames=1)) == b"ab"


def test_all_frames(http: httpx.Client, multiframe: pydicom.Dataset) -> None:
    parts = parse_multipart(http.get(_path(multiframe) + "/frames"))
    assert len(parts) == 4
    assert [h["content-location"].rsplit("/", 1)[-1] for h, _ in parts] == ["1", "2", "3", "4"]
    assert all(content == multiframe.PixelData[:32] for _, content in parts)
