"""``tastespace evaluate | benchmark | tune``: score a bundle, compare models, search options."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from tastespace.cli.common import (
    CutoffOption,
    DataOption,
    ItemCol,
    ItemFeatures,
    MinRating,
    Nonpositive,
    UserCol,
    UserFeatures,
    console,
    err_console,
    heldout_value,
    load,
    spell_options,
)
from tastespace.cli.device import DeviceOption

SeedOption = Annotated[int, typer.Option(help="Seed of the held-out user split (and models).")]
HeldOutOption = Annotated[
    float,
    typer.Option(help="Users held out for validation and again for test: a fraction or a count."),
]
#: ``--data`` / ``--seed`` / ``--n-heldout`` of commands that score a bundle on the split it
#: recorded (``fit --holdout``): given values replace the recorded ones.
BundleData = Annotated[
    str | None,
    typer.Option(
        "--data",
        "-d",
        help="Data to score on; default: the data the bundle was fitted on, loaded again "
        "with the same options.",
    ),
]
BundleSeed = Annotated[
    int | None, typer.Option(help="Seed of the held-out user split; default: the bundle's.")
]
BundleHeldOut = Annotated[
    float | None,
    typer.Option(help="Held-out users (validation and again test): a count or a fraction."),
]


def register(app: typer.Typer) -> None:
    for command in (evaluate, benchmark, tune):
        app.command()(command)


# -- evaluate -----------------------------------------------------------------------------------
def evaluate(
    bundle: Annotated[Path, typer.Argument(help="Bundle directory from `fit` or `tune --out`.")],
    data: BundleData = None,
    min_rating: MinRating = None,
    nonpositive: Nonpositive = None,
    item_features: ItemFeatures = None,
    user_features: UserFeatures = None,
    item_col: ItemCol = None,
    user_col: UserCol = None,
    protocol: Annotated[
        str | None,
        typer.Option(
            help="strong (held-out users, 80/20 fold-in), temporal (each user's last items) or "
            "time (one global --cutoff); default: the bundle's, else strong."
        ),
    ] = None,
    seed: BundleSeed = None,
    n_heldout: BundleHeldOut = None,
    last_n: Annotated[
        int | None, typer.Option(help="Temporal: how many latest items to predict.")
    ] = None,
    cutoff: CutoffOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    device: DeviceOption = None,
) -> None:
    """Score a saved model on held-out users (no retraining: fold-in only).

    A bundle from `fit --holdout N` (or `tune --out`) records its data, loader options and
    split, so `evaluate BUNDLE` rebuilds that split and scores exactly its test users. Options
    given here replace the recorded ones. A bundle fitted on every user has already seen the
    test users; the result says so.

    Examples:

      tastespace fit --data ml-100k.zip --min-rating 4 --holdout 100 --out runs/neural

      tastespace evaluate runs/neural

      tastespace evaluate runs/ease --data ml-100k.zip --min-rating 4 --protocol time --cutoff 0.8
    """
    from tastespace.evaluate.heldout import evaluate_bundle
    from tastespace.models.base import Recommender
    from tastespace.models.devices import on_device

    model = on_device(Recommender.load(bundle), device)
    loader = {
        "nonpositive": nonpositive,
        "item_features": item_features,
        "user_features": user_features,
        "item_col": item_col,
        "user_col": user_col,
    }
    ds = None if data is None else load(data, min_rating, **loader)
    if data is None and (min_rating is not None or any(v is not None for v in loader.values())):
        from tastespace.errors import ConfigError

        raise ConfigError("loader options (--min-rating, --item-features …) need --data")
    result = evaluate_bundle(
        model,
        ds,
        protocol=protocol,
        seed=seed,
        holdout=None if n_heldout is None else heldout_value(n_heldout),
        last_n=last_n,
        cutoff=cutoff,
    )
    _show_evaluation(bundle, model, result, as_json)


#: Options the notes of an evaluation speak of (fit's --holdout, evaluate's own flags).
NOTE_OPTIONS = ("holdout", "min_rating", "n_heldout")


def _show_evaluation(bundle: Path, model: Any, result: Any, as_json: bool) -> None:
    """The metrics as a table (or one JSON object), then the notes on stderr: a warning when
    the model had seen the test users."""
    if as_json:
        document = {
            "bundle": str(bundle),
            "kind": model.kind,
            "dataset": result.dataset,
            "protocol": result.split["protocol"],
            "seed": result.split["seed"],
            "split": result.split,
            "trained_on": result.trained_on,
            "search": "exact",
            "metrics": result.metrics,
        }
        print(json.dumps(document, default=str))
    else:
        table = Table(
            title=f"{model.kind} on {result.dataset}: {_describe_split(result.split)}",
            caption=_search_note(model.index_info_["kind"]),
        )
        table.add_column("metric")
        table.add_column("value", justify="right")
        for name, value in result.metrics.items():
            table.add_row(name, f"{value:,.0f}" if name == "users" else f"{value:.4f}")
        console.print(table)
    label = "warning" if result.trained_on == "all-users" else "note"
    for note in result.notes:
        text, _ = spell_options(note, NOTE_OPTIONS)
        err_console.print(f"[yellow]{label}:[/] {text}", highlight=False)


def _describe_split(plan: dict[str, Any]) -> str:
    if plan["protocol"] == "strong":
        return f"strong protocol, {plan['holdout']} held-out users, seed {plan['seed']}"
    if plan["protocol"] == "temporal":
        return f"temporal protocol, last {plan['last_n']} item(s) per user"
    return f"time protocol, cutoff {plan['cutoff']}"


def _search_note(kind: str) -> str:
    """Evaluation ranks by exact search, whatever index the bundle serves with."""
    if kind == "exact":
        return "ranked by exact search"
    return f"ranked by exact search (the bundle's {kind} index is not used for metrics)"


# -- benchmark ----------------------------------------------------------------------------------
def benchmark(
    data: DataOption,
    models: Annotated[
        str, typer.Option(help="'all' (every model whose engine imports) or e.g. neural,ease,als.")
    ] = "all",
    seeds: Annotated[int, typer.Option(help="Number of splits (seeds 0..N-1) to average.")] = 3,
    min_rating: MinRating = None,
    nonpositive: Nonpositive = None,
    n_heldout: HeldOutOption = 0.1,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="Fix a model option: KIND.key=value (repeatable)."),
    ] = None,
    no_tune: Annotated[
        bool, typer.Option("--no-tune", help="Skip the small validation grids (EASE's l2).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
    png: Annotated[
        Path | None, typer.Option(help="Also write a bar chart (Recall@20, NDCG@100) here.")
    ] = None,
) -> None:
    """Fit every model on the identical held-out-user split per seed and print a leaderboard.

    Metrics are means ± sample std over seeds; fit seconds and peak RSS (memory added during
    fit) are for the configuration each row chose on validation users.

    Examples:

      tastespace benchmark --data ml-100k.zip --min-rating 4

      tastespace benchmark --data ml-100k.zip --min-rating 4 --models ease,als --json

      tastespace benchmark --data ratings.csv --models ease -p ease.l2=500 --png board.png
    """
    from tastespace.errors import ConfigError
    from tastespace.evaluate.leaderboard import run_leaderboard
    from tastespace.models.config import parse_options
    from tastespace.models.registry import MODELS, available_models

    if seeds < 1:
        raise ConfigError(f"--seeds must be ≥ 1, got {seeds}")
    names = (
        available_models()
        if models.strip() == "all"
        else [m.strip() for m in models.split(",") if m.strip()]
    )
    options: dict[str, dict[str, Any]] = {name: {} for name in names}
    for key, value in parse_options(param or []).items():
        kind, dot, option = key.partition(".")
        if not dot or kind not in MODELS:
            raise ConfigError(
                f"--param {key}={value} must look like KIND.key=value, e.g. ease.l2=500"
            )
        if kind not in options:
            raise ConfigError(f"--param {key}: {kind} is not among --models {models}")
        options[kind][option] = value
    ds = load(data, min_rating, nonpositive=nonpositive)

    def progress(line: str) -> None:
        err_console.print(f"[dim]{line}[/]", highlight=False)

    board = run_leaderboard(
        ds,
        options,
        seeds=tuple(range(seeds)),
        n_heldout=heldout_value(n_heldout),
        tune={} if no_tune else None,
        progress=progress,
    )
    if png is not None:
        from tastespace.evaluate.chart import plot_leaderboard

        err_console.print(f"chart → {plot_leaderboard(board, png)}")
    if as_json:
        print(json.dumps(board.to_json(), default=str))
        return
    console.print(leaderboard_table(board))


def leaderboard_table(board: Any) -> Table:
    """A Rich table of a :class:`~tastespace.evaluate.leaderboard.Leaderboard`.

    Each metric cell is the mean over seeds with the sample std below it, so ten columns fit
    an 80-column terminal.
    """
    from rich import box

    metrics = board.metrics()
    seeds = len(board.protocol["seeds"])
    table = Table(
        title=f"{board.dataset}: strong generalisation, mean ± std over {seeds} seed(s)",
        caption=f"{board.seconds:.0f} s in all; peak MiB = memory added during fit "
        f"({board.memory_method}); src ts = tastespace",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    table.add_column("model", no_wrap=True)
    table.add_column("src")
    for column in (*(_SHORT.get(m, m) for m in metrics), "fit s", "MiB"):
        table.add_column(column, justify="right")
    for row in board.sorted_by():
        source = "ts" if row.source == "tastespace" else row.source
        if not row.runs:
            table.add_row(row.name, source, f"[red]{row.error}[/]")
            continue
        cells = []
        for metric in metrics:
            stats = row.stats(metric)
            cells.append(
                "-"
                if math.isnan(stats["mean"])
                else f"{stats['mean']:.3f}\n[dim]±{_std(stats['std'])}[/]"
            )
        fit = row.stats("fit_seconds")
        rss = row.stats("peak_rss_mib")
        table.add_row(
            row.name,
            source,
            *cells,
            f"{fit['mean']:.1f}",
            "-" if math.isnan(rss["mean"]) else f"{rss['mean']:.0f}",
        )
    return table


_SHORT = {
    "recall@20": "R@20",
    "recall@50": "R@50",
    "ndcg@100": "N@100",
    "mrr@20": "MRR\n@20",
    "coverage@20": "cover\n@20",
    "diversity@20": "div\n@20",
}


def _std(value: float) -> str:
    """``0.047`` → ``.047`` (keeps metric cells five characters wide)."""
    text = f"{value:.3f}"
    return text[1:] if text.startswith("0.") else text


# -- tune ---------------------------------------------------------------------------------------
def tune(
    model: Annotated[str, typer.Option("--model", "-m", help="Model kind to tune, e.g. ease.")],
    data: DataOption,
    trials: Annotated[int | None, typer.Option(help="Stop after N trials.")] = None,
    minutes: Annotated[
        float | None, typer.Option(help="Stop after M minutes (a running trial finishes).")
    ] = None,
    seed: SeedOption = 0,
    min_rating: MinRating = None,
    nonpositive: Nonpositive = None,
    n_heldout: HeldOutOption = 0.1,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="Hold an option fixed: key=value (repeatable)."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Save the best model as a bundle here.")
    ] = None,
    config_out: Annotated[
        Path | None,
        typer.Option(help="Write the best options as a TOML file for `fit --config`."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Search a model's options with Optuna (seeded TPE) on validation users' Recall@20.

    The best configuration is then scored once on the test users. Without --trials or
    --minutes, 20 trials run.

    Examples:

      tastespace tune --model ease --data ml-100k.zip --min-rating 4 --trials 15

      tastespace tune --model item2vec --data ml-100k.zip --min-rating 4 --minutes 10 --out runs/i2v

      tastespace tune --model ease --data ratings.csv --config-out ease.toml
    """
    from tastespace.evaluate.tuning import search_space, tune_model
    from tastespace.models.config import parse_options

    search_space(model)  # unknown kinds fail before the data is read
    if out is not None:
        from tastespace.io.swap import check_target

        check_target(out)  # a bad --out fails now, not after the trials
    ds = load(data, min_rating, nonpositive=nonpositive)
    fixed = parse_options(param or [])
    result = tune_model(
        model,
        ds,
        trials=trials,
        minutes=minutes,
        seed=seed,
        n_heldout=heldout_value(n_heldout),
        fixed=fixed,
        progress=_print_trial,
    )
    saved = None if out is None else result.model.save(out)
    if config_out is not None:
        from tastespace.cli.run_config import write_fit_config

        chosen = {**fixed, **result.best_params, "seed": seed}
        write_fit_config(
            config_out, model, chosen, data=data, min_rating=min_rating, nonpositive=nonpositive
        )
    _show_tuning(model, result, saved, as_json)


