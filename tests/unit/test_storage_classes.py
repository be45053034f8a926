"""AcceptedSopClasses / RejectedSopClasses as Orthanc 1.12.6 combines them (the cases of
Orthanc's own unit test ``ServerConfig.AcceptedSopClasses``)."""

from __future__ import annotations

import pytest
from pynetdicom import StoragePresentationContexts

from app.config import ConfigurationError, Settings
from app.dicom import storage_classes

MR, CT = "1.2.840.10008.5.1.4.1.1.4", "1.2.840.10008.5.1.4.1.1.2"
MAMMO, XA = "1.2.840.10008.5.1.4.1.1.12.1.1", "1.2.840.10008.5.1.4.1.1.12.2.1"


def test_default_accepts_every_known_storage_class_common_first() -> None:
    everything = storage_classes.accepted()
    assert len(everything) >= 100 and {MR, MAMMO} <= set(everything)
    common = [str(cx.abstract_syntax) for cx in StoragePresentationContexts]
    assert list(everything[:len(common)]) == common  # pynetdicom's storage contexts first
    assert len(storage_classes.accepted((), (MR,))) == len(everything) - 1


def test_patterns_and_literal_uids() -> None:
    assert MR not in storage_classes.accepted((), ("1.2.840.10008.5.1.4.1.*",))
    assert storage_classes.accepted((MR,)) == (MR,)
    chosen = storage_classes.accepted(("1.2.840.10008.5.1.4.1.*",), (MAMMO,))
    assert MR in chosen and MAMMO not in chosen and XA in chosen
    chosen = storage_classes.accepted(("1.2.840.10008.5.1.4.1.*",),
                                      ("1.2.840.10008.5.1.4.1.1.12.1.*",))
    assert MR in chosen and MAMMO not in chosen and XA in chosen
    assert storage_classes.accepted(("1.2.3.4",)) == ("1.2.3.4",)  # unknown, yet accepted
    assert set(storage_classes.accepted(("1.2.840.10008.5.1.4.1.1.12.2.?", "1.2.3.4"))) == \
        {XA, "1.2.3.4"}


def test_c_get_proposal() -> None:
    accepted = storage_classes.accepted((CT, MR, XA))
    assert storage_classes.proposed_for_get(accepted, None, 2) == [CT, MR]
    assert storage_classes.proposed_for_get(accepted, [XA, "9.9"], 127) == [XA]
    assert storage_classes.proposed_for_get(accepted, ["9.9"], 127) == []


def test_configuration() -> None:
    settings = Settings.from_document({"AcceptedSopClasses": [CT, MR],
                                       "RejectSopClasses": [MR],
                                       "DicomDefaultRetrieveMethod": "c-get"})
    assert settings.storage_sop_classes == (CT,)
    assert settings.dicom_default_retrieve_method == "C-GET"
    newer = Settings.from_document({"RejectSopClasses": [MR], "RejectedSopClasses": [CT]})
    assert CT not in newer.storage_sop_classes and MR in newer.storage_sop_classes
    for bad in ({"AcceptedSopClasses": "1.2.3"}, {"RejectedSopClasses": [3]},
                {"DicomDefaultRetrieveMethod": "C-STORE"},
                {"DicomModalities": {"m": {"AET": "M", "Host": "h", "Port": 104,
                                           "RetrieveMethod": "FTP"}}}):
        with pytest.raises(ConfigurationError):
            Settings.from_document(bad)
