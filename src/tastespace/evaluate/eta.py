"""Elapsed time and a remaining-time estimate for a known list of jobs of a few kinds.

Why per kind: a benchmark's fits differ by orders of magnitude (popularity in milliseconds,
neural in minutes), so "mean time per fit × fits left" misleads; each kind's own measured
time (or, before it has one, the mean of all measured fits) predicts its remaining runs.

    >>> clock = JobClock(["ease", "neural", "ease", "neural"])
    >>> clock.finished(0, 1.0); clock.finished(1, 9.0)
    >>> clock.remaining(2)
    10.0
    >>> format_seconds(3725)
    '1:02:05'
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence


class JobClock:
    """Jobs named by kind, in order; ``finished(i, seconds)`` feeds the estimate."""

    def __init__(self, kinds: Sequence[str]) -> None:
        self.kinds = list(kinds)
        self.started = time.perf_counter()
        self._seconds: dict[str, list[float]] = defaultdict(list)

    def finished(self, index: int, seconds: float) -> None:
        self._seconds[self.kinds[index]].append(seconds)

    def remaining(self, next_index: int) -> float | None:
        """Estimated seconds for jobs ``next_index…``; ``None`` before anything was measured."""
        measured = [s for runs in self._seconds.values() for s in runs]
        if not measured:
            return None
        overall = sum(measured) / len(measured)
        total = 0.0
        for kind in self.kinds[next_index:]:
            runs = self._seconds.get(kind)
            total += sum(runs) / len(runs) if runs else overall
        return total

    def status(self, index: int) -> str:
        """``[i/N] elapsed M:SS, ETA M:SS`` before job ``index`` starts."""
        elapsed = time.perf_counter() - self.started
        left = self.remaining(index)
        eta = "ETA unknown" if left is None else f"ETA {format_seconds(left)}"
        return f"[{index + 1}/{len(self.kinds)}] elapsed {format_seconds(elapsed)}, {eta}"


def format_seconds(seconds: float) -> str:
    """``M:SS`` or ``H:MM:SS``."""
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
