"""The DIMSE SCP against dcmtk's tools as real peers, over real sockets, on a live Pharos.

echoscu, storescu (synthetic and compressed files), findscu (Patient Root and Study Root,
every level, wildcards, returned keys), movescu to a storescp the test starts, getscu into
a folder; and the refusals: unknown calling AET, wrong called AET, modality without
AllowStore/AllowMove, unknown move destination. Each refusal leaves the archive as it was.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import generate_uid

from tests.helpers import CORPUS, LiveServer, free_port, live_server, make_dicom
from tests.interop.test_network_dimse import StoreScp

pytestmark = pytest.mark.skipif(shutil.which("storescu") is None,
                                reason="dcmtk is not installed (Debian package dcmtk)")

AET = "PHAROS"
SCU = "DCMTKSCU"
READONLY = "READONLY"  # a modality without AllowStore/AllowMove/AllowGet


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=120)


def dcmtk(tool: str, server: LiveServer, *args: str, aet: str = SCU, called: str = AET,
          files: list[Path] | tuple[Path, ...] = ()) -> subprocess.CompletedProcess[str]:
    return run(tool, "-aet", aet, "-aec", called, *args, "127.0.0.1", str(server.dicom_port),
               *map(str, files))


@pytest.fixture()
def destination(tmp_path: Path) -> Iterator[StoreScp]:
    scp = StoreScp(tmp_path / "moved")
    yield scp
    scp.stop()


@pytest.fixture()
def pharos(tmp_path: Path, destination: StoreScp) -> Iterator[LiveServer]:
    getscu_port = free_port()
    config = {"DicomAet": AET, "DicomCheckCalledAet": True, "LimitFindResults": 0,
              "DicomModalities": {
                  "scu": [SCU, "127.0.0.1", getscu_port],
                  "dest": [destination.aet, "127.0.0.1", destination.port],
                  "readonly": {"AET": READONLY, "Host": "127.0.0.1", "Port": free_port(),
                               "AllowStore": False, "AllowMove": False, "AllowGet": False},
                  "elsewhere": {"AET": "ELSEWHERE", "Host": "10.255.255.1", "Port": 104},
              },
              "DicomAlwaysAllowStore": False,
              "DicomCheckModalityHost": True}
    with live_server(tmp_path / "pharos", config) as server:
        yield server


def _write(folder: Path, name: str, data: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    return path


def _dataset_bytes(data: bytes) -> bytes:
    """The data set after the file meta information (what goes on the wire)."""
    ds = pydicom.dcmread(pydicom.filebase.DicomBytesIO(data), stop_before_pixels=True)
    meta_end = 132 + 12 + int(ds.file_meta.FileMetaInformationGroupLength)
    return data[meta_end:]


# storescu's options proposing each compressed transfer syntax of the corpus
_PROPOSE = {"1.2.840.10008.1.2.1.99": "-xd", "1.2.840.10008.1.2.4.50": "-xy",
            "1.2.840.10008.1.2.4.51": "-xx", "1.2.840.10008.1.2.4.70": "-xs",
            "1.2.840.10008.1.2.4.80": "-xt", "1.2.840.10008.1.2.4.81": "-xu",
            "1.2.840.10008.1.2.4.90": "-xv", "1.2.840.10008.1.2.4.91": "-xw",
            "1.2.840.10008.1.2.5": "-xr"}


def _without_group_lengths(data: bytes) -> pydicom.Dataset:
    ds = pydicom.dcmread(pydicom.filebase.DicomBytesIO(data))
    # group lengths (recomputed) and trailing padding (dropped) are not data (PS3.5 7.2, 7.8)
    for tag in [e.tag for e in ds if e.tag.element == 0 or e.tag == 0xFFFCFFFC]:
        del ds[tag]
    return ds


def _series(folder: Path, patient_id: str, count: int, **extra: object) -> dict[str, object]:
    study, series = generate_uid(), generate_uid()
    paths = [_write(folder, f"{patient_id}-{n}.dcm", make_dicom(
        patient_id=patient_id, study_uid=study, series_uid=series, instance_number=n + 1,
        **extra)) for n in range(count)]
    return {"study": study, "series": series, "paths": paths}


def _count(server: LiveServer) -> int:
    with server.client() as client:
        return len(client.get("/instances").json())


def test_echo_and_store_as_received(tmp_path: Path, pharos: LiveServer) -> None:
    assert dcmtk("echoscu", pharos).returncode == 0
    sent = _series(tmp_path / "in", "STORE1", 3, patient_name="Müller^Jürgen",
                   SpecificCharacterSet="ISO_IR 192")["paths"]
    assert dcmtk("storescu", pharos, files=sent).returncode == 0
    files = [*sent]
    folder = CORPUS / "TransferSyntaxes"
    for path in sorted(folder.glob("*.dcm")) if folder.is_dir() else []:
        option = next((o for suffix, o in _PROPOSE.items() if path.name == f"{suffix}.dcm"), None)
        if option is None:
            continue
        # one storescu per compressed syntax: its option proposes that syntax
        result = dcmtk("storescu", pharos, option, files=[path])
        assert result.returncode == 0 and "Store Failed" not in result.stderr, result.stderr
        files.append(path)
    with pharos.client() as client:
        for path in files:
            data = path.read_bytes()
            uid = str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)
            found = client.post("/tools/find", json={"Level": "Instance",
                                                     "Query": {"SOPInstanceUID": uid}}).json()
            assert len(found) == 1, path.name
            metadata = client.get(f"/instances/{found[0]}/metadata?expand").json()
            assert metadata["RemoteAET"] == SCU
            assert metadata["Origin"] == "DicomProtocol"
            assert metadata["CalledAET"] == AET and metadata["RemoteIP"] == "127.0.0.1"
            stored = client.get(f"/instances/{found[0]}/file").content
            if path in sent:
                assert _dataset_bytes(stored) == _dataset_bytes(data)  # byte for byte
            # storescu re-encodes some corpus files (deflate) and recomputes group lengths:
            # compare the data sets, pixel data included, without group lengths
            assert _without_group_lengths(stored) == _without_group_lengths(data), path.name
            assert pydicom.dcmread(pydicom.filebase.DicomBytesIO(stored)).file_meta \
                .TransferSyntaxUID == pydicom.dcmread(path).file_meta.TransferSyntaxUID
        assert client.get("/patients").json()
        name = client.post("/tools/find", json={"Level": "Patient", "Expand": True, "Query": {
            "PatientID": "STORE1"}}).json()[0]["MainDicomTags"]["PatientName"]
        assert name == "Müller^Jürgen"


def test_bad_data_is_refused_and_nothing_stored(tmp_path: Path, pharos: LiveServer) -> None:
    """A data set without SOPInstanceUID in the body: C000-range failure, nothing stored."""
    ds = pydicom.dcmread(pydicom.filebase.DicomBytesIO(make_dicom(patient_id="BAD")))
    del ds.StudyInstanceUID
    path = tmp_path / "bad.dcm"
    ds.save_as(path, enforce_file_format=True)
    result = dcmtk("storescu", pharos, files=[path])
    assert "Status: Error" in result.stderr or "0xc" in result.stderr.lower() \
        or result.returncode != 0, result.stderr
    assert _count(pharos) == 0


def _find(server: LiveServer, model: str, level: str, *keys: str) -> list[dict[str, str]]:
    args = [model, "-k", f"QueryRetrieveLevel={level}"]
    for key in keys:
        args += ["-k", key]
    result = dcmtk("findscu", server, *args)
    assert result.returncode == 0, result.stderr
    return _parse_find(result.stderr + result.stdout)


def _parse_find(output: str) -> list[dict[str, str]]:
    """findscu's dumps of the answers: one dict keyword -> value per answer."""
    answers: list[dict[str, str]] = []
    current: dict[str, str] | None = None
    for line in output.splitlines():
        if "Find Response:" in line:
            current = {}
            answers.append(current)
            continue
        match = re.search(r"\(([0-9a-f]{4}),([0-9a-f]{4})\) (\w\w) (\[(.*?)\]|\(no value "
                          r"available\)|=\w+|\S+)\s+#\s+\d+,\s+\d+\s+(\w+)", line)
        if current is not None and match:
            value = (match.group(5) or "").strip("\x00 ")
            current[match.group(6)] = value
    return [a for a in answers if a]


