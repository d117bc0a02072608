"""Choose the ``als`` and ``bpr`` defaults on validation users, with EASE as the bar.

Protocol: ``load_dataset(zip, min_rating=4)`` then ``strong_generalization(ds, n_heldout=0.1,
seed=s)`` for each seed; every model trains on the seed's train users. A configuration is chosen
on the *validation* users' Recall@20 (mean over seeds and datasets, since one default must serve
both); the table reports the *test* users' Recall@20 and NDCG@100 of what was chosen.

Stages:

1. EASE, l2 tuned per dataset on validation: the bar.
2. ALS: a grid over factors × regularization × alpha (15 iterations); the smallest ``factors``
   within :data:`FACTORS_TOLERANCE` of the best wins (gains that small are far below the
   seed-to-seed spread, printed as "(sd)"); then regularization and alpha refined ×½ / ×2
   around the choice, then iterations.
3. BPR: a grid over factors × regularization × iterations (learning rate 0.01), each fit scored
   with every fold-in of :data:`FOLD_INS` (the BPR objective at 1 / 3 steps, least squares at
   five ridges); the (configuration, fold-in) pair is chosen jointly, factors by the same rule;
   then the learning rate.
4. ``ALS()`` and ``BPR()`` with no options: what ``tastespace fit --model als|bpr`` trains.

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

from tastespace.data import load_dataset
from tastespace.data.splits import StrongSplit, strong_generalization
from tastespace.evaluate import evaluate_model
from tastespace.models.baselines import EASE
from tastespace.models.mf import ALS, BPR

MOVIELENS = Path(__file__).resolve().parents[2] / "shared" / "data" / "movielens"
CHOICE = "recall@20"
#: ALS factors: the smallest count within this share of the best validation score wins.
FACTORS_TOLERANCE = 0.005

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


def mean_val(by_data: dict[str, list[Row]]) -> float:
    """Validation score averaged over seeds, then over datasets."""
    return float(np.mean([np.mean([r["val"] for r in rows]) for rows in by_data.values()]))


def best(
    results: dict[tuple, dict[str, list[Row]]],
    cost: Callable[[tuple], float] | None = None,
    tolerance: float = 0.0,
) -> tuple:
    """The key with the best mean validation score.

    With ``cost``: the cheapest key among those within ``tolerance`` (relative) of the best, so
    a noise-level gain does not buy a costlier model.
    """
    top = max(mean_val(v) for v in results.values())
    near = [k for k, v in results.items() if mean_val(v) >= (1 - tolerance) * top]
    if cost is not None:
        return min(near, key=lambda k: (cost(k), -mean_val(results[k])))
    return max(near, key=lambda k: mean_val(results[k]))


def table(title: str, rows: list[tuple[str, str, dict[str, list[Row]]]]) -> None:
    print(f"\n{title}")
    header = (
        f"{'model':<44}{'dataset':<17}{'val R@20':>9}{'(sd)':>7}{'test R@20':>10}{'NDCG@100':>9}"
    )
    print(header + f"{'fit s':>7}  config")
    print("-" * (len(header) + 40))
    for name, config, by_data in rows:
        for data, runs in by_data.items():
            mean = {
                k: float(np.mean([r[k] for r in runs])) for k in ("val", "r20", "n100", "fit_s")
            }
            print(
                f"{name:<44}{data:<17}{mean['val']:>9.4f}{np.std([r['val'] for r in runs]):>7.3f}"
                f"{mean['r20']:>10.4f}{mean['n100']:>9.4f}"
                f"{mean['fit_s']:>7.1f}  {config}"
            )


# -- BPR fold-ins ---------------------------------------------------------------------------------
FOLD_INS: dict[str, dict[str, Any]] = {
    "objective, 1 step": {"fold_in": "objective", "fold_in_steps": 1},
    "objective, 3 steps": {"fold_in": "objective", "fold_in_steps": 3},
    "least squares, l2=0.003": {"fold_in": "least_squares", "fold_in_l2": 0.003},
    "least squares, l2=0.01": {"fold_in": "least_squares", "fold_in_l2": 0.01},
    "least squares, l2=0.03": {"fold_in": "least_squares", "fold_in_l2": 0.03},
    "least squares, l2=0.1": {"fold_in": "least_squares", "fold_in_l2": 0.1},
    "least squares, l2=0.3": {"fold_in": "least_squares", "fold_in_l2": 0.3},
}


def bpr_variants(model: BPR, split: StrongSplit) -> dict[str, Row]:
    """One fitted BPR scored with each fold-in of :data:`FOLD_INS` (fold-in reads only the
    item side, so switching the option needs no refit)."""
    fitted = model.config
    rows = {}
    for name, options in FOLD_INS.items():
        model.config = dataclasses.replace(fitted, **options)
        model._projection = None
        rows[name] = scored(model, split)
    model.config = fitted
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", nargs="+", default=["ml-100k", "ml-latest-small"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--quick", action="store_true", help="A small grid (smoke run).")
    parser.add_argument("--skip", nargs="*", default=[], choices=["ease", "als", "bpr", "defaults"])
    args = parser.parse_args()
    started = time.perf_counter()
    splits = split_all(args.data, args.seeds)

    rows = []
    if "ease" not in args.skip:
        print("Stage 1 — EASE (l2 on validation, per dataset)", flush=True)
        ease = grid("ease", {"l2": [30.0, 100.0, 300.0, 1000.0]}, EASE, splits)
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
        # Factors: the smallest within FACTORS_TOLERANCE of the best (see the module docstring).
        chosen = dict(zip(space, best(als, lambda k: k[1], FACTORS_TOLERANCE)[1:], strict=True))
        reg, alpha = chosen["regularization"], chosen["alpha"]
        print(f"  coarse choice {chosen}; refining regularization and alpha", flush=True)
        fine = grid(
            "als",
            {"regularization": [reg / 2, reg, reg * 2], "alpha": [alpha / 2, alpha, alpha * 2]},
            ALS,
            splits,
            fixed={"factors": chosen["factors"], "iterations": 15, "num_threads": 2},
        )
        chosen["regularization"], chosen["alpha"] = best(fine)[1:]
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
            {"factors": [64], "regularization": [0.01, 0.03], "iterations": [30, 100]}
            if args.quick
            else {"factors": [64, 128], "regularization": [0.01, 0.03], "iterations": [15, 30, 100]}
        )
        bpr = grid("bpr", space, BPR, splits, {"learning_rate": 0.01}, bpr_variants)
        key = best(bpr, lambda k: k[1], FACTORS_TOLERANCE)  # k = (fold-in, factors, ...)
        chosen_bpr = {**dict(zip(space, key[1:], strict=True)), **FOLD_INS[key[0]]}
        print(f"  choice {chosen_bpr}; now the learning rate", flush=True)
        config = {k: v for k, v in chosen_bpr.items() if k in space}
        rates = grid(
            "bpr", {"learning_rate": [0.005, 0.01, 0.02]}, BPR, splits, config, bpr_variants
        )
        rates = {k: v for k, v in rates.items() if k[0] == key[0]}
        chosen_bpr["learning_rate"] = best(rates)[1]
        by_fold_in = [
            (f"BPR, {k[0]}", str(dict(zip(space, k[1:], strict=True))), bpr[k])
            for k in bpr
            if k[1:] == key[1:]
        ]
        table(f"BPR fold-ins at the chosen {dict(zip(space, key[1:], strict=True))}", by_fold_in)
        rows.append(("BPR chosen", str(chosen_bpr), rates[(key[0], chosen_bpr["learning_rate"])]))
        implicit = {"factors": 100, "learning_rate": 0.01, "regularization": 0.01}
        plain = grid("bpr", {"iterations": [100]}, BPR, splits, implicit, bpr_variants)
        rows.append((f"BPR, implicit's defaults, {key[0]}", str(implicit), plain[(key[0], 100)]))

    if "defaults" not in args.skip:
        print("\nStage 4 — the library defaults, as `tastespace fit` uses them", flush=True)
        for name, cls in (("ALS()", ALS), ("BPR()", BPR)):
            rows.append((f"{name} defaults", "", grid(name, {"seed": [0]}, cls, splits)[("", 0)]))

    table(f"Summary — test users, mean over seeds {args.seeds}", rows)
    print(f"\ntotal {time.perf_counter() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main()
