"""Reusable pieces for benchmarks: data sets, servers side by side, clients, reports.

A benchmark compares Pharos with Debian's Orthanc in the same run, on the same machine
and disk, each server started on free ports with fresh temporary storage and measured
alone. Numbers are reported as rates and as the ratio Pharos/Orthanc: absolute rates
depend on the machine, the ratio much less.

Nothing here asserts on timings; benchmarks are never tests.
"""

from __future__ import annotations

import http.client
import math
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parent.parent
GEN_DATASET = Path(os.environ.get("PHAROS_GEN_DATASET",
                                  REPO.parent / "shared" / "tools" / "gen_dataset.py"))
CACHE = Path(os.environ.get("PHAROS_BENCH_CACHE", Path(tempfile.gettempdir()) / "pharos-bench"))
ORTHANC_BINARY = os.environ.get("PHAROS_ORTHANC", "Orthanc")

# Options of the benchmark launcher (``_launch_pharos``) for uvicorn experiments.
_LAUNCHER = """
import os, sys, uvicorn
sys.path.insert(0, os.environ["PHAROS_REPO"])
from app.config import Settings
from app.main import create_app
options = {k: v for k, v in (a.split("=", 1) for a in sys.argv[2:])}
settings = Settings.from_sources(sys.argv[1], overrides={"http_host": "127.0.0.1"})
workers = int(options.pop("workers", "1"))
common = dict(host="127.0.0.1", port=settings.http_port, log_level="warning",
              access_log=False, timeout_keep_alive=30, **options)
if workers > 1:
    os.environ["PHAROS_BENCH_CONFIG"] = sys.argv[1]
    uvicorn.run("benchmarks.common:pharos_app_factory", factory=True, workers=workers, **common)
else:
    uvicorn.run(create_app(settings), **common)
"""


def pharos_app_factory():  # noqa: ANN201 — used by uvicorn --workers (an import string)
    from app.config import Settings
    from app.main import create_app
    return create_app(Settings.from_sources(os.environ["PHAROS_BENCH_CONFIG"]))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- data -------------------------------------------------------------------------------

