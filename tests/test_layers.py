"""The layer rules of docs/architecture.md, checked on every import of every module.

Each module's imports are read from its syntax tree: at the top of the file and inside
functions alike (an import hidden in a function is still a dependency). An import of the
project breaks the rules when its package is not one the importing package may use, or when it
is one of the narrower rules below (only ``collectors/runner.py`` writes to the store, only
``dashboard/data.py`` reads it, ``pipeline/`` reaches ``store/`` through ``store.ledger`` only,
``devkit/`` is reached lazily from two CLI modules only). The package graph must have no cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUNTIME = ("pipepulse", "store", "insights", "pipeline", "collectors", "alerts", "jobs", "cli", "dashboard")
PROJECT = (*RUNTIME, "devkit", "bench", "tests", "deploy")

# package -> the project packages its modules may import (besides its own)
MAY_IMPORT: dict[str, set[str]] = {
    "pipepulse": set(),
    "store": {"pipepulse"},
    "insights": {"pipepulse"},
    "pipeline": {"pipepulse", "store"},  # store.ledger only (below)
    "collectors": {"pipepulse", "store"},  # runner.py, and store.ledger (below)
    "alerts": {"pipepulse", "store", "insights"},
    "jobs": {"pipepulse", "store", "insights", "collectors", "alerts"},
    "cli": {"pipepulse", "store", "insights", "pipeline", "collectors", "alerts", "jobs", "devkit"},
    "dashboard": {"pipepulse", "store", "insights"},  # store and insights in data.py only (below)
    "devkit": set(PROJECT) - {"tests", "bench"},
    "deploy": {"pipepulse", "pipeline"},
}
# modules outside devkit that may import it, and only inside a function
DEVKIT_DOORS = {"cli/awsenv.py", "cli/commands/demo.py"}
# third-party packages that only development installs have (requirements-dev.txt)
DEV_ONLY = {"moto", "werkzeug", "flask", "responses", "pytest", "playwright", "aiosmtpd"}


def _modules() -> list[Path]:
    return sorted(p for pkg in PROJECT for p in (ROOT / pkg).rglob("*.py") if "__pycache__" not in p.parts)


def imports_of(path: Path) -> list[tuple[str, int, bool]]:
    """(imported module, line, inside a function) for every absolute import in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[str, int, bool]] = []

    def visit(node: ast.AST, nested: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = nested or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            if isinstance(child, ast.Import):
                found.extend((a.name, child.lineno, nested) for a in child.names)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                # ``from store import costs`` imports the module store.costs
                found.extend((f"{child.module}.{a.name}", child.lineno, nested) for a in child.names)
            visit(child, inner)

    visit(tree, False)
    return found


def violations(path: Path, root: Path = ROOT) -> list[str]:
    """What in ``path`` (a module under ``root``) breaks the layer rules, one line each."""
    rel = path.relative_to(root).as_posix()
    package = rel.split("/")[0]
    if package in ("tests", "bench"):
        return []
    out = []
    for name, line, nested in imports_of(path):
        target = name.split(".")[0]
        where = f"{rel}:{line} imports {name}"
        if target in DEV_ONLY and package in RUNTIME:
            out.append(f"{where}: {target} is development-only (requirements-dev.txt); the runtime image lacks it")
        if target not in PROJECT or target == package:
            continue
        if target not in MAY_IMPORT[package]:
            out.append(f"{where}: {package}/ may import only {sorted(MAY_IMPORT[package]) or 'nothing of the project'}")
        elif target == "devkit" and package != "devkit" and (rel not in DEVKIT_DOORS or not nested):
            out.append(f"{where}: only {sorted(DEVKIT_DOORS)} may reach devkit/, inside a function")
        elif target == "store" and package == "pipeline" and not name.startswith("store.ledger"):
            out.append(f"{where}: pipeline/ reaches store/ through store.ledger only")
        elif target == "store" and package == "collectors" and rel != "collectors/runner.py" and not name.startswith("store.ledger"):
            out.append(f"{where}: only collectors/runner.py writes to the store; a collector returns a Batch")
        elif target in ("store", "insights") and package == "dashboard" and rel != "dashboard/data.py":
            out.append(f"{where}: pages read through dashboard/data.py only")
    return out


def package_graph() -> dict[str, set[str]]:
    """Package -> the project packages it imports (runtime packages and devkit)."""
    graph: dict[str, set[str]] = {}
    for path in _modules():
        package = path.relative_to(ROOT).parts[0]
        if package in ("tests", "bench", "deploy"):
            continue
        for name, _, _ in imports_of(path):
            target = name.split(".")[0]
            if target in PROJECT and target != package:
                graph.setdefault(package, set()).add(target)
    return graph


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (found := walk(nxt)):
                return found
        state[node] = 2
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := walk(node)):
            return found
    return None


def test_every_import_keeps_to_the_layers():
    modules = _modules()
    assert len(modules) > 150, "the scan found too few modules"
    broken = [v for path in modules for v in violations(path)]
    assert broken == [], "\n".join(broken)


def test_the_package_graph_has_no_cycle():
    graph = package_graph()
    assert graph["jobs"] >= {"collectors", "alerts"}  # the scan sees real edges
    assert cycle(graph) is None, f"import cycle: {' -> '.join(cycle(graph) or [])}"
    # devkit is a leaf of the runtime: reached only through the two lazy CLI doors
    assert {p for p, targets in graph.items() if "devkit" in targets} <= {"cli", "devkit"}


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        ("store/x.py", "def f():\n    from jobs import detect\n", "store/ may import only ['pipepulse']"),
        ("collectors/x.py", "def collect(ctx):\n    from store.costs import replace_cost_rows\n",
         "only collectors/runner.py writes to the store"),
        ("pipeline/x.py", "import store.db\n", "pipeline/ reaches store/ through store.ledger only"),
        ("dashboard/views/x.py", "from store.schema import runs\n", "pages read through dashboard/data.py only"),
        ("cli/commands/demo.py", "from devkit import demo\n", "inside a function"),
        ("jobs/x.py", "import moto\n", "moto is development-only"),
        ("pipepulse/x.py", "from store import db\n", "pipepulse/ may import only nothing of the project"),
    ],
)
def test_the_check_catches_a_bad_import(tmp_path, module, source, expected):
    path = tmp_path / module
    path.parent.mkdir(parents=True)
    path.write_text(source)
    found = violations(path, root=tmp_path)
    assert len(found) == 1 and expected in found[0], found


def test_the_cycle_check_finds_a_cycle():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": set()}) is None

