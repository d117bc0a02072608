"""The flags of ``tastespace fit`` as reusable types, and the steps of the command besides
training: the model and run options the flags make, the held-out split they ask for, and the
report of a saved fit."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tastespace.cli.common import console, heldout_value
from tastespace.cli.run_config import layered_params, load_bundle_options, load_config_file
from tastespace.models.registry import MODELS

if TYPE_CHECKING:
    from tastespace.models.fitting import TrainingOptions

Out = Annotated[Path, typer.Option("--out", "-o", help="Bundle directory to write.")]
Model = Annotated[str, typer.Option("--model", "-m", help=f"One of {', '.join(MODELS)}.")]
Epochs = Annotated[int | None, typer.Option(help="Training epochs (iterations for als and bpr).")]
Dim = Annotated[int | None, typer.Option(help="Embedding dimension (factors for als and bpr).")]
GenreDim = Annotated[
    int | None, typer.Option(help="Neural: genre embedding dimension (2 = plottable).")
]
Seed = Annotated[int | None, typer.Option(help="Random seed.")]
Params = Annotated[
    list[str] | None,
    typer.Option("--param", "-p", help="Any model option as key=value (repeatable)."),
]
Nproc = Annotated[
    int, typer.Option(help="Neural: train with N processes on this machine (torchrun + DDP).")
]
Nnodes = Annotated[
    int, typer.Option(help="Neural: machines taking part (run the same command on each).")
]
NodeRank = Annotated[int, typer.Option(help="Neural: this machine's rank, 0 … nnodes-1.")]
RdzvEndpoint = Annotated[
    str | None,
    typer.Option(help="Neural: HOST:PORT of the rank-0 machine (torchrun rendezvous)."),
]
ShardData = Annotated[
    str,
    typer.Option(
        help="Neural with --nproc/--nnodes: each process reads only its row groups of a "
        "Parquet file (auto: when it has one per process; on: insist; off: all read it whole)."
    ),
]
ConfigFile = Annotated[
    Path | None,
    typer.Option(
        "--config",
        is_eager=True,
        callback=load_config_file,
        help="TOML file of fit options (flag names as keys, model options under [params]).",
    ),
]
AsJson = Annotated[
    bool,
    typer.Option(
        "--json",
        help="Print one JSON object (bundle, sizes, best epoch); progress as JSON Lines on stderr.",
    ),
]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress display.")]
FromBundle = Annotated[
    Path | None,
    typer.Option(
        "--from",
        is_eager=True,
        callback=load_bundle_options,
        help="Re-run this bundle's model kind and options (on --data).",
    ),
]
Force = Annotated[
    bool,
    typer.Option(
        help="Write the bundle into an --out folder that holds other files but no bundle "
        "(they are kept). Over an existing bundle only its own files are ever replaced."
    ),
]
Device = Annotated[
    str, typer.Option(help="auto (CUDA when present), cpu, cuda or cuda:N; neural only.")
]
Threads = Annotated[int | None, typer.Option(help="Neural: compute threads for the fit.")]
CheckpointDir = Annotated[
    Path | None, typer.Option(help="Neural: write a resumable checkpoint here every epoch.")
]
Resume = Annotated[
    bool, typer.Option(help="Neural: continue from the checkpoint in --checkpoint-dir.")
]
Holdout = Annotated[
    float | None,
    typer.Option(
        help="Hold out N users for validation and N for test (a count or a fraction; "
        "strong generalisation); `evaluate BUNDLE` then scores exactly the test users."
    ),
]
Protocol = Annotated[
    str | None,
    typer.Option(help="Split to train on: strong (with --holdout), temporal or time."),
]
LastN = Annotated[int, typer.Option(help="Temporal: latest items held out per user.")]
SplitSeed = Annotated[int, typer.Option(help="Seed of the held-out user split.")]


#: fit's flags that are loader options, and those that are model options by another name.
LOADER_FLAGS = (
    "item_features",
    "user_features",
    "item_col",
    "user_col",
    "nonpositive",
    "keep_unrated",
)
MODEL_FLAGS = ("epochs", "dim", "genre_dim", "seed")


def model_options(ctx: typer.Context) -> dict[str, Any]:
    """Model options: ``--from`` < ``--config`` < ``-p key=value`` < the named flags given
    (``--epochs``, ``--dim``, ``--genre-dim``, ``--seed``)."""
    from tastespace.models.config import parse_options

    given = ctx.params
    options: dict[str, Any] = {**layered_params(ctx), **parse_options(given["param"] or [])}
    options.update({key: given[key] for key in MODEL_FLAGS if given[key] is not None})
    return options


def loader_options(ctx: typer.Context) -> dict[str, Any]:
    """The loader flags as ``load``'s keywords (unset ones are dropped there)."""
    return {key: ctx.params[key] for key in LOADER_FLAGS}


