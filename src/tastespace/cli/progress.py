"""How ``fit`` shows a model's :class:`~tastespace.models.progress.Progress` events.

Three ways, one source: a Rich bar on stderr per epoch or stage (steps done, the ETA from the
measured pace, the running loss and the best validation Recall@20 so far) when stderr is a
terminal; with ``as_json`` one JSON line per event on stderr (every finished epoch or stage,
steps at most every ``interval`` seconds), so stdout keeps ``fit --json``'s single result
object; nothing with ``quiet``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from typing import Any

from tastespace.cli.common import err_console
from tastespace.models.progress import Progress, ProgressCallback


def describe(event: Progress) -> str:
    """``epoch 3/50 · loss 0.412 · best val R@20 0.3120 · ETA 0:42`` (parts that are known)."""
    parts = [f"{event.stage} {event.epoch}/{event.max_epochs}"]
    if event.stage != "epoch" and event.max_epochs == 1:
        parts = [event.stage]
    if math.isfinite(event.loss):
        parts.append(f"loss {event.loss:.3f}")
    if event.best_score is not None:
        parts.append(f"best val R@20 {event.best_score:.4f}")
    eta = event.eta_seconds
    if eta is not None and not event.scored:
        parts.append(f"ETA {int(eta) // 60}:{int(eta) % 60:02d}")
    return " · ".join(parts)


class FitProgress:
    """Context manager yielding the callback to pass to ``fit`` (None when nothing shows)."""

    def __init__(self, quiet: bool = False, as_json: bool = False, interval: float = 1.0) -> None:
        self.as_json = as_json
        self.interval = interval
        terminal = err_console.is_terminal  # elsewhere Rich's stop() leaves a blank line
        self.enabled = not quiet and (as_json or terminal)
        self.bar: Any = None
        self.task: Any = None
        self.last_sent = -math.inf

    def __enter__(self) -> ProgressCallback | None:
        if not self.enabled:
            return None
        if not self.as_json:
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn
            from rich.progress import Progress as Bar

            self.bar = Bar(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                console=err_console,
                transient=True,
            )
            self.bar.start()
        return self.update

    def update(self, event: Progress) -> None:
        if self.as_json:
            now = time.perf_counter()
            if event.scored or now - self.last_sent >= self.interval:
                self.last_sent = now
                record = {"event": "progress", **dataclasses.asdict(event)}
                record["eta_seconds"] = event.eta_seconds
                err_console.file.write(json.dumps(_finite(record)) + "\n")
                err_console.file.flush()
            return
        key = (event.stage, event.epoch)
        if self.task is None or self.task[0] != key:
            if self.task is not None:
                self.bar.remove_task(self.task[1])
            self.task = (key, self.bar.add_task(describe(event), total=event.batches))
        self.bar.update(self.task[1], completed=event.batch, description=describe(event))

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


def _finite(record: dict[str, Any]) -> dict[str, Any]:
    """NaN loss (a model without one) as null: strict JSON readers refuse NaN."""
    return {
        k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in record.items()
    }
