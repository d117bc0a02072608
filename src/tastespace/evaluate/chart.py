"""A bar chart of a leaderboard: Recall@20 and NDCG@100 per model, error bars = std over seeds.

Rendered with matplotlib's Agg backend (no display needed); peers are drawn hatched and grey so
the eye separates them from tastespace's rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tastespace.errors import ConfigError
from tastespace.evaluate.leaderboard import Leaderboard

CHART_METRICS = ("recall@20", "ndcg@100")


def plot_leaderboard(
    board: Leaderboard, path: str | Path, metrics: Sequence[str] = CHART_METRICS
) -> Path:
    """Write a PNG with one group of bars per model (best Recall@20 first). Returns the path."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import numpy as np
    except ImportError as err:  # matplotlib lives in the "viz" extra
        raise ConfigError("the bar chart needs matplotlib: pip install 'tastespace[viz]'") from err

    rows = [r for r in board.sorted_by(metrics[0]) if r.runs]
    if not rows:
        raise ConfigError("no leaderboard row has results to plot")
    x = np.arange(len(rows))
    width = 0.8 / len(metrics)
    colours = ("#3b6ea8", "#e08a2e", "#5a9e4b", "#b5443c")
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(rows) + 2), 4.2), dpi=120)
    for k, metric in enumerate(metrics):
        stats = [r.stats(metric) for r in rows]
        bars = ax.bar(
            x + (k - (len(metrics) - 1) / 2) * width,
            [s["mean"] for s in stats],
            width,
            yerr=[s["std"] for s in stats],
            capsize=3,
            label=metric,
            color=colours[k % len(colours)],
        )
        for bar, row in zip(bars, rows, strict=True):
            if row.source != "tastespace":
                bar.set_hatch("//")
                bar.set_alpha(0.6)
    ax.set_xticks(
        x, [r.name if r.source == "tastespace" else f"{r.name}\n({r.source})" for r in rows]
    )
    ax.tick_params(axis="x", labelsize=8)
    seeds = len(board.protocol.get("seeds", []))
    ax.set_title(f"{board.dataset}: strong generalisation, mean ± std over {seeds} seed(s)")
    ax.set_ylabel("score")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(target)
    plt.close(fig)
    return target
