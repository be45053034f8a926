"""Decoded images: previews, truncated values, numpy arrays (truths and synthetic files)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from pydicom.uid import generate_uid

from tests.helpers import make_dicom


def _png(content: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(content)))


RAMP = np.arange(64, dtype="<u2") * 5 + 3  # 3 .. 318: some above 255


def _ramp_instance(http, **extra) -> str:
    """An 8x8 instance whose stored values are RAMP (uint16, 12 bits stored)."""
    data = make_dicom(study_uid=generate_uid(), size=8, pixels=RAMP.tobytes(), **extra)
    return http.post("/instances", content=data).json()["ID"]


def test_preview_stretches_and_truncation_clips(server):
    with server.client() as http:
        instance = _ramp_instance(http)
        raw = RAMP
        preview = _png(http.get(f"/instances/{instance}/preview").content)
        assert preview.dtype == np.uint8 and preview.shape == (8, 8)
        assert preview.min() == 0 and preview.max() == 255  # dynamic range stretched
        expected = np.rint((raw.astype(float) - 3) * 255 / 315).astype(np.uint8)
        assert np.array_equal(preview.ravel(), expected)
        uint16 = _png(http.get(f"/instances/{instance}/image-uint16").content)
        assert np.array_equal(uint16.ravel(), raw)
        uint8 = _png(http.get(f"/instances/{instance}/image-uint8").content)
        assert np.array_equal(uint8.ravel(), np.clip(raw, 0, 255))
        jpeg = http.get(f"/instances/{instance}/preview", headers={"Accept": "image/jpeg"})
        assert jpeg.headers["content-type"] == "image/jpeg"
        pam = http.get(f"/instances/{instance}/image-uint16",
                       headers={"Accept": "image/x-portable-arbitrarymap"})
        assert pam.content.startswith(b"P7\nWIDTH 8\nHEIGHT 8\nDEPTH 1\nMAXVAL 65535")
        assert http.get(f"/instances/{instance}/frames").json() == [0]
        assert http.get(f"/instances/{instance}/frames/0/preview").content == \
            http.get(f"/instances/{instance}/preview").content
        assert http.get(f"/instances/{instance}/frames/3/preview").status_code == 400


def test_multiframe_routes_decode_the_asked_frame(server):
    """Each frame route answers its own frame (decoded alone, not out of a full decode),
    greyscale and RGB, and /numpy stacks them all."""
    grey = (np.arange(3 * 64, dtype="<u2").reshape(3, 8, 8) * 7) % 4096
    rgb = np.stack([np.full((4, 4, 3), (10 * f, 100 + f, 200 - f), np.uint8)
                    for f in range(3)])
    with server.client() as http:
        grey_id = http.post("/instances", content=make_dicom(
            study_uid=generate_uid(), size=8, pixels=grey.tobytes(), NumberOfFrames=3)).json()["ID"]
        rgb_id = http.post("/instances", content=make_dicom(
            study_uid=generate_uid(), size=4, pixels=rgb.tobytes(), NumberOfFrames=3,
            SamplesPerPixel=3, PhotometricInterpretation="RGB", PlanarConfiguration=0,
            BitsAllocated=8, BitsStored=8, HighBit=7)).json()["ID"]
        assert http.get(f"/instances/{grey_id}/frames").json() == [0, 1, 2]
        for frame in (2, 0, 1):
            uint16 = _png(http.get(f"/instances/{grey_id}/frames/{frame}/image-uint16").content)
            assert np.array_equal(uint16, grey[frame])
            preview = _png(http.get(f"/instances/{grey_id}/frames/{frame}/preview").content)
            low, high = int(grey[frame].min()), int(grey[frame].max())
            assert np.array_equal(preview, np.rint(
                (grey[frame].astype(float) - low) * 255 / (high - low)).astype(np.uint8))
            colour = _png(http.get(f"/instances/{rgb_id}/frames/{frame}/preview").content)
            assert np.array_equal(colour, rgb[frame])
        assert http.get(f"/instances/{grey_id}/frames/3/preview").status_code == 400
        stacked = np.load(io.BytesIO(http.get(f"/instances/{grey_id}/numpy?rescale=0").content))
        assert stacked.shape == (3, 8, 8, 1) and np.array_equal(stacked[..., 0], grey)


def test_numpy_shapes_rescale_and_series_order(server):
    with server.client() as http:
        series, study = generate_uid(), generate_uid()
        ids = []
        for z in (2.0, 0.0, 1.0):  # stored out of order: the series array is sorted by position
            data = make_dicom(study_uid=study, series_uid=series, instance_number=int(z) + 1,
                              size=8, RescaleSlope=2, RescaleIntercept=-10,
                              ImagePositionPatient=[0, 0, z],
                              ImageOrientationPatient=[1, 0, 0, 0, 1, 0])
            ids.append(http.post("/instances", content=data).json())
        array = np.load(io.BytesIO(http.get(f"/instances/{ids[0]['ID']}/numpy").content))
        assert array.shape == (1, 8, 8, 1) and array.dtype == np.float32
        raw = np.load(io.BytesIO(http.get(f"/instances/{ids[0]['ID']}/numpy?rescale=0").content))
        assert np.allclose(array, raw.astype(np.float32) * 2 - 10)
        stacked = np.load(io.BytesIO(http.get(f"/series/{ids[0]['ParentSeries']}/numpy").content))
        assert stacked.shape == (3, 8, 8, 1)
        compressed = np.load(io.BytesIO(
            http.get(f"/series/{ids[0]['ParentSeries']}/numpy?compress=1").content))
        assert np.array_equal(compressed["arr_0"], stacked)


def test_no_pixel_data_is_415(server):
    with server.client() as http:
        import pydicom
        ds = pydicom.dcmread(io.BytesIO(make_dicom(study_uid=generate_uid())))
        del ds.PixelData
        out = io.BytesIO()
        ds.save_as(out)
        instance = http.post("/instances", content=out.getvalue()).json()["ID"]
        answer = http.get(f"/instances/{instance}/preview")
        assert answer.status_code == 415 and answer.json()["HttpStatus"] == 415


TRUTHS = [  # (truth PNG, DICOM file, route, tolerance)
    ("Formats/SignedCT.png", "SignedCT.dcm", "image-int16", 0),
    ("Formats/KarstenHilbertRF.png", "KarstenHilbertRF.dcm", "preview", 0),
    ("Formats/KarstenHilbertRF.png", "KarstenHilbertRF.dcm", "image-uint8", 0),
    # JPEG baseline YBR: decoders differ by a few levels after colour upsampling.
    ("TransferSyntaxes/1.2.840.10008.1.2.4.50.png",
     "TransferSyntaxes/1.2.840.10008.1.2.4.50.dcm", "preview", 10),
]


@pytest.mark.parametrize("truth,source,route,tolerance", TRUTHS)
def test_pixels_match_the_shipped_truths(server, corpus, truth, source, route, tolerance):
    with server.client() as http:
        instance = http.post("/instances", content=(corpus / source).read_bytes()).json()["ID"]
        answer = http.get(f"/instances/{instance}/{route}")
        assert answer.status_code == 200, answer.text
        expected = np.asarray(Image.open(corpus / truth)).astype(int)
        got = _png(answer.content).astype(int)
        assert got.shape == expected.shape
        assert np.abs(got - expected).max() <= tolerance


DECODABLE = ["TransferSyntaxes/1.2.840.10008.1.2.1.dcm", "TransferSyntaxes/1.2.840.10008.1.2.2.dcm",
             "TransferSyntaxes/1.2.840.10008.1.2.1.99.dcm", "TransferSyntaxes/1.2.840.10008.1.2.dcm",
             "TransferSyntaxes/1.2.840.10008.1.2.4.57.dcm", "TransferSyntaxes/1.2.840.10008.1.2.4.70.dcm",
             "TransferSyntaxes/1.2.840.10008.1.2.4.80.dcm", "TransferSyntaxes/1.2.840.10008.1.2.4.81.dcm",
             "TransferSyntaxes/1.2.840.10008.1.2.4.90.dcm", "TransferSyntaxes/1.2.840.10008.1.2.4.91.dcm",
             "TransferSyntaxes/1.2.840.10008.1.2.5.dcm", "Formats/Jpeg.dcm", "Formats/JpegLossless.dcm",
             "Formats/Rle.dcm", "Formats/jp2k91YBR-ICT.dcm", "Implicit-vr-us-palette.dcm",
             "MultiframeWindowing.dcm", "LenaTwiceWithFragments.dcm", "SignedCT.dcm"]


@pytest.mark.parametrize("source", DECODABLE)
def test_every_transfer_syntax_decodes(server, corpus, source):
    with server.client() as http:
        instance = http.post("/instances", content=(corpus / source).read_bytes()).json()["ID"]
        frames = http.get(f"/instances/{instance}/frames").json()
        assert frames
        for frame in (frames[0], frames[-1]):
            answer = http.get(f"/instances/{instance}/frames/{frame}/preview")
            assert answer.status_code == 200, answer.text
            assert _png(answer.content).size > 0
        array = np.load(io.BytesIO(http.get(f"/instances/{instance}/numpy").content))
        assert array.shape[0] == len(frames)
