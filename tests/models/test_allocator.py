"""The allocator setting keeps freed memory: a large tensor comes from the heap and its pages
stay with the process when it is freed, where glibc's defaults map it afresh and unmap it."""

import json
import platform
import subprocess
import sys

import pytest

from tastespace.models.allocator import keep_freed_memory

BLOCK = """
import ctypes, json, sys
import torch
from tastespace.models.allocator import keep_freed_memory

class MallocInfo(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split())]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallocInfo
if sys.argv[1] == "keep":
    assert keep_freed_memory()
block = torch.ones(32 * 2**20)  # 128 MiB, above glibc's largest default mmap threshold
mapped, heap = libc.mallinfo2().hblkhd, libc.mallinfo2().arena
del block
print(json.dumps({"mapped": mapped, "heap": heap, "heap_after_free": libc.mallinfo2().arena}))
"""

MIB = 2**20


def block_memory(mode: str) -> dict[str, int]:
    """Bytes glibc had mapped for large blocks and in its heap with a 128 MiB tensor alive,
    and its heap once the tensor is freed, in a fresh process."""
    run = subprocess.run(
        [sys.executable, "-c", BLOCK, mode], capture_output=True, text=True, check=True
    )
    return json.loads(run.stdout)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt, mallinfo2")
def test_a_large_tensor_comes_from_the_heap_and_stays_there_when_freed():
    default = block_memory("default")
    assert default["mapped"] >= 128 * MIB  # mapped afresh, and unmapped on free
    kept = block_memory("keep")
    assert kept["mapped"] < 128 * MIB
    assert kept["heap"] >= 128 * MIB and kept["heap_after_free"] >= 128 * MIB


def test_setting_it_twice_is_harmless():
    assert keep_freed_memory() == keep_freed_memory()
