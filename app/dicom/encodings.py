"""Orthanc's character encodings (``DefaultEncoding``): names, Python codecs, DICOM terms.

Orthanc decodes the strings of a data set without SpecificCharacterSet (0008,0005) with
its *default encoding* (configuration option ``DefaultEncoding``, changed at run time by
``PUT /tools/default-encoding``), and writes the C-FIND answers and the DICOM files it
creates in that encoding, SpecificCharacterSet naming it (``GetDicomSpecificCharacterSet``).

Codec names are those of :mod:`app.dicom.orthanc_json` (``"ascii"`` being Orthanc's
ASCII filter: printable 7-bit characters and LF).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Encoding:
    name: str  # Orthanc's EnumerationToString
    codec: str  # Python codec
    term: str | None  # SpecificCharacterSet (PS3.3 C.12.1.1.2); None: no DICOM term


_ALL = (
    Encoding("Ascii", "ascii", "ISO_IR 6"),
    Encoding("Utf8", "utf_8", "ISO_IR 192"),
    Encoding("Latin1", "latin_1", "ISO_IR 100"),
    Encoding("Latin2", "iso8859_2", "ISO_IR 101"),
    Encoding("Latin3", "iso8859_3", "ISO_IR 109"),
    Encoding("Latin4", "iso8859_4", "ISO_IR 110"),
    Encoding("Latin5", "iso8859_9", "ISO_IR 148"),
    Encoding("Cyrillic", "iso8859_5", "ISO_IR 144"),
    Encoding("Windows1251", "cp1251", None),
    Encoding("Arabic", "iso8859_6", "ISO_IR 127"),
    Encoding("Greek", "iso8859_7", "ISO_IR 126"),
    Encoding("Hebrew", "iso8859_8", "ISO_IR 138"),
    Encoding("Thai", "tis_620", "ISO_IR 166"),
    Encoding("Japanese", "shift_jis", "ISO_IR 13"),
    Encoding("Chinese", "gb18030", "GB18030"),
    Encoding("Korean", "euc_kr", "ISO 2022 IR 149"),
    Encoding("JapaneseKanji", "iso2022_jp", "ISO 2022 IR 87"),
    Encoding("SimplifiedChinese", "gb2312", "ISO 2022 IR 58"),
)
ENCODINGS: dict[str, Encoding] = {e.name.upper(): e for e in _ALL}
DEFAULT = ENCODINGS["LATIN1"]


def parse(name: str) -> Encoding:
    """Orthanc's ``StringToEncoding`` (case-insensitive); ValueError for another name."""
    found = ENCODINGS.get(str(name).strip().upper())
    if found is None:
        raise ValueError(f"Unknown encoding: {name!r} (one of "
                         f"{', '.join(e.name for e in _ALL)})")
    return found