def synthetic_dataset(instances: int, *, size: int = 256, patients: int = 4, studies: int = 1,
                      series: int = 2) -> list[Path]:
    """``instances`` synthetic CT files from gen_dataset.py, cached under CACHE.

    The shape is patients x studies x series x ceil(instances / (p*s*e)); the first
    ``instances`` files (sorted) are returned, so that every patient, study and series
    is represented as in a real upload.
    """
    per_series = math.ceil(instances / (patients * studies * series))
    folder = CACHE / f"ct{size}-{patients}x{studies}x{series}x{per_series}"
    if not folder.is_dir():
        folder.parent.mkdir(parents=True, exist_ok=True)
        partial = folder.with_name(folder.name + f".partial-{os.getpid()}")
        log(f"generating {patients}x{studies}x{series}x{per_series} instances in {folder}")
        subprocess.run([sys.executable, str(GEN_DATASET), str(partial), "--patients",
                        str(patients), "--studies", str(studies), "--series", str(series),
                        "--instances", str(per_series), "--size", str(size)],
                       check=True, stdout=subprocess.DEVNULL)
        try:
            partial.rename(folder)
        except OSError:  # another run finished first
            shutil.rmtree(partial, ignore_errors=True)
    files = sorted(folder.glob("*.dcm"))
    # Interleave patients/series like several modalities sending at once, deterministically.
    files = files[:: max(1, len(files) // instances)][:instances] if len(files) > instances \
        else files
    return files[:instances]


# --- servers ----------------------------------------------------------------------------

@dataclass
class Server:
    """One running server under test."""

    name: str
    url: str
    host: str
    port: int
    process: subprocess.Popen
    directory: Path
    log_path: Path
    extra: dict[str, object] = field(default_factory=dict)

    def get_json(self, path: str) -> object:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            body = response.read()
            if response.status != 200:
                raise RuntimeError(f"{self.name} GET {path}: {response.status} {body[:200]!r}")
            return orjson.loads(body)
        finally:
            conn.close()

    def count_instances(self) -> int:
        return int(self.get_json("/statistics")["CountInstances"])  # type: ignore[index]

    def storage_bytes(self) -> int:
        return sum(p.stat().st_size for p in (self.directory / "storage").rglob("*")
                   if p.is_file())


def _wait_for_http(name: str, host: str, port: int, process: subprocess.Popen,
                   log_path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited at start:\n"
                               f"{log_path.read_text(errors='replace')[-3000:]}")
        try:
            conn = http.client.HTTPConnection(host, port, timeout=1)
            conn.request("GET", "/system")
            if conn.getresponse().status == 200:
                conn.close()
                return
            conn.close()
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{name} did not start:\n{log_path.read_text(errors='replace')[-3000:]}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _common_config(name: str, directory: Path) -> tuple[dict[str, object], int]:
    port = free_port()
    storage = directory / "storage"
    storage.mkdir(parents=True, exist_ok=True)
    return {"Name": name, "HttpPort": port, "DicomPort": free_port(),
            "StorageDirectory": str(storage), "IndexDirectory": str(storage),
            "RemoteAccessAllowed": True, "AuthenticationEnabled": False,
            "DicomServerEnabled": False, "OverwriteInstances": False,
            "StorageCompression": False, "SyncStorageArea": True}, port


@contextmanager
def fresh_postgres_database(base_url: str | None) -> Iterator[str | None]:
    """A new, empty PostgreSQL database next to ``base_url`` (dropped afterwards).

    ``base_url`` is ``postgresql+psycopg://user@host:port/anydb``; None yields None.
    """
    if not base_url:
        yield None
        return
    import psycopg
    name = "pharos_bench_" + uuid.uuid4().hex[:12]
    admin = base_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    prefix, _, _ = base_url.rpartition("/")
    try:
        yield f"{prefix}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def pharos_server(workdir: Path, *, database_url: str | None = None,
                  uvicorn_options: dict[str, str] | None = None,
                  config: dict[str, object] | None = None) -> Iterator[Server]:
    """``pharos serve`` on fresh storage (and a fresh PostgreSQL database if asked).

    Without ``uvicorn_options`` the server runs exactly as users run it (``app.cli serve``).
    With them (``http=httptools``, ``loop=uvloop``, ``workers=2``...), a small launcher
    calls ``uvicorn.run`` with those options, to measure what they change.
    """
    directory = Path(tempfile.mkdtemp(prefix="pharos-", dir=workdir))
    with fresh_postgres_database(database_url) as url:
        document, port = _common_config("PharosBench", directory)
        document.update(config or {})
        if url:
            document.setdefault("Pharos", {})["DatabaseUrl"] = url  # type: ignore[union-attr]
        config_path = directory / "pharos.json"
        config_path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
        log_path = directory / "server.log"
        env = {**os.environ, "PHAROS_REPO": str(REPO)}
        if uvicorn_options:
            # Several workers must not race on migrations: migrate once before.
            subprocess.run([sys.executable, "-m", "app.cli", "migrate", "--config",
                            str(config_path)], cwd=REPO, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            command = [sys.executable, "-c", _LAUNCHER, str(config_path),
                       *(f"{k}={v}" for k, v in uvicorn_options.items())]
        else:
            command = [sys.executable, "-m", "app.cli", "serve", "--config", str(config_path),
                       "--host", "127.0.0.1"]
        with open(log_path, "wb") as log_file:
            process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log_file,
                                       stderr=subprocess.STDOUT)
        server = Server("Pharos", f"http://127.0.0.1:{port}", "127.0.0.1", port, process,
                        directory, log_path, {"database": "postgresql" if url else "sqlite",
                                              "uvicorn": dict(uvicorn_options or {})})
        try:
            _wait_for_http("Pharos", "127.0.0.1", port, process, log_path)
            yield server
        finally:
            _stop(process)
            shutil.rmtree(directory, ignore_errors=True)


def orthanc_available() -> bool:
    return shutil.which(ORTHANC_BINARY) is not None


def orthanc_version() -> str:
    try:
        out = subprocess.run([ORTHANC_BINARY, "--version"], capture_output=True, text=True,
                             timeout=10).stdout
        return out.split("\n", 1)[0].strip()
    except OSError:
        return "unavailable"


@contextmanager
def orthanc_server(workdir: Path, *, config: dict[str, object] | None = None) -> Iterator[Server]:
    """Debian's Orthanc on fresh storage, no plugins, the same options as Pharos."""
    if not orthanc_available():
        raise RuntimeError(f"{ORTHANC_BINARY} is not installed (apt-get install orthanc)")
    directory = Path(tempfile.mkdtemp(prefix="orthanc-", dir=workdir))
    document, port = _common_config("OrthancBench", directory)
    document.update({"Plugins": [], "HttpServerEnabled": True, **(config or {})})
    config_path = directory / "orthanc.json"
    config_path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    log_path = directory / "server.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen([ORTHANC_BINARY, str(config_path)], cwd=directory,
                                   stdout=log_file, stderr=subprocess.STDOUT)
    server = Server("Orthanc", f"http://127.0.0.1:{port}", "127.0.0.1", port, process,
                    directory, log_path)
    try:
        _wait_for_http("Orthanc", "127.0.0.1", port, process, log_path)
        yield server
    finally:
        _stop(process)
        shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def py_spy(server: Server, output: Path | None, *, rate: int = 250) -> Iterator[None]:
    """Sample the server with py-spy (collapsed stacks in ``output``) while the block runs.

    Sampling costs the server a little CPU: rates measured with it on are not reported as
    results. ``pip install py-spy`` into the venv first; it needs ptrace rights.
    """
    if output is None or server.name != "Pharos":
        yield
        return
    binary = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    process = subprocess.Popen([binary, "record", "--pid", str(server.process.pid),
                                "--rate", str(rate), "--format", "raw", "--subprocesses",
                                "--output", str(output), "--nonblocking"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.0)  # let py-spy attach before the load starts
    try:
        yield
    finally:
        process.send_signal(2)  # SIGINT: py-spy writes its output and exits
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


# --- clients ----------------------------------------------------------------------------

@dataclass
class UploadResult:
    seconds: float
    instances: int
    bytes: int
    failures: list[str]

    @property
    def instances_per_second(self) -> float:
        return self.instances / self.seconds if self.seconds else 0.0

    @property
    def megabytes_per_second(self) -> float:
        return self.bytes / self.seconds / 1e6 if self.seconds else 0.0


def load_bodies(files: Sequence[Path]) -> list[bytes]:
    """Read the files before timing, so that the clients only measure the servers."""
    return [path.read_bytes() for path in files]


def post_all(server: Server, bodies: Sequence[bytes], clients: int, *,
             path: str = "/instances", content_type: str = "application/dicom") -> UploadResult:
    """POST every body with ``clients`` threads, each on one keep-alive connection.

    Bodies are dealt round-robin, so each client sends every ``clients``-th file. The
    wall time runs from the moment all connections are open to the last answer.
    """
    shares = [bodies[i::clients] for i in range(clients)]
    failures: list[str] = []
    lock = threading.Lock()
    ready = threading.Barrier(clients + 1)
    headers = {"Content-Type": content_type, "Connection": "keep-alive"}

    def client(share: Sequence[bytes]) -> None:
        conn = http.client.HTTPConnection(server.host, server.port, timeout=120)
        conn.connect()
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        ready.wait()
        try:
            for body in share:
                try:
                    conn.request("POST", path, body=body, headers=headers)
                    response = conn.getresponse()
                    answer = response.read()
                    if response.status != 200:
                        with lock:
                            failures.append(f"{response.status} {answer[:200]!r}")
                except (OSError, http.client.HTTPException) as error:
                    with lock:
                        failures.append(repr(error))
                    conn.close()
                    conn = http.client.HTTPConnection(server.host, server.port, timeout=120)
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(share,), daemon=True) for share in shares]
    for thread in threads:
        thread.start()
    ready.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - start
    return UploadResult(seconds, len(bodies) - len(failures), sum(map(len, bodies)), failures)


# --- reports ----------------------------------------------------------------------------

def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ratio(ours: float, theirs: float) -> float:
    return ours / theirs if theirs else float("nan")


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table, numbers right-aligned."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h)
              for i, h in enumerate(headers)]

    def line(values: Sequence[str], numeric: Sequence[bool]) -> str:
        return "  ".join(v.rjust(w) if n else v.ljust(w)
                         for v, w, n in zip(values, widths, numeric, strict=True))

    numeric = [all(isinstance(row[i], int | float) for row in rows) for i in range(len(headers))]
    out = [line(headers, numeric), line(["-" * w for w in widths], numeric)]
    out += [line(r, numeric) for r in cells]
    return "\n".join(out)


def _cell(value: object) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:.2f}" if abs(value) < 10 else f"{value:.0f}"
    return str(value)


def machine_summary() -> dict[str, object]:
    load = os.getloadavg()
    return {"cpus": os.cpu_count(), "loadavg_at_start": [round(x, 2) for x in load],
            "python": sys.version.split()[0], "orthanc": orthanc_version()}
