"""Decoded images as Orthanc answers them: extraction modes, /rendered, /numpy, /matlab,
raw frames, palettes, 1-bit and PMSCT_RLE1 pixels, negotiation and errors.

The expected values are computed here with Orthanc's arithmetic (single precision, its
rounding); ``tests/interop/test_images_differential.py`` compares the bytes themselves
with Debian's Orthanc on the corpus.
"""

from __future__ import annotations

import gzip
import io
import zipfile

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.encaps import generate_frames
from pydicom.uid import JPEG2000Lossless, RLELossless, generate_uid

from tests.helpers import live_server, make_dicom


def _png(content: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(content)))


def _post(http, data: bytes) -> str:
    answer = http.post("/instances", content=data)
    assert answer.status_code == 200, answer.text
    return answer.json()["ID"]


def _dataset(data: bytes) -> pydicom.Dataset:
    return pydicom.dcmread(io.BytesIO(data))


def _bytes(ds: pydicom.Dataset) -> bytes:
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


RAMP = np.arange(64, dtype="<u2") * 5 + 3  # 3 .. 318: some above 255


def _orthanc_stretch(values: np.ndarray) -> np.ndarray:
    """Orthanc's preview: a * x + b in float32 (a = 255 / (max - min)), halves up."""
    low, high = int(values.min()), int(values.max())
    a = np.float32(255) / np.float32(high - low)
    v = a * values.astype(np.float32) + np.float32(-low) * a
    return np.floor(v + np.float32(0.5)).clip(0, 255).astype(np.uint8)


def test_extraction_modes_and_their_errors(server):
    with server.client() as http:
        instance = _post(http, make_dicom(study_uid=generate_uid(), size=8, pixels=RAMP.tobytes()))
        preview = _png(http.get(f"/instances/{instance}/preview").content)
        assert np.array_equal(preview.ravel(), _orthanc_stretch(RAMP))
        assert np.array_equal(_png(http.get(f"/instances/{instance}/image-uint16").content).ravel(), RAMP)
        assert np.array_equal(_png(http.get(f"/instances/{instance}/image-uint8").content).ravel(),
                              np.clip(RAMP, 0, 255))
        int16 = http.get(f"/instances/{instance}/image-int16")
        assert np.array_equal(_png(int16.content).ravel().astype(np.int64), RAMP)
        assert http.get(f"/instances/{instance}/frames").json() == [0]
        assert http.get(f"/instances/{instance}/frames/0/preview").content == \
            http.get(f"/instances/{instance}/preview").content
        assert "raw.gz" in http.get(f"/instances/{instance}/frames/0").json()
        # As Orthanc: no answer (404) for a frame out of range, a bad frame number, an
        # Accept header matching no image type, or JPEG asked for 16-bit values.
        for path, headers in (("frames/3/preview", {}), ("frames/x/preview", {}),
                              ("preview", {"Accept": "application/pdf"}),
                              ("image-uint16", {"Accept": "image/jpeg"})):
            assert http.get(f"/instances/{instance}/{path}", headers=headers).status_code == 404
        # A bad JPEG quality is a failure of the handler: 415, as Orthanc answers.
        assert http.get(f"/instances/{instance}/preview?quality=0").status_code == 415
        for accept in ("*/*", "image/*", "image/png", "text/html, image/*;q=0.2"):
            answer = http.get(f"/instances/{instance}/preview", headers={"Accept": accept})
            assert answer.headers["content-type"] == "image/png", accept
        jpeg = http.get(f"/instances/{instance}/preview", headers={"Accept": "image/jpeg"})
        assert jpeg.headers["content-type"] == "image/jpeg"
        assert Image.open(io.BytesIO(jpeg.content)).format == "JPEG"
        small = http.get(f"/instances/{instance}/preview?quality=10",
                         headers={"Accept": "image/jpeg"})
        assert len(small.content) < len(jpeg.content)
        pam = http.get(f"/instances/{instance}/image-uint16",
                       headers={"Accept": "image/x-portable-arbitrarymap"})
        assert pam.content.startswith(b"P7\nWIDTH 8\nHEIGHT 8\nDEPTH 1\nMAXVAL 65535")
        assert np.array_equal(np.frombuffer(pam.content[-128:], ">u2"), RAMP)


