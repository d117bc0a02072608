"""Choose (and justify) the defaults of item2vec, GloVe and PPMI-SVD against EASE.

Protocol: strong generalisation (``n_heldout=0.1``, ratings ≥ 4), one split seed. Each model
runs its shipped defaults (``scoring=knn`` rows rescore the same vectors) plus a few
variations around them; the variation with the best *validation* NDCG@100 is what the
defaults should be, and the *test* columns say how the shipped defaults do against EASE on
users nobody tuned on. ``gensim-defaults`` is gensim's own configuration (window 5, 5 epochs,
100 dims, ns_exponent 0.75), the number the issue starts from.

Usage::

    OMP_NUM_THREADS=1 python bench/cooccurrence_defaults.py                # both datasets
    OMP_NUM_THREADS=1 python bench/cooccurrence_defaults.py --quick ml-100k  # defaults only
    python bench/cooccurrence_defaults.py ml-latest-small --no-baseline --models glove

``OMP_NUM_THREADS=1`` matters on a shared 2-core machine: multi-threaded BLAS spin-waits under
contention and runs several times slower. The real MovieLens zips are read from
``../shared/data/movielens`` (never copied into the repo).

Last run (2026-11-25, seed 0, test users; 94 of them on ml-100k, 61 on ml-latest-small, so
differences below ~0.03 are noise)::

    dataset          model      R@20   N@100
    ml-100k          EASE       0.390  0.464
    ml-100k          item2vec   0.367  0.425
    ml-100k          GloVe      0.337  0.397
    ml-100k          PPMI-SVD   0.323  0.408
    ml-latest-small  EASE       0.324  0.363
    ml-latest-small  item2vec   0.226  0.281
    ml-latest-small  GloVe      0.224  0.280
    ml-latest-small  PPMI-SVD   0.261  0.327

The full grid took ~35 min for ml-100k and ~60 min for ml-latest-small on a heavily shared
2-core machine; item2vec's whole-history window dominates (ml-100k ~5 min, ml-latest-small
~13 min per fit there).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from tastespace.data import load_dataset
from tastespace.data.splits import strong_generalization
from tastespace.evaluate import evaluate_model
from tastespace.models.baselines import EASE
from tastespace.models.cooccurrence import PPMISVD, GloVe
from tastespace.models.item2vec import Item2Vec

MOVIELENS = Path(__file__).resolve().parents[2] / "shared" / "data" / "movielens"

#: Variations around each model's shipped defaults (``{}``); knn rows rescore the defaults.
GRID: dict[type, list[tuple[str, dict[str, Any]]]] = {
    Item2Vec: [
        ("gensim-defaults", dict(dim=100, window=5, epochs=5, ns_exponent=0.75, center=False)),
        ("ns_exponent=0.75", dict(ns_exponent=0.75)),
        ("ns_exponent=-0.5", dict(ns_exponent=-0.5)),
        ("center=false", dict(center=False)),
        ("epochs=20", dict(epochs=20)),
    ],
    GloVe: [
        ("epochs=5", dict(epochs=5)),
        ("epochs=30", dict(epochs=30)),
        ("dim=128", dict(dim=128)),
        ("x_max=30", dict(x_max=30.0)),
        ("center=true", dict(center=True)),
    ],
    PPMISVD: [
        ("dim=128", dict(dim=128)),
        ("dim=512", dict(dim=512)),
        ("smoothing=1.0", dict(smoothing=1.0)),
        ("eigen_power=1", dict(eigen_power=1.0)),
        ("shift=2", dict(shift=2.0)),
        ("normalize=false", dict(normalize=False)),
    ],
}


def run(
    dataset: str,
    quick: bool,
    seed: int,
    kinds: set[str],
    no_baseline: bool,
    only: set[str] | None = None,
) -> list[dict[str, Any]]:
    ds = load_dataset(MOVIELENS / f"{dataset}.zip")
    split = strong_generalization(ds, n_heldout=0.1, seed=seed, min_rating=4)
    rows = []

    def report(model: Any, fit_s: float, label: str) -> None:
        val = evaluate_model(model, split.validation)
        test = evaluate_model(model, split.test)
        rows.append(
            dict(
                dataset=dataset,
                model=model.kind,
                variant=label,
                val_r20=val["recall@20"],
                val_n100=val["ndcg@100"],
                test_r20=test["recall@20"],
                test_n100=test["ndcg@100"],
                fit_s=fit_s,
            )
        )
        print(_line(rows[-1]), flush=True)

    def fit(cls: type, options: dict[str, Any]) -> tuple[Any, float]:
        started = time.perf_counter()
        model = cls(seed=seed, **options).fit(split.train)
        return model, time.perf_counter() - started

    if not no_baseline:
        report(*fit(EASE, {}), "defaults")
    for cls, variants in GRID.items():
        if cls.kind not in kinds:
            continue
        model, fit_s = fit(cls, {})
        report(model, fit_s, "defaults")
        report(model.rescored(scoring="knn"), 0.0, "scoring=knn")
        for label, options in [] if quick else variants:
            if only is None or label in only:
                report(*fit(cls, options), label)
    return rows


def _line(row: dict[str, Any]) -> str:
    return (
        f"| {row['dataset']:<15} | {row['model']:<8} | {row['variant']:<20} | "
        f"{row['val_r20']:.3f} | {row['val_n100']:.3f} | {row['test_r20']:.3f} | "
        f"{row['test_n100']:.3f} | {row['fit_s']:7.1f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", nargs="*", default=["ml-100k", "ml-latest-small"])
    parser.add_argument("--quick", action="store_true", help="EASE and the defaults only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-baseline", action="store_true", help="skip EASE")
    parser.add_argument("--variants", help="comma-separated variant labels to run (default all)")
    parser.add_argument("--models", default="item2vec,glove,ppmi-svd", help="comma-separated")
    args = parser.parse_args()
    kinds = set(args.models.split(","))
    print(
        "| dataset         | model    | variant              | val R@20 | val N@100 | "
        "test R@20 | test N@100 | fit s |"
    )
    print("|" + "---|" * 8)
    rows = []
    for dataset in args.datasets:
        only = set(args.variants.split(",")) if args.variants else None
        rows += run(dataset, args.quick, args.seed, kinds, args.no_baseline, only)
    print("\nbest variant per model by validation NDCG@100:")
    for dataset in args.datasets:
        for kind in ("item2vec", "glove", "ppmi-svd"):
            mine = [r for r in rows if r["dataset"] == dataset and r["model"] == kind]
            if mine:
                best = max(mine, key=lambda r: r["val_n100"])
                print(f"  {dataset:<15} {kind:<8} {best['variant']}")


if __name__ == "__main__":
    main()
