"""Configuration of Orthanc 1.12.5-1.13 server options: ``OverwriteInstances`` modes,
``MaximumRequestBodySizeMB``, ``ReadOnly`` (parsing only; behaviour: tests/api)."""

from __future__ import annotations

import pytest

from app.config import ConfigurationError, Settings, overwrite_mode


@pytest.mark.parametrize(("value", "mode"), [
    (False, "Never"), (True, "Always"), ("Never", "Never"), ("Always", "Always"),
    ("IfChanged", "IfChanged"), ("ifchanged", "IfChanged"), ("true", "Always")])
def test_overwrite_modes(value: object, mode: str) -> None:
    assert overwrite_mode(value) == mode
    settings = Settings.from_document({"OverwriteInstances": value}, environ={})
    assert settings.overwrite_mode == mode


@pytest.mark.parametrize("value", ["Sometimes", 1, None, [], ""])
def test_overwrite_refuses_other_values(value: object) -> None:
    with pytest.raises(ConfigurationError, match="OverwriteInstances"):
        Settings.from_document({"OverwriteInstances": value}, environ={})


def test_overwrite_from_the_environment() -> None:
    settings = Settings.from_document({}, environ={"PHAROS_OVERWRITE_INSTANCES": "IfChanged"})
    assert settings.overwrite_mode == "IfChanged"
    assert Settings.from_document({}, environ={}).overwrite_mode == "Never"


def test_maximum_request_body_size() -> None:
    assert Settings.from_document({"MaximumRequestBodySizeMB": 3}, environ={}) \
        .max_upload_size == 3 * 1024 * 1024
    default = Settings.from_document({}, environ={})
    assert default.max_upload_size == 4 * 1024**3  # 0 or absent: MaxUploadSize
    both = Settings.from_document({"MaximumRequestBodySizeMB": 3,
                                   "Pharos": {"MaxUploadSize": 1000}}, environ={})
    assert both.max_upload_size == 1000  # the smaller of two explicit limits
    with pytest.raises(ConfigurationError, match="MaximumRequestBodySizeMB"):
        Settings.from_document({"MaximumRequestBodySizeMB": -1}, environ={})


def test_read_only() -> None:
    assert Settings.from_document({"ReadOnly": True}, environ={}).read_only
    assert not Settings.from_document({}, environ={}).read_only
    with pytest.raises(ConfigurationError, match="ReadOnly"):
        Settings.from_document({"ReadOnly": "yes"}, environ={})
