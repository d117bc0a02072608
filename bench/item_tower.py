"""How should a warm item's ID meet its features? ``item_tower`` free / concat / sum, measured.

Usage: python bench/item_tower.py [ZIPS ...] [--seeds 3] [--forms free concat sum] [--json F]
       [--threads 1] [--from-json F]

Per dataset and seed, every form is fitted on the identical splits (ratings >= 4):

1. Warm: strong generalisation (10 % of users for validation, 10 % for test); test Recall@20
   and NDCG@20, and the share of held-out targets found in the top 20 by the target's
   popularity bucket (head = top 20 % of items by training interactions, torso = next 30 %,
   tail = the rest; :func:`tastespace.evaluate.insight.recall_by_item_popularity`, the numbers
   ``tastespace report`` shows), and Recall@20 with each bucket's warm items ranked among
   themselves (a catalog-wide top 20 almost never reaches the tail;
   :func:`~tastespace.evaluate.insight.recall_within_buckets`). "cos" is the mean cosine
   between a warm item's vector and its features-only vector (``embed_items``): how much the
   features shape warm items.
2. Cold start: 10 % of items held out of training (:mod:`tastespace.evaluate.coldstart`),
   Recall@20 among the cold items from features alone.

Rows are means ± sample std over seeds; "tail within × free" is the row's tail Recall@20
(within the bucket) over the ``free`` row's, same dataset, same run. Prints the load average
so a reader can judge the times.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from tastespace.data import load_dataset
from tastespace.data.splits import strong_generalization
from tastespace.evaluate.coldstart import cold_start_metrics, cold_start_split
from tastespace.evaluate.insight import (
    BUCKETS,
    item_counts,
    recall_by_item_popularity,
    recall_within_buckets,
)
from tastespace.evaluate.protocol import evaluate_model
from tastespace.models.neural import NeuralRecommender

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "movielens"
FORMS = ("free", "concat", "sum")
COLUMNS = (
    "recall@20",
    "ndcg@20",
    *(f"{b} hit@20" for b in BUCKETS),
    *(f"{b} R@20 within" for b in BUCKETS),
    "cold recall@20",
)


def warm_run(form: str, split, seed: int) -> dict[str, float]:
    """Test metrics overall and by popularity bucket for one fit on the warm split."""
    started = time.perf_counter()
    model = NeuralRecommender(item_tower=form, seed=seed).fit(split.train, split.validation)
    seconds = time.perf_counter() - started
    run = evaluate_model(model, split.test, cutoffs=(20,))
    out = {"recall@20": run["recall@20"], "ndcg@20": run["ndcg@20"], "fit s": seconds}
    keep = np.diff(split.test.targets.indptr) > 0
    fold_in, targets = split.test.fold_in[keep], split.test.targets[keep]
    ranked, _ = model.recommend(fold_in, k=20, exact=True)
    counts = item_counts(split.train.interactions)
    for bucket, row in recall_by_item_popularity(ranked, targets, counts).items():
        out[f"{bucket} hit@20"] = row["hit@20"]
    scores = model.score(fold_in)
    for bucket, row in recall_within_buckets(scores, fold_in, targets, counts).items():
        out[f"{bucket} R@20 within"] = row["recall@20"]
        out[f"{bucket} users"] = row["users"]
    warm = counts > 0
    vectors = model.item_vectors()[warm]
    content = model.embed_items(split.train.items.take(np.flatnonzero(warm)))[0]
    cosine = (vectors * content).sum(1) / (
        np.linalg.norm(vectors, axis=1) * np.linalg.norm(content, axis=1) + 1e-12
    )
    out["cos"] = float(cosine.mean())
    return out


def cold_run(form: str, split, seed: int) -> float:
    model = NeuralRecommender(item_tower=form, seed=seed).fit(split.train)
    scores = model.score(split.fold_in)[:, split.cold_items]
    return cold_start_metrics(scores, split.targets)["recall@20"]


def measure(path: Path, seeds: list[int], forms: list[str], console: Console) -> dict:
    """``{form: [one dict per seed]}`` for one dataset."""
    dataset = load_dataset(path, min_rating=4)
    runs: dict[str, list[dict[str, float]]] = {form: [] for form in forms}
    for seed in seeds:
        warm = strong_generalization(dataset, n_heldout=0.1, seed=seed)
        cold = cold_start_split(dataset, fraction=0.1, n_heldout=0.1, seed=seed)
        for form in forms:
            run = warm_run(form, warm, seed)
            run["cold recall@20"] = cold_run(form, cold, seed)
            runs[form].append(run)
            console.log(
                f"{path.stem} seed {seed} {form}: "
                + ", ".join(f"{k} {v:.3f}" for k, v in run.items())
            )
    return runs


def summary(values: list[float]) -> tuple[float, float]:
    array = np.asarray(values, dtype=np.float64)
    return float(array.mean()), float(array.std(ddof=1)) if len(array) > 1 else 0.0


def render(name: str, runs: dict, console: Console) -> list[str]:
    """A rich table and the same rows as markdown lines."""
    baseline = runs.get("free")
    headers = ["item_tower", *COLUMNS, "tail within × free", "cos", "fit s"]
    table = Table(title=f"{name}: item_tower, {len(next(iter(runs.values())))} seeds")
    for header in headers:
        table.add_column(header)
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for form, rows in runs.items():
        cells = [form]
        for column in COLUMNS:
            mean, sd = summary([row.get(column, np.nan) for row in rows])
            cells.append(f"{mean:.3f} ± {sd:.3f}")
        tail = summary([row["tail R@20 within"] for row in rows])[0]
        base = summary([row["tail R@20 within"] for row in baseline])[0] if baseline else 0.0
        cells.append(f"{tail / base:.2f}" if base > 0 else "-")
        cells.append(f"{summary([row['cos'] for row in rows])[0]:.2f}")
        cells.append(f"{summary([row['fit s'] for row in rows])[0]:.0f}")
        table.add_row(*cells)
        lines.append("| " + " | ".join(cells) + " |")
    console.print(table)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("zips", nargs="*", type=Path)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--forms", nargs="+", default=list(FORMS), choices=FORMS)
    parser.add_argument("--json", type=Path, help="also write every run's figures here")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per fit")
    parser.add_argument("--from-json", type=Path, help="print the tables of a saved --json run")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    console = Console(width=200)
    paths = args.zips or [
        p for p in (SHARED / "ml-100k.zip", SHARED / "ml-latest-small.zip") if p.exists()
    ]
    load_before = os.getloadavg()
    results = json.loads(args.from_json.read_text()) if args.from_json else {}
    lines: list[str] = []
    for path in [] if args.from_json else paths:
        results[path.stem] = measure(path, list(range(args.seeds)), args.forms, console)
        if args.json:  # written as each dataset finishes, so a later failure loses nothing
            args.json.write_text(json.dumps(results, indent=1))
    for name, runs in results.items():
        lines += [f"**{name}**", "", *render(name, runs, console), ""]
    load_after = os.getloadavg()
    lines.append(
        f"load average (1/5/15 min) before {load_before[0]:.1f}/{load_before[1]:.1f}/"
        f"{load_before[2]:.1f}, after {load_after[0]:.1f}/{load_after[1]:.1f}/{load_after[2]:.1f}"
    )
    console.print("\n".join(lines), markup=False)


if __name__ == "__main__":
    main()
