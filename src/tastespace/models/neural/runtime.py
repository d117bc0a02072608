"""Where and how wide the neural model runs: device resolution and a scoped thread limit.

Why scoped: ``torch.set_num_threads`` and ``torch.manual_seed`` act on the whole process, so a
library call that set them would change every other model (and the caller's own torch code)
after it returns. Both are set for the duration of a fit and put back.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from tastespace.errors import ConfigError

DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:\d+)?")
"""Accepted device names: ``auto`` (CUDA when present, else CPU), ``cpu``, ``cuda``, ``cuda:N``."""


def check_device_name(name: str) -> None:
    """Raise a ConfigError for anything but auto / cpu / cuda / cuda:N (before any work)."""
    if not DEVICE_PATTERN.fullmatch(name):
        raise ConfigError(f"device must be auto, cpu, cuda or cuda:N, got {name!r}")


def resolve_device(name: str) -> torch.device:
    """The torch device for ``name``; CUDA asked for where there is none is a ConfigError.

    >>> resolve_device("cpu")
    device(type='cpu')
    """
    check_device_name(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            build = "built without CUDA" if torch.version.cuda is None else "sees no CUDA device"
            raise ConfigError(
                f"device {name!r} asked for, but this torch {torch.__version__} {build};"
                " use device='cpu' (or 'auto')",
                options=("device",),
            )
        index = int(name.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise ConfigError(
                f"device {name!r} asked for, but only {torch.cuda.device_count()} CUDA"
                " device(s) are visible"
            )
    return torch.device(name)


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Limit torch's intra-op threads to ``threads`` inside the block (``None``: leave as is)."""
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        if threads:
            torch.set_num_threads(previous)