def test_png_files_are_libpng_files(server):
    """PNG written as libpng writes Orthanc's: 8 KiB IDAT chunks, a narrowed zlib window
    for small images, 16-bit images ending with Orthanc's two IEND chunks."""
    import struct
    big = (np.arange(300 * 300, dtype=np.uint32) * 7919 % 4096).astype("<u2")
    with server.client() as http:
        instance = _post(http, make_dicom(study_uid=generate_uid(), size=300, pixels=big.tobytes()))
        content = http.get(f"/instances/{instance}/image-uint16").content
        chunks, position = [], 8
        while position < len(content):
            (length,) = struct.unpack(">I", content[position:position + 4])
            chunks.append((content[position + 4:position + 8], length))
            position += 12 + length
        names = [name for name, _ in chunks]
        assert names[0] == b"IHDR" and names[-2:] == [b"IEND", b"IEND"]
        assert all(length == 8192 for name, length in chunks[1:-3] if name == b"IDAT")
        assert np.array_equal(_png(content).ravel(), big)
        tiny = _post(http, make_dicom(study_uid=generate_uid(), size=8, pixels=RAMP.tobytes()))
        png = http.get(f"/instances/{tiny}/preview").content
        assert png[-12:-8] == b"\0\0\0\0" and png.count(b"IEND") == 1
        idat = png.index(b"IDAT") + 4
        assert png[idat] >> 4 < 7  # the zlib header announces a window below 32 KiB


def test_multiframe_routes_decode_the_asked_frame(server):
    grey = (np.arange(3 * 64, dtype="<u2").reshape(3, 8, 8) * 7) % 4096
    rgb = np.stack([np.full((4, 4, 3), (10 * f, 100 + f, 200 - f), np.uint8) for f in range(3)])
    with server.client() as http:
        grey_id = _post(http, make_dicom(study_uid=generate_uid(), size=8,
                                         pixels=grey.tobytes(), NumberOfFrames=3))
        rgb_id = _post(http, make_dicom(
            study_uid=generate_uid(), size=4, pixels=rgb.tobytes(), NumberOfFrames=3,
            SamplesPerPixel=3, PhotometricInterpretation="RGB", PlanarConfiguration=0,
            BitsAllocated=8, BitsStored=8, HighBit=7))
        assert http.get(f"/instances/{grey_id}/frames").json() == [0, 1, 2]
        for frame in (2, 0, 1):
            uint16 = _png(http.get(f"/instances/{grey_id}/frames/{frame}/image-uint16").content)
            assert np.array_equal(uint16, grey[frame])
            preview = _png(http.get(f"/instances/{grey_id}/frames/{frame}/preview").content)
            assert np.array_equal(preview, _orthanc_stretch(grey[frame]))
            colour = _png(http.get(f"/instances/{rgb_id}/frames/{frame}/preview").content)
            assert np.array_equal(colour, rgb[frame])
            raw = http.get(f"/instances/{grey_id}/frames/{frame}/raw")
            assert raw.headers["content-type"] == "application/octet-stream"
            assert raw.content == grey[frame].tobytes()
            assert gzip.decompress(http.get(
                f"/instances/{grey_id}/frames/{frame}/raw.gz").content) == raw.content
        # Colour images have no truncated grey values (Orthanc: 415).
        assert http.get(f"/instances/{rgb_id}/image-uint8").status_code == 415
        assert http.get(f"/instances/{grey_id}/frames/3/raw").status_code == 400
        stacked = np.load(io.BytesIO(http.get(f"/instances/{grey_id}/numpy?rescale=0").content))
        assert stacked.shape == (3, 8, 8, 1) and np.array_equal(stacked[..., 0], grey)


