"""The training loop, kept apart from the modules: epochs, early stopping, checkpoints, DDP.

Seeded end to end (one ``torch.Generator`` drives shuffling and dropout). After every epoch the
model is scored on validation users (Recall@20); the best epoch's weights are restored at the
end. With a checkpoint directory, each epoch writes ``last.pt`` (weights, optimiser, RNG state,
the report so far) so ``resume=True`` continues an interrupted run exactly; what the file holds
and how a resume is checked against the run is :mod:`.checkpoint`'s job.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from tastespace.errors import CheckpointError
from tastespace.models.neural import checkpoint as checkpoints
from tastespace.models.neural.optim import TableAwareAdam
from tastespace.models.progress import ProgressCallback, StageClock

log = logging.getLogger(__name__)

PATIENCE_STEPS = 60
"""Auto patience waits about this many optimiser steps without a better validation score."""
PATIENCE_EPOCHS = (1, 30)
"""Auto patience stays within these epochs. Small sets take few steps an epoch (ml-latest-small:
2) and need the high end, or they stop before the weights settle: 30 epochs there give Recall@20
0.295 against 0.288 with 15 (6 seeds, docs/neural.md). Large sets (60+ steps an epoch) wait one
epoch: on ``synthetic:medium`` validation Recall@20 peaked at epoch 3 and fell at every one of
the 8 epochs after it (docs/benchmarks-scale.md), so a floor of 3 only added epochs."""


def auto_patience(steps_per_epoch: int) -> int:
    """Epochs to wait for a better validation score when ``patience`` is not given.

    Small sets take a few noisy steps per epoch (ml-100k: 3, ml-latest-small: 2) and need many
    epochs of patience; large sets take hundreds of steps per epoch and a few epochs settle it
    (a 1M-interaction set peaks in 3 epochs, so a fixed 15 would spend 80 % of the fit waiting,
    and a floor of 3 spent half of it).
    """
    low, high = PATIENCE_EPOCHS
    return max(low, min(high, math.ceil(PATIENCE_STEPS / max(steps_per_epoch, 1))))


@dataclass
class TrainReport:
    """What happened: per-epoch loss and validation score, and which epoch was kept."""

    epochs_run: int = 0
    best_epoch: int = 0
    best_score: float = -math.inf
    history: list[dict[str, float | None]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The manifest's ``train_report`` (``best_val_recall@20`` is None without validation)."""
        return {
            "epochs_run": self.epochs_run,
            "best_epoch": self.best_epoch,
            "best_val_recall@20": self.best_score if math.isfinite(self.best_score) else None,
            "history": self.history,
        }

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> TrainReport:
        """Inverse of :meth:`to_json`."""
        best = payload.get("best_val_recall@20")
        return cls(
            int(payload.get("epochs_run", 0)),
            int(payload.get("best_epoch", 0)),
            -math.inf if best is None else float(best),
            list(payload.get("history", [])),
        )


@dataclass
class LoopSettings:
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    patience: int | None
    ema_decay: float | None = None
    checkpoint_dir: str | None = None
    resume: bool = False
    checkpoint_stamp: dict[str, Any] = field(default_factory=dict)
    rank: int = 0
    world_size: int = 1
    own_rows: int | None = None
    """Sharded data: this rank trains on its own rows, each epoch topped up to this many (the
    largest rank's count) so every rank takes the same number of steps."""


def train_loop(
    module: nn.Module,
    make_batch: Callable[[np.ndarray, torch.Generator], dict],
    n_rows: int,
    settings: LoopSettings,
    generator: torch.Generator,
    validate: Callable[[], float] | None = None,
    progress: ProgressCallback | None = None,
    trainable: nn.Module | None = None,
) -> TrainReport:
    """Train ``module`` (whose forward returns the loss) over ``n_rows`` shuffled rows.

    ``trainable`` is the module whose weights are kept and restored (the DDP wrapper's inner
    module); it defaults to ``module``.
    """
    run = _Run(module, trainable if trainable is not None else module, settings, generator)
    last_epoch = run.start(n_rows)
    for epoch in range(run.report.epochs_run + 1, last_epoch + 1):
        clock = run.clock(epoch, progress)
        mean_loss = run.epoch(make_batch, n_rows, clock)
        if run.score(epoch, mean_loss, validate, clock):
            log.info("early stop at epoch %d (best %d)", epoch, run.report.best_epoch)
            break
    return run.finish()


