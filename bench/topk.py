"""Top-k search speed and recall: exact selection strategies against this run's SGEMM peak, then
faiss HNSW / IVF-PQ against exact search on a large synthetic catalog with low-rank structure.

    python bench/topk.py                       # exact part (100k × 64) + approximate at 1M
    python bench/topk.py --part exact --items 100000
    python bench/topk.py --part approximate --items 1000000 --queries 2000

Every ratio compares figures measured in this one run (the machine may be shared; absolute
numbers move between runs, ratios much less). Queries per second count a batch of queries.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable

import numpy as np

from tastespace.index import build_index, exact_search, recall_at_k
from tastespace.index.blocks import dot_scores
from tastespace.index.topk import topk_rows

K = 10


def best_of(fn: Callable[[], object], repeats: int = 3) -> float:
    """Fastest of ``repeats`` wall-clock runs (the least disturbed by other jobs)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def sgemm_peak() -> float:
    """GFLOP/s of a 2048³ float32 product, the better of numpy (OpenBLAS) and torch (MKL)."""
    import torch

    a = np.random.default_rng(0).standard_normal((2048, 2048), dtype=np.float32)
    t = torch.from_numpy(a)
    flops = 2 * 2048**3
    return flops / min(best_of(lambda: a @ a), best_of(lambda: torch.mm(t, t))) / 1e9


