"""The shape of app/ holds (issue 18): SQL only in app/index, FastAPI/Starlette only in the
HTTP door, no package importing a package of a higher layer, no door importing the index
or opening a transaction (doors ask the services), no import cycle between packages. The import graph is drawn from the source by scripts/layers.py (every import,
including the ones inside functions); its ``LAYERS`` table is the rule.

The allow-lists below hold known violations, each with what removes it (issue 18 emptied
them). They can only shrink: an entry that no longer matches anything fails too, so
whoever fixes a violation removes its entry.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load_layers() -> ModuleType:
    spec = importlib.util.spec_from_file_location("pharos_layers", ROOT / "scripts" / "layers.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)
    return module


layers = _load_layers()

# Importing module -> imported module (upward in the layer table).
ALLOWED_UPWARD: dict[tuple[str, str], str] = {}

# Modules outside app/index importing sqlalchemy (none).
ALLOWED_SQL: dict[str, str] = {}

# Modules outside the HTTP door importing fastapi/starlette (none).
ALLOWED_WEB: dict[str, str] = {}

# Doors (app/api, app/dimse, app/scripting, app/viewer) importing app/index (none).
ALLOWED_DOOR_INDEX: dict[tuple[str, str], str] = {}

# Package cycles (as sorted tuples of packages).
ALLOWED_CYCLES: dict[tuple[str, ...], str] = {}


def _check(found: set, allowed: dict, what: str) -> None:
    new = sorted(found - set(allowed))
    stale = sorted(set(allowed) - found)
    assert not new, f"new {what} (fix the import, or see scripts/layers.py LAYERS): {new}"
    assert not stale, f"fixed {what}: remove them from the allow-list in {__file__}: {stale}"


def test_every_package_is_on_a_layer() -> None:
    packages = {layers.package_of(name) for name, _ in layers.modules()}
    assert packages - set(layers.LAYER_OF) == set()


def test_no_upward_imports() -> None:
    found = {(i.module, i.target) for i in layers.upward_imports()}
    _check(found, ALLOWED_UPWARD, "upward imports")


def test_sql_only_in_the_index() -> None:
    found = {i.module for i in layers.library_imports(layers.SQL_LIBRARIES, layers.SQL_PACKAGES)}
    _check(found, ALLOWED_SQL, "SQLAlchemy imports outside app/index")


def test_fastapi_only_in_the_http_door() -> None:
    found = {i.module for i in layers.library_imports(layers.WEB_LIBRARIES, layers.WEB_PACKAGES)}
    _check(found, ALLOWED_WEB, "FastAPI/Starlette imports outside app/api and app/main")


def test_doors_ask_the_services_not_the_index() -> None:
    found = {(i.module, i.target) for i in layers.door_index_imports()}
    _check(found, ALLOWED_DOOR_INDEX, "imports of app/index by a door")


def test_doors_open_no_transactions() -> None:
    """The services open the index's transactions (one use case, one snapshot or one
    atomic write); a door calls a service and never ``context.db.read()`` itself."""
    found = [f"{t.module}:{t.line} db.{t.method}()" for t in layers.door_transactions()]
    assert found == []


def test_a_door_transaction_is_caught(tmp_path: Path) -> None:
    app = tmp_path / "app"
    for package in ("", "api", "services"):
        (app / package).mkdir(parents=True, exist_ok=True)
        (app / package / "__init__.py").write_text("")
    (app / "services" / "browse.py").write_text(
        "def f(context):\n    with context.db.read() as conn:\n        return conn\n")
    (app / "api" / "system.py").write_text(
        "def g(request):\n    with get_context(request).db.read_log() as conn:\n"
        "        return conn\n")
    assert [(t.module, t.method) for t in layers.door_transactions(app)] == [
        ("app.api.system", "read_log")]


def test_no_cycles_between_packages() -> None:
    found = {tuple(cycle) for cycle in layers.package_cycles()}
    _check(found, ALLOWED_CYCLES, "import cycles between packages")


def test_job_kinds_are_one_table() -> None:
    """The jobs engine learns the kinds from app/services/job_kinds.py only: nothing is
    registered as a side effect of importing a module by name."""
    engine = [i for i in layers.imports() if i.package == "jobs"]
    assert not [i for i in engine if i.target.split(".")[0] == "importlib"]
    from app.jobs import kinds
    from app.services import job_kinds
    assert not hasattr(kinds, "register") and not hasattr(kinds, "job_kind")
    assert sorted(job_kinds.KINDS) == sorted([
        "Archive", "Media", "DicomModalityStore", "OrthancPeerStore", "DicomMoveScu",
        "DicomGetScu", "StorageCommitmentScp", "ResourceModification", "MergeStudy",
        "SplitStudy", "DicomWebStowClient", "DicomWebWadoRetrieveClient",
        "SequenceOfOperations"])
    job_kinds.install()
    assert {name: kinds.get_kind(name).run for name in job_kinds.KINDS} == job_kinds.KINDS


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import app.index.find\n", "app.index.find"),
        ("from app.index import find\n", "app.index.find"),
        ("from app.index.find import compile_query\n", "app.index.find"),
        ("def f():\n    from ..index import find\n", "app.index.find"),
        ("from . import browse\n", "app.services.browse"),
    ],
)
def test_the_graph_sees_every_kind_of_import(tmp_path: Path, source: str, expected: str) -> None:
    """The rules are only as good as the graph: absolute, relative, from-package and
    in-function imports all count."""
    app = tmp_path / "app"
    for package in ("", "index", "services"):
        (app / package).mkdir(parents=True, exist_ok=True)
        (app / package / "__init__.py").write_text("")
    (app / "index" / "find.py").write_text("")
    (app / "services" / "browse.py").write_text("")
    (app / "services" / "find.py").write_text(source)
    found = [i for i in layers.imports(app) if i.module == "app.services.find"]
    assert [i.target for i in found] == [expected]
    # services importing index is downward: allowed.
    assert layers.upward_imports(app) == []


def test_an_upward_import_and_a_cycle_are_caught(tmp_path: Path) -> None:
    app = tmp_path / "app"
    for package in ("", "index", "services"):
        (app / package).mkdir(parents=True, exist_ok=True)
        (app / package / "__init__.py").write_text("")
    (app / "services" / "find.py").write_text("from app.index import repository\n")
    (app / "index" / "repository.py").write_text(
        "def f():\n    from app.services import find\n    import sqlalchemy\n"
    )
    upward = layers.upward_imports(app)
    assert [(i.module, i.target, i.in_function) for i in upward] == [
        ("app.index.repository", "app.services.find", True)
    ]
    assert layers.package_cycles(app) == [["index", "services"]]
    assert layers.library_imports(layers.SQL_LIBRARIES, layers.SQL_PACKAGES, app) == []
    (app / "services" / "browse.py").write_text("from sqlalchemy import select\n")
    assert [i.module for i in layers.library_imports(layers.SQL_LIBRARIES, layers.SQL_PACKAGES, app)] == [
        "app.services.browse"
    ]
