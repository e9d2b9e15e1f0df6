"""The package's imports: no cycles, io apart from the engine, one ground floor.

Read from the source (every ``import`` statement, those inside functions included),
so a lazy import cannot hide a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "workflow" / "ultrabones"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """Return the package modules that ``path`` imports."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in modules else target)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m in modules and m != name}


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    paths = {_module_name(p): p for p in ROOT.rglob("*.py")}
    return {name: _imports(path, set(paths)) for name, path in paths.items()}


def _cycle_from(start: str, graph: dict[str, set[str]]) -> list[str] | None:
    """Return one import path from ``start`` back to itself, or None."""
    stack, seen = [(start, [start])], set()
    while stack:
        node, path = stack.pop()
        for dep in sorted(graph[node]):
            if dep == start:
                return [*path, dep]
            if dep not in seen:
                seen.add(dep)
                stack.append((dep, [*path, dep]))
    return None


def test_the_graph_sees_known_edges(graph):
    # guards the parser: were it to find nothing, the checks below would pass vacuously
    assert "ultrabones.vocabulary" in graph["ultrabones.store"]
    assert "ultrabones.io.model" in graph["ultrabones.engine.model"]  # a lazy import


def test_no_import_cycle(graph):
    cycles = [c for m in sorted(graph) if (c := _cycle_from(m, graph))]
    assert not cycles, " -> ".join(cycles[0])


def test_io_does_not_import_the_engine(graph):
    wrong = {
        m: sorted(d for d in deps if d.startswith("ultrabones.engine"))
        for m, deps in graph.items()
        if m.startswith("ultrabones.io")
    }
    assert not {m: d for m, d in wrong.items() if d}


def test_the_vocabulary_imports_nothing_of_the_package(graph):
    assert graph["ultrabones.vocabulary"] == set()


def test_the_layout_stands_alone():
    # the rules load layout.py by its path, without the package or its dependencies
    tree = ast.parse((ROOT / "layout.py").read_text())
    imported = {
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert imported <= {"__future__", "pathlib"}, imported
