"""``tastespace fit | similar | recommend | demo``: train bundles and query them."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from tastespace.cli.common import (
    CutoffOption,
    DataOption,
    IndexOption,
    ItemCol,
    ItemFeatures,
    KeepUnrated,
    MinRating,
    Nonpositive,
    UserCol,
    UserFeatures,
    console,
    err_console,
    load,
)
from tastespace.cli.device import DeviceOption
from tastespace.cli.run_config import layered_params, load_bundle_options, load_config_file
from tastespace.models.registry import MODELS

if TYPE_CHECKING:
    pass


def register(app: typer.Typer) -> None:
    for command in (fit, similar, recommend, demo):
        app.command()(command)
    app.command("add-items")(add_items)


def fit(
    ctx: typer.Context,
    data: DataOption,
    out: Annotated[Path, typer.Option("--out", "-o", help="Bundle directory to write.")],
    model: Annotated[str, typer.Option("--model", "-m", help=f"One of {', '.join(MODELS)}.")] = (
        "neural"
    ),
    min_rating: MinRating = None,
    item_features: ItemFeatures = None,
    user_features: UserFeatures = None,
    item_col: ItemCol = None,
    user_col: UserCol = None,
    nonpositive: Nonpositive = None,
    keep_unrated: KeepUnrated = False,
    epochs: Annotated[
        int | None, typer.Option(help="Training epochs (iterations for als and bpr).")
    ] = None,
    dim: Annotated[
        int | None, typer.Option(help="Embedding dimension (factors for als and bpr).")
    ] = None,
    genre_dim: Annotated[
        int | None, typer.Option(help="Neural: genre embedding dimension (2 = plottable).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed.")] = None,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="Any model option as key=value (repeatable)."),
    ] = None,
    nproc: Annotated[
        int, typer.Option(help="Neural: train with N processes on this machine (torchrun + DDP).")
    ] = 1,
    nnodes: Annotated[
        int, typer.Option(help="Neural: machines taking part (run the same command on each).")
    ] = 1,
    node_rank: Annotated[int, typer.Option(help="Neural: this machine's rank, 0 … nnodes-1.")] = 0,
    rdzv_endpoint: Annotated[
        str | None,
        typer.Option(help="Neural: HOST:PORT of the rank-0 machine (torchrun rendezvous)."),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            is_eager=True,
            callback=load_config_file,
            help="TOML file of fit options (flag names as keys, model options under [params]).",
        ),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print one JSON object (bundle, sizes, best epoch); progress as JSON Lines on "
            "stderr.",
        ),
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress display.")] = False,
    from_bundle: Annotated[
        Path | None,
        typer.Option(
            "--from",
            is_eager=True,
            callback=load_bundle_options,
            help="Re-run this bundle's model kind and options (on --data).",
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            help="Write the bundle into an --out folder that holds other files but no bundle "
            "(they are kept). Over an existing bundle only its own files are ever replaced."
        ),
    ] = False,
    device: Annotated[
        str, typer.Option(help="auto (CUDA when present), cpu, cuda or cuda:N; neural only.")
    ] = "cpu",
    threads: Annotated[
        int | None, typer.Option(help="Neural: compute threads for the fit.")
    ] = None,
    checkpoint_dir: Annotated[
        Path | None, typer.Option(help="Neural: write a resumable checkpoint here every epoch.")
    ] = None,
    resume: Annotated[
        bool, typer.Option(help="Neural: continue from the checkpoint in --checkpoint-dir.")
    ] = False,
    holdout: Annotated[
        float | None,
        typer.Option(
            help="Hold out N users for validation and N for test (a count or a fraction; "
            "strong generalisation); `evaluate BUNDLE` then scores exactly the test users."
        ),
    ] = None,
    protocol: Annotated[
        str | None,
        typer.Option(help="Split to train on: strong (with --holdout), temporal or time."),
    ] = None,
    cutoff: CutoffOption = None,
    last_n: Annotated[int, typer.Option(help="Temporal: latest items held out per user.")] = 1,
    split_seed: Annotated[int, typer.Option(help="Seed of the held-out user split.")] = 0,
    index: IndexOption = "auto",
) -> None:
    """Train a model and save it as a bundle directory.

    Flags override --config, which overrides --from.

    With --holdout (or --protocol temporal|time) the model trains on a split's train part and
    the bundle records the split, the data source and every loader option, so `evaluate
    BUNDLE` needs nothing else. Without, it trains on every user (for serving).

    Examples:

      tastespace fit --data ml-100k.zip --min-rating 4 --holdout 100 --out runs/neural

      tastespace fit --model ease --data ratings.csv --min-rating 4 --out runs/ease -p l2=500

      tastespace fit --config fit.toml --out runs/again

      tastespace fit --from runs/ease --data new-ratings.csv --out runs/ease-new

      tastespace fit --model ease --data ml-100k.zip --protocol time --cutoff 0.8 --out runs/t
      tastespace fit --model als --data ml-25m.zip --min-rating 4 --index hnsw --out runs/als
    """
    from tastespace.io.swap import check_target

    check_target(out, force=force)  # before numpy loads, the data is read or a model trained
    from tastespace.errors import ConfigError
    from tastespace.index.base import resolve_kind
    from tastespace.models.config import parse_options
    from tastespace.models.devices import check_training_device
    from tastespace.models.fitting import TrainingOptions
    from tastespace.models.registry import model_class

    resolve_kind(index, 0)  # an unknown --index fails before training, not after
    options: dict[str, Any] = {**layered_params(ctx), **parse_options(param or [])}
    if resume and checkpoint_dir is None:
        raise ConfigError("--resume needs --checkpoint-dir (the directory to resume from)")
    training = TrainingOptions(
        device=device,
        threads=threads,
        checkpoint_dir=None if checkpoint_dir is None else str(checkpoint_dir),
        resume=resume,
    )
    for key, value in (("epochs", epochs), ("dim", dim), ("genre_dim", genre_dim), ("seed", seed)):
        if value is not None:
            options[key] = value
    check_training_device(model, device)  # e.g. CUDA on a CPU-only machine: before loading
    columns = {
        "item_features": item_features,
        "user_features": user_features,
        "item_col": item_col,
        "user_col": user_col,
        "nonpositive": nonpositive,
        "keep_unrated": keep_unrated,
    }
    split = _split_options(protocol, holdout, cutoff, last_n, split_seed)
    if nproc > 1 or nnodes > 1 or rdzv_endpoint is not None:
        if split is not None:
            from tastespace.errors import ConfigError

            raise ConfigError("--holdout / --protocol are not supported with --nproc > 1 yet")
        from tastespace.models.neural.distributed import Launch

        launch = Launch(nproc, nnodes, node_rank, rdzv_endpoint)
        loader = {k: str(v) for k, v in columns.items() if v is not None and v is not False}
        _fit_distributed(model, launch, data, out, min_rating, options, loader, force, training)
        if launch.node_rank != 0:
            return  # node 0 saved the bundle (and indexes it)
        if resolve_kind(index, model_class(model).load(out).n_items) != "exact":
            _index_bundle(out, index)
        return
    ds = load(data, min_rating, **columns)
    recommender = model_class(model)(**options)
    from tastespace.cli.progress import FitProgress

    with FitProgress(quiet=quiet, as_json=as_json) as callback:
        if split is None:
            recommender.fit(ds, callback=callback, training=training)
        else:
            from tastespace.evaluate.heldout import fit_heldout

            fit_heldout(recommender, ds, callback=callback, training=training, **split)
    info = recommender.build_index(index, histories=ds.interactions)
    path = recommender.save(out, force=force)
    trained = "every user" if split is None else _held_out_note(recommender.split_, path)
    summary = {**_fit_summary(recommender, ds, path), "index": info}
    if recommender.split_ is not None:
        summary["split"] = recommender.split_
    if as_json:
        print(json.dumps(summary))
        return
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
    _print_index(info)


def _index_bundle(path: Path, kind: str) -> None:
    """Build the search index of an already saved bundle and save it again."""
    from tastespace.models.base import Recommender

    recommender = Recommender.load(path)
    info = recommender.build_index(kind)
    recommender.save(path)
    _print_index(info)


def _print_index(info: dict[str, Any]) -> None:
    """One line per approximate index: its kind and the recall measured against exact."""
    for role, entry in info.items():
        if role != "kind":
            console.print(
                f"{role} index: {info['kind']}, recall@10 {entry['recall@10']:.3f} vs exact "
                f"({entry['recall_queries']:,} sampled queries)",
                highlight=False,
            )


def _fit_summary(recommender: Any, ds: Any, path: Path) -> dict[str, Any]:
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


def _split_options(
    protocol: str | None, holdout: float | None, cutoff: str | None, last_n: int, seed: int
) -> dict[str, Any] | None:
    """``fit_heldout``'s keywords for the flags given, or None to train on every user."""
    from tastespace.cli.common import heldout_value

    if protocol is None and holdout is None and cutoff is None:
        return None
    chosen = protocol or ("time" if cutoff is not None else "strong")
    split: dict[str, Any] = {"protocol": chosen, "seed": seed, "last_n": last_n, "cutoff": cutoff}
    if holdout is not None:
        split["holdout"] = heldout_value(holdout)
    return split


