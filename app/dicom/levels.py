"""The four resource levels of the DICOM model of the real world, with Orthanc's names."""

from __future__ import annotations

from enum import StrEnum


class Level(StrEnum):
    PATIENT = "Patient"
    STUDY = "Study"
    SERIES = "Series"
    INSTANCE = "Instance"

    @property
    def plural(self) -> str:
        """The REST collection name: patients, studies, series, instances."""
        return _PLURAL[self]

    @property
    def depth(self) -> int:
        return _ORDER.index(self)

    @property
    def parent(self) -> Level | None:
        return _ORDER[self.depth - 1] if self.depth else None

    @property
    def child(self) -> Level | None:
        return _ORDER[self.depth + 1] if self.depth < 3 else None

    @classmethod
    def parse(cls, text: str) -> Level:
        """Accept Orthanc's spellings: Patient/patients/PATIENT, Series, Instance/instances..."""
        key = text.strip().lower()
        for level in cls:
            if key in (level.value.lower(), level.plural, level.plural.rstrip("s")):
                return level
        if key == "image":
            return cls.INSTANCE
        raise ValueError(f"unknown resource level: {text!r}")


_ORDER = [Level.PATIENT, Level.STUDY, Level.SERIES, Level.INSTANCE]
_PLURAL = {Level.PATIENT: "patients", Level.STUDY: "studies", Level.SERIES: "series",
           Level.INSTANCE: "instances"}
LEVELS = tuple(_ORDER)
