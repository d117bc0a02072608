"""Training curves: the per-epoch history a bundle records, as a PNG or TensorBoard scalars.

Why: early stopping picks an epoch from a validation curve the user never saw; plotting the
recorded history (loss and every validation metric per epoch, the chosen epoch marked) shows
whether training converged, overfit or stopped early for a good reason.

    >>> history = [{"epoch": 1, "loss": 2.0, "val_recall@20": 0.1},
    ...            {"epoch": 2, "loss": 1.5, "val_recall@20": 0.2}]
    >>> curve_names(history)
    ['loss', 'val_recall@20']
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tastespace.errors import DataError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

FIGURE_INCHES = (10.0, 3.6)


def training_report(manifest: dict[str, Any], source: str) -> dict[str, Any]:
    """The bundle's training report with a non-empty per-epoch ``history``."""
    extra = manifest.get("extra") or {}
    report = extra.get("train_report") or manifest.get("train_report")
    history = report.get("history") if isinstance(report, dict) else None
    if not history:
        raise DataError(
            f"{source}: this {manifest.get('kind', '?')} bundle records no per-epoch training "
            "history (models trained by epochs with validation, such as neural, do)"
        )
    return report


def curve_names(history: list[dict[str, Any]]) -> list[str]:
    """Every numeric series in the history except the epoch counter, in first-seen order."""
    names: dict[str, None] = {}
    for row in history:
        for key, value in row.items():
            if key != "epoch" and isinstance(value, int | float) and not isinstance(value, bool):
                names.setdefault(key, None)
    return list(names)


def _series(history: list[dict[str, Any]], name: str) -> tuple[list[int], list[float]]:
    points = [
        (int(row["epoch"]), float(row[name]))
        for row in history
        if isinstance(row.get(name), int | float) and math.isfinite(float(row[name]))
    ]
    return [e for e, _ in points], [v for _, v in points]


def draw_curves(report: dict[str, Any], title: str = "") -> Figure:
    """One panel per series, x = epoch; a dashed line marks the best (kept) epoch."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    history = report["history"]
    names = curve_names(history)
    fig = Figure(figsize=(max(FIGURE_INCHES[0], 3.4 * len(names)), FIGURE_INCHES[1]), dpi=120)
    FigureCanvasAgg(fig)
    best = report.get("best_epoch")
    for panel, name in enumerate(names, start=1):
        ax = fig.add_subplot(1, len(names), panel)
        epochs, values = _series(history, name)
        ax.plot(epochs, values, marker="o", markersize=3, color="#4c72b0")
        if isinstance(best, int):
            ax.axvline(best, color="#c44e52", linestyle="--", linewidth=1, label=f"best {best}")
            ax.legend(loc="best", fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_title(name, fontsize=10)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def write_curves_png(report: dict[str, Any], out: Path, title: str = "") -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    draw_curves(report, title).savefig(out)
    return out


def write_tensorboard(report: dict[str, Any], logdir: Path) -> Path:
    """Every series as TensorBoard scalars (``tensorboard --logdir DIR`` shows them)."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as err:
        raise DataError(
            "TensorBoard scalars need the tensorboard package: pip install tensorboard"
        ) from err
    writer = SummaryWriter(log_dir=str(logdir))
    try:
        for name in curve_names(report["history"]):
            for epoch, value in zip(*_series(report["history"], name), strict=True):
                writer.add_scalar(name, value, epoch)
    finally:
        writer.close()
    return logdir
