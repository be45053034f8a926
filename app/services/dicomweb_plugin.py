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
