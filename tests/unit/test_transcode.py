"""Transcoding for DICOMweb: the lossless JPEG encoder (round trips through pydicom's
decoders, every predictor, 2 to 16 bits, grey and colour), and byte-for-byte equality
with DCMTK's encoders (dcmcjpeg, the library Orthanc transcodes with) when installed."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import generate_frames
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from app.dicom import jpeg_lossless, transcode

LOSSLESS = "1.2.840.10008.1.2.4.57"
LOSSLESS_SV1 = "1.2.840.10008.1.2.4.70"
BASELINE = "1.2.840.10008.1.2.4.50"
EXTENDED = "1.2.840.10008.1.2.4.51"


def _image(shape: tuple[int, ...], dtype: str, seed: int = 7) -> np.ndarray:
    """A smooth image with noise: realistic differences, every category used."""
    rng = np.random.default_rng(seed)
    info = np.iinfo(dtype)
    ramp = np.cumsum(rng.integers(-40, 41, shape), axis=1) + (int(info.max) + int(info.min)) // 2
    return np.clip(ramp, info.min, info.max).astype(dtype)


def _dataset(pixels: np.ndarray, bits_stored: int | None = None,
             photometric: str | None = None) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID, ds.StudyInstanceUID = generate_uid(), generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Rows, ds.Columns = pixels.shape[:2]
    ds.SamplesPerPixel = 1 if pixels.ndim == 2 else 3
    ds.PhotometricInterpretation = photometric or ("MONOCHROME2" if pixels.ndim == 2 else "RGB")
    if pixels.ndim == 3:
        ds.PlanarConfiguration = 0
    ds.BitsAllocated = pixels.dtype.itemsize * 8
    ds.BitsStored = bits_stored or ds.BitsAllocated
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if pixels.dtype.kind == "i" else 0
    ds.PixelData = pixels.tobytes()
    meta = FileMetaDataset()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = \
        ds.SOPClassUID, ds.SOPInstanceUID
    ds.file_meta = meta
    return ds


def _part10(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


@pytest.mark.parametrize("selection", range(1, 8))
@pytest.mark.parametrize("dtype,precision", [("uint8", 8), ("uint16", 16)])
def test_lossless_round_trip_every_predictor(selection: int, dtype: str, precision: int) -> None:
    pixels = _image((37, 53), dtype)
    data = transcode.transcode_file(_part10(_dataset(pixels)), LOSSLESS) if selection == 6 else None
    stream = jpeg_lossless.encode(pixels, precision, selection)
    assert stream[:2] == b"\xff\xd8" and stream[-2:] == b"\xff\xd9"
    assert len(stream) % 2 == 0
    ds = _dataset(pixels)
    ds.PixelData = pydicom.encaps.encapsulate([stream])
    ds.file_meta.TransferSyntaxUID = LOSSLESS
    assert np.array_equal(ds.pixel_array, pixels)
    if data is not None:
        assert np.array_equal(pydicom.dcmread(io.BytesIO(data)).pixel_array, pixels)


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (9, 1), (2, 2)])
def test_lossless_tiny_images(shape: tuple[int, int]) -> None:
    pixels = _image(shape, "uint16", seed=3)
    ds = _dataset(pixels)
    ds.PixelData = pydicom.encaps.encapsulate([jpeg_lossless.encode(pixels, 16, 1)])
    ds.file_meta.TransferSyntaxUID = LOSSLESS_SV1
    assert np.array_equal(ds.pixel_array.reshape(shape), pixels)


def test_lossless_colour_and_extremes() -> None:
    colour = np.stack([_image((20, 30), "uint8", s) for s in (1, 2, 3)], axis=-1)
    ds = _dataset(colour)
    ds.PixelData = pydicom.encaps.encapsulate([jpeg_lossless.encode(colour, 8, 1)])
    ds.file_meta.TransferSyntaxUID = LOSSLESS_SV1
    assert np.array_equal(ds.pixel_array, colour)
    # Differences of -32768 (category 16, no extra bits) and a constant image.
    jumps = np.tile(np.array([0, 32768, 0, 65535, 0], np.uint16), (3, 2))
    ds = _dataset(jumps)
    ds.PixelData = pydicom.encaps.encapsulate([jpeg_lossless.encode(jumps, 16, 1)])
    ds.file_meta.TransferSyntaxUID = LOSSLESS_SV1
    assert np.array_equal(ds.pixel_array, jumps)
    flat = np.full((8, 8), 7, np.uint8)
    assert jpeg_lossless.encode(flat, 8, 1)[-2:] == b"\xff\xd9"


def test_optimal_table_is_a_valid_prefix_code() -> None:
    frequencies = np.zeros(257, np.int64)
    frequencies[:17] = [2 ** (16 - i) for i in range(17)]  # very skewed: long codes
    bits, values = jpeg_lossless.optimal_table(frequencies)
    assert sum(bits) == len(values) == 17
    assert all(b == 0 for b in bits[16:])  # no code longer than 16 bits
    assert sum(count / 2 ** (length + 1) for length, count in enumerate(bits)) < 1  # Kraft


def test_whole_file_transcoding_keeps_attributes_and_pixels() -> None:
    pixels = _image((64, 72), "uint16") >> 4  # 12 bits (OpenJPEG needs 32 pixels a side)
    source = _dataset(pixels, bits_stored=12)
    source.PatientName = "DOE^JANE"
    data = _part10(source)
    for target in (LOSSLESS, LOSSLESS_SV1, "1.2.840.10008.1.2.5", "1.2.840.10008.1.2.4.90",
                   "1.2.840.10008.1.2"):
        out = pydicom.dcmread(io.BytesIO(transcode.transcode_file(data, target)))
        assert out.file_meta.TransferSyntaxUID == target
        assert out.PatientName == "DOE^JANE"
        assert np.array_equal(out.pixel_array, pixels), target
    lossy = pydicom.dcmread(io.BytesIO(transcode.transcode_file(
        _part10(_dataset(_image((24, 32), "uint8"))), BASELINE)))
    assert lossy.LossyImageCompression == "01"
    assert np.abs(lossy.pixel_array.astype(int) - _image((24, 32), "uint8")).max() < 16
    with pytest.raises(transcode.CannotTranscode):
        transcode.transcode_file(data, BASELINE)  # 12-bit: no lossy JPEG encoder


# --- equality with DCMTK's encoders -------------------------------------------------------

DCMCJPEG = shutil.which("dcmcjpeg")
needs_dcmtk = pytest.mark.skipif(DCMCJPEG is None, reason="dcmtk (dcmcjpeg) not installed")


def _dcmtk(ds: Dataset, options: list[str], tmp_path: Path) -> bytes:
    source, target = tmp_path / "in.dcm", tmp_path / "out.dcm"
    source.write_bytes(_part10(ds))
    subprocess.run([DCMCJPEG, *options, str(source), str(target)], check=True)  # type: ignore[list-item]
    encoded = pydicom.dcmread(target)
    return next(generate_frames(encoded.PixelData, number_of_frames=1))


@needs_dcmtk
@pytest.mark.parametrize("pixels,bits_stored", [
    (_image((40, 50), "uint8"), 8),
    (_image((40, 50), "uint16", 5) >> 4, 12),  # DCMTK codes it with a precision of 16
    (_image((40, 50), "uint16", 6), 16),
    (np.stack([_image((30, 20), "uint8", s) for s in (1, 2, 3)], axis=-1), 8),
])
def test_lossless_bytes_are_dcmtks(pixels: np.ndarray, bits_stored: int,
                                   tmp_path: Path) -> None:
    ds = _dataset(pixels, bits_stored)
    for options, target in ((["+el"], LOSSLESS), (["+e1"], LOSSLESS_SV1)):
        assert transcode.frames(ds, [1], target)[0] == _dcmtk(ds, options, tmp_path)


@needs_dcmtk
@pytest.mark.parametrize("pixels", [
    _image((48, 64), "uint8"),
    np.stack([_image((32, 48), "uint8", s) for s in (4, 5, 6)], axis=-1),
])
def test_lossy_bytes_are_dcmtks(pixels: np.ndarray, tmp_path: Path) -> None:
    """dcmcjpeg with the standard Huffman tables and quality 90: Orthanc's transcoder."""
    ds = _dataset(pixels)
    for options, target in ((["+eb", "-ho"], BASELINE), (["+ee", "-ho"], EXTENDED)):
        assert transcode.frames(ds, [1], target)[0] == _dcmtk(ds, options, tmp_path)


@needs_dcmtk
def test_ybr_jpeg_decodes_as_dcmtk(tmp_path: Path) -> None:
    """A YBR_FULL_422 baseline JPEG's frames come out as DCMTK decompresses them."""
    colour = np.stack([_image((32, 48), "uint8", s) for s in (7, 8, 9)], axis=-1)
    ds = pydicom.dcmread(io.BytesIO(transcode.transcode_file(_part10(_dataset(colour)), BASELINE)))
    source, target = tmp_path / "jpeg.dcm", tmp_path / "raw.dcm"
    ds.save_as(source)
    subprocess.run([shutil.which("dcmdjpeg"), str(source), str(target)], check=True)  # type: ignore[list-item]
    expected = pydicom.dcmread(target).PixelData
    assert transcode.native_frames(ds, [1])[0] == expected