def test_find_all_levels_both_models(tmp_path: Path, pharos: LiveServer) -> None:
    one = _series(tmp_path / "in", "FIND1", 2, patient_name="SMITH^ANNA",
                  StudyDescription="Chest CT")
    two = _series(tmp_path / "in", "FIND2", 1, patient_name="SMYTHE^BOB", modality="MR",
                  StudyDescription="Head MR")
    _series(tmp_path / "in", "OTHER", 1, patient_name="JONES^X")
    assert dcmtk("storescu", pharos, files=sorted((tmp_path / "in").glob("*"))).returncode == 0

    patients = _find(pharos, "-P", "PATIENT", "PatientName=SM*", "PatientID",
                     "NumberOfPatientRelatedInstances")
    assert sorted(a["PatientID"] for a in patients) == ["FIND1", "FIND2"]
    assert {a["PatientID"]: a["NumberOfPatientRelatedInstances"] for a in patients} == {
        "FIND1": "2", "FIND2": "1"}
    # the keys asked, plus the default encoding and RetrieveAETitle (Orthanc's AddAnswer)
    assert all(set(a) == {"PatientName", "PatientID", "NumberOfPatientRelatedInstances",
                          "QueryRetrieveLevel", "SpecificCharacterSet", "RetrieveAETitle"}
               for a in patients)
    assert {a["RetrieveAETitle"] for a in patients} == {AET}

    # case-insensitive PN matching, as Orthanc's CaseSensitivePN=false
    studies = _find(pharos, "-S", "STUDY", "PatientName=smith*", "StudyInstanceUID",
                    "StudyDescription", "ModalitiesInStudy")
    assert [a["StudyInstanceUID"] for a in studies] == [one["study"]]
    assert studies[0]["StudyDescription"] == "Chest CT"
    assert studies[0]["ModalitiesInStudy"] == "CT"
    assert "PatientID" not in studies[0]  # exactly the keys asked for

    by_patient_root = _find(pharos, "-P", "STUDY", "PatientID=FIND2", "StudyInstanceUID")
    assert [a["StudyInstanceUID"] for a in by_patient_root] == [two["study"]]

    series = _find(pharos, "-S", "SERIES", f"StudyInstanceUID={one['study']}",
                   "SeriesInstanceUID", "Modality", "NumberOfSeriesRelatedInstances")
    assert [(a["SeriesInstanceUID"], a["Modality"], a["NumberOfSeriesRelatedInstances"])
            for a in series] == [(one["series"], "CT", "2")]

    images = _find(pharos, "-S", "IMAGE", f"SeriesInstanceUID={one['series']}",
                   "SOPInstanceUID", "InstanceNumber")
    assert sorted(a["InstanceNumber"] for a in images) == ["1", "2"]
    assert all(a["QueryRetrieveLevel"] == "IMAGE" for a in images)

    modality_list = _find(pharos, "-S", "SERIES", "Modality=MR\\XA", "SeriesInstanceUID")
    assert [a["SeriesInstanceUID"] for a in modality_list] == [two["series"]]
    assert _find(pharos, "-S", "STUDY", "StudyDate=20200101-20200103",
                 "StudyInstanceUID").__len__() == 3
    assert _find(pharos, "-S", "STUDY", "StudyDate=-20191231", "StudyInstanceUID") == []


