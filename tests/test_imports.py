"""The package's structure: no import cycles between lrbench's packages, no private names
imported across them, and the entry points that must start without JAX or TensorFlow."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "lrbench"


def _package(module: str) -> str:
    """lrbench.train.run -> lrbench.train; lrbench.runs -> lrbench.runs."""
    return ".".join(module.split(".")[:2])


def _imports() -> list[tuple[str, str, list[str]]]:
    """(importing module, imported module, names) for every lrbench import, type-only ones
    included (a cycle hidden behind TYPE_CHECKING or a function is still a cycle)."""
    found = []
    for path in ROOT.rglob("*.py"):
        module = ".".join(path.relative_to(ROOT.parent).with_suffix("").parts)
        module = module.removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("lrbench"):
                found.append((module, node.module, [a.name for a in node.names]))
            elif isinstance(node, ast.Import):
                found += [(module, a.name, []) for a in node.names if a.name.startswith("lrbench")]
    return found


def test_no_import_cycle_between_packages():
    graph = defaultdict(set)
    for importer, imported, _ in _imports():
        if _package(importer) != _package(imported):
            graph[_package(importer)].add(_package(imported))

    def cycle_from(start):
        stack = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in graph[node]:
                if nxt == start:
                    return [*path, start]
                if nxt not in path:
                    stack.append((nxt, [*path, nxt]))
        return None

    cycles = [c for c in map(cycle_from, list(graph)) if c]
    assert not cycles, cycles


def test_no_private_name_imported_across_packages():
    private = [
        (importer, imported, name)
        for importer, imported, names in _imports()
        for name in names
        if name.startswith("_") and _package(importer) != _package(imported)
    ]
    assert not private


@pytest.mark.parametrize(
    ("module", "absent"),
    [
        ("lrbench.lr_find.app", ("jax", "tensorflow", "matplotlib")),
        ("lrbench.train_app", ("jax", "tensorflow")),
        ("lrbench.config", ("jax", "tensorflow")),
        ("lrbench.cli", ("jax", "tensorflow", "pandas")),
    ],
)
def test_entry_points_load_without_the_heavy_imports(module, absent):
    code = f"import sys, {module}; print([m for m in {absent!r} if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