def test_planar_signed_and_shifted_values(server):
    """Orthanc's generic accessor: planar colour interleaved, BitsStored masked and the
    sign extended; the fast path shifts unsigned values right by HighBit + 1 - BitsStored."""
    planes = np.stack([np.full((4, 4), v, np.uint8) for v in (10, 20, 30)])
    signed = np.array([-5, 7, -2048, 2047] * 4, "<i2")
    stored = (signed.astype(np.int32) & 0x0FFF).astype("<u2")  # 12 bits, sign not extended
    shifted = (np.arange(16, dtype="<u2") * 100) << 4  # values in bits 4..15
    with server.client() as http:
        planar = _post(http, make_dicom(
            study_uid=generate_uid(), size=4, pixels=planes.tobytes(), SamplesPerPixel=3,
            PhotometricInterpretation="RGB", PlanarConfiguration=1, BitsAllocated=8,
            BitsStored=8, HighBit=7))
        assert np.array_equal(_png(http.get(f"/instances/{planar}/preview").content),
                              np.moveaxis(planes, 0, -1))
        negative = _post(http, make_dicom(
            study_uid=generate_uid(), size=4, pixels=stored.tobytes(), PixelRepresentation=1))
        values = np.load(io.BytesIO(http.get(f"/instances/{negative}/numpy?rescale=0").content))
        assert values.dtype == np.int16 and np.array_equal(values.ravel(), signed)
        high = _post(http, make_dicom(study_uid=generate_uid(), size=4, pixels=shifted.tobytes(),
                                      BitsStored=12, HighBit=15))
        uint16 = _png(http.get(f"/instances/{high}/image-uint16").content)
        assert np.array_equal(uint16.ravel(), shifted >> 4)


def test_palettes_segmentations_and_pmsct_rle1(server):
    indexes = np.arange(16, dtype=np.uint8).reshape(4, 4) * 16
    lut = [np.arange(256, dtype="<u2") * m for m in (256, 128, 64)]
    bits = np.array([[1, 0, 0, 0, 0, 0, 0, 1] * 2] * 8, np.uint8)
    with server.client() as http:
        palette = _post(http, make_dicom(
            study_uid=generate_uid(), size=4, pixels=indexes.tobytes(),
            PhotometricInterpretation="PALETTE COLOR", BitsAllocated=8, BitsStored=8, HighBit=7,
            RedPaletteColorLookupTableDescriptor=[256, 0, 16],
            GreenPaletteColorLookupTableDescriptor=[256, 0, 16],
            BluePaletteColorLookupTableDescriptor=[256, 0, 16],
            RedPaletteColorLookupTableData=lut[0].tobytes(),
            GreenPaletteColorLookupTableData=lut[1].tobytes(),
            BluePaletteColorLookupTableData=lut[2].tobytes()))
        rgb = _png(http.get(f"/instances/{palette}/preview").content)
        assert np.array_equal(rgb, np.stack([(t[indexes] >> 8) for t in lut], -1))
        segmentation = _post(http, make_dicom(
            study_uid=generate_uid(), size=16, pixels=np.packbits(
                np.concatenate([bits, bits]), bitorder="little").tobytes(),
            Rows=16, Columns=16, BitsAllocated=1, BitsStored=1, HighBit=0))
        mask = _png(http.get(f"/instances/{segmentation}/image-uint8").content)
        assert np.array_equal(mask, np.concatenate([bits, bits]) * 255)
        values = (np.arange(64, dtype=np.int64) * 37 % 1000 + 20).astype("<u2")
        ds = _dataset(make_dicom(study_uid=generate_uid(), size=8))
        del ds.PixelData
        ds.add_new(0x07A10010, "LO", "ELSCINT1")
        ds.add_new(0x07A11011, "CS", "PMSCT_RLE1")
        ds.add_new(0x07A1100A, "OB", _pmsct_rle1(values))
        philips = _post(http, _bytes(ds))
        assert np.array_equal(_png(http.get(f"/instances/{philips}/image-uint16").content).ravel(),
                              values)
        assert http.get(f"/instances/{philips}/frames/0/raw").content == values.tobytes()


def _pmsct_rle1(values: np.ndarray) -> bytes:
    """Philips' PMSCT_RLE1 encoding of 16-bit values (deltas, then byte runs)."""
    deltas, previous = bytearray(), None
    for value in (int(v) for v in values):
        delta = None if previous is None else value - previous
        if delta is not None and -128 <= delta <= 127 and (delta & 0xFF) not in (0x5A, 0xA5):
            deltas.append(delta & 0xFF)
        else:
            deltas += bytes((0x5A, value & 0xFF, value >> 8))
        previous = value
    runs, position = bytearray(), 0
    while position < len(deltas):
        end = position
        while end < len(deltas) and deltas[end] == deltas[position] and end - position < 256:
            end += 1
        if end - position >= 4 or deltas[position] == 0xA5:
            runs += bytes((0xA5, end - position - 1, deltas[position]))
        else:
            runs += deltas[position:end]
        position = end
    return bytes(runs)


