"""``tastespace map | export``: 2-D maps and vector exports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from tastespace.cli.common import JsonFlag, console, err_console

BundleArg = Annotated[Path, typer.Argument(help="Bundle directory from `tastespace fit`.")]


def register(app: typer.Typer) -> None:
    """Add this stage's commands to ``app``."""
    app.command("map")(map_)
    app.command()(export)
    app.command()(curves)


def map_(
    bundle: BundleArg,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="PNG to write (16:9, slide-sized).")
    ] = None,
    html: Annotated[
        Path | None, typer.Option(help="Standalone interactive HTML page to write (offline).")
    ] = None,
    method: Annotated[str, typer.Option(help="Projection: pca, tsne or umap.")] = "umap",
    feature: Annotated[
        str | None,
        typer.Option(help="Draw this categorical feature's plane instead (e.g. genre)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Projection seed.")] = 0,
    labels: Annotated[int, typer.Option(help="How many popular titles to label.")] = 30,
    k: Annotated[int, typer.Option("-k", help="Neighbours per item in the HTML page.")] = 10,
    top: Annotated[
        int | None,
        typer.Option(help="Map only the N most popular items (hides the cold long tail)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Draw the catalog in 2-D, coloured by primary genre (projections are cached in DIR).

    Examples:

      tastespace map runs/neural --method umap --out map.png --html map.html

      tastespace map runs/neural --top 2000 --method tsne --out popular.png

      tastespace map runs/neural --feature genre --out genres.png
    """
    from tastespace.errors import ConfigError
    from tastespace.models.base import Recommender
    from tastespace.viz.maps import write_genre_plane, write_item_map
    from tastespace.viz.projection import METHODS

    if method not in METHODS:  # checked before the (slow) bundle load
        raise ConfigError(f"unknown --method {method!r}; choose one of {', '.join(METHODS)}")
    if feature is not None and html is not None:
        raise ConfigError("--feature draws a PNG plane; drop --html or --feature")
    if out is None and html is None:
        raise ConfigError("nothing to write: give --out map.png and/or --html map.html")
    model = Recommender.load(bundle)
    if feature is not None and out is not None:
        written = [write_genre_plane(model, out, feature, seed)]
    else:
        written = write_item_map(
            model,
            out,
            html,
            method=method,
            seed=seed,
            bundle=bundle,
            n_labels=labels,
            k=k,
            top=top,
            progress=lambda line: err_console.print(f"[dim]{line}[/]", highlight=False),
        )
    _report_written(written, as_json)


def _report_written(paths: list[Path], as_json: bool) -> None:
    if as_json:
        print(json.dumps({"written": [str(p) for p in paths]}))
        return
    for path in paths:
        console.print(f"[green]wrote[/] {path}")


def export(
    bundle: BundleArg,
    format: Annotated[
        str, typer.Option("--format", "-f", help="word2vec, projector, parquet or npy.")
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="File (word2vec, parquet) or folder (projector, npy) to write.",
        ),
    ],
    as_json: JsonFlag = False,
) -> None:
    """Export the item vectors for other tools (gensim, TensorBoard Projector, pandas, numpy).

    Examples:

      tastespace export runs/neural --format word2vec --out vectors.txt

      tastespace export runs/neural --format projector --out projector/
    """
    from tastespace.errors import ConfigError
    from tastespace.io.export import FORMATS, export_vectors
    from tastespace.models.base import Recommender

    if format not in FORMATS:
        raise ConfigError(f"unknown --format {format!r}; choose one of {', '.join(FORMATS)}")
    _report_written(export_vectors(Recommender.load(bundle), format, out), as_json)


def curves(
    bundle: BundleArg,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="PNG to write.")] = None,
    tensorboard: Annotated[
        Path | None, typer.Option(help="Also write TensorBoard scalars into this folder.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Plot the per-epoch training history a bundle records (loss, validation metrics).

    Examples:

      tastespace curves runs/neural --out curves.png

      tastespace curves runs/neural --tensorboard tb/ && tensorboard --logdir tb/
    """
    from tastespace.io.bundle import read_bundle
    from tastespace.viz.curves import training_report, write_curves_png, write_tensorboard

    manifest = read_bundle(bundle).manifest
    report = training_report(manifest, str(bundle))
    if out is not None:
        write_curves_png(report, out, title=f"{manifest.get('kind')} — {bundle.name}")
    if tensorboard is not None:
        write_tensorboard(report, tensorboard)
    if as_json:
        print(json.dumps(report))
        return
    best = report.get("best_epoch")
    console.print(
        f"{len(report['history'])} epochs recorded, best epoch {best}"
        + (f" → {out}" if out else "")
        + (f", TensorBoard scalars → {tensorboard}" if tensorboard else "")
    )
