"""Main DICOM tags per level, as Orthanc 1.10 indexes them (``DicomMap.cpp``).

These lists decide which tags ``GET /{level}/{id}`` shows under ``MainDicomTags`` and
which values the index keeps per resource. Order matters only for readability: Orthanc
answers with sorted keys.
"""

from __future__ import annotations

from typing import cast

from pydicom.datadict import keyword_for_tag, tag_for_keyword
from pydicom.tag import BaseTag, Tag

from app.dicom import dictionary as user_dictionary
from app.dicom.levels import Level

MAIN_TAG_KEYWORDS: dict[Level, tuple[str, ...]] = {
    Level.PATIENT: ("PatientName", "PatientBirthDate", "PatientSex", "OtherPatientIDs",
                    "PatientID"),
    Level.STUDY: ("StudyDate", "StudyTime", "StudyID", "StudyDescription", "AccessionNumber",
                  "StudyInstanceUID", "RequestedProcedureDescription", "InstitutionName",
                  "RequestingPhysician", "ReferringPhysicianName"),
    Level.SERIES: ("SeriesDate", "SeriesTime", "Modality", "Manufacturer", "StationName",
                   "SeriesDescription", "BodyPartExamined", "SequenceName", "ProtocolName",
                   "SeriesNumber", "CardiacNumberOfImages", "ImagesInAcquisition",
                   "NumberOfTemporalPositions", "NumberOfSlices", "NumberOfTimeSlices",
                   "SeriesInstanceUID", "ImageOrientationPatient", "SeriesType",
                   "OperatorsName", "PerformedProcedureStepDescription",
                   "AcquisitionDeviceProcessingDescription", "ContrastBolusAgent"),
    Level.INSTANCE: ("InstanceCreationDate", "InstanceCreationTime", "AcquisitionNumber",
                     "ImageIndex", "InstanceNumber", "NumberOfFrames",
                     "TemporalPositionIdentifier", "SOPInstanceUID", "ImagePositionPatient",
                     "ImageComments", "ImageOrientationPatient"),
}

MAIN_TAGS: dict[Level, tuple[tuple[BaseTag, str], ...]] = {
    level: tuple((Tag(cast(int, tag_for_keyword(k))), k) for k in keywords)
    for level, keywords in MAIN_TAG_KEYWORDS.items()
}

# The tag that identifies a resource at each level.
IDENTIFIER_KEYWORD: dict[Level, str] = {
    Level.PATIENT: "PatientID",
    Level.STUDY: "StudyInstanceUID",
    Level.SERIES: "SeriesInstanceUID",
    Level.INSTANCE: "SOPInstanceUID",
}


def main_tags_signature(level: Level) -> str:
    """Orthanc's ``MainDicomTagsSignature`` of a level (1.11+): the sorted ``gggg,eeee`` of
    its main tags joined by ``;``; ``/system`` and the resources' metadata show it."""
    return ";".join(sorted(format_tag(int(tag)) for tag, _ in MAIN_TAGS[level]))


def format_tag(tag: int) -> str:
    """Orthanc's ``gggg,eeee`` spelling (lower-case hexadecimal)."""
    return f"{tag >> 16:04x},{tag & 0xFFFF:04x}"


def parse_tag(text: str) -> BaseTag:
    """A tag from a keyword (``PatientName``) or ``gggg,eeee`` / ``ggggeeee`` / ``gggg-eeee``."""
    cleaned = text.strip()
    compact = cleaned.replace(",", "").replace("-", "").replace("(", "").replace(")", "")
    if len(compact) == 8 and all(c in "0123456789abcdefABCDEF" for c in compact):
        return Tag(int(compact, 16))
    tag = tag_for_keyword(cleaned)
    if tag is None:
        registered = user_dictionary.find_name(cleaned)  # the "Dictionary" option's names
        if registered is not None:
            return Tag(registered.tag)
        raise ValueError(f"unknown DICOM tag: {text!r}")
    return Tag(tag)


def tag_name(tag: int) -> str:
    """The keyword of *tag*, or Orthanc's placeholder for tags the dictionary does not know."""
    return keyword_for_tag(tag) or "Unknown Tag & Data"
