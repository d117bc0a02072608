"""Progress events: the same Progress type from every model, with an ETA that follows the pace."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tastespace.data.build import build_dataset
from tastespace.models import baselines
from tastespace.models.baselines import EASE
from tastespace.models.cooccurrence import GloVe
from tastespace.models.item2vec import Item2Vec
from tastespace.models.mf import BPR
from tastespace.models.progress import Progress, StageClock


def test_eta_is_the_pace_so_far_times_the_steps_left():
    event = Progress(epoch=1, max_epochs=3, batch=2, batches=10, loss=0.5, seconds=4.0)
    assert event.eta_seconds == pytest.approx(16.0)
    assert Progress(1, 1, 0, 10, math.nan, 0.0).eta_seconds is None


def test_clock_keeps_the_best_score_and_marks_the_last_event():
    events: list[Progress] = []
    first = StageClock(events.append, "epoch", 1, 2, batches=2)
    first.step(1, loss=2.0)
    first.finish(loss=1.5, score=0.3)
    second = StageClock(events.append, "epoch", 2, 2, batches=2, best_score=first.best_score)
    second.finish(score=0.2)  # a one-shot stage counts as all of its steps
    assert [(e.epoch, e.batch, e.scored) for e in events] == [
        (1, 1, False),
        (1, 2, True),
        (2, 2, True),
    ]
    assert [e.best_score for e in events] == [None, 0.3, 0.3]
    assert events[1].loss == 1.5 and events[2].score == 0.2
    StageClock(None, "epoch", 1, 1, 1).finish()  # no callback: nothing to do, no error


def _planted():
    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(120), 6)
    items = np.concatenate([rng.choice(30, 6, replace=False) + 30 * (u % 2) for u in range(120)])
    return build_dataset(users, items, item_ids=np.arange(60))


def _fit_with_events(model):
    events: list[Progress] = []
    model.fit(_planted(), callback=events.append)
    return events


def test_ease_reports_gram_blocks_then_the_solve(monkeypatch):
    monkeypatch.setattr(baselines, "GRAM_BLOCK_CELLS", 20 * 60)  # 20 rows a block: 3 blocks
    events = _fit_with_events(EASE(l2=5.0))
    assert [(e.stage, e.epoch, e.batch, e.batches, e.scored) for e in events] == [
        ("gram", 1, 1, 3, False),
        ("gram", 1, 2, 3, False),
        ("gram", 1, 3, 3, False),
        ("gram", 1, 3, 3, True),
        ("solve", 2, 1, 3, False),
        ("solve", 2, 3, 3, False),
        ("solve", 2, 3, 3, True),
    ]
    assert all(e.max_epochs == 2 for e in events)


def test_item2vec_reports_each_epoch_as_its_sentences_are_read():
    events = _fit_with_events(Item2Vec(dim=4, epochs=3))
    scored = [e for e in events if e.scored]
    assert [e.epoch for e in scored] == [1, 2, 3]
    assert {e.batches for e in events} == {120} and all(e.batch == 120 for e in scored)
    for epoch in (1, 2, 3):
        steps = [e.batch for e in events if e.epoch == epoch and not e.scored]
        assert steps == sorted(steps) and steps[-1] == 120 and len(steps) >= 100


def test_glove_reports_counting_then_every_batch_of_every_epoch():
    events = _fit_with_events(GloVe(dim=4, epochs=2, batch_size=100))
    assert events[0].stage == "co-occurrence" and events[0].scored
    batches = events[1].batches
    assert batches > 1
    assert [e.batch for e in events if e.epoch == 1 and e.stage == "epoch"] == [
        *range(1, batches + 1),
        batches,
    ]
    final = [e for e in events if e.scored and e.stage == "epoch"]
    assert [e.epoch for e in final] == [1, 2] and all(np.isfinite(e.loss) for e in final)


def test_bpr_reports_its_sweeps():
    events = _fit_with_events(BPR(factors=4, iterations=4, num_threads=1))
    assert [(e.stage, e.batch, e.batches) for e in events] == [
        ("sweeps", k, 4) for k in (1, 2, 3, 4, 4)
    ]
    assert all(0 <= e.loss <= 1 for e in events)  # the training ranking error
