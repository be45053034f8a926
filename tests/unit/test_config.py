"""Reading Orthanc configuration files (comments, modalities, peers, Pharos section)."""

from __future__ import annotations

import logging

from app.config import Settings, load_orthanc_json, strip_json_comments

ORTHANC_STYLE = """
{
  /**
   * General configuration of Orthanc
   **/
  "Name" : "MyArchive",        // the name
  "HttpPort" : 8080,
  "DicomAet" : "PHAROS",
  "StorageDirectory" : "/tmp/x", /* inline */ "IndexDirectory": "/tmp/y",
  "RemoteAccessAllowed" : true,
  "AuthenticationEnabled" : true,
  "RegisteredUsers" : { "alice" : "s3cret//not-a-comment" },
  "DicomModalities" : {
    "short" : [ "STORESCP", "127.0.0.1", 2000 ],
    "long" : { "AET" : "LONG", "Host" : "10.0.0.1", "Port" : 104, "AllowMove" : false }
  },
  "OrthancPeers" : { "peer" : [ "http://127.0.0.1:8043/" ],
                     "peer2" : { "Url" : "http://x/", "Username" : "u", "Password" : "p" } },
  "OverwriteInstances" : true, "StableAge" : 5, "LimitFindResults" : 10,
  "MaximumStorageSize" : 100, "MaximumPatientCount" : 3,
  "DicomScuTimeout" : 7, "DicomScpTimeout" : 9,
  "SomethingUnknown" : 1,
  "Pharos" : { "DatabaseUrl" : "postgresql+psycopg://h/db", "MaxUploadSize" : 1234 }
}
"""


def test_comments_are_stripped_outside_strings():
    assert strip_json_comments('{"a": "x//y", /* c */ "b": 1} // end') == '{"a": "x//y",   "b": 1} '


def test_orthanc_file_is_read_with_every_option(tmp_path, caplog):
    path = tmp_path / "orthanc.json"
    path.write_text(ORTHANC_STYLE)
    with caplog.at_level(logging.WARNING):
        settings = Settings.from_sources(path, environ={"PHAROS_HTTP_PORT": "9999"})
    assert settings.name == "MyArchive"
    assert settings.http_port == 9999  # environment wins over the file
    assert settings.dicom_aet == "PHAROS"
    assert settings.storage_directory == "/tmp/x" and str(settings.index_path) == "/tmp/y"
    assert settings.remote_access_allowed and settings.effective_authentication
    assert settings.registered_users == {"alice": "s3cret//not-a-comment"}
    short, long = settings.dicom_modalities["short"], settings.dicom_modalities["long"]
    assert (short.aet, short.host, short.port) == ("STORESCP", "127.0.0.1", 2000)
    assert (long.aet, long.port, long.allow_move, long.allow_store) == ("LONG", 104, False, True)
    assert settings.orthanc_peers["peer"].url == "http://127.0.0.1:8043/"
    assert settings.orthanc_peers["peer2"].username == "u"
    assert settings.overwrite_instances and settings.stable_age == 5
    assert settings.limit_find_results == 10
    assert settings.maximum_storage_size == 100 and settings.maximum_patient_count == 3
    assert settings.dicom_scu_timeout == 7 and settings.dicom_scp_timeout == 9
    assert settings.database_url == "postgresql+psycopg://h/db"
    assert settings.max_upload_size == 1234
    warnings = [r.getMessage() for r in caplog.records if "SomethingUnknown" in r.getMessage()]
    assert len(warnings) == 1


def test_folder_of_configuration_files_is_merged(tmp_path):
    (tmp_path / "a.json").write_text('{"Name": "A", "HttpPort": 1}')
    (tmp_path / "b.json").write_text('{"HttpPort": 2} // later file wins')
    assert load_orthanc_json(tmp_path) == {"Name": "A", "HttpPort": 2}


def test_defaults_are_the_embedded_ones():
    settings = Settings.from_sources(None, environ={})
    assert (settings.http_port, settings.dicom_port, settings.dicom_aet) == (8042, 4242, "ORTHANC")
    assert settings.effective_database_url.endswith("storage/pharos-index.sqlite")
    assert not settings.remote_access_allowed and not settings.effective_authentication


def test_the_example_configuration_file_reads_cleanly(caplog):
    """``orthanc.json`` at the top of the repository (the README's example) is valid, every
    option in it known, and it keeps the defaults a first run expects."""
    from tests.helpers import REPO
    with caplog.at_level(logging.WARNING):
        settings = Settings.from_sources(REPO / "orthanc.json", environ={})
    assert not caplog.records, [r.getMessage() for r in caplog.records]
    assert (settings.http_port, settings.dicom_port, settings.dicom_aet) == (8042, 4242, "ORTHANC")
    assert settings.storage_directory == "storage"
    assert settings.remote_access_allowed is False and settings.registered_users == {}
