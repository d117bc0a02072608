"""The pipeline's one-way flow (docs/architecture.md): upstream packages never import downstream.

``index/`` holds the top-k and hit kernels that models (serving, early stopping) and evaluation
both call, so it sits upstream of both.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "tastespace"

#: package → the packages it must never import (directly or lazily inside a function).
FORBIDDEN = {
    "data": ("features", "models", "index", "evaluate", "viz", "serve", "cli"),
    "features": ("models", "index", "evaluate", "viz", "serve", "cli"),
    "index": ("models", "evaluate", "viz", "serve", "cli"),
    "models": ("evaluate", "viz", "serve", "cli"),
    "evaluate": ("viz", "serve", "cli"),
}


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_upstream_never_imports_downstream(package):
    bad = []
    for path in sorted((PACKAGE / package).rglob("*.py")):
        for name in _imports(path):
            parts = name.split(".")
            if parts[0] == "tastespace" and len(parts) > 1 and parts[1] in FORBIDDEN[package]:
                bad.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert not bad, "; ".join(bad)
