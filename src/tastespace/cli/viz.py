"""``tastespace map | export``: 2-D maps and vector exports."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this stage's commands to ``app`` (none yet)."""
