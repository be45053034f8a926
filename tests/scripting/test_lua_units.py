"""Lua <-> JSON conversions and the settings Lua depends on (no server)."""

from __future__ import annotations

import orjson
import pytest

from app.config import Settings
from app.errors import CannotExecuteLua
from app.scripting.lua_state import LuaState
from app.scripting.lua_values import from_lua, lua_number_text


def test_numbers_are_written_as_lua_writes_them() -> None:
    assert [lua_number_text(v) for v in (3, 3.0, 2.5, -1.0, 1e20)] == \
        ["3", "3.0", "2.5", "-1.0", "1e+20"]


def test_json_round_trip_through_lua() -> None:
    state = LuaState("test")
    value = {"a": [1, 2.5, "x", True, None], "b": {"c": "d"}, "e": [], "big": 2**40}
    back = from_lua(state.to_lua(value))
    # null inside an array is a hole in Lua: Orthanc loses it too.
    assert back == {"a": [1, 2.5, "x", True], "b": {"c": "d"}, "e": [], "big": float(2**40)}
    assert from_lua(state.to_lua({"n": 12}), keep_strings=True) == {"n": "12"}


def test_lua_in_use_means_one_http_process() -> None:
    assert Settings.from_document({"ExecuteLuaEnabled": True},
                                  overrides={"http_workers": 4}).effective_http_workers == 1
    assert Settings.from_document({"LuaScripts": ["a.lua"]}).effective_http_workers == 1
    assert Settings.from_document({}, overrides={"http_workers": 3}).effective_http_workers == 3
    # Python hooks are per process: they do not force one process.
    assert Settings.from_document({"Pharos": {"Hooks": "x"}},
                                  overrides={"http_workers": 2}).effective_http_workers == 2


def test_lua_reaches_no_python_and_loads_no_bytecode() -> None:
    state = LuaState("test")
    assert state.execute("print(python)") == "nil\n"
    with pytest.raises(CannotExecuteLua, match="not accessible"):
        state.execute("print(DumpJson.__globals__)")
    assert state.execute("print(load(string.dump(function() end)))") == \
        "nil, attempt to load a binary chunk (mode is 't')\n"
    assert state.execute("y = 5 print(load('return y')(), load('return y', 'c', 't', {y = 3})())") \
        == "5, 3\n"
    # The state is still usable after errors.
    assert state.execute("print(y)") == "5\n"


def test_numeric_strings_become_numbers_unless_kept() -> None:
    """Orthanc's GetJson: lua_isnumber() is true for numeric strings (the Book's
    keepStrings warning)."""
    state = LuaState("test")
    code = 'print(DumpJson({a = "12", b = "0x10", c = "1.5", d = "12a", e = "020"}{keep}))'
    assert orjson.loads(state.execute(code.replace("{keep}", ""))) == \
        {"a": 12, "b": 16, "c": 1.5, "d": "12a", "e": 20}
    assert orjson.loads(state.execute(code.replace("{keep}", ", true"))) == \
        {"a": "12", "b": "0x10", "c": "1.5", "d": "12a", "e": "020"}
