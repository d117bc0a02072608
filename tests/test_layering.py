"""The pipeline's one-way flow (docs/architecture.md): upstream packages never import downstream.

``index/`` holds the top-k and hit kernels that models (serving, early stopping) and evaluation
both call, so it sits upstream of both.
"""

from __future__ import annotations

import ast
import re
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


#: Library packages whose messages name parameters, never command-line flags (the CLI adds the
#: flag from an error's ``options``). ``distributed.py`` builds a torchrun command line.
LIBRARY = ("data", "features", "models", "index", "evaluate", "io")
COMMAND_LINES = {"models/neural/distributed.py"}
FLAG = re.compile(r"(?<![\w-])(--[a-z]|-p\b)")


def _strings_outside_docstrings(tree: ast.AST) -> list[ast.Constant]:
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


@pytest.mark.parametrize("package", LIBRARY)
def test_library_messages_do_not_quote_cli_flags(package):
    bad = []
    for path in sorted((PACKAGE / package).rglob("*.py")):
        name = str(path.relative_to(PACKAGE))
        if name in COMMAND_LINES:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in _strings_outside_docstrings(tree):
            if FLAG.search(node.value):
                bad.append(f"{name}:{node.lineno} {node.value[:60]!r}")
    assert not bad, "; ".join(bad)
