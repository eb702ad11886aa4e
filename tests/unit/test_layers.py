"""Who may import whom: the edge (`api`) and the shared adapters (`marketdata`, `readmodel`)
never import the applications beside them (`streams`, `projections`); the API process's
composition root (`oee.api_bootstrap`) is the one place that joins them."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {
    "api": {"streams", "projections"},
    "marketdata": {"streams", "projections", "api"},
    "readmodel": {"streams", "projections", "api"},
}


def imported(path: Path) -> set[str]:
    """Every module a file imports, at any depth of its code (late imports included)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_package_does_not_import_its_neighbours(package: str) -> None:
    offending = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in (ROOT / package).rglob("*.py")
        for name in imported(path)
        if name.split(".")[0] in FORBIDDEN[package]
    }
    assert not offending


def test_loading_the_whole_edge_loads_neither_workers_nor_projector() -> None:
    modules = sorted(
        ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for path in (ROOT / "api").rglob("*.py") if path.name != "__init__.py"
    )
    script = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('streams', 'projections')))"
    )
    loaded = subprocess.run([sys.executable, "-c", script], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout.strip()
    assert len(modules) > 20
    assert loaded == "[]"