def training_options(
    device: str, threads: int | None, checkpoint_dir: Path | None, resume: bool
) -> TrainingOptions:
    """Where and how this fit runs (never saved with the model)."""
    from tastespace.errors import ConfigError
    from tastespace.models.fitting import TrainingOptions

    if resume and checkpoint_dir is None:
        raise ConfigError("--resume needs --checkpoint-dir (the directory to resume from)")
    return TrainingOptions(
        device=device,
        threads=threads,
        checkpoint_dir=None if checkpoint_dir is None else str(checkpoint_dir),
        resume=resume,
    )


def split_options(
    protocol: str | None, holdout: float | None, cutoff: str | None, last_n: int, seed: int
) -> dict[str, Any] | None:
    """``fit_heldout``'s keywords for the flags given, or None to train on every user."""
    if protocol is None and holdout is None and cutoff is None:
        return None
    chosen = protocol or ("time" if cutoff is not None else "strong")
    split: dict[str, Any] = {"protocol": chosen, "seed": seed, "last_n": last_n, "cutoff": cutoff}
    if holdout is not None:
        split["holdout"] = heldout_value(holdout)
    return split


def report_fit(
    model: str,
    recommender: Any,
    ds: Any,
    path: Path,
    info: dict[str, Any],
    as_json: bool,
    *,
    trained_on_all: bool,
) -> None:
    """Print what was saved: one JSON object, or a line per fact."""
    summary = {**fit_summary(recommender, ds, path), "index": info}
    if recommender.split_ is not None:
        summary["split"] = recommender.split_
    if as_json:
        print(json.dumps(summary))
        return
    trained = "every user" if trained_on_all else held_out_note(recommender.split_, path)
    console.print(
        f"[green]saved[/] {model} model ({ds.n_users:,} users × {ds.n_items:,} items, "
        f"{recommender.fit_seconds_:.1f} s, trained on {trained}) → {path}",
        highlight=False,
    )
    if "best_epoch" in summary:
        console.print(
            f"best epoch {summary['best_epoch']} of {summary['epochs_run']}, validation "
            f"recall@20 {summary['best_validation_recall@20']:.4f}",
            highlight=False,
        )
    print_index(info)


def print_index(info: dict[str, Any]) -> None:
    """One line per approximate index: its kind and the recall measured against exact."""
    for role, entry in info.items():
        if role != "kind":
            console.print(
                f"{role} index: {info['kind']}, recall@10 {entry['recall@10']:.3f} vs exact "
                f"({entry['recall_queries']:,} sampled queries)",
                highlight=False,
            )


def fit_summary(recommender: Any, ds: Any, path: Path) -> dict[str, Any]:
    """What ``fit`` reports: sizes, time, and (models that validate) the epoch kept."""
    summary: dict[str, Any] = {
        "bundle": str(path),
        "kind": recommender.kind,
        "users": ds.n_users,
        "items": ds.n_items,
        "interactions": ds.n_interactions,
        "fit_seconds": round(recommender.fit_seconds_, 3),
    }
    report = getattr(recommender, "train_report_", None)
    if report is not None and report.history and math.isfinite(report.best_score):
        summary.update(
            best_epoch=report.best_epoch,
            epochs_run=report.epochs_run,
            **{"best_validation_recall@20": report.best_score},
        )
    return summary


def held_out_note(split: dict[str, Any], path: Path) -> str:
    """What the model trained on, and how to score the rest."""
    if split["protocol"] == "strong":
        n = split["n_heldout"]
        what = f"the rest of {n} validation + {n} test users held out (seed {split['seed']})"
    elif split["protocol"] == "temporal":
        what = f"all but each user's last {split['n']} item(s)"
    else:
        what = f"interactions before {_utc(split['cutoff_seconds'])} (cutoff {split['cutoff']})"
    return f"{what}; `tastespace evaluate {path}` scores the held-out ones"


def _utc(seconds: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M UTC")
