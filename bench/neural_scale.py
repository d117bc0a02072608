"""Neural training at scale: the model before issue 18 against today's, in the same run.

"before" is the pre-issue-18 training path, still reachable through options: dense Adam over
every table (``sparse_gradients="off"``), the full softmax up to 50k items
(``full_softmax_max_items=50000``) and validation on 5 % of users without a bound
(``validation_max_users=None``). "after" is the default configuration.

Usage::

    python bench/neural_scale.py quality [--seeds 0,1,2]     # ml-100k, ml-latest-small R@20
    python bench/neural_scale.py epoch [--sizes 1M,5M]       # one epoch: train + validation s
    python bench/neural_scale.py tables                      # dense vs catch-up Adam per table
    python bench/neural_scale.py softmax                     # full vs sampled per catalog size
    python bench/neural_scale.py fit --size 5M               # default fit vs ALS (tastespace)
    python bench/neural_scale.py nproc --size 5M             # fit --nproc 1 vs 2 (+ sharded)

Every part prints a Markdown table with ratios against the baseline measured in the same run;
``--json PATH`` also writes the rows. Sizes: 1M = ``synthetic:medium`` (20k × 5k), 5M = 50k
users × 15k items, 20M = ``synthetic:large`` (200k × 30k).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MOVIELENS = ROOT.parent / "shared" / "data" / "movielens"
SIZES = {
    "1M": "synthetic:medium",
    "5M": "synthetic:n_users=50000,n_items=15000,mean_history=100",
    "20M": "synthetic:large",
}
BEFORE = {"sparse_gradients": "off", "full_softmax_max_items": 50_000, "validation_max_users": None}
VARIANTS = {"before": BEFORE, "after": {}}
TABLES = {"dense tables": {"sparse_gradients": "off"}, "sparse tables": {"sparse_gradients": "on"}}
EPOCH_VARIANTS = {**VARIANTS, "all tables sparse": {"sparse_gradients": "on"}}


def machine() -> str:
    cores = os.cpu_count()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{platform.processor() or platform.machine()}, {cores} cores, load average {load:.1f}"


def quality(
    seeds: list[int], threads: int, names: list[str], variants: dict[str, dict]
) -> list[dict[str, Any]]:
    """Recall@20 / NDCG@100 of each variant on the identical splits (strong generalisation)."""
    import torch

    from tastespace.data import load_dataset
    from tastespace.evaluate.leaderboard import run_leaderboard

    rows = []
    for name in names:
        ds = load_dataset(SIZES.get(name) or MOVIELENS / f"{name}.zip")
        models = {f"neural {k}": {"kind": "neural", **v} for k, v in variants.items()}
        torch.set_num_threads(threads)
        board = run_leaderboard(ds, models, seeds=seeds, min_rating=4, progress=print)
        for variant in variants:
            row = board.row(f"neural {variant}")
            rows.append(
                {
                    "data": name,
                    "variant": variant,
                    "recall@20": row.mean("recall@20"),
                    "ndcg@100": row.mean("ndcg@100"),
                    "per_seed_recall@20": row.values("recall@20").round(4).tolist(),
                    "fit_s": row.mean("fit_seconds"),
                }
            )
    print(f"\n| data | variant | R@20 | NDCG@100 | fit s | (seeds {seeds})")
    print("|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['data']} | {row['variant']} | {row['recall@20']:.4f} |"
            f" {row['ndcg@100']:.4f} | {row['fit_s']:.1f} |"
        )
    return rows


def epoch(spec: str, options: dict[str, Any], max_batches: int | None) -> dict[str, Any]:
    """Seconds of one training epoch and of one validation solve, and the peak RSS.

    Runs the model's own training step (its batch maker, forward, backward, optimiser) over a
    seeded shuffle; with ``max_batches`` only that many batches run and the epoch is
    extrapolated from their mean pace (the first, which warms caches, left out).
    """
    import torch

    from tastespace.data import load_dataset
    from tastespace.evaluate.memory import PeakMemory
    from tastespace.models.fitting import recall_at_20
    from tastespace.models.neural import NeuralRecommender
    from tastespace.models.neural.optim import TableAwareAdam

    started = time.perf_counter()
    ds = load_dataset(spec)
    load_s = time.perf_counter() - started
    threads = options.pop("threads", 1)
    model = NeuralRecommender(**options)
    cfg = model.config
    with PeakMemory() as memory:
        torch.set_num_threads(threads)
        model.item_ids_, model.items_ = ds.item_ids, ds.items
        matrix = model._prepare(ds, torch.device("cpu"))
        train_rows, held = model._validation_split(matrix, None, cfg.seed)
        batches = model._batch_maker(ds, matrix, train_rows, torch.device("cpu"))
        optimiser = TableAwareAdam(model.module_, cfg.lr, cfg.weight_decay)
        generator = torch.Generator().manual_seed(cfg.seed)
        order = torch.randperm(len(train_rows), generator=generator).numpy()
        starts = list(range(0, len(order), cfg.batch_size))
        run = starts if max_batches is None else starts[:max_batches]
        stamps = []
        for begin in run:
            loss = model.module_(batches(order[begin : begin + cfg.batch_size], generator))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            stamps.append(time.perf_counter())
        pace = (stamps[-1] - stamps[0]) / max(len(stamps) - 1, 1)
        train_s = pace * len(starts) if len(run) < len(starts) else stamps[-1] - stamps[0] + pace
        flushed = time.perf_counter()
        optimiser.flush()  # the rows' owed updates, as the loop settles them each epoch
        train_s += time.perf_counter() - flushed
        begin = time.perf_counter()
        if held is not None:
            model._validation_score(held[0], held[1], recall_at_20)
        validate_s = time.perf_counter() - begin
    return {
        "data": spec,
        "interactions": ds.n_interactions,
        "load_s": load_s,
        "batches": len(starts),
        "measured_batches": len(run),
        "train_s": train_s,
        "validate_s": validate_s,
        "validation_users": 0 if held is None else held[0].shape[0],
        "epoch_s": train_s + validate_s,
        "peak_mib": memory.peak_mib,
        "sparse_tables": [n for n, m in model.module_.named_modules() if getattr(m, "sparse", 0)],
    }


def epochs(sizes: list[str], threads: int, max_batches: dict[str, int | None]) -> list[dict]:
    rows = []
    for size in sizes:
        for variant, options in EPOCH_VARIANTS.items():
            cap = max_batches.get(f"{size}:{variant}", max_batches.get(size))
            row = epoch(SIZES[size], {"threads": threads, **options}, cap)
            rows.append({"size": size, "variant": variant, **row})
            print(json.dumps(rows[-1]), flush=True)
    print("\n| size | variant | batches | train s | validation s | epoch s | speed-up | peak MiB |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        base = next(r for r in rows if r["size"] == row["size"] and r["variant"] == "before")
        cut = (
            ""
            if row["measured_batches"] == row["batches"]
            else f" (from {row['measured_batches']})"
        )
        print(
            f"| {row['size']} | {row['variant']} | {row['batches']}{cut} | {row['train_s']:.1f} |"
            f" {row['validate_s']:.1f} | {row['epoch_s']:.1f} |"
            f" {base['epoch_s'] / row['epoch_s']:.2f}× | {row['peak_mib']:.0f} |"
        )
    after = [r for r in rows if r["variant"] == "after"]
    if len(after) >= 2:
        x = np.log([r["interactions"] for r in after])
        y = np.log([r["epoch_s"] for r in after])
        print(f"\nafter: epoch time ∝ interactions^{np.polyfit(x, y, 1)[0]:.2f}")
    return rows


def tables(threads: int, steps: int) -> list[dict]:
    """Milliseconds per step of one embedding table, dense Adam vs catch-up Adam, by the share
    of its rows a step reads: where ``SPARSE_MAX_SHARE`` comes from."""
    import torch
    from torch import nn

    from tastespace.models.neural.optim import CatchUpAdam

    torch.set_num_threads(threads)
    rows_out = []
    for n_rows, width in ((20_000, 100), (200_000, 100), (5_000, 600), (30_000, 600)):
        for share in (0.003, 0.01, 0.03, 0.1, 0.3, 1.0):
            ms = {}
            for sparse in (False, True):
                torch.manual_seed(0)
                table = nn.EmbeddingBag(
                    n_rows, width, mode="sum", include_last_offset=True, sparse=sparse
                )
                optimiser = (
                    CatchUpAdam([table], lr=0.01)
                    if sparse
                    else torch.optim.Adam(table.parameters(), lr=0.01, fused=True)
                )
                generator = torch.Generator().manual_seed(0)
                touched = max(1, int(share * n_rows))
                n = max(touched, 2048)
                offsets = torch.linspace(0, n, 257).long()
                times = []
                for _ in range(steps):
                    pool = torch.randperm(n_rows, generator=generator)[:touched]
                    indices = pool[torch.randint(0, touched, (n,), generator=generator)]
                    started = time.perf_counter()
                    optimiser.zero_grad(set_to_none=True)
                    table(indices, offsets).square().sum().backward()
                    optimiser.step()
                    times.append(time.perf_counter() - started)
                ms["catch-up" if sparse else "dense"] = 1000 * float(np.median(times[2:]))
            rows_out.append({"rows": n_rows, "width": width, "share": share, **ms})
            print(json.dumps(rows_out[-1]), flush=True)
    print("\n| table | share of rows read | dense Adam ms | catch-up Adam ms | dense / catch-up |")
    print("|---|---|---|---|---|")
    for row in rows_out:
        print(
            f"| {row['rows']:,} × {row['width']} | {row['share']:.3f} | {row['dense']:.1f} |"
            f" {row['catch-up']:.1f} | {row['dense'] / row['catch-up']:.2f} |"
        )
    return rows_out


def softmax(threads: int, max_batches: int) -> list[dict]:
    """Training seconds per batch, full vs sampled softmax, as the catalog grows."""
    rows = []
    for n_items in (2_000, 5_000, 10_000, 20_000, 30_000):
        spec = f"synthetic:n_users=20000,n_items={n_items},mean_history=50"
        for loss in ("full", "sampled"):
            row = epoch(
                spec, {"threads": threads, "loss": loss, "validation_users": 0.0}, max_batches
            )
            rows.append({"items": n_items, "loss": loss, **row})
            print(json.dumps(rows[-1]), flush=True)
    print("\n| items | full ms/batch | sampled ms/batch | full / sampled |")
    print("|---|---|---|---|")
    for n_items in sorted({r["items"] for r in rows}):
        full, sampled = (
            next(r for r in rows if r["items"] == n_items and r["loss"] == loss)
            for loss in ("full", "sampled")
        )
        ms = [1000 * r["train_s"] / r["batches"] for r in (full, sampled)]
        print(f"| {n_items:,} | {ms[0]:.0f} | {ms[1]:.0f} | {ms[0] / ms[1]:.2f} |")
    return rows


def fit_against_als(size: str, threads: int) -> list[dict]:
    """Whole default fits (early stopping included) of neural and ALS on the same data."""
    from tastespace.data import load_dataset
    from tastespace.evaluate.memory import PeakMemory
    from tastespace.models.fitting import TrainingOptions
    from tastespace.models.registry import model_class

    ds = load_dataset(SIZES[size])
    rows = []
    for kind in ("als", "neural"):
        with PeakMemory() as memory:
            model = model_class(kind)().fit(ds, training=TrainingOptions(threads=threads))
        rows.append({"size": size, "model": kind, "fit_s": model.fit_seconds_})
        rows[-1]["peak_mib"] = memory.peak_mib
        report = getattr(model, "train_report_", None)
        if report is not None:
            rows[-1].update(epochs=report.epochs_run, best_epoch=report.best_epoch)
        print(json.dumps(rows[-1]), flush=True)
    als = rows[0]["fit_s"]
    print("\n| size | model | fit s | × ALS | peak MiB |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {size} | {row['model']} | {row['fit_s']:.0f} | {row['fit_s'] / als:.2f} |"
            f" {row['peak_mib']:.0f} |"
        )
    return rows


def nproc(size: str, epochs_: int) -> list[dict]:
    """``tastespace fit --nproc N`` wall time (loading and saving included): the synthetic
    spec in one process on one thread (as each DDP rank runs) and on every core, and with
    N = 2; then the same interactions as a 16-row-group Parquet file with N = 2, loaded whole
    by every process (``--shard-data off``) and in shards (``on``)."""
    from shard_load import write_parquet

    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        parquet = Path(scratch) / "interactions.parquet"
        write_parquet(SIZES[size], parquet, 16)
        cores = str(os.cpu_count() or 1)
        runs = [
            ("synthetic spec", SIZES[size], 1, ["--threads", "1"]),
            (f"synthetic spec, {cores} threads", SIZES[size], 1, ["--threads", cores]),
            ("synthetic spec", SIZES[size], 2, []),
            ("Parquet, whole", str(parquet), 2, ["--shard-data", "off"]),
            ("Parquet, sharded", str(parquet), 2, ["--shard-data", "on"]),
        ]
        for label, data, n, extra in runs:
            command = [sys.executable, "-m", "tastespace", "fit", "--data", data, *extra]
            command += ["--out", f"{scratch}/m{len(rows)}", "--epochs", str(epochs_), "--quiet"]
            command += ["-p", "validation_users=0", "--nproc", str(n)]
            started = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            wall = time.perf_counter() - started
            rows.append({"size": size, "data": label, "nproc": n, "wall_s": wall})
            print(json.dumps(rows[-1]), flush=True)
    print(f"\n| {size} | data | --nproc | wall s | × --nproc 1 |\n|---|---|---|---|---|")
    for row in rows:
        ratio = rows[0]["wall_s"] / row["wall_s"]
        print(f"| | {row['data']} | {row['nproc']} | {row['wall_s']:.1f} | {ratio:.2f}× |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=["quality", "epoch", "tables", "softmax", "fit", "nproc"])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--data", default="ml-100k,ml-latest-small", help="quality: datasets")
    parser.add_argument(
        "--tables", action="store_true", help="quality: sparse vs dense tables (not before/after)"
    )
    parser.add_argument("--sizes", default="1M,5M")
    parser.add_argument("--size", default="5M")
    parser.add_argument("--epochs", type=int, default=2, help="nproc: epochs per fit")
    parser.add_argument(
        "--max-batches",
        action="append",
        default=[],
        help="SIZE[:VARIANT]=N: cut that epoch after N batches and extrapolate (repeatable)",
    )
    parser.add_argument("--json", type=Path)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per fit")
    args = parser.parse_args()
    print(f"machine at the start: {machine()}", flush=True)
    if args.part == "quality":
        variants = TABLES if args.tables else VARIANTS
        seeds = [int(s) for s in args.seeds.split(",")]
        rows = quality(seeds, args.threads, args.data.split(","), variants)
    elif args.part == "epoch":
        caps = dict(item.split("=") for item in args.max_batches)
        rows = epochs(args.sizes.split(","), args.threads, {k: int(v) for k, v in caps.items()})
    elif args.part == "tables":
        rows = tables(args.threads, 20)
    elif args.part == "softmax":
        rows = softmax(args.threads, 40)
    elif args.part == "fit":
        rows = fit_against_als(args.size, args.threads)
    else:
        rows = nproc(args.size, args.epochs)
    print(f"machine at the end: {machine()}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
