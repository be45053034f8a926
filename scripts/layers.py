"""The import graph of app/, drawn from the source, and Pharos' layer rules.

Every ``import`` / ``from ... import`` in every module of ``app/`` counts, including the
ones inside functions and under ``if TYPE_CHECKING`` (an import hidden in a function is
still a dependency; hiding it only dodges the cycle at import time).

A module belongs to a *package*: the first directory under ``app/`` (``app/services/find.py``
is ``services``), or its own name for a top-level module (``app/config.py`` is ``config``).
Each package sits on a layer (``LAYERS``); a package may import packages of its own layer
or of layers below, never above. tests/unit/test_architecture.py enforces the rules.

    python scripts/layers.py            # package graph: "a -> b (n imports)", one a line
    python scripts/layers.py --violations
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "app"

# Layers, bottom first. A package may import its own layer and the ones below.
LAYERS: list[tuple[str, list[str]]] = [
    # What everything may use: settings, the error hierarchy, clocks, input checks.
    ("foundation", ["app", "errors", "timeutil", "validation"]),
    # DICOM as data (pure functions), the blob store, and the index (the only SQL).
    ("storage", ["dicom", "blobstore", "index"]),
    # Reading Orthanc's configuration needs the DICOM vocabulary (transfer syntaxes,
    # character sets), so the settings sit just above app/dicom; nothing below reads them.
    ("settings", ["config"]),
    # ServerContext (settings + index + blob store + limits) and the blob deletion queue.
    ("context", ["context"]),
    # Wire formats and protocol clients: DIMSE SCU, HTTP clients of peers and DICOMweb
    # servers, the multipart codec. No use cases.
    ("protocols", ["protocols"]),
    # The job queue and workers; knows no job kind.
    ("jobs", ["jobs"]),
    # The use cases every door shares; the job kinds' table.
    ("services", ["services"]),
    # Doors: HTTP (FastAPI), DIMSE SCP, Lua/Python scripting, the viewer's configuration.
    ("doors", ["api", "dimse", "scripting", "viewer"]),
    # The process: the ASGI app, the command line, the importer, start-up checks.
    ("main", ["main", "cli", "importer", "startup"]),
]

LAYER_OF: dict[str, int] = {
    package: rank for rank, (_, packages) in enumerate(LAYERS) for package in packages
}

# Third-party libraries only one place may import.
SQL_LIBRARIES = ("sqlalchemy", "alembic")
SQL_PACKAGES = ("index",)
WEB_LIBRARIES = ("fastapi", "starlette")
WEB_PACKAGES = ("api", "main")


@dataclass(frozen=True)
class Import:
    module: str  # importing module, dotted (app.services.find)
    target: str  # imported module, dotted (app.index.find, sqlalchemy.exc)
    line: int
    in_function: bool

    @property
    def package(self) -> str:
        return package_of(self.module)

    @property
    def target_package(self) -> str:
        return package_of(self.target)


def package_of(module: str) -> str:
    parts = module.split(".")
    if parts[0] != "app":
        return parts[0]
    return parts[1] if len(parts) > 1 else "app"


def modules(app: Path = APP) -> Iterator[tuple[str, Path]]:
    for path in sorted(app.rglob("*.py")):
        relative = path.relative_to(app.parent).with_suffix("")
        parts = list(relative.parts)
        if parts[-1] == "__init__":
            parts.pop()
        yield ".".join(parts), path


def _resolve(module: str, is_package: bool, level: int, name: str | None) -> str:
    """The absolute name of ``from {'.' * level}{name} import ...`` in *module*."""
    if level == 0:
        return name or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


class _Collector(ast.NodeVisitor):
    def __init__(self, module: str, is_package: bool, known: set[str]) -> None:
        self.module = module
        self.is_package = is_package
        self.known = known
        self.depth = 0
        self.found: list[Import] = []

    def _function(self, node: ast.AST) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = _function
    visit_AsyncFunctionDef = _function
    visit_Lambda = _function

    def _add(self, target: str, line: int) -> None:
        found = Import(self.module, target, line, self.depth > 0)
        if found not in self.found:  # `from x import a, b`: one import of x
            self.found.append(found)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node.lineno)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = _resolve(self.module, self.is_package, node.level, node.module)
        for alias in node.names:
            # `from app.services import find` imports the module app.services.find.
            candidate = f"{base}.{alias.name}"
            self._add(candidate if candidate in self.known else base, node.lineno)


def imports(app: Path = APP) -> list[Import]:
    found = list(modules(app))
    known = {name for name, _ in found}
    result: list[Import] = []
    for name, path in found:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        collector = _Collector(name, path.name == "__init__.py", known)
        collector.visit(tree)
        result.extend(collector.found)
    return result


def project_imports(app: Path = APP) -> list[Import]:
    return [i for i in imports(app) if i.target == "app" or i.target.startswith("app.")]


def package_graph(app: Path = APP) -> dict[tuple[str, str], int]:
    """(importer package, imported package) -> number of import statements."""
    graph: dict[tuple[str, str], int] = defaultdict(int)
    for i in project_imports(app):
        if i.package != i.target_package:
            graph[(i.package, i.target_package)] += 1
    return dict(graph)


def upward_imports(app: Path = APP) -> list[Import]:
    """Imports of a package on a higher layer than the importer's."""
    return [
        i
        for i in project_imports(app)
        if LAYER_OF.get(i.target_package, -1) > LAYER_OF.get(i.package, len(LAYERS))
    ]


