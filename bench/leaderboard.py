"""tastespace's own leaderboard on real MovieLens: every registry model, the Mult-VAE protocol.

What it runs: :func:`tastespace.evaluate.leaderboard.run_leaderboard` (strong generalisation,
ratings ≥ 4 as positives, ~10 % of users for validation and ~10 % for test, 3 seeds; EASE's l2
chosen on validation users) on each dataset, and prints one Markdown table per dataset with
mean ± sample std over seeds, the per-row fit seconds and peak RSS added during fit, and the
wall time of the whole run. ``bench/peers.py`` adds the peer libraries to the same table.

Usage::

    python bench/leaderboard.py                                  # ml-100k + ml-latest-small
    python bench/leaderboard.py --data ml-100k --models ease,als --seeds 1
    python bench/leaderboard.py --png docs/img/leaderboard-{name}.png --json board.json

Datasets are the GroupLens zips in ``../shared/data/movielens`` (never copied into the repo);
a name without a path means ``<that folder>/<name>.zip``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MOVIELENS = ROOT.parent / "shared" / "data" / "movielens"
DATASETS = ("ml-100k", "ml-latest-small")
COLUMNS = (
    ("recall@20", "R@20"),
    ("recall@50", "R@50"),
    ("ndcg@100", "NDCG@100"),
    ("mrr@20", "MRR@20"),
    ("coverage@20", "cov@20"),
    ("diversity@20", "div@20"),
)


def dataset_path(name: str) -> Path:
    """``ml-100k`` → the shared zip; anything with a slash or suffix is taken as a path."""
    path = Path(name)
    if path.suffix or "/" in name:
        return path
    return MOVIELENS / f"{name}.zip"


def load(name: str, min_rating: float = 4.0) -> Any:
    from tastespace.data import load_dataset

    path = dataset_path(name)
    if not path.exists():
        raise SystemExit(f"{path} not found (real MovieLens zips live in {MOVIELENS})")
    return load_dataset(path, min_rating=min_rating)


def machine() -> str:
    """One line saying where the numbers came from."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}"


def cell(stats: dict[str, float], digits: int = 3) -> str:
    if math.isnan(stats["mean"]):
        return "–"
    return f"{stats['mean']:.{digits}f} ± {stats['std']:.{digits}f}"


def markdown_table(board: Any) -> str:
    """The leaderboard as Markdown: metrics as mean ± std, then fit s, peak MiB, the options."""
    metrics = [(key, label) for key, label in COLUMNS if key in board.metrics()]
    head = ["model", "source", *(label for _, label in metrics), "fit s", "peak MiB", "chosen"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for row in board.sorted_by("recall@20"):
        name = f"**{row.name}**" if row.source == "tastespace" else row.name
        if not row.runs:
            lines.append(f"| {name} | {row.source} | failed: {row.error} |")
            continue
        fit = row.stats("fit_seconds")
        rss = row.stats("peak_rss_mib")
        chosen = _chosen(row)
        lines.append(
            "| "
            + " | ".join(
                [
                    name,
                    row.source,
                    *(cell(row.stats(key)) for key, _ in metrics),
                    f"{fit['mean']:.1f} ± {fit['std']:.1f}",
                    "–" if math.isnan(rss["mean"]) else f"{rss['mean']:.0f}",
                    chosen,
                ]
            )
            + " |"
        )
    return "\n".join(lines)


def _chosen(row: Any) -> str:
    """Grid values picked per seed, e.g. ``l2=300/300/1000`` (empty when nothing was tuned)."""
    tuned = [run for run in row.runs if run.validation_score is not None]
    if not tuned:
        return ""
    keys = list(tuned[0].params)[:2]
    return ", ".join(f"{k}=" + "/".join(_short(r.params.get(k)) for r in tuned) for k in keys)


def _short(value: Any) -> str:
    return f"{value:g}" if isinstance(value, int | float) else str(value)


def summary_lines(board: Any) -> list[str]:
    best_ts = [r for r in board.sorted_by("recall@20") if r.source == "tastespace" and r.runs]
    best_peer = [r for r in board.sorted_by("recall@20") if r.source == "peer" and r.runs]
    lines = [
        f"{board.dataset}: {len(board.protocol['seeds'])} seeds, n_heldout="
        f"{board.protocol['n_heldout']}, {board.seconds:.0f} s wall, peak RSS via "
        f"{board.memory_method}"
    ]
    for metric in ("recall@20", "ndcg@100"):
        if best_ts and best_peer:
            ts = max(best_ts, key=lambda r: r.mean(metric))
            peer = max(best_peer, key=lambda r: r.mean(metric))
            a, b = ts.mean(metric), peer.mean(metric)
            verdict = "ties" if abs(a - b) < 1e-9 else "beats" if a > b else "does NOT beat"
            lines.append(
                f"  {metric}: best tastespace {ts.name} {ts.mean(metric):.4f} {verdict} best "
                f"peer {peer.name} {peer.mean(metric):.4f}"
            )
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", nargs="+", default=list(DATASETS))
    parser.add_argument("--models", default="all", help="'all' or a comma list of kinds")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--n-heldout", type=float, default=0.1)
    parser.add_argument("--png", help="chart path; {name} is replaced by the dataset name")
    parser.add_argument("--json", help="write every leaderboard as one JSON document here")
    args = parser.parse_args(argv)

    from tastespace.evaluate.leaderboard import run_leaderboard
    from tastespace.models.registry import available_models

    models = available_models() if args.models == "all" else args.models.split(",")
    print(f"machine: {machine()}\nmodels: {', '.join(models)}\n", flush=True)
    documents = []
    for name in args.data:
        dataset = load(name)
        started = time.perf_counter()
        board = run_leaderboard(
            dataset,
            models,
            seeds=tuple(range(args.seeds)),
            n_heldout=args.n_heldout,
            progress=lambda line, started=started: print(
                f"  [{time.perf_counter() - started:5.0f} s] {line}", file=sys.stderr, flush=True
            ),
        )
        print(f"\n### {dataset.name}\n\n{markdown_table(board)}\n")
        print("\n".join(summary_lines(board)) + "\n", flush=True)
        if args.png:
            from tastespace.evaluate.chart import plot_leaderboard

            print(f"chart → {plot_leaderboard(board, args.png.format(name=name))}")
        documents.append(board.to_json())
    if args.json:
        Path(args.json).write_text(
            json.dumps({"machine": machine(), "boards": documents}, indent=1, default=str)
        )


if __name__ == "__main__":
    main()
