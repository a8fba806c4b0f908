"""The import contract: no import cycle among the modules of ``hiralign/`` and ``app/``.

The rule: module A depends on module B when A's source imports B anywhere — at module
level or inside a function (the project imports heavy libraries lazily, and a lazy import
cycle is still a cycle: neither module can be understood or tested without the other).
Imports under ``if TYPE_CHECKING:`` do not count (they never run). ``from pkg import name``
depends on ``pkg.name`` when that is a module, else on ``pkg``. A package's ``__init__``
is the module ``pkg``; a submodule does not depend on its package implicitly.
"""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("hiralign", "app")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for package in PACKAGES for p in sorted((REPO / package).rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST, module: str, is_package: bool, known: set[str]) -> set[str]:
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            for alias in node.names:
                candidate = f"{prefix}.{alias.name}"
                found.add(candidate if candidate in known else prefix)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {name for name in found if name in known and name != module}


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports (the rule in the module docstring)."""
    modules = _modules()
    known = set(modules)
    return {name: _imports(ast.parse(path.read_text(encoding="utf-8")), name, path.name == "__init__.py", known)
            for name, path in modules.items()}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component with more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = [0]

    def strongconnect(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                strongconnect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            strongconnect(node)
    return sorted(components)


def test_the_checker_finds_a_cycle_through_a_function_level_import() -> None:
    known = {"pkg", "pkg.a", "pkg.b", "pkg.c"}
    a = ast.parse("from pkg import b\n")
    b = ast.parse("def f():\n    from pkg.c import thing\n")
    c = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import b\n"
                  "def g():\n    import pkg.a\n")
    graph = {"pkg.a": _imports(a, "pkg.a", False, known), "pkg.b": _imports(b, "pkg.b", False, known),
             "pkg.c": _imports(c, "pkg.c", False, known)}
    assert graph == {"pkg.a": {"pkg.b"}, "pkg.b": {"pkg.c"}, "pkg.c": {"pkg.a"}}
    assert find_cycles(graph) == [["pkg.a", "pkg.b", "pkg.c"]]
    graph["pkg.c"] = set()
    assert find_cycles(graph) == []


def test_no_import_cycle_in_hiralign_or_app() -> None:
    graph = import_graph()
    assert "hiralign.pipeline" in graph and "app.main_window" in graph
    cycles = find_cycles(graph)
    assert cycles == [], "import cycles (module → imported modules):\n" + "\n".join(
        " ⇄ ".join(cycle) + "\n    " + "\n    ".join(f"{m} → {sorted(graph[m] & set(cycle))}" for m in cycle)
        for cycle in cycles)
