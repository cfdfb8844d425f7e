"""The package's import graph has no circle (issue 15), and no two packages import each other
(issue 23, "honest layers"): every layer can be read and tested alone.

The graph is read from the source with `ast`, not by importing: an edge is any `import` of an
airpods module, at module level or deferred inside a function (a deferred import is still a
dependency: it only moves the cost). Imports under `if TYPE_CHECKING:` are left out: they never
run. `from airpods.x import y` is an edge to `airpods.x.y` when that is a module, else to
`airpods.x`. A package's parent `__init__` is not counted as a dependency of its submodules.
"""

from __future__ import annotations

import ast
from pathlib import Path

import airpods

ROOT = Path(airpods.__file__).parent


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _owner(name: str, modules: dict[str, Path]) -> str | None:
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _targets(
    node: ast.Import | ast.ImportFrom, package: str, modules: dict[str, Path]
) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
        base = ".".join([*anchor, *([base] if base else [])])
    return [
        f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
        for alias in node.names
    ]


def import_lines() -> dict[str, dict[str, list[int]]]:
    """module -> {airpods module it imports -> the lines that import it}."""
    modules = _modules()
    found: dict[str, dict[str, list[int]]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps: dict[str, list[int]] = {}
        for node in _imports(ast.parse(path.read_text(), str(path))):
            for target in _targets(node, package, modules):
                if target == "airpods" or target.startswith("airpods."):
                    owner = _owner(target, modules)
                    if owner and owner != name and node.lineno not in deps.get(owner, []):
                        deps.setdefault(owner, []).append(node.lineno)
        found[name] = deps
    return found


def import_graph() -> dict[str, set[str]]:
    return {name: set(deps) for name, deps in import_lines().items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for dep in sorted(graph.get(node, ())):
            if dep not in index:
                connect(dep)
                low[node] = min(low[node], low[dep])
            elif dep in on_stack:
                low[node] = min(low[node], index[dep])
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

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def test_the_package_has_no_import_circle() -> None:
    graph = import_graph()
    found = circles(graph)
    detail = [
        " ; ".join(f"{m} -> {', '.join(sorted(graph[m] & set(c)))}" for m in c) for c in found
    ]
    assert found == [], "import circles:\n" + "\n".join(detail)


def test_the_checker_sees_a_circle_and_deferred_imports(tmp_path: Path) -> None:
    """The test above can fail: a deferred import closing a loop is found."""
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from airpods import cache\n"
        "def f():\n    from airpods.resolved import Resolved\n"
    )
    names = [
        node.module for node in _imports(tree) if isinstance(node, ast.ImportFrom)
    ]
    assert names == ["typing", "airpods.resolved"]  # TYPE_CHECKING-only imports are left out
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_the_schema_sits_below_the_kinds() -> None:
    graph = import_graph()
    schema = graph["airpods.config.schema"]
    assert not {d for d in schema if d.startswith("airpods.kinds")}, schema


def test_kind_keys_are_the_kinds_own_not_the_shared_schemas() -> None:
    """The router's and the gateway's tables come from their kinds (`OwnsKeys.config_tables`): the
    shared ServiceConfig has none of them, the model the loader validates with has them all."""
    from airpods.config.kind_checks import config_model
    from airpods.config.schema import ServiceConfig

    kinds_keys = {"router", "models", "remotes", "fallbacks", "clients"}
    assert not kinds_keys & set(ServiceConfig.model_fields)
    loaded = config_model().model_fields["services"].annotation
    service_model = loaded.__args__[1]  # dict[ServiceName, <ServiceConfig with kind keys>]
    assert kinds_keys <= set(service_model.model_fields)


# --- packages: two never import each other -------------------------------------------------------

def unit(module: str) -> str:
    """The package a module belongs to: `airpods.config.loader` -> "config"; a top-level module
    (`airpods.host`) is a package of its own, `airpods` itself is "airpods"."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def package_edges(
    lines: dict[str, dict[str, list[int]]],
) -> dict[tuple[str, str], list[str]]:
    """(package, package it imports) -> "module:line -> module" for each import behind it."""
    edges: dict[tuple[str, str], list[str]] = {}
    for module, deps in sorted(lines.items()):
        for dep, at in sorted(deps.items()):
            if unit(module) != unit(dep):
                edges.setdefault((unit(module), unit(dep)), []).extend(
                    f"{module}:{line} -> {dep}" for line in at)
    return edges


def two_way_pairs(edges: dict[tuple[str, str], list[str]]) -> dict[tuple[str, str], list[str]]:
    """Each pair of packages that import each other (sorted), with the imports both ways."""
    return {
        (a, b): edges[(a, b)] + edges[(b, a)]
        for a, b in sorted(edges) if a < b and (b, a) in edges
    }


def test_no_two_packages_import_each_other() -> None:
    pairs = two_way_pairs(package_edges(import_lines()))
    detail = "\n".join(
        f"{a} <-> {b}:\n    " + "\n    ".join(why) for (a, b), why in pairs.items())
    print(f"{len(pairs)} two-way pairs of packages\n{detail}")  # pytest -s shows them
    assert pairs == {}, f"two-way pairs of packages:\n{detail}"


def test_the_packages_import_in_one_direction() -> None:
    """No longer loop either (config -> kinds -> render -> config): the packages form layers."""
    edges = package_edges(import_lines())
    graph: dict[str, set[str]] = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
    found = circles(graph)
    detail = "\n".join(f"{a} -> {b}: {edges[(a, b)][0]}" for c in found for a in c
                       for b in sorted(graph[a] & set(c)))
    assert found == [], f"circles of packages:\n{detail}"


def test_the_pair_checker_sees_a_deferred_import_back() -> None:
    """The test above can fail: one import inside a function closing a loop makes a pair."""
    lines = {
        "airpods.config.loader": {"airpods.kinds.base": [3]},
        "airpods.kinds.base": {"airpods.record": [1]},
        "airpods.kinds.gateway": {"airpods.config.schema": [40], "airpods.kinds.base": [2]},
        "airpods.host": {},
    }
    assert two_way_pairs(package_edges(lines)) == {("config", "kinds"): [
        "airpods.config.loader:3 -> airpods.kinds.base",
        "airpods.kinds.gateway:40 -> airpods.config.schema",
    ]}
    del lines["airpods.kinds.gateway"]
    assert two_way_pairs(package_edges(lines)) == {}


def test_no_two_test_modules_share_a_name() -> None:
    """pytest imports tests/unit and tests/integration modules by basename (no __init__.py
    there): two files of one name stop the whole run at collection."""
    root = Path(__file__).resolve().parents[1]
    names = [p.name for p in root.glob("*/test_*.py")]
    assert sorted({n for n in names if names.count(n) > 1}) == []
