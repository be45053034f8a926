"""Client-supplied numbers, checked once: every integer parameter of every door goes
through :func:`parse_int` (query arguments, JSON fields, path segments), every decimal
one through :func:`parse_float`.

A value outside its range is the client's error (Orthanc's ``ParameterOutOfRange``,
HTTP 400), never an overflow deeper down: SQLite and PostgreSQL integers stop at 2^63-1
("int too large to convert to SQLite INTEGER" was a 500), ``int(float("inf"))`` raises
OverflowError, and a NaN compares false with every bound.
"""

from __future__ import annotations

import math
from typing import Any

from app.errors import ParameterOutOfRange, PharosError

MAX_INT64 = 2**63 - 1  # the largest integer both index databases store


def parse_int(value: Any, name: str, *, minimum: int = 0, maximum: int = MAX_INT64,
              error: type[PharosError] = ParameterOutOfRange) -> int:
    """An integer from a string (``"12"``, spaces allowed) or a JSON integer, within
    [minimum, maximum]; *error* (400) otherwise. Booleans are not integers."""
    if isinstance(value, bool):
        raise error(f"Argument {name!r} must be an integer")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and len(value) <= 40:
        try:
            number = int(value.strip())
        except ValueError:
            raise error(f"Argument {name!r} must be an integer, not {value[:40]!r}") from None
    else:
        raise error(f"Argument {name!r} must be an integer")
    if not minimum <= number <= maximum:
        raise error(f"Argument {name!r} must be between {minimum} and {maximum}")
    return number


def parse_float(value: Any, name: str, *, minimum: float = -math.inf,
                maximum: float = math.inf,
                error: type[PharosError] = ParameterOutOfRange) -> float:
    """A finite number from a string or a JSON number, within [minimum, maximum]."""
    if isinstance(value, bool):
        raise error(f"Argument {name!r} must be a number")
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError, OverflowError):
        raise error(f"Argument {name!r} must be a number") from None
    if not math.isfinite(number) or not minimum <= number <= maximum:
        raise error(f"Argument {name!r} must be a finite number between {minimum} and "
                    f"{maximum}")
    return number


MAX_JSON_DEPTH = 64  # nesting levels of a JSON body (DICOM JSON of real data: ~10-20)


def check_json_depth(document: Any, limit: int = MAX_JSON_DEPTH,
                     error: type[PharosError] = ParameterOutOfRange) -> Any:
    """Refuse JSON nested deeper than *limit* (arrays and objects), before recursive code
    (DICOM JSON to dataset, sequences in create-dicom or modify) overflows Python's
    stack: iterative, so the check itself never recurses. Answers *document*."""
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            raise error(f"The JSON document is nested deeper than {limit} levels")
        if isinstance(node, dict):
            stack.extend((child, depth + 1) for child in node.values()
                         if isinstance(child, dict | list))
        elif isinstance(node, list):
            stack.extend((child, depth + 1) for child in node
                         if isinstance(child, dict | list))
    return document


def is_digits(text: str, max_length: int = 18) -> bool:
    """ASCII decimal digits only, few enough to fit an int64: ``str.isdigit`` alone also
    accepts "³" or "١" (which ``int`` refuses or reads unexpectedly), and ``int`` refuses
    more than 4,300 digits (Python's conversion limit)."""
    return 0 < len(text) <= max_length and text.isascii() and text.isdigit()
