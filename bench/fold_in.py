"""Neural fold-in: the whole-catalog solve against the candidate solve, for quality and speed.

    python bench/fold_in.py                    # quality (ml-100k, ml-latest-small) + speed
    python bench/fold_in.py --skip-speed --seeds 0 1
    python bench/fold_in.py --skip-speed --synthetic 5M   # and the 5M synthetic split
    python bench/fold_in.py --skip-quality --skip-speed --objective

1. Quality: one neural model fitted per dataset and seed (strong generalisation, ratings >= 4,
   the split ``tune`` and ``benchmark`` use); its test users folded in every way. Target: the
   candidate solve (512 candidates + the pseudo-item, 2 rounds, candidates from exact passes
   or from clusters) within 0.005 Recall@20 of the exact one.
2. Speed: a 40k-item synthetic catalog (``--items``); neural ``recommend`` (exact and both
   candidate fold-ins) against ALS's, one user and 1,000 users (medians over rounds that
   take the models in turn), in the same run. Targets: <= 2x ALS for one user and <= 3x for
   1,000.
3. Objective (``--objective``): on the same catalog, how far each solve ends from the minimum
   (300 exact Adam steps), as a share of the way back to the tower's start, per user of 300,
   with the candidate solve at several step counts; CPU seconds on one thread.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from pathlib import Path

import numpy as np
import torch

from tastespace.data import load_dataset
from tastespace.data.splits import strong_generalization
from tastespace.evaluate.protocol import evaluate_model
from tastespace.models.allocator import keep_freed_memory
from tastespace.models.mf import ALS
from tastespace.models.neural import NeuralRecommender, fold_in

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "movielens"
VARIANTS = {
    "exact (whole catalog, 30 Adam steps)": {"fold_in_candidates": 0},
    "512 candidates from exact passes": {"fold_in_retrieval": "passes"},
    "512 candidates from clusters (default)": {"fold_in_retrieval": "clusters"},
    "512 candidates from clusters, torch steps": {
        "fold_in_retrieval": "clusters",
        "compiled_steps": False,
    },
}
"""Fold-in label → config changes (the item side is shared: no refit between them); the
candidate solve is forced at every catalog size (``fold_in_exact_max_items=0``).
``compiled_steps`` is not config: it switches ``fold_in.COMPILED_STEPS`` (the quasi-Newton
steps as torch operations, the form other devices run, against the compiled CPU kernel)."""


def use(model: NeuralRecommender, changes: dict) -> NeuralRecommender:
    changes = dict(changes)
    fold_in.COMPILED_STEPS = changes.pop("compiled_steps", True)
    forced = {"fold_in_candidates": 512, "fold_in_exact_max_items": 0}
    model.config = dataclasses.replace(model.config, **{**forced, **changes})
    return model


SYNTHETIC = {"5M": ("synthetic:users=50000,items=15000,history=100", 1000)}
"""Synthetic sets for the quality table: spec and held-out users (``bench/scale.py``'s 5M split,
where the candidate count and steps mattered more than on MovieLens)."""


def quality(seeds: list[int], synthetic: list[str]) -> None:
    print("\n## Fold-in quality (strong generalisation, test users, ratings >= 4)\n")
    print("| data | seed | fold-in | Recall@20 | NDCG@100 | fold-in + rank s |")
    print("|---|---|---|---|---|---|")
    sets = [(name, SHARED / f"{name}.zip", 0.1) for name in ("ml-100k", "ml-latest-small")]
    sets += [(name, *SYNTHETIC[name]) for name in synthetic]
    for name, source, heldout in sets:
        if isinstance(source, Path) and not source.exists():
            print(f"| {name} | — | missing at {source} | | | |")
            continue
        ds = load_dataset(source, **({"min_rating": 4} if isinstance(source, Path) else {}))
        gaps: dict[str, list[float]] = {label: [] for label in list(VARIANTS)[1:]}
        for seed in seeds:
            split = strong_generalization(ds, n_heldout=heldout, seed=seed)
            model = NeuralRecommender(seed=seed).fit(split.train, split.validation)
            results = {}
            for label, changes in VARIANTS.items():
                use(model, changes)
                started = time.perf_counter()
                metrics = evaluate_model(model, split.test)
                seconds = time.perf_counter() - started
                results[label] = metrics
                print(
                    f"| {name} | {seed} | {label} | {metrics['recall@20']:.4f} | "
                    f"{metrics['ndcg@100']:.4f} | {seconds:.1f} |",
                    flush=True,
                )
            exact = results[next(iter(VARIANTS))]["recall@20"]
            for label in gaps:
                gaps[label].append(results[label]["recall@20"] - exact)
        for label, gap in gaps.items():
            print(f"| {name} | mean | {label} − exact | {np.mean(gap):+.4f} | | |", flush=True)


ROUNDS = 5
"""Speed rounds: each times every model (5 one-user requests, one of 1,000 users) in turn;
the table gives each model's median over the rounds."""

CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
"""``cpu``: this process's CPU seconds (on one torch thread), which other jobs on a shared
machine disturb far less than wall seconds."""


def timed(fn, repeats: int, clock=time.perf_counter) -> float:
    times = []
    for _ in range(repeats):
        started = clock()
        fn()
        times.append(clock() - started)
    return float(np.median(times))


