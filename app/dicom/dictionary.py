"""Orthanc's ``Dictionary`` configuration option: site-specific tags, mostly private ones.

Orthanc (``LoadCustomDictionary`` / ``FromDcmtkBridge::RegisterDictionaryTag``) adds each
entry ``"gggg,eeee": [VR, Name, MinMultiplicity, MaxMultiplicity, PrivateCreator]`` to
DCMTK's global dictionary.  From then on, with the private creator of the block:

* ``/tags`` names the element (``"Name": "RadioButton3"``) and ``?simplify`` uses that name;
* an element of an implicit VR file gets the registered VR (a UI value is then a string,
  not null);
* the name can be used wherever a tag is expected (``"Replace": {"RadioButton3": ...}``,
  ``/content/RadioButton3``...);
* a new private element written by ``/modify`` or ``/tools/create-dicom`` gets the
  registered VR when its private creator (``PrivateCreator`` of the request, else
  ``DefaultPrivateCreator``) is the registered one.

The registry is process-wide, as DCMTK's dictionary is in Orthanc: :func:`register` runs
when the application is built from its settings.  It also feeds pydicom's dictionaries so
that pydicom writes the registered VR.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydicom.datadict import add_dict_entries, add_private_dict_entries

# Orthanc's StringToValueRepresentation() accepts these VRs.
VALID_VRS = frozenset({
    "AE", "AS", "AT", "CS", "DA", "DS", "DT", "FD", "FL", "IS", "LO", "LT", "OB", "OD", "OF",
    "OL", "OV", "OW", "PN", "SH", "SL", "SQ", "SS", "ST", "SV", "TM", "UC", "UI", "UL", "UN",
    "UR", "US", "UT", "UV"})


@dataclass(frozen=True, slots=True)
class DictionaryEntry:
    tag: int
    vr: str
    name: str
    vm_min: int
    vm_max: int  # 0: any number of values
    creator: str | None

    @property
    def vm(self) -> str:
        if self.vm_max == 0:
            return f"{self.vm_min}-n"
        return str(self.vm_min) if self.vm_min == self.vm_max else f"{self.vm_min}-{self.vm_max}"


_BY_TAG: dict[tuple[str | None, int], DictionaryEntry] = {}
_BY_NAME: dict[str, DictionaryEntry] = {}


def _parse_key(text: str) -> int:
    compact = text.strip().replace(",", "").replace("-", "")
    if len(compact) != 8:
        raise ValueError(f"bad tag {text!r} in the Dictionary configuration option")
    return int(compact, 16)


def parse(option: Any) -> list[DictionaryEntry]:
    """The entries of a ``Dictionary`` option; ValueError on an invalid one (as Orthanc,
    which refuses to start then)."""
    if not option:
        return []
    if not isinstance(option, dict):
        raise ValueError("The Dictionary configuration option must be an object")
    entries = []
    for key, content in option.items():
        if (not isinstance(content, list) or not 2 <= len(content) <= 5
                or not all(isinstance(v, str) for v in content[:2])
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in content[2:4])
                or len(content) == 5 and not isinstance(content[4], str)):
            raise ValueError(f"The definition of the '{key}' dictionary entry is invalid.")
        tag = _parse_key(key)
        vr = content[0].upper()
        if vr not in VALID_VRS:
            raise ValueError(f"Unknown value representation {content[0]!r} for {key}")
        vm_min = content[2] if len(content) > 2 else 1
        vm_max = content[3] if len(content) > 3 else 1
        if vm_min < 1 or (vm_max != 0 and vm_max < vm_min):
            raise ValueError(f"Bad multiplicity for the dictionary entry {key}")
        creator = content[4] if len(content) > 4 and content[4] else None
        group = tag >> 16
        if creator is not None and (group % 2 == 0 or group in (1, 3, 5, 7, 0xFFFF)):
            raise ValueError(f"Trying to register private tag {key}, but it must have an odd "
                             "group >= 0x0009")
        entries.append(DictionaryEntry(tag, vr, content[1], vm_min, vm_max, creator))
    return entries


def register(entries: list[DictionaryEntry]) -> None:
    """Add *entries* to the process-wide dictionary (and to pydicom's)."""
    for entry in entries:
        _BY_TAG[(entry.creator, entry.tag)] = entry
        _BY_NAME[entry.name] = entry
        if entry.creator is not None:
            add_private_dict_entries(entry.creator,
                                     {entry.tag: (entry.vr, entry.vm, entry.name, "")})
        else:
            keyword = entry.name if entry.name.isidentifier() else ""
            add_dict_entries({entry.tag: (entry.vr, entry.vm, entry.name, "", keyword)})
    from app.dicom import orthanc_json
    orthanc_json.forget_cached_entries()


def lookup(tag: int, creator: str | None) -> DictionaryEntry | None:
    """The registered entry of *tag* in a block reserved by *creator* (DCMTK's lookup: the
    exact element, then the element within its block)."""
    if not _BY_TAG:
        return None
    entry = _BY_TAG.get((creator, tag))
    if entry is None and creator is not None:
        entry = _BY_TAG.get((creator, tag & 0xFFFF00FF))
    return entry


def find_name(name: str) -> DictionaryEntry | None:
    """The registered entry called *name* (Orthanc's ``ParseTag`` accepts such names)."""
    return _BY_NAME.get(name.strip())
