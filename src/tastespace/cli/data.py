"""``tastespace data …``: inspect and fetch datasets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from tastespace.cli.common import (
    Duplicates,
    ItemCol,
    ItemFeatures,
    JsonFlag,
    KeepUnrated,
    MinRating,
    Nonpositive,
    RatingCol,
    TimestampCol,
    UserCol,
    UserFeatures,
    console,
    load,
)

data_app = typer.Typer(help="Inspect and fetch datasets.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")


# -- data ---------------------------------------------------------------------------------------
@data_app.command("info")
def data_info(
    path: Annotated[
        str, typer.Argument(help="Dataset: MovieLens zip/folder, CSV/Parquet, or 'synthetic'.")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    min_rating: MinRating = None,
    duplicates: Duplicates = None,
    user_col: UserCol = None,
    item_col: ItemCol = None,
    rating_col: RatingCol = None,
    timestamp_col: TimestampCol = None,
    item_features: ItemFeatures = None,
    user_features: UserFeatures = None,
    nonpositive: Nonpositive = None,
    keep_unrated: KeepUnrated = False,
) -> None:
    """Summarise a dataset: users, items, interactions, density, features, ratings.

    Examples:

      tastespace data info ml-100k.zip

      tastespace data info ratings.csv --item-col sku --json
    """
    ds = load(
        path,
        min_rating,
        duplicates,
        user_col=user_col,
        item_col=item_col,
        rating_col=rating_col,
        timestamp_col=timestamp_col,
        item_features=item_features,
        user_features=user_features,
        nonpositive=nonpositive,
        keep_unrated=keep_unrated,
    )
    summary = ds.summary()
    if as_json:
        print(json.dumps(summary, default=str))
        return
    table = Table(title=f"{summary['name']}", show_header=False)
    for key in ("users", "items", "interactions", "items_with_interactions"):
        table.add_row(key, f"{summary[key]:,}")
    table.add_row("density", f"{summary['density']:.4%}")
    table.add_row("timestamps", "yes" if summary["has_timestamps"] else "no")
    table.add_row("item features", ", ".join(summary["item_features"]) or "-")
    table.add_row("user features", ", ".join(summary["user_features"]) or "-")
    if summary["rating_histogram"]:
        table.add_row(
            "ratings", "  ".join(f"{k}: {v:,}" for k, v in summary["rating_histogram"].items())
        )
    for reason, count in summary["filtered"].items():
        table.add_row("filtered", f"{count:,} rows: {reason}")
    console.print(table)


@data_app.command("fetch")
def data_fetch(
    release: Annotated[str, typer.Argument(help="e.g. ml-1m, ml-20m, ml-latest-small")],
    cache_dir: Annotated[Path | None, typer.Option(help="Where to keep downloads.")] = None,
    force: Annotated[bool, typer.Option(help="Download again even if cached.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Download a MovieLens release from GroupLens into the cache and verify its checksum.

    Example: tastespace data fetch ml-1m, then tastespace fit --data PATH_IT_PRINTS
    """
    from tastespace.data.fetch import fetch_movielens

    path = fetch_movielens(release, cache_dir, force=force)
    if as_json:
        print(json.dumps({"release": release, "path": str(path)}))
    else:
        console.print(str(path))
