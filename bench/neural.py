"""Benchmark the neural two-tower model against popularity and EASE, plus cold start and speed.

Usage: python bench/neural.py [EXTRA_MOVIELENS_ZIPS ...] [--seeds 3] [--skip-speed] [--markdown]

1. Quality: strong generalisation (ratings >= 4, 10 % of users for validation and 10 % for test),
   averaged over seeds, on ml-100k, ml-latest-small and any zip given. EASE's l2 is tuned on
   validation users in the same run. Target: neural >= EASE - 3 % on Recall@20 and NDCG@100.
   ALS runs beside them as the low-rank reference with an exact fold-in (docs/neural.md, fifth
   and sixth rounds: the neural model's gap on ml-latest-small was its amortised encoder).
   The reference figures in docs/neural.md use --seeds 6: on ml-latest-small a 3-seed ratio
   moves by several points with the seeds chosen.
2. Cold start: 10 % of items removed from training; their Recall@20 among cold items when they
   are the targets, neural (features only) vs a popularity-within-genre baseline.
3. Speed: fit seconds and peak memory on a ~1M-interaction synthetic set (target <= 60 s, 2 cores).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from tastespace.data import load_dataset
from tastespace.evaluate.coldstart import (
    cold_start_metrics,
    cold_start_split,
    genre_popularity_scores,
)
from tastespace.evaluate.leaderboard import format_stat, run_leaderboard
from tastespace.evaluate.memory import PeakMemory
from tastespace.models.neural import NeuralRecommender

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "movielens"
TARGET_GAP = 0.03


def quality(console: Console, path: Path, seeds: tuple[int, ...]) -> list[str]:
    ds = load_dataset(path)
    board = run_leaderboard(
        ds,
        ["neural", "ease", "als", "popularity"],
        seeds=seeds,
        min_rating=4,
        progress=lambda line: console.log(f"{path.stem} {line}"),
    )
    table = Table(
        title=f"{path.stem}: strong generalisation, {len(seeds)} seeds ({board.seconds:.0f} s)"
    )
    for column in ("model", "Recall@20", "Recall@50", "NDCG@100", "fit s", "peak MiB"):
        table.add_column(column)
    lines = []
    for row in board.sorted_by("recall@20"):
        cells = [
            row.name,
            format_stat(row.stats("recall@20")),
            format_stat(row.stats("recall@50")),
            format_stat(row.stats("ndcg@100")),
            f"{row.mean('fit_seconds'):.1f}",
            f"{row.mean('peak_rss_mib'):.0f}",
        ]
        table.add_row(*cells)
        lines.append("| " + " | ".join(cells) + " |")
    console.print(table)
    neural, ease = board.row("neural"), board.row("ease")
    for metric in ("recall@20", "ndcg@100"):
        ratio = neural.mean(metric) / ease.mean(metric)
        verdict = "met" if ratio >= 1 - TARGET_GAP else "MISSED"
        console.print(
            f"neural / EASE {metric}: {ratio:.3f} (target >= {1 - TARGET_GAP:.2f}: {verdict})"
        )
        lines.append(f"neural / EASE {metric}: {ratio:.3f} ({verdict})")
    return lines


def cold_start(console: Console, path: Path, seed: int = 0) -> str:
    ds = load_dataset(path, min_rating=4)
    split = cold_start_split(ds, fraction=0.1, seed=seed)
    model = NeuralRecommender(seed=seed).fit(split.train)
    ours = cold_start_metrics(model.score(split.fold_in)[:, split.cold_items], split.targets)
    base = cold_start_metrics(
        genre_popularity_scores(split.train, split.fold_in, split.cold_items), split.targets
    )
    line = (
        f"{path.stem}: {len(split.cold_items)} cold items, {ours['users']:.0f} users — "
        f"neural Recall@20 {ours['recall@20']:.3f} vs genre-popularity {base['recall@20']:.3f} "
        f"(×{ours['recall@20'] / max(base['recall@20'], 1e-9):.2f})"
    )
    console.print(line)
    return line


def speed(console: Console) -> str:
    ds = load_dataset("synthetic:medium")
    started = time.perf_counter()
    with PeakMemory() as memory:
        model = NeuralRecommender().fit(ds)
    seconds = time.perf_counter() - started
    line = (
        f"synthetic medium ({ds.n_interactions:,} interactions): fit {seconds:.1f} s "
        f"({model.train_report_.epochs_run} epochs, best {model.train_report_.best_epoch}), "
        f"peak +{memory.delta_mib:.0f} MiB (target <= 60 s)"
    )
    console.print(line)
    return line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("zips", nargs="*", type=Path)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--markdown", action="store_true", help="also print markdown lines")
    args = parser.parse_args()
    console = Console()
    paths = [p for p in (SHARED / "ml-100k.zip", SHARED / "ml-latest-small.zip") if p.exists()]
    paths += args.zips
    lines: list[str] = []
    for path in [] if args.skip_quality else paths:
        lines += quality(console, path, tuple(range(args.seeds)))
    for path in paths:
        lines.append(cold_start(console, path))
    if not args.skip_speed:
        lines.append(speed(console))
    if args.markdown:
        console.print("\n".join(lines), markup=False)


if __name__ == "__main__":
    main()
