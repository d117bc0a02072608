"""What one fit takes besides the data and the hyper-parameters: run options and a progress hook.

Run options say *where and how* to train (device, threads, checkpoints), never *what* is learned,
so they stay out of the model's config and its bundle manifest: the same bundle can come from a
CPU or a GPU run, with or without a resumed checkpoint.

>>> TrainingOptions(device="cuda", threads=4).threads
4
>>> TrainingOptions(threads="4")
Traceback (most recent call last):
    ...
tastespace.errors.ConfigError: TrainingOptions.threads='4': expected int or None — Compute ...
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from tastespace.errors import ConfigError
from tastespace.index.hits import recall_at_k
from tastespace.index.topk import topk_rows
from tastespace.models.config import Options
from tastespace.models.progress import Progress, ProgressCallback, StageClock

#: ``metric(scores, targets) -> float``, higher is better: how models that stop early score
#: their validation users. ``scores`` is ``(n_users, n_items)`` with each user's fold-in items
#: already at ``-inf``; ``targets`` the held-out items as CSR.
ValidationMetric = Callable[[np.ndarray, sp.csr_matrix], float]


def recall_at_20(scores: np.ndarray, targets: sp.csr_matrix) -> float:
    """The default validation metric: mean Recall@20 (what the leaderboard selects on)."""
    ranked, _ = topk_rows(scores, 20)
    return float(np.nanmean(recall_at_k(ranked, targets, 20)))


@dataclasses.dataclass(frozen=True)
class TrainingOptions(Options):
    """Where and how one fit runs (not saved in the bundle)."""

    device: str = "cpu"
    """Torch device for models that use torch ("cpu", "cuda", "cuda:1")."""
    threads: int | None = None
    """Compute threads for the fit; None leaves the process default."""
    checkpoint_dir: str | None = None
    """Directory where iterative models write a resumable checkpoint after every epoch."""
    resume: bool = False
    """Continue from the checkpoint in checkpoint_dir when one is there; refused unless the
    data and every model option but epochs match (models.neural.checkpoint)."""

    def validate(self) -> None:
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"TrainingOptions.threads must be ≥ 1, got {self.threads}")
        if self.resume and self.checkpoint_dir is None:
            raise ConfigError("TrainingOptions.resume=True needs a checkpoint_dir to resume from")


@dataclasses.dataclass(frozen=True)
class FitRun:
    """The run-time side of one ``fit`` call, handed to a model's ``_fit``."""

    options: TrainingOptions = TrainingOptions()
    callback: ProgressCallback | None = None
    metric: ValidationMetric = recall_at_20

    def clock(
        self, stage: str, epoch: int, max_epochs: int, batches: int, best: float | None = None
    ) -> StageClock:
        """A :class:`StageClock` for one epoch or stage that reports to the callback."""
        return StageClock(self.callback, stage, epoch, max_epochs, batches, best)


__all__ = [
    "FitRun",
    "Progress",
    "ProgressCallback",
    "TrainingOptions",
    "ValidationMetric",
    "recall_at_20",
]
