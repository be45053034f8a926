"""Text normalisation for case-insensitive matching (Orthanc's ``NormalizeString``)."""

from __future__ import annotations

import unicodedata
from functools import lru_cache


@lru_cache(maxsize=65536)
def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).upper()


def normalize(text: str | None) -> str | None:
    """Upper-case and accent-folded copy of *text* (None stays None)."""
    if text is None:
        return None
    if text.isascii():
        return text.upper()
    return _fold(text)
