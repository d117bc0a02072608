"""No function in ``src/`` runs over 80 lines (the house rule: one job per function).

Measured from the ``def`` line to the last line of the body, docstring included, for every
function and method, nested ones too.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "tastespace"
MOST_LINES = 80


def long_functions(root: Path, most: int) -> list[tuple[int, str]]:
    """``(lines, "path:Qualified.name")`` of every function in ``root`` longer than ``most``."""
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST, path: str, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = child.end_lineno - child.lineno + 1
                if lines > most:
                    found.append((lines, f"{path}:{prefix}{child.name}"))
                visit(child, path, f"{prefix}{child.name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, path, f"{prefix}{child.name}.")
            else:
                visit(child, path, prefix)

    for file in sorted(root.rglob("*.py")):
        visit(ast.parse(file.read_text(encoding="utf-8")), str(file.relative_to(root)), "")
    return sorted(found, reverse=True)


def test_no_function_is_longer_than_80_lines():
    too_long = long_functions(SRC, MOST_LINES)
    assert not too_long, ", ".join(f"{name} ({lines} lines)" for lines, name in too_long)


def test_the_measure_counts_nested_functions_and_methods(tmp_path):
    body = "\n".join(f"        x{i} = {i}" for i in range(81))
    (tmp_path / "m.py").write_text(f"class A:\n    def f(self):\n{body}\n\n\ndef g():\n    pass\n")
    assert long_functions(tmp_path, MOST_LINES) == [(82, "m.py:A.f")]
