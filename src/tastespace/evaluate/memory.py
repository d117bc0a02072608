"""Peak resident memory of a block of code, for the leaderboard's "peak RSS during fit" column.

Two ways to measure, chosen once per call:

* ``"vmhwm"`` (Linux ≥ 4.0): reset the kernel's high-water mark by writing ``5`` to
  ``/proc/self/clear_refs``, run the block, read ``VmHWM`` from ``/proc/self/status``. Exact: the
  kernel tracks every page, so even a spike of a few milliseconds inside BLAS counts.
* ``"sampler"`` (elsewhere): a daemon thread reads ``VmRSS`` every ``interval`` seconds; spikes
  shorter than the interval can be missed, so the figure is a lower bound.

Both cover every thread of the process (gensim, implicit and torch train in native threads), not
child processes. ``resource.getrusage`` is not used: its ``ru_maxrss`` is the lifetime peak and
cannot be reset, so a second, smaller fit would report the first one's peak.

Example
-------
>>> with PeakMemory() as mem:
...     block = bytearray(50 * 2**20)
>>> mem.peak_mib >= mem.start_mib
True
"""

from __future__ import annotations

import threading
from pathlib import Path
from types import TracebackType
from typing import Literal

STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")

Method = Literal["vmhwm", "sampler", "unavailable"]


def _status_kib(field: str) -> int | None:
    """A ``VmXXX`` line of ``/proc/self/status`` in KiB, or None off Linux."""
    try:
        for line in STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def current_rss_mib() -> float | None:
    """Resident set size now, MiB (None where ``/proc`` is missing)."""
    kib = _status_kib("VmRSS")
    return None if kib is None else kib / 1024


def _reset_high_water_mark() -> bool:
    try:
        CLEAR_REFS.write_text("5")
    except OSError:
        return False
    hwm, rss = _status_kib("VmHWM"), _status_kib("VmRSS")
    # A kernel that ignores "5" leaves the old (higher) peak in place.
    return hwm is not None and rss is not None and hwm <= rss + 1024


class PeakMemory:
    """Context manager: ``start_mib``, ``peak_mib`` and ``delta_mib`` (peak − start) of a block.

    ``method`` says how the peak was measured (see the module docstring); with ``"unavailable"``
    (no ``/proc``) every figure is NaN. Not re-entrant: the high-water mark is per process, so
    a ``PeakMemory`` opened inside another resets the outer one's peak.
    """

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.method: Method = "unavailable"
        self.start_mib = float("nan")
        self.peak_mib = float("nan")
        self._peak_kib = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def delta_mib(self) -> float:
        """How far the block raised resident memory above where it started."""
        return max(0.0, self.peak_mib - self.start_mib)

    def __enter__(self) -> PeakMemory:
        start = _status_kib("VmRSS")
        if start is None:
            return self
        self.start_mib = start / 1024
        if _reset_high_water_mark():
            self.method = "vmhwm"
            return self
        self.method = "sampler"
        self._peak_kib = start
        self._thread = threading.Thread(target=self._sample, name="peak-rss", daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            kib = _status_kib("VmRSS")
            if kib is not None and kib > self._peak_kib:
                self._peak_kib = kib

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.method == "vmhwm":
            hwm = _status_kib("VmHWM")
            self.peak_mib = float("nan") if hwm is None else hwm / 1024
        elif self.method == "sampler":
            self._stop.set()
            if self._thread is not None:
                self._thread.join()
            final = _status_kib("VmRSS") or 0
            self.peak_mib = max(self._peak_kib, final) / 1024