def speed(n_items: int, clock_name: str = "wall", with_exact: bool = True) -> None:
    # recommend's cost does not depend on how well the model was trained: a short fit will do
    ds = load_dataset(f"synthetic:users=3000,items={n_items},seed=1")
    neural = NeuralRecommender(epochs=1, seed=0, validation_users=0).fit(ds)
    als = ALS(seed=0).fit(ds)
    rng = np.random.default_rng(0)
    users = ds.interactions[rng.choice(ds.n_users, 1000, replace=False)]
    one = users[:1]
    rows = [("ALS", lambda: als)]
    variants = list(VARIANTS.items())[0 if with_exact else 1 :]
    rows += [(f"neural, {label}", lambda c=c: use(neural, c)) for label, c in variants]
    print(f"\n## Recommend speed: {n_items:,}-item synthetic catalog, k=10\n")
    clock = CLOCKS[clock_name]
    if clock_name == "cpu":
        torch.set_num_threads(1)
        print("CPU seconds of this process on one torch thread; medians, ratios from this run\n")
    else:
        print(f"{os.cpu_count()} cores shared with other jobs; medians, ratios from this run\n")
    print("| model | one user ms | × ALS | 1,000 users s | × ALS |")
    print("|---|---|---|---|---|")
    singles: dict[str, list[float]] = {label: [] for label, _ in rows}
    manys: dict[str, list[float]] = {label: [] for label, _ in rows}
    # rounds interleave the models, so that a slower spell of a shared host lands on all
    for _ in range(ROUNDS):
        for label, pick in rows:
            model = pick()
            model.recommend(one, k=10)  # warm caches (item vectors, index, clusters)
            singles[label].append(timed(lambda m=model: m.recommend(one, k=10), 5, clock))
            manys[label].append(timed(lambda m=model: m.recommend(users, k=10), 1, clock))
    base_one, base_many = np.median(singles["ALS"]), np.median(manys["ALS"])
    for label, _ in rows:
        single, many = np.median(singles[label]), np.median(manys[label])
        print(
            f"| {label} | {single * 1e3:.1f} | {single / base_one:.1f}× | {many:.2f} | "
            f"{many / base_many:.1f}× |",
            flush=True,
        )


def objective(n_items: int) -> None:
    ds = load_dataset(f"synthetic:users=3000,items={n_items},seed=1")
    model = NeuralRecommender(epochs=1, seed=0, validation_users=0).fit(ds)
    rng = np.random.default_rng(0)
    histories = (ds.interactions[rng.choice(ds.n_users, 300, replace=False)] > 0).astype(np.float32)
    model.config = dataclasses.replace(model.config, fold_in="encoder")
    start = torch.as_tensor(model.user_vectors(histories))
    table = model._scored_table(torch.device("cpu"))
    items, bias, l2 = table[:, :-1], table[:, -1], model.config.vector_l2
    x = torch.as_tensor(histories.toarray())

    def value(users: torch.Tensor) -> torch.Tensor:
        return -(x * torch.log_softmax(users @ items.T + bias, 1)).sum(1) + l2 * users.square().sum(
            1
        )

    adam = dict(l2=l2, lr=model.config.fold_in_lr)
    lowest = value(fold_in.solve_user_vectors(items, bias, histories, start, steps=300, **adam))
    at_start = value(start)
    torch.set_num_threads(1)
    print(f"\n## Objective: {n_items:,}-item catalog, 300 users, share of the way back\n")
    print("| fold-in | median | p90 | CPU s |")
    print("|---|---|---|---|")

    def row(label: str, solve) -> None:
        started = time.process_time()
        users = solve()
        seconds = time.process_time() - started
        share = ((value(users) - lowest) / (at_start - lowest)).numpy()
        median, p90 = np.median(share), np.quantile(share, 0.9)
        print(f"| {label} | {median:.4f} | {p90:.4f} | {seconds:.2f} |", flush=True)

    steps = model.config.fold_in_steps
    row(
        f"exact, {steps} Adam steps",
        lambda: fold_in.solve_user_vectors(items, bias, histories, start, steps=steps, **adam),
    )
    tail = fold_in.TailSample.of(items)
    default_steps = fold_in.NEWTON_STEPS
    for newton in (3, 4):
        fold_in.NEWTON_STEPS = newton
        row(
            f"512 candidates, {newton} steps a round",
            lambda: torch.cat(
                [
                    fold_in.solve_on_candidates(
                        table, histories[b:e], start[b:e], l2=l2, top=512, tail=tail
                    )
                    for b, e in fold_in.fixed_blocks(histories.shape[0])
                ]
            ),
        )
    fold_in.NEWTON_STEPS = default_steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--items", type=int, default=40_000)
    parser.add_argument(
        "--synthetic", nargs="*", default=[], choices=sorted(SYNTHETIC), help="quality: also these"
    )
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument(
        "--without-exact", action="store_true", help="speed: leave out the whole-catalog solve"
    )
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall")
    parser.add_argument("--objective", action="store_true", help="also the objective table")
    parser.add_argument(
        "--allocator",
        choices=("keep", "glibc"),
        default="keep",
        help="keep freed memory as the CLI and server do (default), or glibc's defaults",
    )
    args = parser.parse_args()
    if args.allocator == "keep":
        keep_freed_memory()
    if not args.skip_quality:
        quality(args.seeds, args.synthetic)
    if not args.skip_speed:
        speed(args.items, args.clock, not args.without_exact)
    if args.objective:
        objective(args.items)


if __name__ == "__main__":
    main()