def _held_out_note(split: dict[str, Any] | None, path: Path) -> str:
    """What the model trained on, and how to score the rest."""
    assert split is not None
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


def _fit_distributed(
    model: str,
    launch: Any,
    data: str,
    out: Path,
    min_rating: float | None,
    options: dict[str, Any],
    loader: dict[str, str],
    force: bool,
    training: Any,
) -> None:
    from tastespace.errors import ConfigError
    from tastespace.models.neural.distributed import spawn

    if model != "neural":
        raise ConfigError("--nproc / --nnodes > 1 are supported for --model neural only")
    params = [f"{k}={v}" for k, v in options.items()]
    code = spawn(launch, data, out, min_rating, params, loader, force=force, training=training)
    if code != 0:
        raise ConfigError(f"distributed training failed (exit code {code}); see the log above")
    where = f"{launch.nproc} processes" + (
        f" on each of {launch.nnodes} machines" if launch.nnodes > 1 else ""
    )
    if launch.node_rank == 0:
        console.print(f"[green]saved[/] neural model trained on {where} → {out}")
    else:
        console.print(f"[green]trained[/] on {where}; node 0 saved the bundle")


def _items_table(
    title: str, items: list[dict[str, Any]], because: list[list[dict[str, Any]]] | None = None
) -> Table:
    table = Table(title=title)
    columns = ("#", "id", "title", "genres", "score") + (
        ("because you watched",) if because else ()
    )
    for column in columns:
        table.add_column(column)
    for rank, item in enumerate(items, 1):
        row = [
            str(rank),
            str(item["id"]),
            item["title"],
            "|".join(item["genres"]),
            f"{item['score']:.3f}" if "score" in item else "",
        ]
        if because:
            row.append(
                "; ".join(f"{b['title']} {100 * b['share']:.0f}%" for b in because[rank - 1])
            )
        table.add_row(*row)
    return table


