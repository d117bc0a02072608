"""Training progress every model reports the same way, so one CLI display serves them all.

A model with a ``progress`` attribute calls it with a :class:`Progress` event after each step
of its work: a batch (neural), a block of sentences (item2vec), a sweep (ALS, BPR), a block of
the Gram matrix (EASE). ``stage`` names the work ("epoch" for iterative training; EASE's
"gram", "factorise", "invert"); ``batch`` of ``batches`` is the progress within the current
``epoch`` of ``max_epochs`` (for stages, the stage's number of the stage count), and
``seconds`` the time spent in it, so ``seconds / batch · (batches − batch)`` is an honest ETA
(:attr:`Progress.eta_seconds`). The last event of an epoch or stage has ``scored`` set, with
the validation ``score`` when the model computes one and the ``best_score`` so far.

Example
-------
>>> seen = []
>>> clock = StageClock(seen.append, stage="gram", epoch=1, max_epochs=3, batches=2)
>>> clock.step(1); clock.step(2); clock.finish()
>>> [(e.batch, e.scored) for e in seen]
[(1, False), (2, False), (2, True)]
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable


@dataclasses.dataclass(frozen=True)
class Progress:
    """Where a fit stands (see the module docstring)."""

    epoch: int
    max_epochs: int
    batch: int
    batches: int
    loss: float
    seconds: float
    best_score: float | None = None
    score: float | None = None
    scored: bool = False
    stage: str = "epoch"

    @property
    def eta_seconds(self) -> float | None:
        """Seconds left in this epoch or stage at the pace so far (None before the first step)."""
        if self.batch <= 0 or self.batches <= 0:
            return None
        return self.seconds / self.batch * max(self.batches - self.batch, 0)


ProgressCallback = Callable[[Progress], None]


class StageClock:
    """Times one epoch or stage and sends its events to ``callback`` (``None``: does nothing)."""

    def __init__(
        self,
        callback: ProgressCallback | None,
        stage: str,
        epoch: int,
        max_epochs: int,
        batches: int,
        best_score: float | None = None,
    ) -> None:
        self.callback = callback
        self.stage, self.epoch, self.max_epochs = stage, epoch, max_epochs
        self.batches = max(int(batches), 1)
        self.best_score = best_score
        self.started = time.perf_counter()
        self.batch = 0
        self.loss = math.nan

    def step(self, batch: int, loss: float = math.nan) -> None:
        """``batch`` of ``batches`` done (cumulative), with the running loss if there is one."""
        self.batch, self.loss = min(int(batch), self.batches), loss
        self._send(scored=False)

    def finish(self, loss: float | None = None, score: float | None = None) -> None:
        """The epoch or stage is over: one scored event with every step counted as done."""
        self.batch = self.batches
        if loss is not None:
            self.loss = loss
        if score is not None and (self.best_score is None or score > self.best_score):
            self.best_score = score
        self._send(scored=True, score=score)

    def _send(self, scored: bool, score: float | None = None) -> None:
        if self.callback is None:
            return
        self.callback(
            Progress(
                epoch=self.epoch,
                max_epochs=self.max_epochs,
                batch=self.batch,
                batches=self.batches,
                loss=self.loss,
                seconds=time.perf_counter() - self.started,
                best_score=self.best_score,
                score=score,
                scored=scored,
                stage=self.stage,
            )
        )
