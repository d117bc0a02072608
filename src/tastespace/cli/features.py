"""``tastespace cost``: the one-hot vs embedding argument measured on the data's own shapes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from tastespace.cli.common import ItemFeatures, MinRating, console, load


def register(app: typer.Typer) -> None:
    app.command()(cost)


def cost(
    data: Annotated[
        str, typer.Argument(help="Dataset: MovieLens zip/folder, CSV/Parquet, or 'synthetic'.")
    ],
    batch: Annotated[int, typer.Option(help="Rows per batch (users or items).")] = 1024,
    dim: Annotated[int, typer.Option(help="Embedding width d of the V × d weight.")] = 64,
    repeats: Annotated[int, typer.Option(help="Timed passes per method (median).")] = 5,
    seed: Annotated[int, typer.Option(help="Seed for the rows sampled and the weights.")] = 0,
    threads: Annotated[int, typer.Option(help="Torch threads while timing.")] = 1,
    plot: Annotated[
        Path | None, typer.Option(help="Also sweep catalog sizes and write a log-log PNG here.")
    ] = None,
    min_rating: MinRating = None,
    item_features: ItemFeatures = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON Lines, one per row.")] = False,
) -> None:
    """Time dense multi-hot vs sparse matmul vs EmbeddingBag (dense / sparse gradients).

    Each input of the data — a batch of user histories over the catalog, then each item bag
    feature — is fed four ways into a V × d weight, forward + backward, beside the analytic
    model of features/cost.py. Examples:

      tastespace cost ml-100k.zip

      tastespace cost synthetic:medium --plot cost.png
    """
    from tastespace.errors import ConfigError
    from tastespace.features.cost import feature_cost
    from tastespace.features.measure import dataset_batches, measure_bags, sweep, sweep_vocabs

    if min(batch, dim, repeats, threads) < 1:
        raise ConfigError("--batch, --dim, --repeats and --threads must be ≥ 1")
    ds = load(data, min_rating, item_features=item_features)
    table = Table(title=f"{ds.name}: forward + backward per batch, this machine")
    for column in COLUMNS:
        table.add_column(column, justify="left" if column in ("input", "method") else "right")
    for rows, vocab in dataset_batches(ds, batch, seed):
        measured = measure_bags(rows, vocab, dim, repeats, seed=seed, threads=threads)
        model = feature_cost(rows.size, vocab, len(rows.indices) / rows.size, dim, dim)
        for m in measured:
            if as_json:
                print(json.dumps(m.to_json()))
            else:
                table.add_row(*_cells(m, measured[0], model))
    if not as_json:
        console.print(table)
    if plot is not None:
        from tastespace.viz.cost_plot import plot_costs

        histories, _ = dataset_batches(ds, batch, seed)[0]
        per_row = max(1, round(len(histories.indices) / histories.size))
        points = sweep(sweep_vocabs(ds.n_items), batch, per_row, dim, repeats, seed, threads)
        path = plot_costs(points, plot, f"{ds.name}: batch {batch}, {per_row} values per row")
        if as_json:
            print(json.dumps({"plot": str(path)}))
        else:
            console.print(f"plot → {path}")


COLUMNS = (
    "input",
    "V",
    "m",
    "method",
    "ms",
    "×faster",
    "input",
    "×smaller",
    "model ×mem",
    "×flops",
)


def _cells(m: Any, dense: Any, model: Any) -> list[str]:
    """One table row: measured time and memory against dense, and the analytic model's ratios
    (``features/cost.py``) on the bag rows."""
    faster = dense.seconds / m.seconds if dense.seconds and m.seconds else None
    bag = m.method.startswith("embedding-bag")
    return [
        m.feature,
        f"{m.vocab:,}",
        f"{m.nnz / m.batch:.1f}",
        m.method,
        "-" if m.seconds is None else f"{1e3 * m.seconds:.2f}",
        "-" if faster is None else f"{faster:.1f}",
        _size(m.input_bytes),
        f"{dense.input_bytes / m.input_bytes:,.0f}",
        f"{model.memory_ratio:,.0f}" if bag else "",
        f"{model.flop_ratio:,.0f}" if bag else "",
    ]


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB"):
        if n < 1024:
            return f"{n:.0f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"