def similar(
    bundle: Annotated[Path, typer.Argument(help="Bundle directory from `tastespace fit`.")],
    item: Annotated[str, typer.Argument(help="A raw item id or a (fuzzy) title.")],
    k: Annotated[int, typer.Option("-k", help="How many neighbours.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Nearest neighbours of an item in the learned space.

    Example: tastespace similar runs/neural "Toy Story"
    """
    from tastespace.session import Session

    query, neighbours = Session.open(bundle).similar_records(item, k)
    if as_json:
        print(json.dumps({"item": query, "similar": neighbours}))
    else:
        console.print(_items_table(f"like {query['title']}", neighbours))


def recommend(
    bundle: Annotated[Path, typer.Argument(help="Bundle directory from `tastespace fit`.")],
    history: Annotated[
        list[str] | None,
        typer.Option("--history", "-H", help="A watched item (raw id or title); repeat."),
    ] = None,
    history_file: Annotated[
        Path | None,
        typer.Option(help='JSON Lines: {"user": "u1", "history": [ids or titles]} per line.'),
    ] = None,
    k: Annotated[int, typer.Option("-k", help="How many recommendations.")] = 10,
    include_seen: Annotated[bool, typer.Option(help="Allow items already in the history.")] = False,
    skip_unknown: Annotated[
        bool,
        typer.Option(
            help="Ignore history entries not in the catalog; a history that cannot be read at "
            "all is reported in that user's output and the others are still answered."
        ),
    ] = False,
    exclude: Annotated[
        list[str] | None,
        typer.Option(
            "--exclude", "-x", help="Never recommend this item (raw id or title); repeat."
        ),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help='JSON Lines: {"user", "items", "scores"} (or "error").'),
    ] = False,
    explain: Annotated[
        bool,
        typer.Option(help="Add the watched items that explain each recommendation, with shares."),
    ] = False,
    device: DeviceOption = None,
) -> None:
    """Recommend for a fresh watch list (no retraining) or a batch of users.

    Examples:

      tastespace recommend runs/neural -H "Toy Story (1995)" -H "Heat (1995)" -k 10

      tastespace recommend runs/neural --history-file users.jsonl --json > recs.jsonl

      tastespace recommend runs/ease -H "Toy Story (1995)" -H "Heat (1995)" --explain
    """
    from tastespace.errors import DataError
    from tastespace.models.devices import on_device
    from tastespace.session import Session

    records = _read_histories(history, history_file)
    session = Session.open(bundle)
    on_device(session.model, device)
    if history_file is not None and not skip_unknown:
        _check_history_file(history_file, records, session, skip_unknown)
    results = session.answer(
        [(r.user, r.history) for r in records],
        k=k,
        exclude_seen=not include_seen,
        skip_unknown=skip_unknown,
        exclude=exclude or (),
    )
    failed = [(rec, res) for rec, res in zip(records, results, strict=True) if res.error]
    if failed and len(failed) == len(results):
        record, result = failed[0]
        raise DataError(f"{_where(history_file, record)}{result.error}")
    for record, result in zip(records, results, strict=True):
        for entry in result.skipped:
            err_console.print(f"[yellow]skipped unknown item {entry!r} for user {result.user!r}[/]")
        if result.error is not None:
            _print_user_error(f"{_where(history_file, record)}{result.error}", result, as_json)
            continue
        because = None
        if explain:
            watched, _ = session.resolve_history(record.user, record.history, skip_unknown)
            because = session.because(watched, result.items)
        if as_json:
            line = {
                "user": result.user,
                "items": [i["id"] for i in result.items],
                "scores": [i["score"] for i in result.items],
                "fallback": result.fallback,
            }
            if because is not None:
                line["because"] = [
                    [{"id": b["id"], "share": b["share"]} for b in row] for row in because
                ]
            print(json.dumps(line))
        else:
            note = " (most popular: no known item in the history)" if result.fallback else ""
            console.print(_items_table(f"for {result.user}{note}", result.items, because))
    if failed:
        err_console.print(
            f"[yellow]{len(failed)} of {len(results)} users not answered (errors above)[/]"
        )


def _where(history_file: Path | None, record: Any) -> str:
    """``file:line: `` for a record of the history file, nothing for ``-H``."""
    return "" if history_file is None else f"{history_file}:{record.line}: "


def _print_user_error(message: str, result: Any, as_json: bool) -> None:
    """One user's unreadable history: its own output line, so the batch goes on."""
    if as_json:
        print(json.dumps({"user": result.user, "error": message}, default=str))
    else:
        err_console.print(f"error: {message}", markup=False, highlight=False)


def _read_histories(history: list[str] | None, history_file: Path | None) -> list[Any]:
    """The one ``-H`` history (as line 0), or every record of the history file."""
    from tastespace.data.history_file import HistoryRecord, read_history_file
    from tastespace.errors import DataError

    if bool(history) == bool(history_file):
        raise DataError("give either --history (repeatable) or --history-file, not both or neither")
    if history_file is None:
        return [HistoryRecord(0, "you", list(history or []))]
    return read_history_file(history_file)


def _check_history_file(path: Path, records: list[Any], session: Any, skip_unknown: bool) -> None:
    """Resolve each record's items up front, so an unknown one names its line of the file."""
    from tastespace.errors import DataError, TastespaceError

    for record in records:
        try:
            session.resolve_history(record.user, record.history, skip_unknown)
        except TastespaceError as err:
            raise DataError(f"{path}:{record.line}: {err}") from err


def add_items(
    bundle: Annotated[Path, typer.Argument(help="Bundle directory from `tastespace fit`.")],
    items: Annotated[
        Path,
        typer.Argument(help="CSV/Parquet of new items: id, title, genres 'a|b', numbers."),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Bundle directory to write.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Add cold items (features only, no interactions) to a bundle's catalog.

    The new bundle serves them like any item: similar, recommend, the server. Their vectors
    and biases come from the model's content path (neural models); categorical values the
    model never learned are reported, not dropped silently.

    Example: tastespace add-items runs/neural new_movies.csv --out runs/neural-plus
    """
    from tastespace.session import Session

    session = Session.open(bundle)
    added = session.add_items(items)
    path = session.model.save(out)
    if as_json:
        report = {"added": added.ids, "unseen": added.unseen, "missing": added.missing}
        print(json.dumps({**report, "bundle": str(path)}, default=str))
        return
    for line in added.lines():
        console.print(line, highlight=False, markup=False)
    console.print(f"saved → {path}", highlight=False)


def demo(
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 12,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    out: Annotated[Path | None, typer.Option(help="Also save the trained bundle here.")] = None,
) -> None:
    """Train the neural model on the synthetic catalog, then show neighbours and recommendations.

    Runs offline in well under a minute. Example: tastespace demo --out runs/demo
    """
    from tastespace.demo import run_demo
    from tastespace.io.swap import check_target

    if out is not None:
        check_target(out)  # fail before training, not after
    run_demo(console, epochs=epochs, seed=seed, out=out)
