"""Two-process DDP training on localhost (gloo, CPU) produces a loadable bundle."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from tastespace.models.base import Recommender
from tastespace.models.histories import ItemIndices


def test_two_process_ddp_run_completes_and_loads(tmp_path):
    out = tmp_path / "ddp-bundle"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "tastespace.models.neural.distributed",
        "--data",
        "synthetic:tiny",
        "--out",
        str(out),
        "-p",
        "epochs=3",
        "-p",
        "dim=16",
        "-p",
        "hidden=32",
        "-p",
        "batch_size=64",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    model = Recommender.load(out)
    assert model.kind == "neural"
    assert model.train_report_.epochs_run >= 1
    ids, scores = model.recommend(ItemIndices([[0, 1, 2]]), k=5)
    assert ids.shape == (1, 5) and np.all(np.isfinite(scores))


def test_every_rank_takes_as_many_rows_per_epoch_whole_or_sharded():
    """DDP's all-reduce waits for every rank, so each must take as many batches: whole data
    on every rank → disjoint slices of one shuffle; own rows → topped up to the largest."""
    import torch

    from tastespace.models.neural.training import LoopSettings, epoch_order

    def settings(rank: int, own_rows: int | None = None) -> LoopSettings:
        return LoopSettings(10, 4, 0.01, 0.0, None, rank=rank, world_size=2, own_rows=own_rows)

    slices = [epoch_order(11, settings(r), torch.Generator().manual_seed(0)) for r in (0, 1)]
    assert [len(s) for s in slices] == [5, 5] and not set(slices[0]) & set(slices[1])
    small = epoch_order(3, settings(1, own_rows=7), torch.Generator().manual_seed(0))
    large = epoch_order(7, settings(0, own_rows=7), torch.Generator().manual_seed(0))
    assert len(small) == len(large) == 7
    assert sorted(large.tolist()) == list(range(7))  # the largest rank: each row once
    assert set(small.tolist()) == {0, 1, 2} and sorted(small[:3].tolist()) == [0, 1, 2]
