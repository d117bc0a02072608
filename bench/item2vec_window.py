"""How item2vec should spend its context pairs: whole-history window vs bounded windows vs epochs.

Protocol: the leaderboard's (strong generalisation, ``n_heldout=0.1``, ratings ≥ 4). Each
variant is fitted on the training users of every split and scored on the validation and test
users; ``pairs/epoch`` × ``epochs`` is the work (context pairs) of the fit.

Run on 2026-12-01, seed 0, validation Recall@20 (a shared 2-core machine under heavy load, so
fit seconds are only comparable within a row group): whole-history window 50 epochs (the
default) 0.404, 10 epochs 0.331 at lr 0.05 and 0.340 at lr 0.1, 5 epochs 0.229; sliding
window 5 over shuffled histories 0.131 (5 epochs) and 0.120 (57 epochs, the same pairs as 5
whole epochs), window 20 0.127, window 50 0.179, time-ordered window 5 0.171. A per-epoch cap
that cut histories into pieces (an intermediate version, now the single-epoch fallback of
``max_pairs``) reached 0.155 / 0.193 at 30 / 60 pairs per interaction and 5 epochs. Every
cheaper way to spend pairs ranked worse than whole-history epochs, hence the default: whole
epochs within a pair budget.

Large data (``synthetic:*``, split like ``bench/scale.py``: 1,000 validation and 1,000 test
users; ``--yardstick`` adds ALS's default fit in CPU seconds, the same run): on
``synthetic:medium`` one epoch over pieces at 39M pairs reached validation Recall@20 0.124 at
lr 0.025, 0.159 at 0.05, 0.168 at 0.1 and 0.098 at 0.2, against 0.143 for a whole epoch
(200M pairs) at 0.025; hence ``pairs_per_interaction=50`` and ``piece_lr=0.1``
(``docs/benchmarks-scale.md``).

Usage::

    OMP_NUM_THREADS=1 python bench/item2vec_window.py ml-100k --seeds 1
    python bench/item2vec_window.py ml-100k --variants defaults --option "window=5;epochs=57"
    python bench/item2vec_window.py synthetic:medium --seeds 1 --yardstick --variants none \
        --option "max_pairs=45000000;lr=0.1"
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np

from tastespace.data import load_dataset
from tastespace.data.splits import strong_generalization
from tastespace.evaluate import evaluate_model
from tastespace.models.item2vec import Item2Vec
from tastespace.models.mf import ALS

MOVIELENS = Path(__file__).resolve().parents[2] / "shared" / "data" / "movielens"

#: ``label → options`` tried around the shipped defaults (``{}``).
VARIANTS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "epochs=10,lr=0.1": dict(epochs=10, lr=0.1),
    "epochs=5": dict(epochs=5),
    "window=5,epochs=5": dict(window=5, epochs=5),
    "window=5,epochs=57": dict(window=5, epochs=57),
    "window=20,epochs=5": dict(window=20, epochs=5),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", nargs="?", default="ml-100k")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--variants", help="labels separated by | (default all)")
    parser.add_argument("--option", action="append", default=[], help="extra variant key=value")
    parser.add_argument("--yardstick", action="store_true", help="ALS's CPU seconds, same run")
    args = parser.parse_args()
    chosen = dict(VARIANTS)
    if args.variants:
        chosen = {k: v for k, v in VARIANTS.items() if k in args.variants.split("|")}
    for extra in args.option:
        options = dict(pair.split("=") for pair in extra.split(";"))
        chosen[extra] = options
    splits = _splits(args.dataset, args.seeds)
    print(f"{args.dataset}: {args.seeds} seeds, {splits[0].train.n_interactions:,} interactions")
    yardstick = _als_cpu_seconds(splits) if args.yardstick else None
    if yardstick:
        print(f"ALS default fit: {yardstick:.1f} CPU s (mean over seeds)")
    print(
        "| variant | val R@20 | test R@20 | test N@100 | fit s | CPU s | ÷ ALS CPU | epochs "
        "| pairs/epoch |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for label, options in chosen.items():
        val, test, ndcg, seconds, cpu, pairs, epochs = [], [], [], [], [], [], 0
        for seed, split in enumerate(splits):
            started, used = time.perf_counter(), _cpu()
            model = Item2Vec(seed=seed, **options).fit(split.train)
            seconds.append(time.perf_counter() - started)
            cpu.append(_cpu() - used)
            pairs.append(model.pairs_per_epoch_)
            epochs = model.epochs_
            val.append(evaluate_model(model, split.validation)["recall@20"])
            scores = evaluate_model(model, split.test)
            test.append(scores["recall@20"])
            ndcg.append(scores["ndcg@100"])
        ratio = f"{np.mean(cpu) / yardstick:.2f}" if yardstick else "-"
        print(
            f"| {label} | {np.mean(val):.3f} | {np.mean(test):.3f} ± {np.std(test):.3f} | "
            f"{np.mean(ndcg):.3f} | {np.mean(seconds):.1f} | {np.mean(cpu):.1f} | {ratio} | "
            f"{epochs} | {np.mean(pairs):,.0f} |",
            flush=True,
        )


def _splits(name: str, seeds: int) -> list[Any]:
    """MovieLens as the leaderboard splits it; synthetic sets as bench/scale.py does."""
    if name.startswith("synthetic:"):
        ds = load_dataset(name)
        return [strong_generalization(ds, n_heldout=1000, seed=s) for s in range(seeds)]
    ds = load_dataset(MOVIELENS / f"{name}.zip", min_rating=4)
    return [strong_generalization(ds, n_heldout=0.1, seed=s) for s in range(seeds)]


def _als_cpu_seconds(splits: list[Any]) -> float:
    """ALS's default fit in CPU seconds: the yardstick, robust to a shared machine's load."""
    spent = []
    for split in splits:
        used = _cpu()
        ALS().fit(split.train)
        spent.append(_cpu() - used)
    return float(np.mean(spent))


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    main()
