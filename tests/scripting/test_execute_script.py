"""``/tools/execute-script`` and ``LuaScripts``: Orthanc's Lua engine over real HTTP."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from app.config import Settings
from app.errors import CannotExecuteLua
from app.scripting.engine import ScriptingEngine
from tests.helpers import LiveServer, live_server

STARTUP_SCRIPT = """
started = 0
function Initialize()
   started = started + 1
end
greeting = 'hello from LuaScripts'
"""


@pytest.fixture(scope="module")
def lua_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("lua")
    (root / "startup.lua").write_text(STARTUP_SCRIPT)
    # A relative path: Orthanc reads LuaScripts relative to the configuration file.
    with live_server(root, {"ExecuteLuaEnabled": True, "LuaScripts": ["startup.lua"]}) as live:
        yield live


def run(server: LiveServer, code: str) -> str:
    with server.client() as client:
        answer = client.post("/tools/execute-script", content=code,
                             headers={"Content-Type": "application/lua"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    return answer.text


def test_print_is_formatted_as_orthanc(lua_server: LiveServer) -> None:
    assert run(lua_server, "print(42)") == "42\n"
    assert run(lua_server, 'print(1, "a", nil, true, 2.5, 10/2)') == "1, a, nil, true, 2.5, 5.0\n"
    assert run(lua_server, "print('x') print('y')") == "x\ny\n"
    assert run(lua_server, "x = 1") == ""
    # An empty first argument leaves no separator (Orthanc's PrintToLog).
    assert run(lua_server, "print('', 'table')") == "table\n"


def test_globals_persist_between_calls(lua_server: LiveServer) -> None:
    run(lua_server, "counter = 41")
    assert run(lua_server, "counter = counter + 1 print(counter)") == "42\n"


def test_lua_scripts_are_loaded_at_start(lua_server: LiveServer) -> None:
    assert run(lua_server, "print(greeting)") == "hello from LuaScripts\n"
    assert run(lua_server, "print(started)") == "1\n"  # Initialize() ran once


def test_toolbox_and_json_functions(lua_server: LiveServer) -> None:
    assert run(lua_server, "print(type(PrintRecursive), type(_InitializeJob), "
                           "type(HelloWorld))") == "function, function, nil\n"
    assert run(lua_server, "PrintRecursive({a=1})") == "table\n\t[a], number, 1\n"
    assert run(lua_server, "print(DumpJson({1,2,3}), DumpJson({a=1}), DumpJson({}), "
                           "DumpJson({1,2}, true))") == '[1,2,3], {"a":1}, [], ["1","2"]\n'
    assert run(lua_server, "print(ParseJson('[1,2.5,\"x\"]')[2])") == "2.5\n"
    assert run(lua_server, "print(ParseJson('not json'))") == "nil\n"
    assert run(lua_server, "print(GetOrthancConfiguration()['ExecuteLuaEnabled'])") == "true\n"
    # Lua reaches no Python object (lupa's python module is not exposed).
    assert run(lua_server, "print(python)") == "nil\n"


def test_lua_error_answers_like_orthanc_and_server_stays_up(lua_server: LiveServer) -> None:
    with lua_server.client() as client:
        for code, details in (('error("boom")', '[string "line"]:1: boom'),
                              ("x = ", '[string "line"]:1: unexpected symbol near <eof>')):
            answer = client.post("/tools/execute-script", content=code)
            assert answer.status_code == 500
            body = answer.json()
            assert body["OrthancStatus"] == 2031
            assert body["Message"] == "Cannot execute a Lua command"
            assert body["Details"] == details
        # A table that contains itself cannot become JSON: an error, not a crash.
        answer = client.post("/tools/execute-script",
                             content="local t = {} t.t = t print(DumpJson(t))")
        assert answer.status_code == 500
        assert client.get("/system").status_code == 200
    assert run(lua_server, "print('still here')") == "still here\n"



def test_a_broken_lua_script_stops_the_start(tmp_path: Path) -> None:
    """As Orthanc: a LuaScripts file that does not run refuses the start (the lifespan
    builds the engine before any door opens), never a half-configured server."""
    (tmp_path / "broken.lua").write_text("function (")
    settings = Settings.from_document({"LuaScripts": ["broken.lua"]})
    settings.configuration_directory = str(tmp_path)
    with pytest.raises(CannotExecuteLua, match="expected near"):
        ScriptingEngine(SimpleNamespace(settings=settings))  # type: ignore[arg-type]


def test_http_requests_wait_for_the_running_lua_work(lua_server: LiveServer,
                                                     tmp_path: Path) -> None:
    """As in Orthanc, whose HTTP server takes the Lua lock for each request: a request
    does not overtake Lua work that was running when it arrived."""
    started, finished = tmp_path / "started", tmp_path / "finished"
    script = (f"io.open('{started}', 'w'):close() os.execute('sleep 1') "
              f"io.open('{finished}', 'w'):close()")
    worker = threading.Thread(target=run, args=(lua_server, script))
    worker.start()
    try:
        deadline = time.monotonic() + 30
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        with lua_server.client() as client:
            assert client.get("/system").status_code == 200
        assert finished.exists()
    finally:
        worker.join()
