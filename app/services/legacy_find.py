"""Orthanc's first C-FIND SCU routes (deprecated in Orthanc for ``/query``, still served):
``/modalities/{name}/find-patient|find-study|find-series|find-instance`` and the
hierarchical ``/modalities/{name}/find``.

As Orthanc's ``OrthancRestModalities.cpp``: the body's keys fill a template of the
level; only the level's main tags (plus the identifiers of the levels above) are sent,
normalized like ``/query``; the answers are the matches in Orthanc's ``simplify`` JSON.
A study search needs a PatientID or AccessionNumber of more than two characters, a series
search also a StudyInstanceUID, an instance search also a SeriesInstanceUID: without
them Orthanc sends no query, and Pharos answers an empty list.
"""

from __future__ import annotations

from typing import Any

from app.context import ServerContext
from app.dicom import orthanc_json
from app.dicom.levels import Level
from app.dicom.tags import MAIN_TAG_KEYWORDS, parse_tag, tag_name
from app.errors import BadFileFormat
from app.services import modalities, query_retrieve, remotes

# DicomMap::SetupFind*Template: the keys asked at each level, empty (return keys).
TEMPLATES: dict[Level, tuple[str, ...]] = {
    Level.PATIENT: ("PatientID", "OtherPatientIDs", "PatientBirthDate", "PatientName",
                    "PatientSex"),
    Level.STUDY: ("PatientID", "AccessionNumber", "StudyInstanceUID",
                  "ReferringPhysicianName", "StudyDate", "StudyDescription", "StudyID",
                  "StudyTime"),
    Level.SERIES: ("PatientID", "AccessionNumber", "StudyInstanceUID", "SeriesInstanceUID",
                   "BodyPartExamined", "Modality", "OperatorsName",
                   "PerformedProcedureStepDescription", "ProtocolName", "SeriesDate",
                   "SeriesDescription", "SeriesNumber", "SeriesTime"),
    Level.INSTANCE: ("PatientID", "AccessionNumber", "StudyInstanceUID", "SeriesInstanceUID",
                     "SOPInstanceUID", "AcquisitionNumber", "ImageComments", "ImageIndex",
                     "ImageOrientationPatient", "ImagePositionPatient",
                     "InstanceCreationDate", "InstanceCreationTime", "InstanceNumber",
                     "NumberOfFrames", "TemporalPositionIdentifier"),
}
# The keys of other levels each search keeps (FindStudy, FindSeries, FindInstance).
_COPIED: dict[Level, tuple[str, ...]] = {
    Level.PATIENT: (),
    Level.STUDY: ("PatientID", "AccessionNumber", "ModalitiesInStudy"),
    Level.SERIES: ("PatientID", "AccessionNumber", "StudyInstanceUID"),
    Level.INSTANCE: ("PatientID", "AccessionNumber", "StudyInstanceUID", "SeriesInstanceUID"),
}
# Keys that must hold more than two characters for a search to be sent.
_REQUIRED: dict[Level, tuple[tuple[str, ...], ...]] = {
    Level.PATIENT: (),
    Level.STUDY: (("PatientID", "AccessionNumber"),),
    Level.SERIES: (("PatientID", "AccessionNumber"), ("StudyInstanceUID",)),
    Level.INSTANCE: (("PatientID", "AccessionNumber"), ("StudyInstanceUID",),
                     ("SeriesInstanceUID",)),
}


def _fields(level: Level, body: Any, known: dict[str, str] | None = None) -> dict[str, str]:
    """The template of the level, the body's keys over it, then *known* identifiers."""
    if not isinstance(body, dict):
        raise BadFileFormat("The body must be a JSON object of DICOM tags")
    fields = dict.fromkeys(TEMPLATES[level], "")
    for key, value in body.items():
        try:
            keyword = tag_name(int(parse_tag(str(key))))
        except ValueError as error:
            raise BadFileFormat(f"Unknown DICOM tag: {key}") from error
        fields[keyword] = "" if value is None else str(value)
    fields.update(known or {})
    return fields


def _search(context: ServerContext, name: str, level: Level,
            fields: dict[str, str]) -> list[dict[str, Any]]:
    """One normalized C-FIND at *level* with the level's main tags and copied keys; the
    answers in Orthanc's full JSON."""
    if any(all(len(fields.get(k, "")) <= 2 for k in group) for group in _REQUIRED[level]):
        return []
    wanted = set(MAIN_TAG_KEYWORDS[level]) | set(_COPIED[level])
    keys = {int(parse_tag(k)): v for k, v in fields.items() if k in wanted}
    modality = remotes.get_modality(context, name)
    settings = {"Normalize": True, "LocalAet": modalities.local_aet(context, modality, {}),
                "Timeout": None}
    return query_retrieve.find_answers(context, modality, level, keys, settings)


def _simplified(answer: dict[str, Any]) -> dict[str, Any]:
    return orthanc_json.to_simplified(answer)


def find_level(context: ServerContext, name: str, level: Level, body: Any) -> list[Any]:
    """``/modalities/{name}/find-patient|study|series|instance``."""
    return [_simplified(a) for a in _search(context, name, level, _fields(level, body))]


def find_hierarchy(context: ServerContext, name: str, body: Any) -> list[Any]:
    """``/modalities/{name}/find``: the matching patients, each with its matching studies,
    each with its matching series (one C-FIND per node, as Orthanc)."""
    patients = []
    for patient in _search(context, name, Level.PATIENT, _fields(Level.PATIENT, body)):
        patient_json = _simplified(patient)
        patient_json["Studies"] = []
        known = {"PatientID": _value(patient, "0010,0020")}
        for study in _search(context, name, Level.STUDY, _fields(Level.STUDY, body, known)):
            study_json = _simplified(study)
            ids = {"PatientID": _value(study, "0010,0020") or known["PatientID"],
                   "StudyInstanceUID": _value(study, "0020,000d")}
            study_json["Series"] = [_simplified(s) for s in _search(
                context, name, Level.SERIES, _fields(Level.SERIES, body, ids))]
            patient_json["Studies"].append(study_json)
        patients.append(patient_json)
    return patients


def _value(answer: dict[str, Any], key: str) -> str:
    value = orthanc_json.to_short(answer).get(key)
    return value if isinstance(value, str) else ""
