"""The seed's argument measured: dense multi-hot vs sparse matmul vs EmbeddingBag over catalog size.

One batch of ``--batch`` rows with ``--history`` values each (the seed's "10 of 10,000 movies")
is fed four ways into a ``V × d`` weight, forward + backward, for catalogs from 1k to 1M items
(``tastespace.features.measure``). Ratios are against dense multi-hot measured in the same run;
the analytic columns are ``tastespace.features.cost``'s model of the same shape. Writes a
log-log plot of time and input memory.

Usage::

    python bench/cost.py                                   # 1k … 1M items, batch 1024, history 10
    python bench/cost.py --vocabs 10000 --repeats 20       # the seed's shape only
    python bench/cost.py --png docs/img/cost.png --max-dense-gib 6
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from leaderboard import machine  # noqa: E402
from tastespace.features.cost import feature_cost  # noqa: E402
from tastespace.features.measure import sweep  # noqa: E402
from tastespace.viz.cost_plot import plot_costs  # noqa: E402

VOCABS = (1_000, 10_000, 100_000, 1_000_000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocabs", default=",".join(map(str, VOCABS)))
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--history", type=int, default=10)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-dense-gib", type=float, default=2.0)
    parser.add_argument("--png", help="write the log-log plot here")
    args = parser.parse_args()
    vocabs = [int(v) for v in args.vocabs.split(",")]
    print(f"machine: {machine()}, torch threads {args.threads}")
    print(
        f"batch {args.batch}, {args.history} values per row, d = {args.dim}, forward + backward\n"
    )
    points = sweep(
        vocabs,
        args.batch,
        args.history,
        args.dim,
        args.repeats,
        threads=args.threads,
        max_dense_bytes=int(args.max_dense_gib * 2**30),
    )
    print("| V | method | ms | × faster | input | × smaller | model × memory | model × flops |")
    print("|---|---|---|---|---|---|---|---|")
    for vocab in vocabs:
        rows = [p for p in points if p.vocab == vocab]
        dense = rows[0]
        model = feature_cost(args.batch, vocab, args.history, args.dim, args.dim)
        for m in rows:
            ms = "not built" if m.seconds is None else f"{1e3 * m.seconds:.2f}"
            faster = f"{dense.seconds / m.seconds:,.1f}" if dense.seconds and m.seconds else "-"
            bag = m.method.startswith("embedding-bag")
            print(
                f"| {vocab:,} | {m.method} | {ms} | {faster} | {m.input_bytes / 2**20:,.3f} MiB | "
                f"{dense.input_bytes / m.input_bytes:,.0f} | "
                f"{f'{model.memory_ratio:,.0f}' if bag else ''} | "
                f"{f'{model.flop_ratio:,.0f}' if bag else ''} |",
                flush=True,
            )
    if args.png:
        print(f"\nplot → {plot_costs(points, args.png)}")


if __name__ == "__main__":
    main()
