"""``tastespace compare | report | ablate``: what an embedding space is worth."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from tastespace.cli.common import (
    DataOption,
    ItemFeatures,
    JsonFlag,
    MinRating,
    console,
    heldout_value,
    load,
)
from tastespace.cli.evaluate import (
    BundleData,
    BundleHeldOut,
    BundleSeed,
    HeldOutOption,
)
from tastespace.errors import ConfigError


def register(app: typer.Typer) -> None:
    app.command()(compare)
    app.command()(report)
    app.command()(ablate)


def compare(
    bundle_a: Annotated[Path, typer.Argument(help="First bundle (the baseline).")],
    bundle_b: Annotated[Path, typer.Argument(help="Second bundle (differences are B − A).")],
    data: BundleData = None,
    min_rating: MinRating = None,
    item_features: ItemFeatures = None,
    seed: BundleSeed = None,
    n_heldout: BundleHeldOut = None,
    k: Annotated[int, typer.Option("-k", help="Neighbours per item for the overlap.")] = 10,
    as_json: JsonFlag = False,
) -> None:
    """Overlap@k of the two models' item neighbourhoods, and Recall@20 / NDCG@100 on the same
    held-out users with a paired test (B − A, 95 % interval, t-test and Wilcoxon p). The users
    are those of A's recorded split (`fit --holdout`), on its data unless --data is given.

    Example:

      tastespace compare runs/ease runs/neural --data ml-100k.zip --min-rating 4
    """
    from tastespace.session import Session

    a = Session.open(bundle_a)
    ds = _data(data, min_rating, item_features)
    result = a.compare(bundle_b, ds, k=k, **_split(seed, n_heldout))
    if as_json:
        print(json.dumps({"a": str(bundle_a), "b": str(bundle_b), **result.to_json()}))
        return
    console.print(
        f"neighbourhood overlap@{k}: {result.overlap:.3f} over {result.items_compared:,} items; "
        f"{result.users:,} held-out users",
        highlight=False,
    )
    table = Table(title=f"{bundle_a.name} (A) vs {bundle_b.name} (B)")
    for column in ("metric", "A", "B", "B − A", "95% CI", "p t-test", "p Wilcoxon"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for name, m in result.metrics.items():
        low, high = m.ci95
        table.add_row(
            name,
            f"{m.a:.4f}",
            f"{m.b:.4f}",
            f"{m.diff:+.4f}",
            f"{low:+.4f} … {high:+.4f}",
            f"{m.p_ttest:.3g}",
            f"{m.p_wilcoxon:.3g}",
        )
    console.print(table)


def report(
    bundle: Annotated[Path, typer.Argument(help="Bundle directory from `tastespace fit`.")],
    data: BundleData = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="HTML page to write.")] = Path(
        "report.html"
    ),
    min_rating: MinRating = None,
    item_features: ItemFeatures = None,
    seed: BundleSeed = None,
    n_heldout: BundleHeldOut = None,
    k: Annotated[int, typer.Option("-k", help="Neighbours per item.")] = 10,
    as_json: JsonFlag = False,
) -> None:
    """One self-contained HTML page on the embedding space: genre purity vs shuffled labels,
    popularity bias and Gini of exposure, hubness, coverage, norm vs popularity, neighbours of
    the most popular items, and held-out recall by user activity and item popularity — on the
    bundle's recorded split (`fit --holdout`) and data unless --data is given.

    Example:

      tastespace report runs/neural --data ml-100k.zip --min-rating 4 --out report.html
    """
    from tastespace.session import Session

    session = Session.open(bundle)
    ds = _data(data, min_rating, item_features)
    numbers = session.report(out, ds, k=k, **_split(seed, n_heldout))
    written = numbers.pop("written")
    if as_json:
        print(json.dumps({"written": [str(p) for p in written], **numbers}, default=float))
        return
    console.print(
        f"[green]wrote[/] {written[0]} (+ {len(written) - 1} PNGs in {written[1].parent})"
    )


def _data(data: str | None, min_rating: float | None, item_features: str | None) -> Any:
    """The dataset to score on, or None for the bundle's recorded one."""
    if data is None:
        if min_rating is not None or item_features is not None:
            raise ConfigError("loader options (--min-rating, --item-features) need --data")
        return None
    return load(data, min_rating, item_features=item_features)


def _split(seed: int | None, n_heldout: float | None) -> dict[str, Any]:
    """Split options given on the command line (the others come from the bundle)."""
    return {"seed": seed, "holdout": None if n_heldout is None else heldout_value(n_heldout)}


def ablate(
    data: DataOption,
    min_rating: MinRating = None,
    item_features: ItemFeatures = None,
    seeds: Annotated[int, typer.Option(help="Splits (and model seeds) to average over.")] = 2,
    n_heldout: HeldOutOption = 0.1,
    cold_fraction: Annotated[
        float, typer.Option(help="Share of items held out of training as cold items.")
    ] = 0.1,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="Neural model option as key=value (repeatable)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Do the item features pull their weight? Refit the neural model with all features,
    without each group, with features shuffled across items, and with none, on the same
    splits; print warm and cold-start metrics with their spread over seeds.

    Example:

      tastespace ablate --data ml-latest-small.zip --min-rating 4 --seeds 3
    """
    from tastespace.cli.common import err_console
    from tastespace.evaluate.ablation import ablate as run_ablation
    from tastespace.models.config import parse_options
    from tastespace.models.neural import NeuralRecommender

    options = parse_options(param or [])
    NeuralRecommender(**options)  # a bad option fails before any fit
    ds = load(data, min_rating, item_features=item_features)
    rows = run_ablation(
        ds,
        lambda seed: NeuralRecommender(**{**options, "seed": seed}),
        seeds=tuple(range(seeds)),
        n_heldout=heldout_value(n_heldout),
        cold_fraction=cold_fraction,
        progress=lambda line: err_console.print(f"[dim]{line}[/]", highlight=False),
    )
    if as_json:
        print(json.dumps({row.variant: row.summary() for row in rows}))
        return
    table = Table(title=f"feature ablation on {ds.name} ({seeds} seeds, mean ± sd)")
    metrics = ("warm recall@20", "warm ndcg@100", "cold recall@20")
    table.add_column("features")
    for metric in metrics:
        table.add_column(metric, justify="right")
    for row in rows:
        s = row.summary()
        table.add_row(row.variant, *(f"{s[m]:.4f} ± {s[m + ' sd']:.4f}" for m in metrics))
    console.print(table)
