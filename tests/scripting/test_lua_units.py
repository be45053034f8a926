"""Lua <-> JSON conversions and the settings Lua depends on (no server)."""

from __future__ import annotations

from app.config import Settings
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
