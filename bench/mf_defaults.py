"""Choose the ``als`` and ``bpr`` defaults on validation users, with EASE as the bar.

Protocol: ``load_dataset(zip, min_rating=4)`` then ``strong_generalization(ds, n_heldout=0.1,
seed=s)`` for each seed; every model trains on the seed's train users. A configuration is chosen
on the *validation* users' Recall@20 (mean over seeds and datasets, since one default must serve
both); the table reports the *test* users' Recall@20 and NDCG@100 of what was chosen.

Stages (each prints a table):

1. EASE, l2 tuned per dataset on validation: the bar.
2. ALS grid over factors × regularization × alpha (15 iterations), then iterations at the best.
3. BPR grid over factors × learning rate × regularization × iterations, fold-in by the BPR
   objective (``fold_in_steps`` = 10).
4. BPR fold-in at the chosen BPR configuration: the BPR-objective fold-in with 1–20 steps
   against ridge least squares on the fixed item factors (λ chosen on validation), with the
   bias added to the scores or carried as a factor column (what ``bench/peers.py`` does).

Usage::

    python bench/mf_defaults.py                        # both datasets, seeds 0 1 2
    python bench/mf_defaults.py --data ml-100k --seeds 0 --quick

ALS runs with ``num_threads=2`` here (ALS is deterministic at any thread count); BPR with 1
(its lock-free SGD is not).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from tastespace.data import load_dataset
from tastespace.data.splits import StrongSplit, strong_generalization
from tastespace.evaluate import evaluate_model
from tastespace.index.topk import mask_rows, topk_rows
from tastespace.models.baselines import EASE
from tastespace.models.mf import ALS, BPR

MOVIELENS = Path(__file__).resolve().parents[2] / "shared" / "data" / "movielens"
CHOICE = "recall@20"

Row = dict[str, Any]


def split_all(names: Iterable[str], seeds: Iterable[int]) -> dict[str, list[StrongSplit]]:
    splits = {}
    for name in names:
        ds = load_dataset(MOVIELENS / f"{name}.zip", min_rating=4)
        splits[name] = [strong_generalization(ds, n_heldout=0.1, seed=s) for s in seeds]
    return splits


Variants = Callable[[Any, StrongSplit], dict[str, Row]]


def scored(model: Any, split: StrongSplit) -> Row:
    """Validation Recall@20 and test Recall@20 / NDCG@100 of one fitted model."""
    val = evaluate_model(model, split.validation)
    test = evaluate_model(model, split.test)
    return {"val": val[CHOICE], "r20": test["recall@20"], "n100": test["ndcg@100"]}


def grid(
    label: str,
    space: dict[str, list[Any]],
    factory: Callable[..., Any],
    splits: dict[str, list[StrongSplit]],
    fixed: dict[str, Any] | None = None,
    variants: Variants | None = None,
) -> dict[tuple, dict[str, list[Row]]]:
    """Every point of ``space`` on every dataset and seed: ``{(variant, *point): {data: rows}}``.

    ``variants(model, split)`` scores one fitted model several ways (BPR's fold-ins); by default
    the model is scored as it is, as variant ``""``.
    """
    results: dict[tuple, dict[str, list[Row]]] = defaultdict(lambda: defaultdict(list))
    names = list(space)
    for values in itertools.product(*space.values()):
        config = {**(fixed or {}), **dict(zip(names, values, strict=True))}
        for data, seed_splits in splits.items():
            for split in seed_splits:
                started = time.perf_counter()
                model = factory(**config).fit(split.train)
                fit_s = time.perf_counter() - started
                rows = variants(model, split) if variants else {"": scored(model, split)}
                for name, row in rows.items():
                    results[(name, *values)][data].append({**row, "fit_s": fit_s})
        for key in [k for k in results if k[1:] == values]:
            summary = "  ".join(
                f"{d} {np.mean([r['val'] for r in rows]):.4f}" for d, rows in results[key].items()
            )
            print(f"  {label} {key[0]} {config}: val {CHOICE} {summary}", flush=True)
    return results


def best(results: dict[tuple, dict[str, list[Row]]]) -> tuple:
    """The key with the best validation score, averaged over datasets and seeds."""
    return max(
        results,
        key=lambda p: np.mean([np.mean([r["val"] for r in rows]) for rows in results[p].values()]),
    )


def table(title: str, rows: list[tuple[str, str, dict[str, list[Row]]]]) -> None:
    print(f"\n{title}")
    header = f"{'model':<44}{'dataset':<17}{'val R@20':>9}{'test R@20':>10}{'NDCG@100':>9}"
    print(header + f"{'fit s':>7}  config")
    print("-" * (len(header) + 40))
    for name, config, by_data in rows:
        for data, runs in by_data.items():
            mean = {
                k: float(np.mean([r[k] for r in runs])) for k in ("val", "r20", "n100", "fit_s")
            }
            print(
                f"{name:<44}{data:<17}{mean['val']:>9.4f}{mean['r20']:>10.4f}{mean['n100']:>9.4f}"
                f"{mean['fit_s']:>7.1f}  {config}"
            )


# -- least-squares fold-in for BPR (the alternative to the BPR-objective fold-in) ------------
class LeastSquaresFoldIn:
    """Ridge projection of the binary history on a fitted BPR's item factors.

    ``with_bias_column``: regress on ``[factors, bias]`` and score with the full columns, as a
    user of implicit would (``bench/peers.py``); otherwise regress on the factors and add the
    bias to the scores, like ``BPR.score``.
    """

    def __init__(self, model: BPR, l2: float, with_bias_column: bool) -> None:
        y = model.item_vectors().astype(np.float64)
        if with_bias_column:
            y = np.hstack([y, model.item_bias()[:, None]])
        self.items = y.astype(np.float32)
        self.bias = 0.0 if with_bias_column else model.item_bias()
        gram = y.T @ y + l2 * np.eye(y.shape[1])
        self.projection = np.linalg.solve(gram, y.T).T.astype(np.float32)  # (n_items, d)

    def recommend(self, histories: sp.csr_matrix, k: int, exclude_seen: bool = True):
        binary = (histories > 0).astype(np.float32)
        scores = np.asarray((binary @ self.projection) @ self.items.T + self.bias, np.float32)
        mask_rows(scores, binary if exclude_seen else None)
        return topk_rows(scores, k)


def bpr_variants(model: BPR, split: StrongSplit) -> dict[str, Row]:
    """One fitted BPR scored with each fold-in: the BPR objective at 1 / 3 / 10 steps, and
    ridge least squares (λ chosen on this split's validation users) with the bias added to the
    scores or carried as a factor column."""
    rows = {}
    for steps in (1, 3, 10):
        folded = BPR(dataclasses.replace(model.config, fold_in_steps=steps))
        folded.__dict__.update({k: v for k, v in model.__dict__.items() if k != "config"})
        rows[f"objective {steps:>2} steps"] = scored(folded, split)
    for column in (False, True):
        candidates = [
            (evaluate_model(LeastSquaresFoldIn(model, l2, column), split.validation)[CHOICE], l2)
            for l2 in (0.1, 1.0, 10.0, 100.0)
        ]
        l2 = max(candidates)[1]
        name = "least squares, bias col" if column else "least squares + bias"
        rows[name] = scored(LeastSquaresFoldIn(model, l2, column), split)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", nargs="+", default=["ml-100k", "ml-latest-small"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--quick", action="store_true", help="A small grid (smoke run).")
    parser.add_argument("--skip", nargs="*", default=[], choices=["ease", "als", "bpr"])
    args = parser.parse_args()
    started = time.perf_counter()
    splits = split_all(args.data, args.seeds)

    rows = []
    if "ease" not in args.skip:
        print("Stage 1 — EASE (l2 on validation, per dataset)", flush=True)
        ease = grid("ease", {"l2": [100.0, 300.0, 1000.0]}, EASE, splits)
        for data in args.data:
            key = max(ease, key=lambda k, d=data: np.mean([r["val"] for r in ease[k][d]]))
            rows.append(("EASE (the bar)", f"l2={key[1]:g}", {data: ease[key][data]}))

    if "als" not in args.skip:
        print("\nStage 2 — ALS", flush=True)
        space = (
            {"factors": [64, 128], "regularization": [10.0, 30.0], "alpha": [10.0, 20.0]}
            if args.quick
            else {
                "factors": [64, 128, 256],
                "regularization": [10.0, 30.0, 100.0],
                "alpha": [5.0, 10.0, 20.0],
            }
        )
        als = grid("als", space, ALS, splits, fixed={"iterations": 15, "num_threads": 2})
        chosen = dict(zip(space, best(als)[1:], strict=True))
        its = grid(
            "als", {"iterations": [5, 10, 15, 30]}, ALS, splits, {**chosen, "num_threads": 2}
        )
        chosen["iterations"] = best(its)[1]
        rows.append(("ALS chosen", str(chosen), its[("", chosen["iterations"])]))
        implicit = {"factors": 100, "regularization": 0.01, "alpha": 1.0, "iterations": 15}
        plain = grid("als", {"num_threads": [2]}, ALS, splits, fixed=implicit)
        rows.append(("ALS, implicit's defaults", str(implicit), plain[("", 2)]))

    if "bpr" not in args.skip:
        print("\nStage 3 — BPR (each fit scored with every fold-in)", flush=True)
        space = (
            {"factors": [64], "learning_rate": [0.01, 0.05], "regularization": [0.01]}
            if args.quick
            else {
                "factors": [64, 128],
                "learning_rate": [0.01, 0.05],
                "regularization": [0.001, 0.01],
                "iterations": [100, 300],
            }
        )
        bpr = grid("bpr", space, BPR, splits, variants=bpr_variants)
        key = best(bpr)
        chosen_bpr = dict(zip(space, key[1:], strict=True))
        fold_ins = [k for k in bpr if k[1:] == key[1:]]
        table(
            f"BPR fold-ins at the chosen configuration {chosen_bpr}",
            [(f"BPR, {k[0]}", "", bpr[k]) for k in fold_ins],
        )
        per_fold_in = []
        for fold_in in sorted({k[0] for k in bpr}):
            here = best({k: v for k, v in bpr.items() if k[0] == fold_in})
            per_fold_in.append(
                (f"BPR, {fold_in}", str(dict(zip(space, here[1:], strict=True))), bpr[here])
            )
        table("BPR: each fold-in at its own best configuration", per_fold_in)
        rows.append((f"BPR chosen, {key[0]}", str(chosen_bpr), bpr[key]))
        implicit = {"factors": 100, "learning_rate": 0.01, "regularization": 0.01}
        plain = grid("bpr", {"iterations": [100]}, BPR, splits, implicit, variants=bpr_variants)
        rows.append((f"BPR, implicit's defaults, {key[0]}", str(implicit), plain[(key[0], 100)]))

    table(f"Summary — test users, mean over seeds {args.seeds}", rows)
    print(f"\ntotal {time.perf_counter() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main()