def test_find_answers_in_the_default_encoding(tmp_path: Path, pharos: LiveServer) -> None:
    """Orthanc answers C-FIND in its DefaultEncoding (named by SpecificCharacterSet),
    whatever the stored files used; PUT /tools/default-encoding changes it at once."""
    path = _write(tmp_path, "u.dcm", make_dicom(patient_id="UTF", patient_name="Gödel^Kurt",
                                                SpecificCharacterSet="ISO_IR 192"))
    assert dcmtk("storescu", pharos, files=[path]).returncode == 0
    keys = ("-P", "-k", "QueryRetrieveLevel=PATIENT", "-k", "PatientID=UTF",
            "-k", "PatientName", "-k", "SpecificCharacterSet")
    latin1 = subprocess.run(["findscu", "-aet", SCU, "-aec", AET, *keys, "127.0.0.1",
                             str(pharos.dicom_port)], capture_output=True, timeout=120)
    assert b"ISO_IR 100" in latin1.stderr and "Gödel".encode("latin_1") in latin1.stderr
    with pharos.client() as client:
        assert client.put("/tools/default-encoding", content="Utf8").text == "Utf8"
    utf8 = subprocess.run(["findscu", "-aet", SCU, "-aec", AET, *keys, "127.0.0.1",
                           str(pharos.dicom_port)], capture_output=True, timeout=120)
    assert b"ISO_IR 192" in utf8.stderr and "Gödel".encode() in utf8.stderr
    with pharos.client() as client:
        client.put("/tools/default-encoding", content="Ascii")
    ascii_ = subprocess.run(["findscu", "-aet", SCU, "-aec", AET, *keys, "127.0.0.1",
                             str(pharos.dicom_port)], capture_output=True, timeout=120)
    assert b"ISO_IR 6" in ascii_.stderr and b"Gdel^Kurt" in ascii_.stderr  # dropped, as Orthanc


