"""The layering the design promises, read from the source: no import circle inside a package,
and store plugins above the core, reaching it only through ``ailib``, ``ailib.errors`` and
``ailib.spi`` (the example plugin included), as a third party does."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {
    "ailib": ROOT / "ailib_core/src",
    "ailib_store_redis": ROOT / "ailib_store_redis/src",
    "ailib_store_sql": ROOT / "ailib_store_sql/src",
    "ailib_store_s3": ROOT / "ailib_store_s3/src",
    "ailib_store_jsonfile": ROOT / "docs/examples/ailib-store-jsonfile/src",
}
#: What a store plugin may import of the core.
PLUGIN_API = frozenset({"ailib", "ailib.errors", "ailib.spi"})


def modules(package: str) -> dict[str, Path]:
    """Module name -> file, for every module of ``package``."""
    src = PACKAGES[package]
    found: dict[str, Path] = {}
    for path in (src / package).rglob("*.py"):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Every statement that runs at some point, outside ``if TYPE_CHECKING:`` blocks (those
    imports are for type checkers only) and including imports inside functions."""
    for node in body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from _statements(node.orelse)
            continue
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.stmt):
                yield from _statements([child])
            elif isinstance(child, ast.ExceptHandler):
                yield from _statements(child.body)


def imported(module: str, path: Path) -> set[str]:
    """The absolute names ``module`` imports at run time (``from a import b`` gives ``a`` and
    ``a.b``)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in _statements(ast.parse(path.read_text(encoding="utf-8")).body):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_no_import_circle_inside_a_package(package: str) -> None:
    found = modules(package)
    graph = {
        # A module importing its own package's __init__ (to reach a sibling) is not a circle.
        name: {m for m in imported(name, path) if m in found and not name.startswith(m + ".")}
        - {name}
        for name, path in found.items()
    }
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_circle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("package", sorted(set(PACKAGES) - {"ailib"}))
def test_store_plugins_reach_the_core_only_through_its_plugin_api(package: str) -> None:
    reached = {
        (name, target)
        for name, path in modules(package).items()
        for target in imported(name, path)
        if target.split(".")[0] == "ailib"
    }
    # ``from ailib.errors import X`` also yields ``ailib.errors.X``; judge by the module.
    outside = sorted(
        (name, target)
        for name, target in reached
        if target not in PLUGIN_API and target.rpartition(".")[0] not in PLUGIN_API
    )
    assert outside == [], "store code imports core internals: " + ", ".join(
        f"{name} -> {target}" for name, target in outside
    )
