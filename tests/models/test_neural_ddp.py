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