def test_move_to_a_known_storescp(tmp_path: Path, pharos: LiveServer,
                                  destination: StoreScp) -> None:
    wanted = _series(tmp_path / "in", "MOVE1", 3)
    _series(tmp_path / "in", "MOVE2", 2)
    assert dcmtk("storescu", pharos, files=sorted((tmp_path / "in").glob("*"))).returncode == 0
    result = dcmtk("movescu", pharos, "-v", "-S", "-aem", destination.aet,
                   "-k", "QueryRetrieveLevel=SERIES", "-k", f"StudyInstanceUID={wanted['study']}",
                   "-k", f"SeriesInstanceUID={wanted['series']}")
    assert result.returncode == 0, result.stderr
    assert "Received Move Response 3 (Pending)" in result.stderr
    assert "Received Final Move Response (Success)" in result.stderr, result.stderr
    received = destination.files()
    assert len(received) == 3
    sent = {pydicom.dcmread(p).SOPInstanceUID: _dataset_bytes(p.read_bytes())
            for p in wanted["paths"]}  # type: ignore[union-attr]
    for path in received:
        uid = pydicom.dcmread(path).SOPInstanceUID
        assert _dataset_bytes(path.read_bytes()) == sent[uid]

    patient = dcmtk("movescu", pharos, "-P", "-aem", destination.aet,
                    "-k", "QueryRetrieveLevel=PATIENT", "-k", "PatientID=MOVE2")
    assert patient.returncode == 0
    assert len(destination.files()) == 5

    # the same through Pharos' own SCU: the final response's counts
    from app.config import Modality
    from app.protocols import dimse_scu as scu
    identifier = pydicom.Dataset()
    identifier.StudyInstanceUID = wanted["study"]
    report = scu.move(Modality("pharos", AET, "127.0.0.1", pharos.dicom_port), "Study",
                      identifier, destination.aet, local_aet=SCU, timeout=30)
    assert (report.status, report.completed, report.failed, report.warning) == (0, 3, 0, 0)
    assert len(destination.files()) == 5  # storescp overwrites same-named files


def test_get_series_into_a_folder(tmp_path: Path, pharos: LiveServer) -> None:
    wanted = _series(tmp_path / "in", "GET1", 4)
    assert dcmtk("storescu", pharos, files=wanted["paths"]).returncode == 0  # type: ignore[arg-type]
    out = tmp_path / "got"
    out.mkdir()
    result = dcmtk("getscu", pharos, "-S", "-od", str(out),
                   "-k", "QueryRetrieveLevel=SERIES", "-k", f"StudyInstanceUID={wanted['study']}",
                   "-k", f"SeriesInstanceUID={wanted['series']}")
    assert result.returncode == 0, result.stderr
    got = sorted(out.iterdir())
    assert len(got) == 4
    assert {str(pydicom.dcmread(p).SeriesInstanceUID) for p in got} == {wanted["series"]}


