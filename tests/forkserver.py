"""Start test servers by forking a process that has already imported Pharos.

Each ``pharos serve`` spent ~2.5 s of CPU before answering, ~2 s of it importing
(FastAPI, pydantic route models, SQLAlchemy, pydicom with its codecs, pynetdicom...);
the suite starts ~130 servers. One fork server per pytest process imports all that once
and forks a child per server, which then runs ``app.cli.main(["serve", ...])`` exactly
as ``python -m app.cli serve ...`` does from there on (settings, checks, migration,
create_app, lifespan, uvicorn), with its output in the server's log.

The production start from a fresh interpreter is still what the tests that run the
``pharos`` command themselves check (test_first_contact, test_import_command, CI's
bare-install check); ``PHAROS_TEST_FORKSERVER=0`` makes every live server a plain
subprocess again.

Protocol: one JSON line per request on the fork server's stdin, one JSON line answered:
``{"spawn": argv, "log": path, "env": {...}}`` -> ``{"pid": n}``;
``{"poll": pid}`` -> ``{"status": exit code or null}`` (negative: killed by a signal,
as ``subprocess.Popen.returncode``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parent.parent


class ForkedServer:
    """The ``subprocess.Popen`` surface the tests use, for a process the fork server made
    (its parent is the fork server, which reaps it and reports its exit status)."""

    def __init__(self, client: ForkServerClient, pid: int) -> None:
        self._client = client
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self._client.status(self.pid)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"pid {self.pid}", timeout or 0)
            time.sleep(0.02)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class ForkServerClient:
    """The pytest process's end: starts the fork server on first use, one request at a
    time (tests may start servers from several threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None

    def _request(self, message: dict) -> dict:
        with self._lock:
            if self._process is None or self._process.poll() is not None:
                self._process = subprocess.Popen(
                    [sys.executable, "-m", "tests.forkserver"], cwd=REPO,
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            assert self._process.stdin is not None and self._process.stdout is not None
            self._process.stdin.write(orjson.dumps(message) + b"\n")
            self._process.stdin.flush()
            line = self._process.stdout.readline()
            if not line:
                raise RuntimeError("the test fork server exited (tests/forkserver.py)")
            answer: dict = orjson.loads(line)
            return answer

    def spawn(self, argv: list[str], log: Path) -> ForkedServer:
        answer = self._request({"spawn": argv, "log": str(log), "env": dict(os.environ)})
        return ForkedServer(self, int(answer["pid"]))

    def status(self, pid: int) -> int | None:
        status: int | None = self._request({"poll": pid})["status"]
        return status

    def close(self) -> None:
        """End the fork server (it reaps its children first: their CPU time counts in
        the pytest process's own resource usage, as a subprocess's would)."""
        with self._lock:
            if self._process is not None:
                assert self._process.stdin is not None
                self._process.stdin.close()
                self._process.wait(timeout=60)
                self._process = None


def _serve_forever() -> int | None:
    """The fork server's loop; returns in a forked child with the server's exit status."""
    statuses: dict[int, int] = {}
    children: set[int] = set()
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while True:
        line = stdin.readline()
        if not line:
            break
        request = orjson.loads(line)
        if "spawn" in request:
            pid = os.fork()
            if pid == 0:
                return _child(request)
            children.add(pid)
            answer: dict = {"pid": pid}
        else:
            pid = int(request["poll"])
            if pid not in statuses:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    statuses[pid] = os.waitstatus_to_exitcode(status)
                    children.discard(pid)
            answer = {"status": statuses.get(pid)}
        stdout.write(orjson.dumps(answer) + b"\n")
        stdout.flush()
    for pid in children:  # the pytest process ended: the servers it left end too
        try:
            os.kill(pid, signal.SIGTERM)
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
        except ProcessLookupError:
            pass
    return None


def _child(request: dict) -> int:
    """In the forked child: the process ``python -m app.cli serve ...`` would be."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    os.environ.clear()
    os.environ.update(request["env"])
    import app.cli
    # As under ``python -m app.cli``: what multiprocessing's spawn start method (uvicorn's
    # HTTP worker processes) re-imports in each worker as the main module.
    sys.modules["__main__"] = app.cli
    sys.argv = [app.cli.__file__, *request["spawn"]]
    return app.cli.main(request["spawn"])


def _preload() -> None:
    """What every ``pharos serve`` imports before it serves (import only: no settings
    are read, no logging configured, no thread started)."""
    import alembic.command  # noqa: F401 — the migration at start
    import uvicorn  # noqa: F401
    import uvicorn.lifespan.on  # noqa: F401
    import uvicorn.loops.auto  # noqa: F401
    import uvicorn.protocols.http.auto  # noqa: F401

    import app.cli  # noqa: F401
    import app.main  # noqa: F401
    if os.environ.get("PHAROS_TEST_BLOBSTORE", "").lower() == "s3":
        import app.blobstore.s3  # noqa: F401
    if os.environ.get("PHAROS_TEST_DATABASE_URL"):
        import psycopg  # noqa: F401


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C ends the pytest process, then us
    _preload()
    code = _serve_forever()
    if code is not None:  # a forked server: it exits as the interpreter would
        sys.exit(code)