def test_rendered_windowing_resizing_and_monochrome1(server):
    values = (np.arange(100, dtype="<u2") * 10).reshape(10, 10)
    with server.client() as http:
        instance = _post(http, make_dicom(
            study_uid=generate_uid(), size=10, pixels=values.tobytes(), WindowCenter="495",
            WindowWidth="990", RescaleSlope="1", RescaleIntercept="0"))
        rendered = _png(http.get(f"/instances/{instance}/rendered").content)
        a = np.float32(255.0 / 990)
        b = np.float32((0 - 495 + 495.0) / 1) * a
        expected = np.floor(np.clip(a * values.astype(np.float32) + b, 0, 255)).astype(np.uint8)
        assert np.array_equal(rendered, expected)
        narrow = _png(http.get(f"/instances/{instance}/rendered?window-center=500"
                               "&window-width=1").content)
        assert set(np.unique(narrow)) == {0, 127, 255}  # 500 is the window's middle
        resized = _png(http.get(f"/instances/{instance}/rendered?width=5").content)
        assert resized.shape == (5, 5) and np.array_equal(resized, rendered[1::2, 1::2])
        assert _png(http.get(f"/instances/{instance}/rendered?width=4&height=2").content).shape \
            == (2, 2)
        smooth = _png(http.get(f"/instances/{instance}/rendered?width=5&smooth=1").content)
        assert smooth.shape == (5, 5) and not np.array_equal(smooth, resized)
        for bad in ("window-width=abc", "width=-3"):  # ParameterOutOfRange: no answer
            assert http.get(f"/instances/{instance}/rendered?{bad}").status_code == 404
        assert http.get(f"/instances/{instance}/rendered?smooth=maybe").status_code == 415
        inverted = _post(http, make_dicom(
            study_uid=generate_uid(), size=10, pixels=values.tobytes(), WindowCenter="495",
            WindowWidth="990", PhotometricInterpretation="MONOCHROME1"))
        assert np.array_equal(_png(http.get(f"/instances/{inverted}/rendered").content),
                              255 - expected)
        assert np.array_equal(_png(http.get(f"/instances/{inverted}/preview").content),
                              255 - _orthanc_stretch(values))


def test_rendered_reads_the_per_frame_window(server):
    """Multi-frame images keep their window in PerFrameFunctionalGroupsSequence
    (FrameVOILUTSequence), as in Orthanc 1.9.7+."""
    frames = np.array([[[0, 16], [32, 48]]] * 2, "<u2")
    with server.client() as http:
        ds = _dataset(make_dicom(study_uid=generate_uid(), size=2, pixels=frames.tobytes(),
                                 NumberOfFrames=2))
        groups = []
        for center in (16, 32):
            voi = pydicom.Dataset()
            voi.WindowCenter, voi.WindowWidth = center, 128
            item = pydicom.Dataset()
            item.FrameVOILUTSequence = [voi]
            groups.append(item)
        ds.PerFrameFunctionalGroupsSequence = groups
        instance = _post(http, _bytes(ds))
        first = _png(http.get(f"/instances/{instance}/frames/0/rendered").content)
        assert first.tolist() == [[127 - 32, 127], [127 + 32, 127 + 64]]
        second = _png(http.get(f"/instances/{instance}/frames/1/rendered").content)
        assert second.tolist() == [[127 - 64, 127 - 32], [127, 127 + 32]]


