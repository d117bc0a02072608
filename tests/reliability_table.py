"""Build ``docs/reliability.md`` from the tests: every ``pytest.mark.fault`` is one row.

Why from the tests: the table promises what happens on each bad input or fault, and only a
test that would fail on a regression can keep that promise; prose drifts. The table comes from
pytest's own collection (no test runs), so markers built by helper functions count too.

    python -m tests.reliability_table > docs/reliability.md
"""

from __future__ import annotations

import io
import sys
from collections import Counter
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
HEADER = """# Reliability: faults and bad input tried

Every row is a test marked `@pytest.mark.fault(area, case, outcome)`; the test asserts the
outcome, so a regression turns the suite red. Regenerate after adding cases:
`python -m tests.reliability_table > docs/reliability.md` (a test checks this file is current).
"""


@dataclass(frozen=True, order=True)
class Case:
    area: str
    case: str
    outcome: str
    test: str


class _Collector:
    def __init__(self) -> None:
        self.cases: set[Case] = set()

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            for mark in item.iter_markers("fault"):
                area, case, outcome = (str(arg) for arg in mark.args)
                test = item.nodeid.split("[")[0]
                self.cases.add(Case(area, case, outcome, test))


def collect() -> list[Case]:
    """Every distinct fault case marked in the suite (one row per area, case and outcome)."""
    collector = _Collector()
    with redirect_stdout(io.StringIO()):
        code = pytest.main(
            ["--collect-only", "-q", "-p", "no:cacheprovider", str(TESTS)], plugins=[collector]
        )
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        raise SystemExit(f"collecting the tests failed (pytest exit {int(code)})")
    unique: dict[tuple[str, str, str], Case] = {}
    for case in sorted(collector.cases):
        unique.setdefault((case.area, case.case, case.outcome), case)
    return sorted(unique.values())


def render(cases: list[Case]) -> str:
    counts = Counter(c.area for c in cases)
    summary = ", ".join(f"{area} {n}" for area, n in sorted(counts.items()))
    lines = [HEADER, f"**{len(cases)} cases** in {len(counts)} areas: {summary}.", ""]
    for area in sorted(counts):
        lines += [f"## {area}", "", "| case | what happens | test |", "|---|---|---|"]
        for c in (c for c in cases if c.area == area):
            case, outcome = (text.replace("|", "\\|") for text in (c.case, c.outcome))
            lines.append(f"| {case} | {outcome} | `{c.test}` |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(render(collect()))