def test_refusals_change_nothing(tmp_path: Path, pharos: LiveServer,
                                 destination: StoreScp) -> None:
    stored = _series(tmp_path / "in", "KEEP", 2)
    assert dcmtk("storescu", pharos, files=stored["paths"]).returncode == 0  # type: ignore[arg-type]
    before = _count(pharos)
    extra = _write(tmp_path, "x.dcm", make_dicom(patient_id="REFUSED"))

    # unknown calling AET: echo allowed (DicomAlwaysAllowEcho), find and store refused
    assert dcmtk("echoscu", pharos, aet="STRANGER").returncode == 0
    find = dcmtk("findscu", pharos, "-S", "-k", "QueryRetrieveLevel=STUDY",
                 "-k", "StudyInstanceUID", aet="STRANGER")
    assert find.returncode != 0 and "No Acceptable Presentation Contexts" in find.stderr
    store = dcmtk("storescu", pharos, files=[extra], aet="STRANGER")
    assert store.returncode != 0

    # wrong called AET with DicomCheckCalledAet
    wrong = dcmtk("echoscu", pharos, called="NOTPHAROS")
    assert wrong.returncode != 0 and "Called AE Title Not Recognized" in wrong.stderr

    # a known modality whose Host is not the peer's address (DicomCheckModalityHost)
    assert dcmtk("storescu", pharos, files=[extra], aet="ELSEWHERE").returncode != 0

    # a modality without AllowStore / AllowMove / AllowGet
    assert dcmtk("storescu", pharos, files=[extra], aet=READONLY).returncode != 0
    move = dcmtk("movescu", pharos, "-S", "-aem", destination.aet, "-k",
                 "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={stored['study']}",
                 aet=READONLY)
    # movescu also offers storage contexts: the association opens, Move is not accepted
    assert "No valid Presentation Context" in move.stderr, move.stderr
    assert dcmtk("echoscu", pharos, aet=READONLY).returncode == 0
    assert _find(pharos, "-S", "STUDY", "StudyInstanceUID") != []

    # move to an unknown destination: A801, nothing sent
    unknown = dcmtk("movescu", pharos, "-v", "-S", "-aem", "NOBODY", "-k",
                    "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={stored['study']}")
    assert "Received Final Move Response (Refused: MoveDestinationUnknown)" in unknown.stderr, \
        unknown.stderr  # A801
    assert destination.files() == []
    assert _count(pharos) == before


def test_limit_find_results(tmp_path: Path) -> None:
    config = {"DicomAet": AET, "LimitFindResults": 2,
              "DicomModalities": {"scu": [SCU, "127.0.0.1", free_port()]}}
    with live_server(tmp_path / "pharos", config) as server:
        paths = [_write(tmp_path / "in", f"{n}.dcm", make_dicom(patient_id=f"L{n}"))
                 for n in range(4)]
        assert dcmtk("storescu", server, files=paths).returncode == 0
        result = dcmtk("findscu", server, "-P", "-k", "QueryRetrieveLevel=PATIENT",
                       "-k", "PatientID")
        assert len(_parse_find(result.stderr)) == 2


# --- the SCP's direct encoders agree with pydicom and pynetdicom --------------------------

@pytest.mark.parametrize(("sop_class", "sop_instance", "syntax"), [
    ("1.2.840.10008.5.1.4.1.1.2", "1.2.826.0.1.3680043.8.498.18054953118772692002400510146476684980", "1.2.840.10008.1.2.1"),
    ("1.2.840.10008.5.1.4.1.1.22", "1.2.3.45", "1.2.840.10008.1.2"),
    ("1.2.840.10008.5.1.4.1.1.2", "1.2.3.4", "1.2.840.10008.1.2.4.50"),
    ("1.2", "1.2", "1.2.840.10008.1.2"),
])
def test_file_meta_is_what_pydicom_writes(sop_class: str, sop_instance: str,
                                          syntax: str) -> None:
    from app.protocols import dimse_common as common
    fast = common._file_meta_bytes(sop_class, sop_instance, syntax)
    assert fast == common._pydicom_file_meta_bytes(sop_class, sop_instance, syntax)
    data = common.part10_bytes(b"\x08\x00\x16\x00\x02\x00\x00\x00AB", sop_class_uid=sop_class,
                               sop_instance_uid=sop_instance, transfer_syntax_uid=syntax)
    ds = pydicom.dcmread(pydicom.filebase.DicomBytesIO(data), force=False)
    assert ds.file_meta.MediaStorageSOPInstanceUID == sop_instance
    assert "SourceApplicationEntityTitle" not in ds.file_meta  # as Orthanc's files
    # What pydicom cannot take as is (over-long UIDs) still goes through pydicom's writer.
    assert common._file_meta_bytes(sop_class, "1." * 40, syntax) is None


def test_file_meta_group_has_the_length_of_orthancs() -> None:
    """DCMTK's meta group for Orthanc is 196 bytes for these UIDs (ColorTestImageJ over
    storescu): the same length keeps PixelDataOffset equal to Orthanc's."""
    from app.protocols import dimse_common as common
    meta = common._file_meta_bytes("1.2.840.10008.5.1.4.1.1.7",
                                   "1.2.276.0.7230010.3.1.4.2455711835.6056.1170936079.1",
                                   "1.2.840.10008.1.2.1")
    assert meta is not None and len(meta) - 12 == 196


