"""Lua values <-> JSON values, with the conversions Orthanc's Lua API applies.

Orthanc pushes JSON into Lua (``LuaContext::PushJson``) and reads Lua values back as JSON
(``LuaContext::GetJson``) for every callback argument, ``ParseJson``, ``DumpJson`` and the
tables a callback returns. The rules reproduced here (re-implemented from the behaviour):

* JSON strings become Lua strings (bytes: Pharos runs Lua with ``encoding=None`` so that
  binary answers of ``RestApiGet`` survive), integers that fit 32 bits become Lua
  integers (Orthanc >= 1.12.1), other numbers Lua floats, ``null`` becomes ``nil``,
  arrays become tables indexed from 1 and objects tables keyed by strings;
* a Lua table becomes a JSON array when its keys are exactly 1..n (an empty table is
  ``[]``), otherwise an object whose keys are the keys as Lua's ``tostring`` writes
  them; a number becomes an integer when it is integral and fits 32 bits;
* with ``keep_strings`` (``DumpJson(v, true)``, the tables given to ``ModifyInstance``
  and returned by find filters) numbers are written as Lua writes them (``"3"``,
  ``"2.5"``, ``"3.0"``) instead of JSON numbers: DICOM values such as ``"0031-1020"``
  or ``"012"`` stay strings.
"""

from __future__ import annotations

import logging
import math
import re
from typing import Any

import lupa.lua53 as lua

log = logging.getLogger(__name__)

# Deeper tables are refused (a table that contains itself would recurse forever).
MAX_DEPTH = 200
_INT32 = (-(2**31), 2**31 - 1)


class LuaConversionError(ValueError):
    """A Lua value that cannot become JSON (too deep, or a table that contains itself)."""


def lua_number_text(value: int | float) -> str:
    """A number as Lua 5.3's ``tostring`` writes it: ``3``, ``3.0``, ``2.5``, ``1e+20``."""
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "nan" if math.copysign(1.0, value) > 0 else "-nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    text = f"{value:.14g}"  # LUAI_NUMFFORMAT
    if all(c.isdigit() or c == "-" for c in text):
        text += ".0"  # Lua 5.3 marks integral floats
    return text


_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_HEXADECIMAL = re.compile(r"([+-]?)0[xX]([0-9a-fA-F]*)(?:\.([0-9a-fA-F]*))?(?:[pP]([+-]?[0-9]+))?")
_LUA_SPACES = " \t\n\r\f\v"


def lua_string_to_number(text: str) -> int | float | None:
    """The number Lua 5.3 reads in a string (``lua_stringtonumber``), or None."""
    text = text.strip(_LUA_SPACES)
    if _DECIMAL.fullmatch(text):
        if "." in text or "e" in text or "E" in text:
            return float(text)
        value = int(text)
        return value if -(2**63) <= value < 2**63 else float(value)
    match = _HEXADECIMAL.fullmatch(text)
    if match and (match.group(2) or match.group(3)):
        sign, whole, fraction, exponent = match.groups()
        if fraction is None and exponent is None:
            value = int(whole, 16) % 2**64  # hexadecimal integers wrap around
            value = value - 2**64 if value >= 2**63 else value
            return -value if sign == "-" else value
        number = float(int(whole or "0", 16)) + (
            int(fraction, 16) / 16 ** len(fraction) if fraction else 0.0)
        number *= 2.0 ** int(exponent or 0)
        return -number if sign == "-" else number
    return None


def lua_text(value: Any) -> str:
    """A Lua string or number as text (what ``lua_tostring`` gives)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return lua_number_text(value)
    return str(value)


def to_lua(runtime: lua.LuaRuntime, value: Any) -> Any:
    """A JSON value (dict/list/str/number/bool/None; bytes pass as strings) as a Lua value."""
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, bool) or value is None or isinstance(value, bytes):
        return value
    if isinstance(value, int):
        # JsonCpp's isInt()/isUInt(): 32-bit values become Lua integers, others floats.
        return value if -(2**31) <= value < 2**32 else float(value)
    if isinstance(value, float):
        return value
    if isinstance(value, dict):
        table = runtime.table()
        for key, item in value.items():
            table[str(key).encode("utf-8")] = to_lua(runtime, item)
        return table
    if isinstance(value, list | tuple):
        table = runtime.table()
        for index, item in enumerate(value, start=1):
            table[index] = to_lua(runtime, item)
        return table
    return lua_text(value).encode("utf-8")


def from_lua(value: Any, keep_strings: bool = False, _depth: int = 0) -> Any:
    """A Lua value (as lupa hands it to Python) as a JSON value."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        if keep_strings:
            return lua_number_text(value)
        return _json_number(value)
    if isinstance(value, bytes | str):
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
        if not keep_strings:
            # lua_isnumber() is true for numeric strings: Orthanc's GetJson turns them into
            # numbers unless keepStrings (DumpJson('{"a":"12"}') gives {"a":12}).
            number = lua_string_to_number(text)
            if number is not None:
                return _json_number(number)
        return text
    kind = lua.lua_type(value)
    if kind == "table":
        if _depth >= MAX_DEPTH:
            raise LuaConversionError("The Lua table is too deep (or contains itself) to "
                                     "be converted to JSON")
        return _table_to_json(value, keep_strings, _depth + 1)
    log.warning("Unsupported Lua type when returning Json: %s", kind)
    return None


def _json_number(value: int | float) -> int | float:
    """Orthanc keeps a number as an integer when truncating it to 32 bits loses nothing."""
    if isinstance(value, int):
        return value if _INT32[0] <= value <= _INT32[1] else float(value)
    if value.is_integer() and _INT32[0] <= value <= _INT32[1]:
        return int(value)
    return value


def _table_to_json(table: Any, keep_strings: bool, depth: int) -> Any:
    items: dict[str, Any] = {}
    integer_keys: list[int] = []
    for key, item in table.items():
        if isinstance(key, int) and not isinstance(key, bool):
            integer_keys.append(key)
        name = lua_text(key)
        items[name] = from_lua(item, keep_strings, depth)
    count = len(items)
    if len(integer_keys) == count and set(integer_keys) == set(range(1, count + 1)):
        return [items[str(index)] for index in range(1, count + 1)]
    return items