def epoch_order(n_rows: int, settings: LoopSettings, generator: torch.Generator) -> np.ndarray:
    """This rank's rows for one epoch, as many on every rank (DDP's all-reduce waits for all).

    Every rank holding every row: its slice of one shuffle (the same on all ranks), cut to a
    multiple of the world size. Each holding its own (``own_rows``): a shuffle of them, topped up
    from further shuffles to ``own_rows``.
    """
    if settings.own_rows is None:
        order = torch.randperm(n_rows, generator=generator).numpy()
        order = order[: len(order) - len(order) % settings.world_size]
        return order[settings.rank :: settings.world_size]
    rounds = -(-settings.own_rows // n_rows)
    shuffles = [torch.randperm(n_rows, generator=generator).numpy() for _ in range(rounds)]
    return np.concatenate(shuffles)[: settings.own_rows]


class _Run:
    """One training run's moving parts: optimiser, weight average, best weights, patience."""

    def __init__(
        self,
        module: nn.Module,
        inner: nn.Module,
        settings: LoopSettings,
        generator: torch.Generator,
    ) -> None:
        self.module, self.inner, self.settings, self.generator = module, inner, settings, generator
        self.optimiser = TableAwareAdam(inner, settings.lr, settings.weight_decay)
        self.averaged = WeightAverage(inner, settings.ema_decay) if settings.ema_decay else None
        self.report = TrainReport()
        self.best_state = copy.deepcopy(inner.state_dict())
        self.checkpoint = (
            checkpoints.prepare(settings.checkpoint_dir) if settings.checkpoint_dir else None
        )
        self.patience = 0
        self.stale = 0
        self.batches = 0

    def start(self, n_rows: int) -> int:
        """Patience from the steps per epoch; resume from the checkpoint when asked. Returns
        the last epoch to run (a run that had stopped early stays stopped)."""
        settings = self.settings
        world = settings.world_size
        rows_per_rank = settings.own_rows or (n_rows - n_rows % world) // world
        self.batches = math.ceil(rows_per_rank / settings.batch_size)
        self.patience = settings.patience or auto_patience(self.batches)
        stopped = False
        if self.checkpoint is not None and settings.resume:
            if self.checkpoint.exists():
                self.report, self.best_state, stopped = _resume(
                    self.checkpoint,
                    self.inner,
                    self.optimiser,
                    self.generator,
                    self.averaged,
                    settings.checkpoint_stamp,
                )
            else:
                log.warning(
                    "resume: no checkpoint at %s yet, training from epoch 1", self.checkpoint
                )
        self.stale = self.report.epochs_run - self.report.best_epoch
        return self.report.epochs_run if stopped else settings.epochs

    def clock(self, epoch: int, progress: ProgressCallback | None) -> StageClock:
        """The epoch's progress events: one per batch, with the best validation score so far."""
        best = self.report.best_score if math.isfinite(self.report.best_score) else None
        return StageClock(
            progress, "epoch", epoch, self.settings.epochs, self.batches, best_score=best
        )

    def epoch(
        self,
        make_batch: Callable[[np.ndarray, torch.Generator], dict],
        n_rows: int,
        clock: StageClock,
    ) -> float:
        """One pass over this rank's shard of a fresh shuffle; the mean batch loss."""
        settings = self.settings
        self.module.train()
        order = epoch_order(n_rows, settings, self.generator)
        total, batches = 0.0, 0
        for begin in range(0, len(order), settings.batch_size):
            loss = self.module(
                make_batch(order[begin : begin + settings.batch_size], self.generator)
            )
            self.optimiser.zero_grad()
            loss.backward()
            self.optimiser.step()
            if self.averaged is not None:
                self.optimiser.flush()  # the average reads every row
                self.averaged.update(self.inner)
            total += float(loss.detach())
            batches += 1
            clock.step(batches, total / batches)
        self.optimiser.flush()  # validation, checkpoints and the best weights read every row
        return total / max(batches, 1)

    def score(
        self,
        epoch: int,
        mean_loss: float,
        validate: Callable[[], float] | None,
        clock: StageClock,
    ) -> bool:
        """Validate (on the averaged weights if any), keep the best; true when patience is out."""
        live = None
        if self.averaged is not None:
            live = copy.deepcopy(self.inner.state_dict())
            self.inner.load_state_dict(self.averaged.state)
        score = None
        if validate is not None:
            self.module.eval()
            with torch.no_grad():
                score = float(validate())
        report = self.report
        report.history.append({"epoch": epoch, "loss": mean_loss, "val_recall@20": score})
        report.epochs_run = epoch
        clock.finish(loss=mean_loss, score=score)
        if score is None or score > report.best_score:
            report.best_score = score if score is not None else report.best_score
            report.best_epoch = epoch
            self.best_state = copy.deepcopy(self.inner.state_dict())
            self.stale = 0
        else:
            self.stale += 1
        if live is not None:
            self.inner.load_state_dict(live)
        stopped = validate is not None and self.stale >= self.patience
        if self.checkpoint is not None and self.settings.rank == 0:
            payload = _checkpoint_payload(
                self.inner,
                self.optimiser,
                self.generator,
                self.best_state,
                self.averaged,
                report,
                stopped,
            )
            checkpoints.save(self.checkpoint, payload, self.settings.checkpoint_stamp)
        return stopped

    def finish(self) -> TrainReport:
        """Restore the best weights (the raw ones when the average never warmed up)."""
        if self.averaged is not None and not self.averaged.ready:
            # Too few steps to average: the average is still mostly the initial weights.
            self.best_state = self.inner.state_dict()
            self.report.best_epoch = self.report.epochs_run
        self.optimiser.close()
        self.inner.load_state_dict(self.best_state)
        self.module.eval()
        return self.report


def _checkpoint_payload(
    inner: nn.Module,
    optimiser: TableAwareAdam,
    generator: torch.Generator,
    best_state: dict,
    averaged: WeightAverage | None,
    report: TrainReport,
    stopped: bool,
) -> dict[str, Any]:
    """Everything :func:`_resume` needs to go on as if the run had never stopped."""
    return {
        "model": inner.state_dict(),
        "optimiser": optimiser.state_dict(),
        "rng": generator.get_state(),
        "best_model": best_state,
        "averaged": averaged.state if averaged is not None else {},
        "averaged_steps": averaged.steps if averaged is not None else 0,
        "epoch": report.epochs_run,
        "best_epoch": report.best_epoch,
        "best_score": float(report.best_score),
        "history": report.history,
        "stopped": stopped,
    }


def _resume(
    path: Path,
    inner: nn.Module,
    optimiser: TableAwareAdam,
    generator: torch.Generator,
    averaged: WeightAverage | None,
    stamp: dict[str, Any],
) -> tuple[TrainReport, dict, bool]:
    """Restore a checkpoint in place: the report so far, the best weights, whether it stopped."""
    saved = checkpoints.load(path, stamp)
    try:
        inner.load_state_dict(saved["model"])
        optimiser.load_state_dict(saved["optimiser"])
        generator.set_state(saved["rng"])
    except (RuntimeError, ValueError, KeyError, TypeError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(
            f"{path}: its weights do not fit this model ({reason[:160]})"
        ) from err
    if averaged is not None and saved["averaged"]:
        averaged.state = saved["averaged"]
        averaged.steps = saved["averaged_steps"]
    report = TrainReport(
        saved["epoch"], saved["best_epoch"], saved["best_score"], list(saved["history"])
    )
    log.info("resumed from %s at epoch %d", path, report.epochs_run)
    return report, saved["best_model"], saved["stopped"]


class WeightAverage:
    """Exponential moving average of a module's floating-point weights (Polyak averaging).

    The loop scores and keeps the average instead of the raw weights. It starts at the initial
    weights and is not bias-corrected: its slow, smooth rise is what lets early stopping wait
    for it. Two variants measured worse on ml-100k / ml-latest-small Recall@20 (3 seeds):
    bias-corrected 0.374 / 0.243, and scoring the better of raw and averaged weights each epoch
    0.361 / 0.273, against 0.390 / 0.299 — both stopped early on a noisy raw-weight peak. A run
    shorter than ``1 / (1 - decay)`` steps (:attr:`ready` is false) keeps its raw weights.
    """

    def __init__(self, module: nn.Module, decay: float) -> None:
        self.decay = decay
        self.steps = 0
        self.state = {k: v.detach().clone() for k, v in module.state_dict().items()}

    @property
    def ready(self) -> bool:
        return self.steps >= round(1.0 / (1.0 - self.decay))

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        self.steps += 1
        current = module.state_dict()
        for key, average in self.state.items():
            if average.is_floating_point():
                average.lerp_(current[key], 1 - self.decay)
