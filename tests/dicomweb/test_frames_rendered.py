"""Frames, rendered images, thumbnails, WADO-URI, CORS and the /rs alias, live."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import numpy as np
import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient
from PIL import Image
from pydicom.encaps import generate_frames

from tests.dicomweb.conftest import VIEWER_ORIGIN, corpus_file, parse_multipart, stow
from tests.helpers import LiveServer

JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
OHIF_FRAMES = "multipart/related; type=application/octet-stream; transfer-syntax=*"


def _path(ds: pydicom.Dataset) -> str:
    return (f"/dicom-web/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
            f"/instances/{ds.SOPInstanceUID}")


@pytest.fixture(scope="module")
def jpeg_instance(http: httpx.Client, corpus: Path) -> tuple[pydicom.Dataset, bytes]:
    data = corpus_file(corpus, f"TransferSyntaxes/{JPEG_BASELINE}.dcm")
    assert stow(http, [data]).status_code == 200
    return pydicom.dcmread(io.BytesIO(data)), data


@pytest.fixture(scope="module")
def multiframe(http: httpx.Client, corpus: Path) -> pydicom.Dataset:
    data = corpus_file(corpus, "MultiframeWindowing.dcm")
    assert stow(http, [data]).status_code == 200
    return pydicom.dcmread(io.BytesIO(data))


def test_ohif_frames_request_gets_stored_jpeg(
        http: httpx.Client, jpeg_instance: tuple[pydicom.Dataset, bytes]) -> None:
    ds, _ = jpeg_instance
    response = http.get(_path(ds) + "/frames/1", headers={"Accept": OHIF_FRAMES})
    assert response.status_code == 200
    (headers, content), = parse_multipart(response)
    assert headers["content-type"] == \
        f"application/octet-stream; transfer-syntax={JPEG_BASELINE}"
    expected = next(pydicom.encaps.generate_frames(ds.PixelData, number_of_frames=1))
    assert content == expected
    assert content[:2] == b"\xff\xd8"  # a JPEG stream, as stored


def test_frames_uncompressed_by_default(
        client: DICOMwebClient, http: httpx.Client,
        jpeg_instance: tuple[pydicom.Dataset, bytes]) -> None:
    ds, _ = jpeg_instance
    # dicomweb-client's default Accept is multipart/related; type="*/*": the default of
    # PS3.18 (and of Orthanc's plugin), uncompressed Explicit VR Little Endian.
    default = client.retrieve_instance_frames(ds.StudyInstanceUID, ds.SeriesInstanceUID,
                                              ds.SOPInstanceUID, [1])
    assert len(default[0]) == ds.pixel_array.nbytes
    frames = client.retrieve_instance_frames(ds.StudyInstanceUID, ds.SeriesInstanceUID,
                                             ds.SOPInstanceUID, [1],
                                             media_types=("application/octet-stream",))
    pixels = ds.pixel_array
    assert len(frames[0]) == pixels.nbytes
    decoded = np.frombuffer(frames[0], pixels.dtype).reshape(pixels.shape)
    # The values DCMTK (thus Orthanc) gives: libjpeg's own YCbCr to RGB conversion, which
    # pydicom's differs from by a unit here and there.
    fragment = next(generate_frames(ds.PixelData, number_of_frames=1))
    assert np.array_equal(decoded, np.asarray(Image.open(io.BytesIO(fragment)).convert("RGB")))
    assert np.abs(decoded.astype(int) - pixels.astype(int)).max() <= 2
    response = http.get(_path(ds) + "/frames/1", headers={
        "Accept": 'multipart/related; type="application/octet-stream"'})
    (headers, _), = parse_multipart(response)
    assert headers["content-type"] == \
        "application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1"
    # image/jpeg accepted, and the stored syntax is JPEG baseline: the stored frame.
    as_jpeg = http.get(_path(ds) + "/frames/1", headers={
        "Accept": f'multipart/related; type="image/jpeg"; transfer-syntax={JPEG_BASELINE}'})
    (headers, content), = parse_multipart(as_jpeg)
    assert headers["content-type"].startswith("image/jpeg")
    assert content[:2] == b"\xff\xd8"
    # JPEG 2000 is not the stored syntax: transcoded (its default, lossless).
    as_j2k = http.get(_path(ds) + "/frames/1", headers={
        "Accept": 'multipart/related; type="image/jp2"'})
    (headers, content), = parse_multipart(as_j2k)
    assert headers["content-type"] == "image/jp2; transfer-syntax=1.2.840.10008.1.2.4.90"
    # JPEG 2000 Part 2 (image/jpx): no encoder, nothing acceptable remains.
    assert http.get(_path(ds) + "/frames/1", headers={
        "Accept": 'multipart/related; type="image/jpx"'}).status_code == 400


def test_several_frames(client: DICOMwebClient, http: httpx.Client,
                        multiframe: pydicom.Dataset) -> None:
    ds = multiframe
    frames = client.retrieve_instance_frames(ds.StudyInstanceUID, ds.SeriesInstanceUID,
                                             ds.SOPInstanceUID, [1, 3, 4])
    ds.PixelRepresentation, ds.SamplesPerPixel = 0, 1  # absent here; DCMTK assumes these
    pixels = ds.pixel_array
    assert [np.frombuffer(f, pixels.dtype).reshape(pixels.shape[1:]).tolist()
            for f in frames] == [pixels[0].tolist(), pixels[2].tolist(), pixels[3].tolist()]
    response = http.get(_path(ds) + "/frames/1,3,5", headers={"Accept": OHIF_FRAMES})
    assert response.status_code == 400  # the instance has 4 frames
    assert http.get(_path(ds) + "/frames/0").status_code == 400
    assert http.get(_path(ds) + "/frames/a,b").status_code == 400


def test_rendered_and_thumbnails(client: DICOMwebClient, http: httpx.Client,
                                 jpeg_instance: tuple[pydicom.Dataset, bytes],
                                 multiframe: pydicom.Dataset) -> None:
    ds, _ = jpeg_instance
    image = client.retrieve_instance_rendered(ds.StudyInstanceUID, ds.SeriesInstanceUID,
                                              ds.SOPInstanceUID)
    picture = Image.open(io.BytesIO(image))
    assert picture.format == "JPEG" and picture.size == (ds.Columns, ds.Rows)
    png = http.get(_path(ds) + "/rendered", params={"viewport": "64,64"},
                   headers={"Accept": "image/png"})
    assert png.headers["content-type"] == "image/png"
    assert max(Image.open(io.BytesIO(png.content)).size) == 64
    # ?accept= for <img src>, a window, a quality.
    img = http.get(_path(ds) + "/rendered?accept=image/png&window=100,50&quality=50")
    assert img.headers["content-type"] == "image/png"
    assert http.get(_path(ds) + "/rendered?window=1,0").status_code == 400
    for path in (f"/dicom-web/studies/{ds.StudyInstanceUID}/thumbnail",
                 f"/dicom-web/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
                 "/thumbnail", _path(ds) + "/thumbnail", _path(ds) + "/frames/1/rendered",
                 f"/dicom-web/studies/{ds.StudyInstanceUID}/rendered"):
        response = http.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"] == "image/jpeg"
        Image.open(io.BytesIO(response.content)).verify()
    mf = http.get(_path(multiframe) + "/frames/2/rendered", headers={"Accept": "image/png"})
    assert mf.status_code == 200
    assert http.get(_path(ds) + "/rendered", headers={"Accept": "image/gif"}).status_code == 400


def test_wado_uri(server: LiveServer, jpeg_instance: tuple[pydicom.Dataset, bytes]) -> None:
    ds, data = jpeg_instance
    params = {"requestType": "WADO", "studyUID": ds.StudyInstanceUID,
              "seriesUID": ds.SeriesInstanceUID, "objectUID": ds.SOPInstanceUID}
    with server.client() as http:
        default = http.get("/wado", params=params)
        assert default.headers["content-type"] == "image/jpeg"
        Image.open(io.BytesIO(default.content)).verify()
        png = http.get("/wado", params={**params, "contentType": "image/png", "rows": "32"})
        assert png.headers["content-type"] == "image/png"
        assert Image.open(io.BytesIO(png.content)).size[1] == 32
        # application/dicom: Explicit VR Little Endian by default (PS3.18), as stored with *.
        dicom = http.get("/wado", params={**params, "contentType": "application/dicom"})
        assert dicom.headers["content-type"] == "application/dicom"
        assert pydicom.dcmread(io.BytesIO(dicom.content)).file_meta.TransferSyntaxUID == \
            "1.2.840.10008.1.2.1"
        stored = http.get("/wado", params={**params, "contentType": "application/dicom",
                                           "transferSyntax": "*"})
        assert stored.content == data
        # As Orthanc's plugin: the study and series are optional, but checked when given.
        alone = http.get("/wado", params={"requestType": "WADO", "objectUID": ds.SOPInstanceUID,
                                          "contentType": "application/dicom",
                                          "transferSyntax": "*"})
        assert alone.content == data
        assert http.get("/wado", params={**params, "seriesUID": "1.2.3"}).status_code == 404
        assert http.get("/wado", params={"requestType": "WADO"}).status_code == 400
        jpg = http.get("/wado", params={**params, "contentType": "image/jpg"})
        assert jpg.headers["content-type"] == "image/jpeg"
        assert http.get("/wado", params={**params, "requestType": "X"}).status_code == 400
        assert http.get("/wado", params={**params, "objectUID": "1.2.3.4"}).status_code == 404
        assert http.get("/wado", params={**params, "contentType": "text/html"}
                        ).status_code == 400


def test_cors_preflight_and_headers(server: LiveServer) -> None:
    with server.client() as http:
        preflight = http.options("/dicom-web/studies", headers={
            "Origin": VIEWER_ORIGIN, "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "accept, authorization"})
        assert preflight.status_code == 204
        assert preflight.headers["access-control-allow-origin"] == VIEWER_ORIGIN
        assert "GET" in preflight.headers["access-control-allow-methods"]
        assert preflight.headers["access-control-allow-headers"] == "accept, authorization"
        answer = http.get("/dicom-web/studies", headers={"Origin": VIEWER_ORIGIN})
        assert answer.headers["access-control-allow-origin"] == VIEWER_ORIGIN
        # Errors carry the CORS headers too, so that the viewer can read them.
        missing = http.get("/dicom-web/studies/1.2.3/metadata", headers={"Origin": VIEWER_ORIGIN})
        assert missing.status_code == 404
        assert missing.headers["access-control-allow-origin"] == VIEWER_ORIGIN
        # Another origin is not allowed.
        stranger = http.get("/rs/studies", headers={"Origin": "http://evil.example"})
        assert "access-control-allow-origin" not in stranger.headers
        assert http.options("/rs/studies/1.2/series").status_code == 204


def test_rs_alias_answers_like_dicom_web(http: httpx.Client,
                                         jpeg_instance: tuple[pydicom.Dataset, bytes]) -> None:
    ds, _ = jpeg_instance
    a = http.get("/dicom-web/studies", params={"StudyInstanceUID": ds.StudyInstanceUID}).json()
    b = http.get("/rs/studies", params={"StudyInstanceUID": ds.StudyInstanceUID}).json()
    assert a[0]["00081190"]["Value"][0].replace("/dicom-web/", "/rs/") == \
        b[0]["00081190"]["Value"][0]
    assert http.get("/rs" + _path(ds).removeprefix("/dicom-web") + "/metadata").status_code == 200
