"""DS values in DICOM JSON as Orthanc 1.12.6+ writes them: strings, the text of the file
without its padding (PS3.18 Table F.2.3-1 allows a JSON String for DS), in WADO-RS
metadata, QIDO-RS answers and ``/instances/{id}/file`` as ``application/dicom+json``; rows
stored by earlier Pharos releases (numbers) answer strings too."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
import sqlalchemy as sa
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from app import orthanc_api_at_least
from tests.helpers import LiveServer, live_server, make_dicom, pinned_database

pytestmark = pytest.mark.skipif(not orthanc_api_at_least(1, 12, 6),
                                reason="Pharos answers as an Orthanc older than 1.12.6")


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict]]:
    tmp = tmp_path_factory.mktemp("pharos-ds")
    with pinned_database(tmp) as config:
        yield tmp, config


@pytest.fixture(scope="module")
def server(database: tuple[Path, dict]) -> Iterator[LiveServer]:
    tmp, config = database
    with live_server(tmp, config) as live:
        yield live


def _instance(study: str, series: str, sop: str) -> bytes:
    item = Dataset()
    item.PixelMeasuresSequence = [Dataset()]
    item.PixelMeasuresSequence[0].SliceThickness = "2.50"
    return make_dicom(study_uid=study, series_uid=series, sop_uid=sop,
                      SliceThickness=" 4.50 ", PixelSpacing=["0.70", "1E1"],
                      ImagePositionPatient=["-1", "", "+2.0"], WindowCenter="40",
                      SharedFunctionalGroupsSequence=[item])


@pytest.fixture(scope="module")
def stored(server: LiveServer) -> dict[str, str]:
    uids = {"study": generate_uid(), "series": generate_uid(), "sop": generate_uid()}
    with server.client() as http:
        answer = http.post("/instances", content=_instance(uids["study"], uids["series"],
                                                           uids["sop"]))
    assert answer.status_code == 200, answer.text
    return {**uids, "id": answer.json()["ID"]}


EXPECTED = {
    "00180050": {"vr": "DS", "Value": ["4.50"]},
    "00280030": {"vr": "DS", "Value": ["0.70", "1E1"]},
    "00200032": {"vr": "DS", "Value": ["-1", None, "+2.0"]},
    "00281050": {"vr": "DS", "Value": ["40"]},
}


def _metadata(http: httpx.Client, uids: dict[str, str]) -> dict:
    answer = http.get(f"/dicom-web/studies/{uids['study']}/series/{uids['series']}"
                      f"/instances/{uids['sop']}/metadata")
    assert answer.status_code == 200, answer.text
    (document,) = answer.json()
    return document


def test_wado_metadata_has_the_text_of_the_file(server: LiveServer,
                                                stored: dict[str, str]) -> None:
    with server.client() as http:
        document = _metadata(http, stored)
    for key, element in EXPECTED.items():
        assert document[key] == element, key
    shared = document["52009229"]["Value"][0]["00289110"]["Value"][0]
    assert shared["00180050"] == {"vr": "DS", "Value": ["2.50"]}
    assert document["00200013"] == {"vr": "IS", "Value": [1]}  # IS stays a number


def test_qido_and_file_json_have_the_text(server: LiveServer, stored: dict[str, str]) -> None:
    with server.client() as http:
        (found,) = http.get(f"/dicom-web/studies/{stored['study']}/instances",
                            params={"includefield": "00180050,00280030"}).json()
        document = http.get(f"/instances/{stored['id']}/file",
                            headers={"Accept": "application/dicom+json"}).json()
        tags = http.get(f"/instances/{stored['id']}/simplified-tags").json()
    assert found["00180050"] == EXPECTED["00180050"]
    assert found["00280030"] == EXPECTED["00280030"]
    for key, element in EXPECTED.items():
        assert document[key] == element, key
    assert tags["SliceThickness"] == "4.50"


def test_rows_stored_with_numbers_answer_strings(server: LiveServer, database: tuple[Path, dict],
                                                  stored: dict[str, str]) -> None:
    """A row as releases before this one stored it (pydicom's numbers) answers the
    shortest text of its numbers: the text of the file is not in the row any more
    (``/instances/{id}/reconstruct`` reads it again)."""
    tmp, config = database
    url = config.get("Pharos", {}).get("DatabaseUrl") or \
        f"sqlite:///{server.storage / 'pharos-index.sqlite'}"
    engine = sa.create_engine(url)
    instances = sa.Table("instances", sa.MetaData(), sa.Column("pk", sa.Integer),
                         sa.Column("public_id", sa.String), sa.Column("dicom_json", sa.LargeBinary))
    with engine.begin() as conn:
        row = conn.execute(sa.select(instances.c.pk, instances.c.dicom_json).where(
            instances.c.public_id == stored["id"])).one()
        document = orjson.loads(row.dicom_json)
        document["00180050"]["Value"] = [4.5]
        document["00280030"]["Value"] = [0.7, 10.0]
        document["00200032"]["Value"] = [-1.0, None, 2.0]
        document["52009229"]["Value"][0]["00289110"]["Value"][0]["00180050"]["Value"] = [2.5]
        conn.execute(instances.update().where(instances.c.pk == row.pk)
                     .values(dicom_json=orjson.dumps(document)))
    engine.dispose()
    with server.client() as http:
        metadata = _metadata(http, stored)
        (found,) = http.get(f"/dicom-web/studies/{stored['study']}/instances",
                            params={"includefield": "00180050,52009229"}).json()
        assert http.post(f"/instances/{stored['id']}/reconstruct", json={}).status_code == 200
        rebuilt = _metadata(http, stored)
    assert metadata["00180050"] == {"vr": "DS", "Value": ["4.5"]}
    assert metadata["00280030"] == {"vr": "DS", "Value": ["0.7", "10"]}
    assert metadata["00200032"] == {"vr": "DS", "Value": ["-1", None, "2"]}
    assert metadata["52009229"]["Value"][0]["00289110"]["Value"][0]["00180050"] == \
        {"vr": "DS", "Value": ["2.5"]}
    assert found["00180050"] == {"vr": "DS", "Value": ["4.5"]}
    assert found["52009229"]["Value"][0]["00289110"]["Value"][0]["00180050"] == \
        {"vr": "DS", "Value": ["2.5"]}
    for key, element in EXPECTED.items():  # reconstructed from the file: its text again
        assert rebuilt[key] == element, key