def low_rank_catalog(
    n_items: int, n_queries: int, dim: int = 64, rank: int = 16, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Items and queries ``z @ B + noise`` sharing a rank-``rank`` basis (like learned
    embeddings: a few strong directions, item norms that vary)."""
    rng = np.random.default_rng(seed)
    basis = rng.standard_normal((rank, dim)).astype(np.float32) / np.sqrt(rank)
    scale = rng.lognormal(0.0, 0.3, (n_items, 1)).astype(np.float32)
    items = np.empty((n_items, dim), np.float32)
    for start in range(0, n_items, 100_000):
        stop = min(start + 100_000, n_items)
        z = rng.standard_normal((stop - start, rank)).astype(np.float32)
        noise = 0.1 * rng.standard_normal((stop - start, dim)).astype(np.float32)
        items[start:stop] = scale[start:stop] * (z @ basis) + noise
    z = rng.standard_normal((n_queries, rank)).astype(np.float32)
    queries = z @ basis + 0.1 * rng.standard_normal((n_queries, dim)).astype(np.float32)
    return items, queries


def numpy_argpartition(queries: np.ndarray, items: np.ndarray) -> None:
    """The selection before this work: 1024-row numpy products, argpartition on ``-scores``."""
    for start in range(0, len(queries), 1024):
        scores = queries[start : start + 1024] @ items.T
        part = np.argpartition(-scores, K - 1, axis=1)[:, :K]
        np.take_along_axis(scores, part, axis=1)


def blocked_topk_rows(queries: np.ndarray, items: np.ndarray) -> None:
    """16-row torch products (``dot_scores``) then numpy ``topk_rows`` with stable ties."""
    for start in range(0, len(queries), 256):
        topk_rows(dot_scores(queries[start : start + 256], items), K)


def naive_argsort(queries: np.ndarray, items: np.ndarray) -> None:
    for start in range(0, len(queries), 256):
        np.argsort(-(queries[start : start + 256] @ items.T), axis=1)[:, :K]


def faiss_flat(queries: np.ndarray, items: np.ndarray) -> Callable[[], object]:
    import faiss

    flat = faiss.IndexFlatIP(items.shape[1])
    flat.add(items)
    return lambda: flat.search(queries, K)


def exact_part(n_items: int, n_queries: int, peak: float) -> None:
    items, queries = low_rank_catalog(n_items, n_queries)
    flops = 2 * n_items * items.shape[1] * n_queries
    naive_q = queries[: max(256, n_queries // 8)]
    naive = best_of(lambda: naive_argsort(naive_q, items), 1) * n_queries / len(naive_q)
    rows = [
        ("naive full argsort (numpy)", naive),
        ("numpy matmul + argpartition(-s)", best_of(lambda: numpy_argpartition(queries, items))),
        ("torch 16-row products + topk_rows", best_of(lambda: blocked_topk_rows(queries, items))),
    ]
    for block in (16, 64, 256, 1024):
        rows.append(
            (
                f"exact_search, {block}-row blocks + torch.topk",
                best_of(lambda b=block: exact_search(queries, items, K, block_rows=b)),
            )
        )
    try:
        rows.append(("faiss IndexFlatIP.search", best_of(faiss_flat(queries, items))))
    except ImportError:
        pass
    one = queries[:1]
    single = best_of(lambda: exact_search(one, items, K), 20)
    print(f"\n## Exact top-{K}: {n_items:,} items × {items.shape[1]}, {n_queries:,} queries\n")
    print(f"SGEMM peak this run (2048³, best of numpy/torch): {peak:.1f} GFLOP/s\n")
    print("| method | queries/s | GFLOP/s | share of SGEMM peak | × naive argsort |")
    print("|---|---|---|---|---|")
    for name, seconds in rows:
        print(
            f"| {name} | {n_queries / seconds:,.0f} | {flops / seconds / 1e9:.1f} | "
            f"{flops / seconds / 1e9 / peak:.2f} | {naive / seconds:.1f}× |"
        )
    print(f"\nOne query alone (exact_search, padded 16-row block): {single * 1e3:.2f} ms")


APPROXIMATE = {  # kind: build parameters, search knob, its values (None: as built, tuned)
    "hnsw": ({"M": 32, "ef_construction": 80}, "ef_search", (32, 64, 128, 256)),
    "ivfpq": ({}, "nprobe", (None, 16, 64, 256)),
}


QUIET = ("seed", "memory_share", "target_recall")
"""Build parameters left out of the table's setting column (the same for every row)."""


def approximate_part(n_items: int, n_queries: int, kinds: list[str]) -> None:
    items, queries = low_rank_catalog(n_items, n_queries, seed=1)
    started = time.perf_counter()
    exact = build_index("exact", items, "dot")
    exact_build = time.perf_counter() - started
    exact_seconds = best_of(lambda: exact.search(queries, K), 2)
    truth, _ = exact.search(queries, K)
    print(
        f"\n## Approximate top-{K}: {n_items:,} items × {items.shape[1]} (low rank 16), "
        f"{n_queries:,} queries\n"
    )
    print(
        "| index | build s | memory / raw vectors | search setting | queries/s | × exact | "
        "recall@10 |"
    )
    print("|---|---|---|---|---|---|---|")
    print(
        f"| exact | {exact_build:.1f} | 1.00 | — | "
        f"{n_queries / exact_seconds:,.0f} | 1.0× | 1.000 |"
    )
    for kind in kinds:
        params, knob, values = APPROXIMATE[kind]
        started = time.perf_counter()
        index = build_index(kind, items, "dot", **params)
        build = time.perf_counter() - started
        memory = index.memory_bytes() / items.nbytes
        built = index.params[knob]
        for value in values:
            index.params[knob] = built if value is None else value
            seconds = best_of(lambda ix=index: ix.search(queries, K), 2)
            found, _ = index.search(queries, K)
            setting = ", ".join(f"{k}={v}" for k, v in index.params.items() if k not in QUIET)
            print(
                f"| {kind} | {build:.1f} | {memory:.3f} | {setting} | {n_queries / seconds:,.0f} "
                f"| {exact_seconds / seconds:.1f}× | {recall_at_k(found, truth):.3f} |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("exact", "approximate", "all"), default="all")
    parser.add_argument("--items", type=int, default=None, help="catalog size of the part run")
    parser.add_argument("--queries", type=int, default=None)
    parser.add_argument(
        "--kinds", default="hnsw,ivfpq", help="approximate indexes to measure, comma-separated"
    )
    args = parser.parse_args()
    import torch

    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores "
        f"(shared with other jobs), torch threads {torch.get_num_threads()}, load average "
        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} at the start"
    )
    if args.part in ("exact", "all"):
        exact_part(args.items or 100_000, args.queries or 4096, sgemm_peak())
    if args.part in ("approximate", "all"):
        approximate_part(args.items or 1_000_000, args.queries or 2000, args.kinds.split(","))


if __name__ == "__main__":
    main()
