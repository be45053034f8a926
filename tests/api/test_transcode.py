"""Orthanc's ``Transcode`` in /modify: every target Orthanc writes (DCMTK's), lossy ones
with a new SOP Instance UID and the loss recorded, as Orthanc's transcoder does."""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from pydicom.uid import generate_uid

from tests.helpers import make_dicom

PIXELS = (np.arange(64 * 64, dtype="<u2") % 900 * 4).reshape(64, 64)
GREY8 = (np.arange(64 * 64, dtype=np.uint8) % 200).reshape(64, 64)


@pytest.fixture(scope="module")
def instances(server) -> dict[str, str]:
    with server.client() as http:
        grey16 = http.post("/instances", content=make_dicom(
            study_uid=generate_uid(), size=64, pixels=PIXELS.tobytes())).json()["ID"]
        grey8 = http.post("/instances", content=make_dicom(
            study_uid=generate_uid(), size=64, pixels=GREY8.tobytes(), BitsAllocated=8,
            BitsStored=8, HighBit=7)).json()["ID"]
    return {"grey16": grey16, "grey8": grey8}


LOSSLESS = ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2",
            "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70",
            "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.5"]


@pytest.mark.parametrize("syntax", LOSSLESS)
def test_lossless_targets_keep_pixels_and_uid(server, instances, syntax):
    with server.client() as http:
        original = http.get(f"/instances/{instances['grey16']}/file").content
        answer = http.post(f"/instances/{instances['grey16']}/modify", json={
            "Transcode": syntax, "Keep": ["SOPInstanceUID"], "Force": True})
        assert answer.status_code == 200, answer.text
    ds = pydicom.dcmread(io.BytesIO(answer.content))
    assert ds.file_meta.TransferSyntaxUID == syntax
    assert ds.SOPInstanceUID == pydicom.dcmread(io.BytesIO(original)).SOPInstanceUID
    assert np.array_equal(ds.pixel_array, PIXELS)


@pytest.mark.parametrize("syntax,source", [("1.2.840.10008.1.2.4.50", "grey8"),
                                           ("1.2.840.10008.1.2.4.51", "grey8"),
                                           ("1.2.840.10008.1.2.4.81", "grey16"),
                                           ("1.2.840.10008.1.2.4.91", "grey16")])
def test_lossy_targets_get_a_new_uid(server, instances, syntax, source):
    with server.client() as http:
        original = pydicom.dcmread(io.BytesIO(
            http.get(f"/instances/{instances[source]}/file").content))
        answer = http.post(f"/instances/{instances[source]}/modify", json={
            "Transcode": syntax, "Keep": ["SOPInstanceUID"], "Force": True})
        assert answer.status_code == 200, answer.text
    ds = pydicom.dcmread(io.BytesIO(answer.content))
    assert ds.file_meta.TransferSyntaxUID == syntax
    assert ds.SOPInstanceUID != original.SOPInstanceUID
    assert ds.LossyImageCompression == "01" and float(str(ds.LossyImageCompressionRatio).split("\\")[0].strip("[]'")) > 0
    error = np.abs(ds.pixel_array.astype(int) - original.pixel_array.astype(int))
    span = int(original.pixel_array.max()) - int(original.pixel_array.min())
    assert error.mean() < 0.01 * span  # lossy, but the same picture


def test_quality_and_refusals(server, instances):
    with server.client() as http:
        assert http.post(f"/instances/{instances['grey8']}/modify",
                         json={"Transcode": "nope"}).status_code == 400
        # 12-bit lossy JPEG is not written (no encoder writes it correctly here).
        assert http.post(f"/instances/{instances['grey16']}/modify",
                         json={"Transcode": "1.2.840.10008.1.2.4.51"}).status_code == 400
        study = http.get(f"/instances/{instances['grey8']}/study").json()["ID"]
        job = http.post(f"/studies/{study}/modify", json={
            "Transcode": "1.2.840.10008.1.2.4.50", "KeepSource": False}).json()
        (modified,) = http.get(f"/studies/{job['ID']}/instances").json()
        stored = pydicom.dcmread(io.BytesIO(http.get(f"/instances/{modified['ID']}/file").content))
        assert stored.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.50"


def test_store_to_peer_transcodes(tmp_path):
    """``POST /peers/{name}/store`` with ``Transcode``: the peer receives the instance in
    that syntax (Orthanc's OrthancPeerStoreJob); the job's content names the syntax."""
    from tests.helpers import live_server
    with live_server(tmp_path / "peer") as peer:
        config = {"OrthancPeers": {"peer": [peer.url]}}
        with live_server(tmp_path / "source", config) as source, source.client() as http, \
                peer.client() as remote:
            instance = http.post("/instances", content=make_dicom(
                study_uid=generate_uid(), size=64, pixels=PIXELS.tobytes())).json()["ID"]
            answer = http.post("/peers/peer/store", json={
                "Resources": [instance], "Transcode": "1.2.840.10008.1.2.4.80"})
            assert answer.status_code == 200, answer.text
            assert answer.json()["Transcode"] == "1.2.840.10008.1.2.4.80"
            (received,) = remote.get("/instances").json()
            ds = pydicom.dcmread(io.BytesIO(remote.get(f"/instances/{received}/file").content))
            assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.80"
            assert np.array_equal(ds.pixel_array, PIXELS)
            assert http.post("/peers/peer/store", json={
                "Resources": [instance], "Transcode": "nope"}).status_code == 400


def test_lossy_quality(server):
    """``LossyQuality`` (modify, archive bodies) and ``?lossy-quality=`` (archive GET):
    lower quality, smaller files and a larger recorded compression ratio."""
    def ratio(ds: pydicom.Dataset) -> float:
        return float(str(ds.LossyImageCompressionRatio).split("\\")[0].strip("[]'"))

    jpeg = "1.2.840.10008.1.2.4.50"
    with server.client() as http:
        instances = {"grey8": http.post("/instances", content=make_dicom(
            study_uid=generate_uid(), size=64, pixels=GREY8.tobytes(), BitsAllocated=8,
            BitsStored=8, HighBit=7)).json()["ID"]}
        sized = {}
        for quality in (40, 80):
            answer = http.post(f"/instances/{instances['grey8']}/modify",
                               json={"Transcode": jpeg, "LossyQuality": quality})
            assert answer.status_code == 200, answer.text
            sized[quality] = pydicom.dcmread(io.BytesIO(answer.content))
        assert len(sized[40].PixelData) < len(sized[80].PixelData)
        assert ratio(sized[40]) > ratio(sized[80])
        series = http.get(f"/instances/{instances['grey8']}/series").json()["ID"]
        by_get = {q: len(http.get(f"/series/{series}/archive",
                                  params={"transcode": jpeg, "lossy-quality": q}).content)
                  for q in (40, 80)}
        by_post = {q: len(http.post(f"/series/{series}/archive", json={
            "Transcode": jpeg, "LossyQuality": q}).content) for q in (40, 80)}
        assert by_get[40] < by_get[80] and by_post[40] < by_post[80]
        assert http.post(f"/series/{series}/archive", json={
            "Transcode": jpeg, "LossyQuality": 0}).status_code == 400
