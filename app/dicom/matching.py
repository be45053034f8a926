"""Matching rules shared by /tools/find, QIDO-RS and C-FIND (PS3.4 C.2.2.2, Orthanc's).

A query value becomes one ``Constraint``: universal (empty or ``*``), single value,
wildcard (``*``, ``?``), list of values (``A\\B``, PS3.4 C.2.2.2.2 / UID list matching),
or range (``A-B``, ``A-``, ``-B`` on DA, TM and DT, PS3.4 C.2.2.2.5). Like Orthanc
(``DatabaseLookup::AddDicomConstraint``), matching is case-sensitive except for PN
values, whose sensitivity is the caller's choice (``CaseSensitive`` in /tools/find,
``CaseSensitivePN`` for C-FIND). Case-insensitive comparisons use the normalised form
(upper case, accents folded) that the index also stores in its ``*_norm`` columns.

``Constraint.matches`` is the reference matcher: the SQL compiler (app.index.find) must
agree with it, and non-indexed tags are filtered with it directly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property

from pydicom.datadict import dictionary_VR

from app.dicom.text import normalize

RANGE_VRS = {"DA", "TM", "DT"}


class Kind(StrEnum):
    UNIVERSAL = "universal"
    EQUAL = "equal"
    WILDCARD = "wildcard"
    LIST = "list"
    RANGE = "range"


@dataclass(frozen=True)
class Constraint:
    tag: int
    keyword: str
    kind: Kind
    values: tuple[str, ...] = ()
    low: str | None = None
    high: str | None = None
    case_sensitive: bool = True

    def _prepare(self, text: str) -> str:
        return text if self.case_sensitive else (normalize(text) or "")

    @cached_property
    def prepared_values(self) -> tuple[str, ...]:
        """Values as compared: normalised when case-insensitive."""
        return tuple(self._prepare(v) for v in self.values)

    @cached_property
    def _regex(self) -> re.Pattern[str]:
        return re.compile(wildcard_to_regex(self.prepared_values[0]), re.DOTALL)

    def matches(self, value: str | None) -> bool:
        """The reference semantics for one stored value (None: the tag is absent)."""
        if self.kind == Kind.UNIVERSAL:
            return True
        if value is None:
            return False
        if self.kind == Kind.RANGE:
            # Orthanc compares range bounds as strings (dates YYYYMMDD order correctly).
            if self.low is not None and value < self.low:
                return False
            return not (self.high is not None and value > self.high)
        prepared = self._prepare(value)
        if self.kind == Kind.EQUAL:
            return prepared == self.prepared_values[0]
        if self.kind == Kind.LIST:
            return prepared in self.prepared_values
        return self._regex.fullmatch(prepared) is not None


def wildcard_to_regex(pattern: str) -> str:
    out = []
    for c in pattern:
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        else:
            out.append(re.escape(c))
    return "".join(out)


def vr_of(tag: int) -> str:
    try:
        return dictionary_VR(tag)
    except KeyError:
        return "UN"


def parse_constraint(tag: int, keyword: str, query: str, *, case_sensitive_pn: bool = True,
                     vr: str | None = None) -> Constraint:
    """Turn one query value into a Constraint, with Orthanc's precedence of rules."""
    vr = vr or vr_of(tag)
    if vr == "SQ":
        raise ValueError(f"Cannot search on the sequence {keyword}")
    case_sensitive = case_sensitive_pn if vr == "PN" else True
    query = query.strip() if vr not in ("UT", "ST", "LT") else query
    if query in ("", "*"):
        return Constraint(tag, keyword, Kind.UNIVERSAL, case_sensitive=case_sensitive)
    if vr in RANGE_VRS and "-" in query:
        low, _, high = query.partition("-")
        return Constraint(tag, keyword, Kind.RANGE, low=low.strip() or None,
                          high=high.strip() or None, case_sensitive=True)
    if "\\" in query:
        values = tuple(v for v in query.split("\\"))
        return Constraint(tag, keyword, Kind.LIST, values=values, case_sensitive=case_sensitive)
    if "*" in query or "?" in query:
        return Constraint(tag, keyword, Kind.WILDCARD, values=(query,),
                          case_sensitive=case_sensitive)
    return Constraint(tag, keyword, Kind.EQUAL, values=(query,), case_sensitive=case_sensitive)