# Doors reach the index through the services (which open the transactions and answer
# plain values), never by importing app/index themselves.
DOORS = ("api", "dimse", "scripting", "viewer")


def door_index_imports(app: Path = APP) -> list[Import]:
    return [i for i in project_imports(app) if i.package in DOORS and i.target_package == "index"]


# The transactions of the index (app.index.db.Database): the services open them, so that
# one use case is one snapshot (or one atomic write) whatever door calls it.
TRANSACTION_METHODS = ("read", "read_log", "write", "write_retrying", "write_grouped")


@dataclass(frozen=True)
class Transaction:
    module: str
    line: int
    method: str


def door_transactions(app: Path = APP) -> list[Transaction]:
    """Calls ``<anything>.db.<read|write...>(...)`` in a door: a transaction a door opens."""
    found: list[Transaction] = []
    for name, path in modules(app):
        if package_of(name) not in DOORS:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr in TRANSACTION_METHODS \
                    and isinstance(node.func.value, ast.Attribute) and node.func.value.attr == "db":
                found.append(Transaction(name, node.lineno, node.func.attr))
    return found


def library_imports(libraries: tuple[str, ...], allowed: tuple[str, ...], app: Path = APP) -> list[Import]:
    return [
        i
        for i in imports(app)
        if i.target.split(".")[0] in libraries and i.package not in allowed
    ]


def package_cycles(app: Path = APP) -> list[list[str]]:
    """Strongly connected components of the package graph with more than one package."""
    edges: dict[str, set[str]] = defaultdict(set)
    for a, b in package_graph(app):
        edges[a].add(b)
    nodes = sorted(set(edges) | {b for targets in edges.values() for b in targets})
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan; the graph has a dozen nodes
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in nodes:
        if node not in index:
            visit(node)
    return sorted(components)


def format_graph(app: Path = APP) -> str:
    graph = package_graph(app)
    lines = []
    for rank, (layer, packages) in enumerate(LAYERS):
        for package in packages:
            targets = sorted(
                ((b, n) for (a, b), n in graph.items() if a == package),
                key=lambda item: (LAYER_OF.get(item[0], 99), item[0]),
            )
            if not targets and not (app / f"{package}.py").exists() \
                    and not (app / package).is_dir():
                continue
            shown = ", ".join(
                f"{b}{'' if LAYER_OF.get(b, 99) <= rank else ' [UP]'} ({n})" for b, n in targets
            )
            lines.append(f"{layer:>10} | {package:<10} -> {shown or '(nothing)'}")
    for title, libraries in (("SQLAlchemy", SQL_LIBRARIES), ("FastAPI/Starlette", WEB_LIBRARIES)):
        users: dict[str, set[str]] = defaultdict(set)
        for i in library_imports(libraries, (), app):
            users[i.package].add(i.module)
        shown = ", ".join(f"{p} ({len(m)})" for p, m in sorted(users.items()))
        lines.append(f"{title} imported by (modules): {shown}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--violations", action="store_true", help="list the broken rules")
    parser.add_argument("--app", type=Path, default=APP,
                        help="the app/ folder to read (e.g. of an older checkout)")
    args = parser.parse_args(argv)
    app = args.app
    if not args.violations:
        print(format_graph(app))
        cycles = package_cycles(app)
        print("cycles:", "; ".join(" <-> ".join(c) for c in cycles) if cycles else "none")
        hidden = [i for i in project_imports(app) if i.in_function and i.package != i.target_package]
        print(f"imports of another package inside functions: {len(hidden)}")
        return 0
    for i in upward_imports(app):
        print(f"upward  {i.module}:{i.line} -> {i.target}{' (in function)' if i.in_function else ''}")
    for i in library_imports(SQL_LIBRARIES, SQL_PACKAGES, app):
        print(f"sql     {i.module}:{i.line} -> {i.target}")
    for i in library_imports(WEB_LIBRARIES, WEB_PACKAGES, app):
        print(f"web     {i.module}:{i.line} -> {i.target}")
    for i in door_index_imports(app):
        print(f"door    {i.module}:{i.line} -> {i.target}")
    for t in door_transactions(app):
        print(f"txn     {t.module}:{t.line} opens db.{t.method}()")
    for cycle in package_cycles(app):
        print("cycle   " + " <-> ".join(cycle))
    return 0


if __name__ == "__main__":
    sys.exit(main())
