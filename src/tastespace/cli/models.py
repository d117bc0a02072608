"""``tastespace fit | similar | recommend | demo``: train bundles and query them."""

from __future__ import annotations

import json
import tempfile
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
from tastespace.cli.fit_options import (
    AsJson,
    CheckpointDir,
    ConfigFile,
    Device,
    Dim,
    Epochs,
    Force,
    FromBundle,
    GenreDim,
    Holdout,
    LastN,
    Model,
    Nnodes,
    NodeRank,
    Nproc,
    Out,
    Params,
    Protocol,
    Quiet,
    RdzvEndpoint,
    Resume,
    Seed,
    ShardData,
    SplitSeed,
    Threads,
    loader_options,
    model_options,
    print_index,
    report_fit,
    split_options,
    training_options,
)

if TYPE_CHECKING:
    from tastespace.models.fitting import TrainingOptions


def register(app: typer.Typer) -> None:
    for command in (fit, similar, recommend, demo):
        app.command()(command)
    app.command("add-items")(add_items)


def fit(
    ctx: typer.Context,
    data: DataOption,
    out: Out,
    model: Model = "neural",
    min_rating: MinRating = None,
    item_features: ItemFeatures = None,
    user_features: UserFeatures = None,
    item_col: ItemCol = None,
    user_col: UserCol = None,
    nonpositive: Nonpositive = None,
    keep_unrated: KeepUnrated = False,
    epochs: Epochs = None,
    dim: Dim = None,
    genre_dim: GenreDim = None,
    seed: Seed = None,
    param: Params = None,
    nproc: Nproc = 1,
    nnodes: Nnodes = 1,
    node_rank: NodeRank = 0,
    rdzv_endpoint: RdzvEndpoint = None,
    shard_data: ShardData = "auto",
    config: ConfigFile = None,
    as_json: AsJson = False,
    quiet: Quiet = False,
    from_bundle: FromBundle = None,
    force: Force = False,
    device: Device = "cpu",
    threads: Threads = None,
    checkpoint_dir: CheckpointDir = None,
    resume: Resume = False,
    holdout: Holdout = None,
    protocol: Protocol = None,
    cutoff: CutoffOption = None,
    last_n: LastN = 1,
    split_seed: SplitSeed = 0,
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
    from tastespace.index.base import resolve_kind
    from tastespace.models.devices import check_training_device
    from tastespace.models.registry import model_class

    resolve_kind(index, 0)  # an unknown --index fails before training, not after
    options = model_options(ctx)
    training = training_options(device, threads, checkpoint_dir, resume)
    check_training_device(model, device)  # e.g. CUDA on a CPU-only machine: before loading
    split = split_options(protocol, holdout, cutoff, last_n, split_seed)
    if nproc > 1 or nnodes > 1 or rdzv_endpoint is not None:
        _fit_distributed(ctx, options, training, split)
        return
    ds = load(data, min_rating, **loader_options(ctx))
    recommender = model_class(model)(**options)
    _train(recommender, ds, split, training, quiet=quiet, as_json=as_json)
    info = recommender.build_index(index, histories=ds.interactions)
    path = recommender.save(out, force=force)
    report_fit(model, recommender, ds, path, info, as_json, trained_on_all=split is None)


def _train(
    recommender: Any,
    ds: Any,
    split: dict[str, Any] | None,
    training: TrainingOptions,
    *,
    quiet: bool,
    as_json: bool,
) -> None:
    """Fit on every user, or on the train part of the split asked for, with a progress bar."""
    from tastespace.cli.progress import FitProgress

    with FitProgress(quiet=quiet, as_json=as_json) as callback:
        if split is None:
            recommender.fit(ds, callback=callback, training=training)
        else:
            from tastespace.evaluate.heldout import fit_heldout

            fit_heldout(recommender, ds, callback=callback, training=training, **split)


def _index_bundle(path: Path, kind: str) -> None:
    """Build the search index of an already saved bundle and save it again."""
    from tastespace.models.base import Recommender

    recommender = Recommender.load(path)
    info = recommender.build_index(kind)
    recommender.save(path)
    print_index(info)


def _fit_distributed(
    ctx: typer.Context,
    options: dict[str, Any],
    training: TrainingOptions,
    split: dict[str, Any] | None,
) -> None:
    """``--nproc`` / ``--nnodes``: the neural model trained by torchrun processes (DDP), saved
    by node 0, then indexed as ``--index`` asks."""
    from tastespace.errors import ConfigError
    from tastespace.index.base import resolve_kind
    from tastespace.models.neural.distributed import Launch, raise_reported, spawn
    from tastespace.models.registry import model_class

    flags = ctx.params
    if split is not None:
        raise ConfigError("--holdout / --protocol are not supported with --nproc > 1 yet")
    launch = Launch(flags["nproc"], flags["nnodes"], flags["node_rank"], flags["rdzv_endpoint"])
    if flags["model"] != "neural":
        raise ConfigError("--nproc / --nnodes > 1 are supported for --model neural only")
    loader = {k: str(v) for k, v in loader_options(ctx).items() if v is not None and v is not False}
    params = [f"{k}={v}" for k, v in options.items()]
    out, index = flags["out"], flags["index"]
    with tempfile.TemporaryDirectory(prefix="tastespace-fit-") as scratch:
        reported = Path(scratch) / "error.json"
        code = spawn(
            launch,
            flags["data"],
            out,
            flags["min_rating"],
            params,
            loader,
            force=flags["force"],
            training=training,
            shard_data=flags["shard_data"],
            error_file=reported,
        )
        raise_reported(reported)  # bad data or options: the processes' one-line error
    if code != 0:
        raise ConfigError(f"distributed training failed (exit code {code}); see the log above")
    where = f"{launch.nproc} processes" + (
        f" on each of {launch.nnodes} machines" if launch.nnodes > 1 else ""
    )
    if launch.node_rank != 0:
        console.print(f"[green]trained[/] on {where}; node 0 saved the bundle")
        return  # node 0 saved the bundle (and indexes it)
    console.print(f"[green]saved[/] neural model trained on {where} → {out}")
    bundle = model_class("neural").load(out)
    for read in (bundle.data_ or {}).get("shards", []):
        first, stop = read["row_groups"]
        console.print(
            f"  rank {read['rank']} read row groups {first}–{stop - 1}: {read['rows']:,} rows"
        )
    if resolve_kind(index, bundle.n_items) != "exact":
        _index_bundle(out, index)


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
        because = session.because(result.watched, result.items) if explain else None
        _print_answer(result, because, as_json)
    if failed:
        err_console.print(
            f"[yellow]{len(failed)} of {len(results)} users not answered (errors above)[/]"
        )


def _print_answer(result: Any, because: list[list[dict[str, Any]]] | None, as_json: bool) -> None:
    """One user's recommendations: a JSON line, or a table (noting a popularity fallback)."""
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
            raise DataError(f"{path}:{record.line}: {err}", options=err.options) from err


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