@pytest.mark.parametrize("status", [0x0000, 0xB000, 0xA700, 0xC000])
def test_store_response_is_what_pynetdicom_encodes(status: int) -> None:
    from pynetdicom.dimse_messages import C_STORE_RSP
    from pynetdicom.dimse_primitives import C_STORE

    from app.dimse.acceptor import store_response_command
    for sop_instance in (generate_uid(), "1.2.3", "1.2.34"):
        rsp = C_STORE()
        rsp.MessageIDBeingRespondedTo = 65535
        rsp.AffectedSOPInstanceUID = sop_instance
        rsp.AffectedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        rsp.Status = status
        message = C_STORE_RSP()
        message.primitive_to_message(rsp)
        [pdata] = list(message.encode_msg(1, 0))
        [(_, pdv)] = pdata.presentation_data_value_list
        assert store_response_command(rsp) == pdv[1:]
    rsp.ErrorComment = "left to pynetdicom"
    assert store_response_command(rsp) is None


def test_many_instances_over_one_association_then_release(tmp_path: Path,
                                                          pharos: LiveServer) -> None:
    """The event-driven acceptor (app/dimse/acceptor.py): every C-STORE answered, the
    release acknowledged, the association closed."""
    files = [_write(tmp_path / "many", f"{i}.dcm", make_dicom(
        patient_id="MANY", study_uid="1.2.3.777", series_uid="1.2.3.777.1",
        sop_uid=f"1.2.3.777.1.{i}")) for i in range(40)]
    result = dcmtk("storescu", pharos, files=files)
    assert result.returncode == 0, result.stderr
    assert _count(pharos) == 40


def test_accepted_and_rejected_sop_classes(tmp_path: Path) -> None:
    """Orthanc 1.12.6's ``AcceptedSopClasses``/``RejectedSopClasses``: dcmtk's storescu
    gets no presentation context for a class left out or rejected (nothing stored), and
    stores the accepted ones; an unknown UID named in the list is accepted too."""
    mr, ct, us = ("1.2.840.10008.5.1.4.1.1.4", "1.2.840.10008.5.1.4.1.1.2",
                  "1.2.840.10008.5.1.4.1.1.6.1")
    config = {"DicomAet": AET, "AcceptedSopClasses": ["1.2.840.10008.5.1.4.1.1.?", "1.2.3.4"],
              "RejectedSopClasses": [mr]}
    folder = tmp_path / "files"
    files = {name: _write(folder, f"{name}.dcm", make_dicom(patient_id=f"SOP-{name}",
                                                           SOPClassUID=uid))
             for name, uid in (("ct", ct), ("mr", mr), ("us", us), ("private", "1.2.3.4"))}
    with live_server(tmp_path / "pharos", config) as server, server.client() as client:
        assert dcmtk("storescu", server, files=[files["ct"]]).returncode == 0
        _store_with_pynetdicom(server, files["private"])  # storescu refuses unknown classes
        for refused in ("mr", "us"):  # rejected; not matched by the one-character pattern
            result = dcmtk("storescu", server, "-R", files=[files[refused]])
            assert result.returncode != 0, result.stdout + result.stderr
            assert "presentation context" in (result.stdout + result.stderr).lower()
        stored = {client.get(f"/patients/{p}").json()["MainDicomTags"]["PatientID"]
                  for p in client.get("/patients").json()}
    assert stored == {"SOP-ct", "SOP-private"}


def _store_with_pynetdicom(server: LiveServer, path: Path) -> None:
    from pynetdicom import AE
    ds = pydicom.dcmread(path)
    ae = AE(ae_title=SCU)
    ae.add_requested_context(str(ds.SOPClassUID), str(ds.file_meta.TransferSyntaxUID))
    assoc = ae.associate("127.0.0.1", server.dicom_port, ae_title=AET)
    assert assoc.is_established
    try:
        assert assoc.send_c_store(ds).Status == 0
    finally:
        assoc.release()


def test_rejected_sop_classes_old_spelling(tmp_path: Path) -> None:
    """``RejectSopClasses`` (Orthanc 1.12.6's spelling) is read when ``RejectedSopClasses``
    is absent."""
    config = {"DicomAet": AET, "RejectSopClasses": ["1.2.840.10008.5.1.4.1.1.2"]}
    path = _write(tmp_path / "files", "ct.dcm", make_dicom(patient_id="OLD-SPELLING"))
    with live_server(tmp_path / "pharos", config) as server, server.client() as client:
        assert dcmtk("storescu", server, files=[path]).returncode != 0
        assert client.get("/instances").json() == []