def _print_trial(number: int, params: dict[str, Any], score: float | None) -> None:
    """One dim stderr line per finished trial: its number, score and options."""
    shown = ", ".join(f"{k}={_short(v)}" for k, v in params.items())
    value = "failed" if score is None else f"val R@20 {score:.4f}"
    err_console.print(f"[dim]trial {number}: {value}  ({shown})[/]", highlight=False)


def _show_tuning(model: str, result: Any, saved: Path | None, as_json: bool) -> None:
    """The best options with their validation and test scores: a table, or one JSON object."""
    if as_json:
        payload = result.to_json()
        payload["bundle"] = None if saved is None else str(saved)
        print(json.dumps(payload, default=str))
        return
    table = Table(
        title=f"{model}: best of {len(result.trials)} trials ({result.seconds:.0f} s)",
        show_header=False,
    )
    for key, value in result.best_params.items():
        table.add_row(key, _short(value))
    table.add_row("validation recall@20", f"{result.best_validation:.4f}")
    for name in ("recall@20", "recall@50", "ndcg@100", "mrr@20", "coverage@20"):
        if name in result.test_metrics:
            table.add_row(f"[bold]test {name}[/]", f"{result.test_metrics[name]:.4f}")
    console.print(table)
    if saved is not None:
        console.print(f"[green]saved[/] best {model} model → {saved}")


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
