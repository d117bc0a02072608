"""docs/reliability.md is generated from the suite's fault markers and must be current."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_reliability_doc_matches_the_fault_markers():
    built = subprocess.run(
        [sys.executable, "-m", "tests.reliability_table"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    assert (ROOT / "docs" / "reliability.md").read_text(encoding="utf-8") == built, (
        "docs/reliability.md is stale: run `python -m tests.reliability_table > "
        "docs/reliability.md`"
    )
    rows = [line for line in built.splitlines() if line.startswith("| ") and "`tests/" in line]
    assert len(rows) >= 60, f"only {len(rows)} fault cases are tested"
