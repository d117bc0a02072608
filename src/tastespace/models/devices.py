"""Which device a model computes on: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.

Only the neural model runs on torch (``NeuralRecommender.to_device``); the others score with
numpy / implicit on the CPU, so for them ``auto`` and ``cpu`` mean the CPU and ``cuda`` is
refused in one line rather than silently ignored.
"""

from __future__ import annotations

from typing import Any

from tastespace.errors import ConfigError


def check_training_device(kind: str, name: str) -> None:
    """Check a fit's device for a model ``kind`` before any data is read: CUDA must be
    present for the neural model; the others run on the CPU and refuse CUDA."""
    from tastespace.models.neural.runtime import resolve_device

    if kind == "neural":
        resolve_device(name)
    else:
        _cpu_only(kind, name)


def on_device(model: Any, name: str | None) -> Any:
    """Move a loaded model's fold-in and scoring to device ``name`` (``None``: leave it)."""
    if name is None:
        return model
    if hasattr(model, "to_device"):
        return model.to_device(name)
    _cpu_only(model.kind, name)
    return model


def _cpu_only(kind: str, name: str) -> None:
    from tastespace.models.neural.runtime import check_device_name

    check_device_name(name)
    if name.startswith("cuda"):
        raise ConfigError(
            f"device={name!r}: the {kind} model runs on the CPU only (use auto or cpu)",
            options=("device",),
        )
