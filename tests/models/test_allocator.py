"""The allocator setting keeps freed memory: a tensor freed and allocated again faults no pages
(numpy asks the kernel for huge pages, torch's CPU tensors do not, and they are what a fit
frees and allocates on every step)."""

import subprocess
import sys

import pytest

from tastespace.models.allocator import keep_freed_memory

REFAULTS = """
import resource, sys
import torch
from tastespace.models.allocator import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
block = torch.ones(32 * 2**20)  # 128 MiB, far above glibc's largest default mmap threshold
del block
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
block = torch.ones(32 * 2**20)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def refaults(mode: str) -> int:
    run = subprocess.run(
        [sys.executable, "-c", REFAULTS, mode], capture_output=True, text=True, check=True
    )
    return int(run.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_a_freed_tensor_is_reused_without_faulting_its_pages_again():
    # 128 MiB is 32,768 pages of 4 KiB: glibc's defaults unmap the block and fault them all
    # in again; kept, the second block reuses the first one's pages
    assert refaults("default") > 30_000
    assert refaults("keep") < 1_000


def test_setting_it_twice_is_harmless():
    assert keep_freed_memory() == keep_freed_memory()
