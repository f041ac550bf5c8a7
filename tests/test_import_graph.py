"""The zoo's imports run one way: no cycle among its modules, counting imports inside
functions (the usual way to dodge a cycle at import time, which leaves it in the design),
and the serving tools layered on zoo.serving.

Read with ``ast``, nothing imported. Imports under ``if TYPE_CHECKING:`` are left out
(they never run)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "zoo"


def _modules(package: str = PACKAGE) -> dict[str, Path]:
    modules = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST):
    """Every Import/ImportFrom node, at any depth, except under ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def import_graph(package: str = PACKAGE) -> dict[str, dict[str, int]]:
    """``{module: {imported zoo module: line}}``; ``from a import b`` counts as an import
    of ``a.b`` when that is a module, else of ``a``; relative imports resolved."""
    modules = _modules(package)

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, dict[str, int]] = {}
    for module, path in modules.items():
        own_package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        edges: dict[str, int] = {}
        for node in _import_nodes(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [resolve(alias.name) for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    parts = own_package.split(".")
                    base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    targets.append(full if full in modules else resolve(base))
            for target in targets:
                if target is not None and target != module:
                    edges.setdefault(target, node.lineno)
        graph[module] = edges
    return graph


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(start: str) -> None:  # iterative: no recursion limit
        nonlocal counter
        work = [(start, iter(graph[start]))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph[child])))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))

    for module in graph:
        if module not in index:
            visit(module)
    return found


def _describe(graph: dict[str, dict[str, int]], component: list[str]) -> str:
    members = set(component)
    return "; ".join(
        f"{a} imports {b} (line {line})" for a in component for b, line in sorted(graph[a].items()) if b in members
    )


def test_no_import_cycle_among_zoo_modules():
    graph = import_graph()
    assert "zoo.serving" in graph and len(graph) > 30
    found = cycles(graph)
    assert not found, "import cycles among zoo modules:\n" + "\n".join(_describe(graph, c) for c in found)


@pytest.mark.parametrize(
    "module, forbidden",
    [
        ("zoo.serving", {"zoo.predict", "zoo.export", "zoo.litert"}),
        ("zoo.litert", {"zoo.predict", "zoo.export"}),
        ("zoo.predict", {"zoo.export", "zoo.litert"}),
    ],
)
def test_serving_tools_import_one_way(module, forbidden):
    """zoo.serving knows how a model is fed and read; the tools use it, not each other
    (zoo.export's command line writes LiteRT files too, so it may import zoo.litert)."""
    imported = set(import_graph()[module])
    assert not imported & forbidden, f"{module} imports {sorted(imported & forbidden)}"


def test_the_check_sees_function_level_imports_and_skips_type_checking(tmp_path, monkeypatch):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg import b\n")
    (package / "b.py").write_text("def f():\n    from .a import x\n")
    (package / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import a\n")
    monkeypatch.setattr(__import__(__name__, fromlist=["ROOT"]), "ROOT", tmp_path)
    graph = import_graph("pkg")
    assert graph["pkg.b"] == {"pkg.a": 2} and graph["pkg.c"] == {}
    assert cycles(graph) == [["pkg.a", "pkg.b"]]
