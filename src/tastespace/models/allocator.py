"""Keep freed memory in the process: fits and fold-ins free and reallocate the same large
buffers on every step, and glibc's defaults hand each one back to the kernel.

Why: glibc serves a block above its mmap threshold (128 KiB, rising to at most 32 MiB) with
fresh pages and unmaps it on free, and trims the heap's top once 128 KiB of it is free; the
next step's tensors then fault every page in again. A 5M-interaction neural fit took about 4
million page faults on glibc's defaults and 36,000–48,000 with the settings below, and ran
15 % faster (12 % less CPU; a 20M fit: 42 million faults against 17,000;
``docs/benchmarks-scale.md``) — the reason PyTorch's CPU tuning notes swap in jemalloc or
tcmalloc. The cost: memory a process has freed (up to 2 GiB of it) stays its own until it
exits, and the heap can hold more than the live tensors: torch aligns each block, so a freed
block is a few bytes short of the next same-size request, and a loop reallocating one 128 MiB
tensor grew the heap to 1.3 GiB before it settled. In the fits measured the peak rose
0.0–0.4 GiB (2.29 → 2.58 GiB for a 20M neural fit), which a fit or a server can spare.

Only the process's owner should call :func:`keep_freed_memory`: the CLI does on start, and
each training process it launches; a Python program decides for itself.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
"""glibc's ``mallopt`` parameter numbers (malloc.h)."""

MMAP_THRESHOLD = 1 << 30
"""Blocks up to 1 GiB come from the heap, so freeing them keeps their pages."""
TRIM_THRESHOLD = 2**31 - 1
"""Up to 2 GiB of free heap top is kept (the largest value ``mallopt``'s int takes)."""
TOP_PAD = 1 << 28
"""Grow the heap 256 MiB at a time (fewer ``brk`` calls while a fit grows)."""


@functools.cache
def keep_freed_memory() -> bool:
    """Set glibc's allocator to keep freed memory for reuse; False where the C library is
    not glibc (musl, macOS, Windows), which is left as it is. Idempotent."""
    path = ctypes.util.find_library("c")
    if path is None:
        return False
    try:
        libc = ctypes.CDLL(path)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    settings = (
        (M_MMAP_THRESHOLD, MMAP_THRESHOLD),
        (M_TRIM_THRESHOLD, TRIM_THRESHOLD),
        (M_TOP_PAD, TOP_PAD),
    )
    return all(mallopt(option, value) == 1 for option, value in settings)
