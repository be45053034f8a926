"""How the built-in DICOMweb presents itself: as Orthanc's DICOMweb plugin of a given version.

Clients written for Orthanc gate features on the plugin's version (``GET
/plugins/dicom-web`` -> ``Version``), Orthanc's own DICOMweb test suite among them. The
version answered is the release of Orthanc's plugin whose behaviour Pharos implements:

* 1.13.1: ``Forwarded``/``X-Forwarded-*`` headers, several media types in ``Accept``;
* 1.17: frames of big-endian files sent little endian; QIDO-RS ``includefield`` returns
  sequences;
* 1.18: non-Latin person names in every QIDO-RS answer; ``Server`` in the content of the
  DICOMweb client's jobs;
* 1.19: STOW-RS parts typed ``application/dicom; transfer-syntax=...``; the Failed SOP
  Sequence only when an instance failed; ``/thumbnail``;
* 1.20: ``/rendered`` of a study or series with several instances; the answer of
  ``/dicom-web/servers/{name}/stow`` lists the studies, series and instances sent.

Later releases of the plugin are about its cache, its threads and its metrics, which
Pharos does not share; their behaviour changes (OtherBinaryMode) are not claimed.
"""

from __future__ import annotations

from typing import Any

from app.config import Settings

DICOMWEB_PLUGIN = "dicom-web"
DICOMWEB_PLUGIN_VERSION = "1.20"
DICOMWEB_DESCRIPTION = ("Implementation of DICOMweb (QIDO-RS, STOW-RS and WADO-RS) and "
                        "WADO-URI.")

PLUGINS: tuple[str, ...] = (DICOMWEB_PLUGIN,)


def plugin_description(plugin: str) -> dict[str, Any] | None:
    """``GET /plugins/{id}`` of a built-in plugin (Orthanc's ``GetPlugin``), None if unknown."""
    if plugin != DICOMWEB_PLUGIN:
        return None
    return {"Description": DICOMWEB_DESCRIPTION, "ExtendsOrthancExplorer": False,
            "ID": DICOMWEB_PLUGIN, "Version": DICOMWEB_PLUGIN_VERSION}


# --- the "DicomWeb" section: where DICOMweb and WADO-URI answer --------------------------

def _section(settings: Settings) -> dict[str, Any]:
    section = getattr(settings, "dicom_web", None)
    return section if isinstance(section, dict) else {}


def _path(value: object, default: str) -> str:
    """A root path as the plugin normalizes it: a leading slash, no trailing one."""
    text = value.strip() if isinstance(value, str) and value.strip() else default
    text = "/" + text.strip("/")
    return text if text != "/" else default


def dicomweb_enabled(settings: Settings) -> bool:
    """``DicomWeb.Enable`` (default true): QIDO-RS, WADO-RS, STOW-RS and the client."""
    return _section(settings).get("Enable", True) is not False


def dicomweb_root(settings: Settings) -> str:
    """``DicomWeb.Root`` (default ``/dicom-web``), without its trailing slash."""
    return _path(_section(settings).get("Root"), "/dicom-web")


def public_root(settings: Settings) -> str:
    """``DicomWeb.PublicRoot``: the root written in URLs (behind a proxy that moves it),
    the Root by default."""
    return _path(_section(settings).get("PublicRoot"), dicomweb_root(settings))


def wado_enabled(settings: Settings) -> bool:
    """``DicomWeb.EnableWado`` (default true): WADO-URI."""
    return _section(settings).get("EnableWado", True) is not False


def wado_root(settings: Settings) -> str:
    """``DicomWeb.WadoRoot`` (default ``/wado``)."""
    return _path(_section(settings).get("WadoRoot"), "/wado")
