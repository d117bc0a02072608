"""Peak RSS: an allocating block shows up; a later, smaller block is not charged the first peak."""

from __future__ import annotations

import mmap
import sys

import numpy as np
import pytest

from tastespace.evaluate.memory import PeakMemory, current_rss_mib

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def test_allocation_is_measured():
    # fresh pages from the kernel: freed memory the allocator kept (the CLI's setting, which a
    # CLI test run in this process leaves behind) would serve a numpy block without new pages
    with PeakMemory() as memory:
        block = mmap.mmap(-1, 80 * 2**20)
        block.write(b"\1" * len(block))  # 80 MiB, pages touched
        block.close()
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
