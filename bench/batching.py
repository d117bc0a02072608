"""Batched against one-at-a-time: what ``recommend --history-file`` and ``evaluate`` gain by
folding users in and searching in blocks, and by a second core.

    python bench/batching.py                       # ALS on a 40k-item synthetic catalog
    python bench/batching.py --items 100000 --users 2000

The same users' recommendations, in one run: one ``Session.answer`` call for all of
them (what ``recommend --history-file`` does), one call per user (a loop over ``-H``), and
``evaluate_model`` on them as held-out users (its one batched ``recommend``) — each with torch
on 1 and 2 threads. Ratios compare figures of this run only (the machine may be shared).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from tastespace.data import load_dataset
from tastespace.data.splits import HeldOutUsers
from tastespace.evaluate.protocol import evaluate_model
from tastespace.models.mf import ALS
from tastespace.session import Session


def seconds(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=40_000)
    parser.add_argument("--users", type=int, default=1000)
    args = parser.parse_args()
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    ds = load_dataset(f"synthetic:users=20000,items={args.items},seed=1")
    rng = np.random.default_rng(0)
    rows = np.sort(rng.choice(ds.n_users, args.users, replace=False))
    matrix = ds.interactions[rows].tocsr()
    # hold out each user's last item so evaluate has targets; the rest is the history
    fold_in, targets = matrix.copy(), matrix.copy()
    for r in range(matrix.shape[0]):
        span = slice(matrix.indptr[r], matrix.indptr[r + 1])
        fold_in.data[span][-1:] = 0
        targets.data[span][:-1] = 0
    fold_in.eliminate_zeros()
    targets.eliminate_zeros()
    ids = ds.item_ids.ids
    histories = [
        (f"u{r}", [str(ids[i]) for i in fold_in.indices[fold_in.indptr[r] : fold_in.indptr[r + 1]]])
        for r in range(fold_in.shape[0])
    ]
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "als"
        ALS(seed=0).fit(ds).save(path)
        session = Session.open(path)
        session.answer(histories[:20], k=10)  # warm caches
        print(
            f"{args.users:,} users, {args.items:,}-item catalog, ALS, k=10; "
            f"{os.cpu_count()} cores shared with other jobs, load average {load} at the start\n"
        )
        print("| path | torch threads | s | users/s | × one at a time (same threads) |")
        print("|---|---|---|---|---|")
        held = HeldOutUsers(rows, fold_in, targets)
        for threads in (1, 2):
            torch.set_num_threads(threads)
            single = seconds(lambda: [session.answer([h], k=10) for h in histories])
            batched = seconds(lambda: session.answer(histories, k=10))
            evaluated = seconds(lambda: evaluate_model(session.model, held))
            for label, spent in (
                ("one user per call (a loop over -H)", single),
                ("one batched call (--history-file)", batched),
                ("evaluate_model (batched recommend + metrics)", evaluated),
            ):
                print(
                    f"| {label} | {threads} | {spent:.2f} | {args.users / spent:,.0f} | "
                    f"{single / spent:.1f}× |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
