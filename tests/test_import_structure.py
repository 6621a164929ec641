"""The package's imports point one way: chapters -> figures -> core, with no cycles.

Read from the source with ``ast`` (nothing is imported): every ``import`` and
``from ... import`` of ``code/optbook``, at module level or inside a function
(a lazy import is still an arrow), except under ``if TYPE_CHECKING:``.

* no cycle between modules (a cycle is reported as the path that closes it);
* ``optbook.experiments`` (the chapters' experiments and their figures) is
  imported by nothing outside it;
* ``optbook.figures`` (the figure kinds, the spec, the style) is imported by
  nothing outside it except ``optbook.experiments``: the core never draws.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "code"
PACKAGE = "optbook"


def module_names(root: Path = ROOT) -> dict[str, Path]:
    """``{dotted module name: file}`` of every module of the package (``pkg`` for ``pkg/__init__.py``)."""
    names = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return skip


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> dict[str, int]:
    """``{imported optbook module: line}`` for one module (the first line that imports it)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    skip = _type_checking_nodes(tree)
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    found: dict[str, int] = {}

    def add(target: str, line: int):
        # the longest prefix that is a module of the package (a.b.c -> a.b if c is a name)
        while target and target not in modules:
            target = target.rpartition(".")[0]
        if target and target != name:
            found.setdefault(target, line)

    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == PACKAGE or alias.name.startswith(PACKAGE + "."):
                    add(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                if node.level > 1:
                    base = base[:len(base) - (node.level - 1)]
                base = ".".join(base + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if not (base == PACKAGE or base.startswith(PACKAGE + ".")):
                continue
            for alias in node.names:     # `from pkg import submodule` imports the submodule
                sub = f"{base}.{alias.name}"
                add(sub if sub in modules else base, node.lineno)
    return found


def import_graph(root: Path = ROOT) -> dict[str, dict[str, int]]:
    """``{module: {imported module: line}}`` over the whole package."""
    modules = module_names(root)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def find_cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """One closing path per strongly connected component with a cycle (Tarjan)."""
    index, low, stack, on_stack, sccs = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    cycles = []
    for comp in sccs:       # a shortest path from the component's first module back to it
        start, members = comp[0], set(comp)
        paths, seen, frontier = {start: [start]}, {start}, [start]
        closed = None
        while frontier and closed is None:
            nxt = []
            for v in frontier:
                for w in sorted(graph[v]):
                    if w == start:
                        closed = paths[v] + [start]
                        break
                    if w in members and w not in seen:
                        seen.add(w)
                        paths[w] = paths[v] + [w]
                        nxt.append(w)
                if closed:
                    break
            frontier = nxt
        cycles.append(closed)
    return cycles


def _describe(path: list[str], graph) -> str:
    return " -> ".join(f"{a} (line {graph[a][b]})" for a, b in zip(path, path[1:])) + f" -> {path[-1]}"


def _inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_the_graph_sees_the_package():
    """The parser finds the imports it must (so the checks below are not vacuous)."""
    graph = import_graph()
    assert len(graph) > 40
    assert "optbook.figures.explorer" in graph["optbook.figures.paths"]
    assert "optbook.figures.spec" in graph["optbook.figures.paths"]
    assert "optbook.figures" in graph["optbook.experiments.momentum"]
    assert "optbook.base" in graph["optbook.optimizers"]


def test_no_import_cycles():
    graph = import_graph()
    cycles = find_cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(_describe(c, graph) for c in cycles)


def test_nothing_outside_experiments_imports_experiments():
    graph = import_graph()
    bad = [f"{m} line {line} imports {t}" for m, targets in graph.items()
           if not _inside(m, "optbook.experiments")
           for t, line in targets.items() if _inside(t, "optbook.experiments")]
    assert not bad, "arrows must run experiments -> figures -> core:\n" + "\n".join(bad)


def test_the_core_does_not_import_figures():
    graph = import_graph()
    bad = [f"{m} line {line} imports {t}" for m, targets in graph.items()
           if not (_inside(m, "optbook.figures") or _inside(m, "optbook.experiments"))
           for t, line in targets.items() if _inside(t, "optbook.figures")]
    assert not bad, "the core must not import the figures:\n" + "\n".join(bad)


@pytest.mark.parametrize("edges, expected", [
    ({"a": {"b": 1}, "b": {"c": 2}, "c": {}}, []),
    ({"a": {"b": 1}, "b": {"c": 2}, "c": {"a": 3}}, [["a", "b", "c", "a"]]),
    ({"a": {"b": 1}, "b": {"a": 2}, "c": {"c": 1}, "d": {}}, [["a", "b", "a"]]),
])
def test_find_cycles_on_known_graphs(edges, expected):
    assert find_cycles(edges) == expected


def test_relative_imports_resolve(tmp_path):
    pkg = tmp_path / PACKAGE
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from . import core\n")
    (pkg / "core.py").write_text("import numpy\n")
    (pkg / "sub" / "__init__.py").write_text("from .leaf import f\n")
    (pkg / "sub" / "leaf.py").write_text(
        "from typing import TYPE_CHECKING\nfrom ..core import x\nfrom .. import sub\n"
        "def f():\n    from optbook.core import y\n"
        "if TYPE_CHECKING:\n    from optbook import sub\n")
    graph = import_graph(tmp_path)
    assert graph == {"optbook": {"optbook.core": 1}, "optbook.core": {},
                     "optbook.sub": {"optbook.sub.leaf": 1},
                     "optbook.sub.leaf": {"optbook.core": 2, "optbook.sub": 3}}
    assert find_cycles(graph) == [["optbook.sub", "optbook.sub.leaf", "optbook.sub"]]
