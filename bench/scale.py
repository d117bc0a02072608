"""Load, fit and evaluate at 1M, 5M and 20M interactions: wall time, peak RSS, scaling exponent.

Each (size, model) runs in a fresh process (``scale.py one SIZE MODEL``), so peak RSS is that
job's alone and a job over its time limit is killed without losing the others. Stages:

* ``load``: generate the synthetic set (the same generator at every size) and split it by
  strong generalisation (1,000 validation and 1,000 test users);
* ``fit``: tastespace's defaults (the neural model with early stopping on the validation
  users); ``implicit-als`` is implicit's own ``AlternatingLeastSquares`` with the same options,
  called directly: the yardstick every other fit time is divided by, measured in the same run;
* ``evaluate``: Recall@20 on the test users (fold-in from 80 % of each history).

The exponent of a stage is the least-squares slope of log(seconds) on log(interactions) over
the sizes that finished: 1.0 = linear in interactions.

Usage::

    python bench/scale.py run --sizes 1M,5M --models als,implicit-als,item2vec --json out.json
    python bench/scale.py run --sizes 20M --models als,neural --allocators keep,glibc
    python bench/scale.py report out.json          # tables from whatever finished
    nohup python bench/scale.py run --json /tmp/scale.json --limit 5400 > /tmp/scale.log &
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from leaderboard import machine  # noqa: E402

SIZES = {
    "1M": "synthetic:medium",  # 20k users × 5k items
    "5M": "synthetic:users=50000,items=15000,history=100",
    "20M": "synthetic:large",  # 200k users × 30k items
}
MODELS = ("implicit-als", "als", "item2vec", "ease", "neural")
ALLOCATORS = ("keep", "glibc")
HELDOUT = 1000


def run_one(size: str, model: str, allocator: str = "keep") -> dict[str, Any]:
    """Load, fit and evaluate one model at one size in this process; one result dict.

    ``allocator``: ``keep`` sets glibc to keep freed memory as the CLI does on start
    (``tastespace.models.allocator``); ``glibc`` leaves its defaults."""
    from tastespace.data import load_dataset
    from tastespace.data.splits import strong_generalization
    from tastespace.errors import ConfigError
    from tastespace.evaluate import evaluate_model
    from tastespace.evaluate.memory import PeakMemory
    from tastespace.models.allocator import keep_freed_memory

    if allocator == "keep":
        keep_freed_memory()
    out: dict[str, Any] = {"size": size, "model": model, "allocator": allocator}
    with PeakMemory() as mem:
        started = time.perf_counter()
        ds = load_dataset(SIZES[size])
        split = strong_generalization(ds, n_heldout=HELDOUT, seed=0)
    out.update(load_s=time.perf_counter() - started, load_peak_mib=mem.peak_mib)
    out.update(interactions=ds.n_interactions, users=ds.n_users, items=ds.n_items)
    del ds
    with PeakMemory() as mem:
        started, used, faults = time.perf_counter(), _cpu_seconds(), _page_faults()
        try:
            fitted = _fit(model, split)
        except ConfigError as err:  # EASE's memory guard: one line, before allocating
            out.update(refused=str(err), fit_s=time.perf_counter() - started)
            return out
    out.update(
        fit_s=time.perf_counter() - started,
        fit_cpu_s=_cpu_seconds() - used,
        fit_page_faults=_page_faults() - faults,
        fit_peak_mib=mem.peak_mib,
    )
    if fitted is not None:
        with PeakMemory() as mem:
            started = time.perf_counter()
            scores = evaluate_model(fitted, split.test)
        out.update(
            eval_s=time.perf_counter() - started,
            eval_peak_mib=mem.peak_mib,
            recall20=scores["recall@20"],
        )
        report = getattr(fitted, "train_report_", None)  # epochs: the neural model's report
        if report is not None:
            out.update(epochs=report.epochs_run, best_epoch=report.best_epoch)
    return out


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process (all threads): a shared machine's load
    stretches wall time but not this."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _page_faults() -> int:
    """Minor page faults of this process so far: each is a page touched for the first time
    since the allocator took it from the kernel."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _fit(model: str, split: Any) -> Any:
    """The fitted tastespace model, or None for the implicit yardstick (not evaluated)."""
    if model == "implicit-als":
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        from tastespace.models.mf import ALSConfig

        c = ALSConfig()
        x = split.train.interactions.tocsr().astype("float32")
        with threadpool_limits(limits=1, user_api="blas"):
            engine = AlternatingLeastSquares(
                factors=c.factors,
                regularization=c.regularization,
                alpha=c.alpha,
                iterations=c.iterations,
                num_threads=0,
                calculate_training_loss=False,
                random_state=0,
            )
            engine.fit(x, show_progress=False)
        return None
    from tastespace.models.registry import model_class

    return model_class(model)().fit(split.train, validation=split.validation)


def run_all(args: argparse.Namespace) -> None:
    """Every (size, model) in a child process with a time limit; results appended as they come."""
    path = Path(args.json)
    results = json.loads(path.read_text())["results"] if path.exists() and args.resume else []
    done = {(r["size"], r["model"], r.get("allocator", "keep")) for r in results}
    header = {
        "machine": machine(),
        "commit": args.label or _commit(),
        "started": time.strftime("%F %T"),
    }
    for size in args.sizes.split(","):
        for model, allocator in itertools.product(
            args.models.split(","), args.allocators.split(",")
        ):
            if (size, model, allocator) in done:
                continue
            job = {"size": size, "model": model, "allocator": allocator}
            print(
                f"[{time.strftime('%T')}] {size} {model} {allocator} (load {_load()})", flush=True
            )
            started = time.perf_counter()
            try:
                child = subprocess.run(
                    [sys.executable, __file__, "one", size, model, "--allocator", allocator],
                    capture_output=True,
                    text=True,
                    timeout=args.limit,
                )
                lines = [ln for ln in child.stdout.splitlines() if ln.startswith("{")]
                result = (
                    json.loads(lines[-1])
                    if lines
                    else {
                        **job,
                        "failed": (child.stderr.strip().splitlines() or ["no output"])[-1],
                    }
                )
            except subprocess.TimeoutExpired:
                result = {**job, "timeout_s": args.limit}
            result["wall_s"] = time.perf_counter() - started
            result["load_avg_after"] = _load()
            results.append(result)
            print("   ", json.dumps(result), flush=True)
            path.write_text(json.dumps({**header, "results": results}, indent=1))
    print(report(json.loads(path.read_text())))