def test_numpy_and_matlab(server):
    with server.client() as http:
        series, study = generate_uid(), generate_uid()
        answers = []
        for z in (2.0, 0.0, 1.0):  # stored out of order: the series array follows positions
            answers.append(http.post("/instances", content=make_dicom(
                study_uid=study, series_uid=series, instance_number=int(z) + 1, size=8,
                RescaleSlope=2, RescaleIntercept=-10, ImagePositionPatient=[0, 0, z],
                ImageOrientationPatient=[1, 0, 0, 0, 1, 0], pixels=(
                    np.full(64, int(z) * 100, "<u2")).tobytes())).json())
        first = answers[0]["ID"]
        body = http.get(f"/instances/{first}/frames/0/numpy").content
        assert body.startswith(b"\x93NUMPY\x01\x00") and \
            b"{'descr': '<f4', 'fortran_order': False, 'shape': (8,8,1), }" in body[:128]
        array = np.load(io.BytesIO(body))
        assert array.shape == (8, 8, 1) and array.dtype == np.float32 and array.max() == 390
        raw = np.load(io.BytesIO(http.get(f"/instances/{first}/numpy?rescale=0").content))
        assert raw.shape == (1, 8, 8, 1) and raw.dtype == np.uint16 and raw.max() == 200
        assert http.get(f"/instances/{first}/numpy?rescale=maybe").status_code == 400
        parent = answers[0]["ParentSeries"]
        stacked = np.load(io.BytesIO(http.get(f"/series/{parent}/numpy").content))
        assert stacked.shape == (3, 8, 8, 1) and stacked[:, 0, 0, 0].tolist() == [-10, 190, 390]
        compressed = http.get(f"/series/{parent}/numpy?compress").content
        assert zipfile.ZipFile(io.BytesIO(compressed)).namelist() == ["arr_0"]
        assert np.array_equal(np.load(io.BytesIO(compressed))["arr_0"], stacked)
        ordered = http.get(f"/series/{parent}/ordered-slices").json()
        assert ordered["Type"] == "Volume"
        by_z = sorted(answers, key=lambda a: [2.0, 0.0, 1.0][answers.index(a)])
        assert ordered["Dicom"] == [f"/instances/{a['ID']}/file" for a in by_z]
        assert ordered["SlicesShort"] == [[a["ID"], 0, 1] for a in by_z]
        small = _post(http, make_dicom(study_uid=generate_uid(), size=2,
                                       pixels=np.array([1, 2, 3, 4000], "<u2").tobytes()))
        matlab = http.get(f"/instances/{small}/matlab")
        assert matlab.headers["content-type"] == "text/plain"
        assert matlab.text == "double([ 1 2 ; 3 4000 ])"


def test_no_pixel_data(server):
    with server.client() as http:
        ds = _dataset(make_dicom(study_uid=generate_uid()))
        del ds.PixelData
        instance = _post(http, _bytes(ds))
        assert http.get(f"/instances/{instance}/frames").json() == [0]  # as Orthanc
        answer = http.get(f"/instances/{instance}/preview")
        assert answer.status_code == 415 and answer.json()["HttpStatus"] == 415
        assert http.get(f"/instances/{instance}/numpy").status_code == 400
        assert http.get(f"/instances/{instance}/frames/0/raw").status_code == 400


def test_encapsulated_raw_frames(server):
    grey = (np.arange(2 * 64, dtype="<u2").reshape(2, 8, 8) * 11) % 4096
    ds = _dataset(make_dicom(study_uid=generate_uid(), size=8, pixels=grey.tobytes(),
                             NumberOfFrames=2))
    ds.compress(RLELossless, encoding_plugin="pydicom")
    fragments = list(generate_frames(ds.PixelData, number_of_frames=2))
    with server.client() as http:
        instance = _post(http, _bytes(ds))
        for frame in (0, 1):
            raw = http.get(f"/instances/{instance}/frames/{frame}/raw")
            assert raw.content == fragments[frame]
            uint16 = _png(http.get(f"/instances/{instance}/frames/{frame}/image-uint16").content)
            assert np.array_equal(uint16, grey[frame])


def _jpeg2000_and_ybr() -> tuple[bytes, bytes]:
    grey = (np.arange(4096, dtype="<u2") % 400 * 9).reshape(64, 64)
    ds = _dataset(make_dicom(study_uid=generate_uid(), size=64, pixels=grey.tobytes()))
    ds.compress(JPEG2000Lossless)
    ybr = np.full((4, 4, 3), (120, 128, 128), np.uint8)
    ybr_file = make_dicom(study_uid=generate_uid(), size=4, pixels=ybr.tobytes(),
                          SamplesPerPixel=3, PhotometricInterpretation="YBR_FULL",
                          PlanarConfiguration=0, BitsAllocated=8, BitsStored=8, HighBit=7)
    return _bytes(ds), ybr_file


