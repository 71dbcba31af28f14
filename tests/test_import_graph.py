"""The project's import graph has no cycles: each module can be read after those it imports.

Every import counts, at module level or inside a function (a lazy import hides a cycle from
the interpreter, not from a reader), except those under `if TYPE_CHECKING:`, which never run.
`from package import name` is an arrow to the submodule `package.name` when there is one,
else to the package's `__init__`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("benchmark", "analysis")


def module_files(root: Path = ROOT) -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def _runtime_nodes(tree: ast.AST):
    """Every node, skipping the bodies of `if TYPE_CHECKING:`."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from (n for child in node.orelse for n in [child, *_all(child)])
            continue
        yield node
        yield from _runtime_nodes(node)


def _all(node: ast.AST):
    return list(_runtime_nodes(node))


def imports_of(name: str, source: str, modules: set[str], is_package: bool) -> set[str]:
    """The project modules that module `name` imports."""
    found = set()
    package = name if is_package else name.rpartition(".")[0]
    for node in _runtime_nodes(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                for alias in node.names
            ]
        else:
            continue
        found.update(t for t in targets if t in modules and t != name)
    return found


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    files = module_files(root)
    names = set(files)
    return {
        name: imports_of(name, path.read_text(), names, path.name == "__init__.py")
        for name, path in files.items()
    }


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_project_has_no_import_cycles():
    graph = import_graph()
    assert len(graph) > 50  # the scan found the project
    assert cycles(graph) == []


def test_a_cycle_is_found(tmp_path):
    """The scan can fail: two modules importing each other, one lazily, are a cycle."""
    package = tmp_path / "benchmark"
    package.mkdir()
    (tmp_path / "analysis").mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from benchmark import b\n")
    (package / "b.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from benchmark import c\n"
        "def f():\n    from benchmark.a import g\n"
    )
    (package / "c.py").write_text("import benchmark.b\n")
    graph = import_graph(tmp_path)
    assert graph["benchmark.b"] == {"benchmark.a"}  # the TYPE_CHECKING import does not count
    assert cycles(graph) == [["benchmark.a", "benchmark.b"]]


@pytest.mark.parametrize("package", PACKAGES)
def test_every_module_of_a_package_is_scanned(package):
    files = module_files()
    on_disk = {p for p in (ROOT / package).rglob("*.py")}
    assert set(p for p in files.values() if p.is_relative_to(ROOT / package)) == on_disk


# The rooms, lowest first: a module imports from its own room or a lower one, never upward.
# `base` is what every layer needs (records, registries, files, the option declarations); the
# analysis reads only `base` (it never imports torch), and the command line builds reports
# with it; `science` holds the losses, networks, data and trial configuration; then
# evaluation, training, sweeps, the tools (speed benchmarks, the GPU check) and the command
# line. `benchmark/__main__.py` is the entry point, above all.
BASE = {"errors", "registry", "files", "interrupt", "progress", "options", "results"}
BASE |= {"data_kinds", "best_setting", "images"}
ROOMS = ("base", "analysis", "science", "evaluation", "training", "sweep", "tools", "cli", "entry")


def room(module: str) -> str:
    parts = module.split(".")
    if parts[0] == "analysis":
        return "analysis"
    if len(parts) == 1 or parts[1] in BASE:
        return "base"
    if parts[1] == "__main__":
        return "entry"
    if parts[1] in ("perf", "gpu_check"):
        return "tools"
    return parts[1] if parts[1] in ROOMS else "science"


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    found = []
    for module, imported in graph.items():
        for other in imported:
            if room(module) == "analysis":
                bad = room(other) not in ("analysis", "base")
            else:
                bad = ROOMS.index(room(other)) > ROOMS.index(room(module))
            if bad:
                found.append(f"{module} -> {other}")
    return sorted(found)


def test_no_module_imports_from_a_higher_room():
    assert upward_imports(import_graph()) == []
    assert room("benchmark.training.loop") == "training" and room("benchmark.config") == "science"
    assert upward_imports({"benchmark.config": {"benchmark.evaluation.extractors"}}) == [
        "benchmark.config -> benchmark.evaluation.extractors"
    ]
