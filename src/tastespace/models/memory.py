"""Memory guards: estimate a fit's real peak before allocating it, fail in one line if it won't fit.

Why: a dense solve that does not fit ends in a ``MemoryError`` traceback (or the OOM killer)
minutes into the fit; comparing the estimate with what the machine has left fails at once and
says what to do instead.

Available memory is Linux's ``MemAvailable`` (free memory plus what the kernel can reclaim),
capped by the cgroup v2 limit when the process runs in one (containers).
"""

from __future__ import annotations

from pathlib import Path

from tastespace.errors import ConfigError

MEMINFO = Path("/proc/meminfo")
CGROUP_LIMIT = Path("/sys/fs/cgroup/memory.max")
CGROUP_USAGE = Path("/sys/fs/cgroup/memory.current")

GIB = 2**30


def available_bytes() -> int | None:
    """Bytes this process can still allocate without swapping, or None where unknown."""
    available = None
    try:
        for line in MEMINFO.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
                break
    except OSError:
        return None
    try:
        limit = CGROUP_LIMIT.read_text().strip()
        if limit != "max":
            room = int(limit) - int(CGROUP_USAGE.read_text())
            available = room if available is None else min(available, room)
    except (OSError, ValueError):
        pass
    return available


def require_memory(needed: int, what: str, advice: str, options: tuple[str, ...] = ()) -> None:
    """Raise :class:`ConfigError` when ``needed`` bytes exceed what is available.

    ``what`` names the allocation ("EASE on 30,000 items"), ``advice`` what to do instead
    (``options``: the options it names); the message is one line. Unknown availability
    (not Linux) lets the fit go ahead.
    """
    available = available_bytes()
    if available is not None and needed > available:
        raise ConfigError(
            f"{what} needs about {needed / GIB:.1f} GiB at its peak but "
            f"{available / GIB:.1f} GiB is available; {advice}",
            options=options,
        )