def report(document: dict[str, Any]) -> str:
    """Markdown: one table per size, then the exponents of time vs interactions."""
    results = document["results"]
    lines = [f"machine: {document['machine']}; tastespace at {document['commit']}", ""]
    for size in SIZES:
        rows = [r for r in results if r["size"] == size]
        if not rows:
            continue
        yards = {r.get("allocator", "keep"): r for r in rows if r["model"] == "implicit-als"}
        first = next((r for r in rows if "interactions" in r), {})
        lines += [
            f"### {size}: {first.get('users', 0):,} users × {first.get('items', 0):,} items, "
            f"{first.get('interactions', 0):,} interactions",
            "",
            "| model | load s | fit s | fit ÷ implicit ALS | fit CPU s | CPU ÷ implicit ALS | "
            "fit peak RSS GiB | fit page faults | evaluate s | R@20 | note |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in rows:
            mode = r.get("allocator", "keep")
            lines.append(_row(r, yards.get(mode) or next(iter(yards.values()), {})))
        lines.append("")
    lines += ["### exponent of time vs interactions (1 = linear)", ""]
    lines += ["| model | load | fit | fit CPU | evaluate | sizes |", "|---|---|---|---|---|---|"]
    for model in dict.fromkeys(_label(r) for r in results):
        mine = [r for r in results if _label(r) == model and "fit_peak_mib" in r]
        slopes = [_slope(mine, key) for key in ("load_s", "fit_s", "fit_cpu_s", "eval_s")]
        cells = " | ".join("-" if s is None else f"{s:.2f}" for s in slopes)
        lines.append(f"| {model} | {cells} | {', '.join(r['size'] for r in mine)} |")
    return "\n".join(lines)


def _label(r: dict[str, Any]) -> str:
    """The model, and the allocator when it is glibc's defaults (keep is the CLI's)."""
    return r["model"] + (" (glibc defaults)" if r.get("allocator") == "glibc" else "")


def _row(r: dict[str, Any], yard: dict[str, Any]) -> str:
    def num(key: str, digits: int = 1) -> str:
        return "-" if r.get(key) is None else f"{r[key]:,.{digits}f}"

    def ratio(key: str) -> str:
        fits = yard.get(key) and r.get(key) and "fit_peak_mib" in r
        return f"{r[key] / yard[key]:.2f}" if fits else "-"

    peak = f"{r['fit_peak_mib'] / 1024:.2f}" if "fit_peak_mib" in r else "-"
    note = r.get("refused") or r.get("failed") or ""
    if "timeout_s" in r:
        note = f"killed at the {r['timeout_s']} s limit"
    if "epochs" in r:
        note = f"{r['epochs']} epochs (best {r['best_epoch']})"
    return (
        f"| {_label(r)} | {num('load_s')} | {num('fit_s')} | {ratio('fit_s')} | "
        f"{num('fit_cpu_s')} | {ratio('fit_cpu_s')} | {peak} | {num('fit_page_faults', 0)} | "
        f"{num('eval_s')} | {num('recall20', 3)} | {note} |"
    )


def _slope(rows: list[dict[str, Any]], key: str) -> float | None:
    points = [(math.log(r["interactions"]), math.log(r[key])) for r in rows if r.get(key)]
    if len(points) < 2:
        return None
    mx = sum(x for x, _ in points) / len(points)
    my = sum(y for _, y in points) / len(points)
    return sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x, _ in points)


def _commit() -> str:
    import tastespace

    root = Path(tastespace.__file__).resolve().parents[2]
    try:
        return subprocess.run(
            ["git", "-C", str(root), "log", "-1", "--format=%h %s"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()[:90]
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="every size × model, each in its own process")
    run.add_argument("--sizes", default=",".join(SIZES))
    run.add_argument("--models", default=",".join(MODELS))
    run.add_argument("--limit", type=int, default=3600, help="seconds per (size, model)")
    run.add_argument("--json", default="scale.json", help="results, rewritten after each job")
    run.add_argument("--resume", action="store_true", help="skip jobs already in --json")
    run.add_argument("--label", help="what code ran (default: the git commit of tastespace)")
    run.add_argument(
        "--allocators",
        default="keep",
        help="keep (freed memory kept, as the CLI sets it) and/or glibc (its defaults)",
    )
    one = commands.add_parser("one", help="one job in this process (prints one JSON line)")
    one.add_argument("size", choices=list(SIZES))
    one.add_argument("model", choices=list(MODELS))
    one.add_argument("--allocator", choices=ALLOCATORS, default="keep")
    shown = commands.add_parser("report", help="tables from a results file")
    shown.add_argument("path")
    args = parser.parse_args()
    if args.command == "one":
        print(json.dumps(run_one(args.size, args.model, args.allocator)))
    elif args.command == "run":
        run_all(args)
    else:
        print(report(json.loads(Path(args.path).read_text())))


if __name__ == "__main__":
    main()