def test_what_orthanc_cannot_decode_is_415(server):
    """JPEG 2000 and uncompressed YBR need a plugin in Orthanc: 415 by default."""
    jpeg2000, ybr = _jpeg2000_and_ybr()
    with server.client() as http:
        for data in (jpeg2000, ybr):
            instance = _post(http, data)
            assert http.get(f"/instances/{instance}/preview").status_code == 415


@pytest.mark.parametrize("option", [True])
def test_extended_image_decoding_option(tmp_path, option):
    jpeg2000, ybr = _jpeg2000_and_ybr()
    config = {"Pharos": {"ExtendedImageDecoding": option}}
    with live_server(tmp_path, config) as server, server.client() as http:
        grey = _png(http.get(f"/instances/{_post(http, jpeg2000)}/image-uint16").content)
        assert np.array_equal(grey.ravel(), np.arange(4096) % 400 * 9)
        colour = _png(http.get(f"/instances/{_post(http, ybr)}/preview").content)
        assert colour.shape == (4, 4, 3) and abs(int(colour[0, 0, 0]) - 120) <= 1


TRUTHS = [  # (truth PNG, DICOM file, route): pixels shipped with the corpus
    ("Formats/SignedCT.png", "SignedCT.dcm", "image-int16"),
    ("Formats/KarstenHilbertRF.png", "KarstenHilbertRF.dcm", "preview"),
    ("Formats/KarstenHilbertRF.png", "KarstenHilbertRF.dcm", "image-uint8"),
    # JPEG baseline YBR_FULL_422: libjpeg's own YCbCr conversion, as DCMTK's.
    ("TransferSyntaxes/1.2.840.10008.1.2.4.50.png",
     "TransferSyntaxes/1.2.840.10008.1.2.4.50.dcm", "preview"),
]


@pytest.mark.parametrize("truth,source,route", TRUTHS)
def test_pixels_match_the_shipped_truths(server, corpus, truth, source, route):
    with server.client() as http:
        instance = _post(http, (corpus / source).read_bytes())
        answer = http.get(f"/instances/{instance}/{route}")
        assert answer.status_code == 200, answer.text
        expected = np.asarray(Image.open(corpus / truth)).astype(int)
        assert np.array_equal(_png(answer.content).astype(int), expected)


DECODABLE = ["TransferSyntaxes/1.2.840.10008.1.2.1.dcm", "TransferSyntaxes/1.2.840.10008.1.2.2.dcm",
             "TransferSyntaxes/1.2.840.10008.1.2.1.99.dcm", "TransferSyntaxes/1.2.840.10008.1.2.dcm",
             "TransferSyntaxes/1.2.840.10008.1.2.4.50.dcm", "TransferSyntaxes/1.2.840.10008.1.2.4.51.dcm",
             "TransferSyntaxes/1.2.840.10008.1.2.4.57.dcm", "TransferSyntaxes/1.2.840.10008.1.2.4.70.dcm",
             "TransferSyntaxes/1.2.840.10008.1.2.4.80.dcm", "TransferSyntaxes/1.2.840.10008.1.2.4.81.dcm",
             "TransferSyntaxes/1.2.840.10008.1.2.5.dcm", "Formats/Jpeg.dcm", "Formats/JpegLossless.dcm",
             "Formats/Rle.dcm", "Implicit-vr-us-palette.dcm", "MultiframeWindowing.dcm",
             "LenaTwiceWithFragments.dcm", "SignedCT.dcm", "DicomSeg.dcm"]


@pytest.mark.parametrize("source", DECODABLE)
def test_every_transfer_syntax_orthanc_decodes(server, corpus, source):
    with server.client() as http:
        instance = _post(http, (corpus / source).read_bytes())
        frames = http.get(f"/instances/{instance}/frames").json()
        for frame in (frames[0], frames[-1]):
            answer = http.get(f"/instances/{instance}/frames/{frame}/preview")
            assert answer.status_code == 200, answer.text
        array = np.load(io.BytesIO(http.get(f"/instances/{instance}/numpy").content))
        assert array.shape[0] == len(frames)
