"""Remaining-time estimates per job kind (benchmark and tune progress lines)."""

from __future__ import annotations

import pytest

from tastespace.evaluate.eta import JobClock, format_seconds


def test_each_kind_is_predicted_by_its_own_measured_time():
    clock = JobClock(["pop", "neural", "pop", "neural", "ease"])
    assert clock.remaining(0) is None
    clock.finished(0, 0.5)
    assert clock.remaining(1) == pytest.approx(4 * 0.5)  # only the overall mean is known
    clock.finished(1, 20.0)
    # pop 0.5, neural 20, ease unmeasured → the mean of what was measured (10.25)
    assert clock.remaining(2) == pytest.approx(0.5 + 20.0 + 10.25)


def test_status_counts_jobs_from_one():
    clock = JobClock(["a", "b"])
    assert clock.status(0).startswith("[1/2] elapsed 0:00, ETA unknown")
    clock.finished(0, 65.0)
    assert clock.status(1).endswith("ETA 1:05")


@pytest.mark.parametrize("seconds,text", [(0, "0:00"), (59.6, "1:00"), (3725, "1:02:05")])
def test_format_seconds(seconds, text):
    assert format_seconds(seconds) == text
