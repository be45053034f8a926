"""Matching rules shared by /tools/find, QIDO-RS and C-FIND (PS3.4 C.2.2.2, Orthanc's).

A query value becomes one ``Constraint``: universal (empty or ``*``), single value,
wildcard (``*``, ``?``), list of values (``A\\B``, PS3.4 C.2.2.2.2 / UID list matching),
or range (``A-B``, ``A-``, ``-B`` on DA, TM and DT, PS3.4 C.2.2.2.5).

Two doors parse queries differently, as Orthanc does:

* DICOM (QIDO-RS, ``DatabaseLookup::AddDicomConstraint``): matching is
  case-sensitive except for PN values, whose sensitivity is the caller's choice
  (``CaseSensitivePN``); ``*`` is universal matching (PS3.4 C.2.2.2.4).
* C-FIND (``cfind=True``, Orthanc's ``OrthancFindRequestHandler``): the same case rules,
  but the constraints are Orthanc's (1.6+): a ``*`` is wild card matching, which an
  absent attribute never satisfies, and a wildcard on a VR without wild card matching
  (UI, DA, numbers...) refuses the query. PS3.4 C.2.2.2.4 Note 1 calls ``*`` universal;
  Pharos answers as Orthanc does, whose release tests require it (see the README).
* REST (``/tools/find``, ``DatabaseLookup::AddRestConstraint``, ``rest=True``):
  ``CaseSensitive`` applies to every VR; the value is taken as given (no trimming);
  wildcards are only allowed on AE CS LO LT PN SH ST UC UR UT (Orthanc 1.6+, after
  PS3.4 C.2.2.2.4): elsewhere a ``*`` or ``?`` is an error, ranges included; and every
  constraint is mandatory: a resource without the tag never matches, even ``*``.

Case-insensitive comparisons use Orthanc's ``ToUpperCaseWithAccents``: each character
upper-cased on its own, accents kept (``é`` matches ``É``, not ``E``). The index's
``*_norm`` columns fold accents too: the SQL compiler uses them as a superset and
re-checks with this module.

``Constraint.matches`` is the reference matcher: the SQL compiler (app.index.find) must
agree with it, and non-indexed tags are filtered with it directly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property

from pydicom.datadict import dictionary_VR

RANGE_VRS = {"DA", "TM", "DT"}
# Orthanc 1.6+ (DatabaseLookup.cpp, after PS3.4 C.2.2.2.4): VRs that accept wildcards.
WILDCARD_VRS = {"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT"}


class WildcardNotAllowed(ValueError):
    """A ``*`` or ``?`` in a REST query value of a VR without wildcard matching."""


class QueryTooComplex(WildcardNotAllowed):
    """A query value beyond what any DICOM value needs (answered 400, like a bad
    wildcard): SQLite refuses LIKE/GLOB patterns over 50,000 bytes ("pattern too
    complex") and bound variables over 32,766 per statement."""


# Longer than any DICOM string value but LT/UT (10,240 characters): still far below
# SQLite's LIKE/GLOB limit once escaped. Lists: far below SQLite's bound variables.
MAX_PATTERN_LENGTH = 1024
MAX_LIST_VALUES = 1000


def upper_with_accents(text: str) -> str:
    """Orthanc's ``Toolbox::ToUpperCaseWithAccents``: per-character upper case, so that
    the length never changes (``ß`` stays ``ß``) and accents stay."""
    if text.isascii():
        return text.upper()
    out = []
    for c in text:
        upper = c.upper()
        out.append(upper if len(upper) == 1 else c)
    return "".join(out)


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

    def __post_init__(self) -> None:
        _check_size(self.kind, self.values)

    def _prepare(self, text: str) -> str:
        return text if self.case_sensitive else upper_with_accents(text)

    @cached_property
    def prepared_values(self) -> tuple[str, ...]:
        """Values as compared: normalised when case-insensitive."""
        return tuple(self._prepare(v) for v in self.values)

    def matches(self, value: str | None) -> bool:
        """The reference semantics for one stored value (None: the tag is absent)."""
        if self.kind == Kind.UNIVERSAL:
            return True
        if value is None:
            return False
        prepared = self._prepare(value)
        if self.kind == Kind.RANGE:
            # Orthanc compares range bounds as strings (dates YYYYMMDD order correctly).
            if self.low is not None and prepared < self._prepare(self.low):
                return False
            return not (self.high is not None and prepared > self._prepare(self.high))
        if self.kind == Kind.EQUAL:
            return prepared == self.prepared_values[0]
        if self.kind == Kind.LIST:
            return prepared in self.prepared_values
        return wildcard_match(self.prepared_values[0], prepared)


def wildcard_match(pattern: str, text: str) -> bool:
    """``*`` (any run) and ``?`` (one character) matching of the whole *text*, in
    O(len(pattern) * len(text)) at worst: the greedy two-pointer walk that backtracks
    only to the last ``*``, where a regular expression (``.*a.*a.*b``) can backtrack
    exponentially on a hostile pattern."""
    p = t = 0
    star, mark = -1, 0
    while t < len(text):
        if p < len(pattern) and (pattern[p] == "?" or pattern[p] == text[t]):
            p += 1
            t += 1
        elif p < len(pattern) and pattern[p] == "*":
            star, mark = p, t
            p += 1
        elif star >= 0:
            p, mark = star + 1, mark + 1
            t = mark
        else:
            return False
    while p < len(pattern) and pattern[p] == "*":
        p += 1
    return p == len(pattern)


def _check_size(kind: Kind, values: tuple[str, ...]) -> None:
    if kind == Kind.WILDCARD and len(values[0]) > MAX_PATTERN_LENGTH:
        raise QueryTooComplex(f"Wildcard pattern of {len(values[0])} characters: at most "
                              f"{MAX_PATTERN_LENGTH}")
    if kind == Kind.LIST and len(values) > MAX_LIST_VALUES:
        raise QueryTooComplex(f"List of {len(values)} values: at most {MAX_LIST_VALUES}")


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
    if tag >> 16 & 1 and 0x10 <= tag & 0xFFFF <= 0xFF:
        return "LO"  # a private creator (PS3.5 7.8.1)
    try:
        return dictionary_VR(tag)
    except KeyError:
        return "UN"


def parse_constraint(tag: int, keyword: str, query: str, *, case_sensitive_pn: bool = True,
                     vr: str | None = None, rest: bool = False,
                     case_sensitive: bool = True, cfind: bool = False) -> Constraint:
    """Turn one query value into a Constraint, with Orthanc's precedence of rules:
    range (DA/TM/DT with ``-``), then list (``\\``), then wildcard, then single value.

    ``rest=True`` parses like ``AddRestConstraint`` (``/tools/find``): *case_sensitive*
    applies to every VR, the value is not trimmed, ``*`` is not universal, and wildcards
    on other VRs than WILDCARD_VRS raise WildcardNotAllowed. Otherwise like
    ``AddDicomConstraint`` (C-FIND): only PN follows *case_sensitive_pn*.
    """
    vr = vr or vr_of(tag)
    if vr == "SQ" and not rest:
        raise ValueError(f"Cannot search on the sequence {keyword}")
    if rest:
        return _parse_rest(tag, keyword, query, vr, case_sensitive)
    if cfind:  # Orthanc's C-FIND SCP: AddDicomConstraint on the DICOM value
        value = query.strip() if vr not in ("UT", "ST", "LT") else query
        return _parse_rest(tag, keyword, value, vr,
                           case_sensitive_pn if vr == "PN" else True)
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


def _no_wildcard(tag: int, value: str) -> str:
    if "*" in value or "?" in value:
        # DicomTagConstraint::AssignSingleValue
        raise WildcardNotAllowed(f"Wildcards are not allowed on tag "
                                 f"{tag >> 16:04x},{tag & 0xFFFF:04x}")
    return value


def _parse_rest(tag: int, keyword: str, query: str, vr: str,
                case_sensitive: bool) -> Constraint:
    if query == "":
        return Constraint(tag, keyword, Kind.UNIVERSAL, case_sensitive=case_sensitive)
    if vr in RANGE_VRS and "-" in query:
        low, _, high = query.partition("-")
        if not low and not high:  # "-": Orthanc adds no constraint at all
            return Constraint(tag, keyword, Kind.UNIVERSAL, case_sensitive=case_sensitive)
        # Orthanc compares range bounds with the case sensitivity asked (digits anyway).
        return Constraint(tag, keyword, Kind.RANGE, low=_no_wildcard(tag, low) or None,
                          high=_no_wildcard(tag, high) or None, case_sensitive=case_sensitive)
    if "\\" in query:
        # Toolbox::TokenizeString keeps empty items; wildcards in items are literal.
        return Constraint(tag, keyword, Kind.LIST, values=tuple(query.split("\\")),
                          case_sensitive=case_sensitive)
    if vr in WILDCARD_VRS and ("*" in query or "?" in query):
        return Constraint(tag, keyword, Kind.WILDCARD, values=(query,),
                          case_sensitive=case_sensitive)
    return Constraint(tag, keyword, Kind.EQUAL, values=(_no_wildcard(tag, query),),
                      case_sensitive=case_sensitive)
