"""Log-log plot of the measured one-hot vs embedding costs: time and input memory per batch.

Two panels over the catalog size ``V``: seconds per forward + backward pass for each method
(:mod:`tastespace.features.measure`), and input bytes, with the analytic model of
:mod:`tastespace.features.cost` drawn dashed beside the measured memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tastespace.errors import ConfigError
from tastespace.features.cost import feature_cost
from tastespace.features.measure import METHODS, Measurement

COLOURS = dict(zip(METHODS, ("#b5443c", "#e08a2e", "#3b6ea8", "#5a9e4b"), strict=True))


def plot_costs(measurements: Sequence[Measurement], path: str | Path, title: str = "") -> Path:
    """Write the two-panel PNG of a :func:`~tastespace.features.measure.sweep`; returns the path."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:  # matplotlib lives in the "viz" extra
        raise ConfigError("the cost plot needs matplotlib: pip install 'tastespace[viz]'") from err
    if not measurements:
        raise ConfigError("no measurements to plot")
    fig, (timing, memory) = plt.subplots(1, 2, figsize=(10, 4), dpi=120)
    for method in METHODS:
        rows = sorted((m for m in measurements if m.method == method), key=lambda m: m.vocab)
        timed = [m for m in rows if m.seconds is not None]
        style = dict(color=COLOURS[method], marker="o", label=method)
        timing.plot([m.vocab for m in timed], [1e3 * m.seconds for m in timed], **style)
        memory.plot([m.vocab for m in rows], [m.input_bytes for m in rows], **style)
    vocabs = sorted({m.vocab for m in measurements})
    first = measurements[0]
    model = [
        feature_cost(first.batch, v, first.nnz / first.batch, first.dim, first.dim) for v in vocabs
    ]
    memory.plot(vocabs, [c.one_hot_bytes for c in model], "k--", lw=1, label="model: one-hot")
    memory.plot(vocabs, [c.bag_bytes for c in model], "k:", lw=1, label="model: bag")
    for ax, label in ((timing, "ms per batch (forward + backward)"), (memory, "input bytes")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("catalog size V")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
    timing.legend(fontsize=8)
    memory.legend(fontsize=8)
    fig.suptitle(title or f"batch {first.batch}, {first.nnz / first.batch:.0f} values per row")
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out
