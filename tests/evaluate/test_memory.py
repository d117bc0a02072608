"""Peak RSS: an allocating block shows up; a later, smaller block is not charged the first peak."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from tastespace.evaluate.memory import PeakMemory, current_rss_mib

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def test_allocation_is_measured():
    with PeakMemory() as memory:
        block = np.ones(80 * 2**20 // 8)  # 80 MiB, pages touched
        del block
    assert memory.method in ("vmhwm", "sampler")
    assert memory.delta_mib > 60
    assert current_rss_mib() is not None


def test_peak_is_reset_between_blocks():
    with PeakMemory():
        big = np.ones(120 * 2**20 // 8)
        del big
    with PeakMemory() as small:
        block = np.ones(4 * 2**20 // 8)
        del block
    assert small.delta_mib < 60
