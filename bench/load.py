"""Load benchmark: wall time and peak memory of ``load_dataset`` against the naive way.

What it measures, for every real MovieLens zip in ``/work/shared/data/movielens`` (``ml-100k``,
``ml-latest-small``), every extra path on the command line (e.g. an ``ml-1m.zip`` or a CSV), and
synthetic CSVs written by :func:`tastespace.data.synthetic.write_synthetic_csv` (presets
``medium`` ≈ 1 M rows and ``large`` ≈ 20 M rows, into a temporary folder):

* **tastespace** — ``load_dataset(path)``: the full Dataset (CSR + id maps + feature tables);
* **baseline** — the same ratings file read the naive way: ``pandas.read_csv`` (default engine),
  ``pd.factorize`` of the two id columns, ``scipy.sparse.coo_matrix(...).tocsr()``;
* **in-memory synthetic** — ``load_synthetic(preset)`` (generation, no CSV), no baseline.

Why subprocesses: peak memory is only meaningful per load, so each load runs in a fresh child
(``python bench/load.py --one PATH --mode MODE``) that reports its own ``VmHWM`` (peak resident
set) from ``/proc/self/status``. An idle child that only imports the same modules gives the
floor; the table shows the peak above that floor (Δ) and the absolute peak. Times cover the load
call only (imports excluded). Inputs under 100 MB are loaded ``--repeat`` times (fresh child
each): the best time and the highest peak are shown; larger inputs run once.

Aims (issue 2): 1 M rows (the ``medium`` CSV) load in under 2 s; 20 M rows (the ``large`` CSV)
load within 4 GB (4·10⁹ bytes) of absolute peak memory.

Usage::

    python bench/load.py                       # real zips + medium + large (several minutes)
    python bench/load.py --sizes medium        # skip the 20 M-row CSV
    python bench/load.py path/to/ml-1m.zip --markdown
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REAL_DIR = Path("/work/shared/data/movielens")
REAL_ZIPS = ("ml-100k.zip", "ml-latest-small.zip")
SIZES = ("medium", "large")
ONE_M_AIM_S = 2.0
TWENTY_M_AIM_BYTES = 4e9
MIB = 1 << 20
REPEAT_BELOW_BYTES = 100 * 10**6
MODES = ("idle", "tastespace", "baseline", "synthetic")


# -- child side: one load in this process, report time and peak --------------------------------


def _import_everything() -> None:
    """Import every module any mode uses, so the idle child's floor matches the others."""
    import numpy  # noqa: F401
    import pandas  # noqa: F401
    import pyarrow.csv  # noqa: F401
    import scipy.sparse  # noqa: F401

    import tastespace.data  # noqa: F401
    import tastespace.data.generic  # noqa: F401
    import tastespace.data.movielens  # noqa: F401
    import tastespace.data.synthetic  # noqa: F401


def _peak_bytes() -> int:
    """This process's peak resident set size (VmHWM), in bytes."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux


def _ratings_member(path: Path) -> tuple[Any, str, list[str] | None]:
    """(readable, separator, column names or None for a header row) of the ratings file."""
    known = {
        "u.data": ("\t", ["user", "item", "rating", "timestamp"]),
        "ratings.dat": ("::", ["user", "item", "rating", "timestamp"]),
        "ratings.csv": (",", None),
    }
    if path.suffix.lower() == ".zip":
        archive = zipfile.ZipFile(path)
        for member in archive.namelist():
            base = member.rsplit("/", 1)[-1]
            if base in known:
                return archive.open(member), *known[base]
        raise SystemExit(f"{path}: no u.data, ratings.dat or ratings.csv inside")
    if path.is_dir():
        for base, (sep, names) in known.items():
            hits = sorted(path.rglob(base))
            if hits:
                return hits[0], sep, names
        raise SystemExit(f"{path}: no u.data, ratings.dat or ratings.csv inside")
    name = path.name.lower().removesuffix(".gz")
    sep = {"tsv": "\t", "dat": "::"}.get(name.rsplit(".", 1)[-1], ",")
    return path, sep, None


def naive_load(path: Path, min_rating: float | None) -> tuple[Any, int]:
    """The naive load: ``pd.read_csv`` + ``pd.factorize`` + ``coo_matrix(...).tocsr()``.

    Returns the CSR matrix and the number of rows read. The frame stays alive to the end, as it
    would in a script that goes on to use the timestamps.
    """
    import numpy as np
    import pandas as pd
    import scipy.sparse as sp

    source, sep, names = _ratings_member(path)
    with warnings.catch_warnings():  # '::' makes pandas fall back to the python engine
        warnings.simplefilter("ignore")
        frame = pd.read_csv(source, sep=sep, header=None if names else "infer", names=names)
    user_col, item_col, rating_col = frame.columns[:3]
    if min_rating is not None:
        frame = frame[frame[rating_col] >= min_rating]
        weights = np.ones(len(frame), np.float32)
    else:
        weights = frame[rating_col].to_numpy(np.float32)
    users, user_ids = pd.factorize(frame[user_col])
    items, item_ids = pd.factorize(frame[item_col])
    matrix = sp.coo_matrix((weights, (users, items)), shape=(len(user_ids), len(item_ids))).tocsr()
    return matrix, len(frame)


def run_one(target: str, mode: str, min_rating: float | None) -> dict[str, Any]:
    """Do one load in this process and return its figures (the child's JSON line)."""
    started = time.perf_counter()
    _import_everything()
    imported = time.perf_counter()
    options = {} if min_rating is None else {"min_rating": min_rating}
    result: dict[str, Any] = {"import_s": imported - started, "floor_bytes": _peak_bytes()}
    begin = time.perf_counter()
    if mode == "tastespace":
        from tastespace.data import load_dataset

        dataset = load_dataset(target, **options)
        seconds = time.perf_counter() - begin
        rows = dataset.interactions.nnz
        result.update(users=dataset.n_users, items=dataset.n_items)
    elif mode == "synthetic":
        from tastespace.data.synthetic import load_synthetic

        dataset = load_synthetic(target, **options)
        seconds = time.perf_counter() - begin
        rows = dataset.interactions.nnz
        result.update(users=dataset.n_users, items=dataset.n_items)
    elif mode == "baseline":
        matrix, _ = naive_load(Path(target), min_rating)
        seconds = time.perf_counter() - begin
        rows = matrix.nnz
        result.update(users=matrix.shape[0], items=matrix.shape[1])
    else:
        seconds, rows = 0.0, 0
    result.update(seconds=seconds, rows=rows, peak_bytes=_peak_bytes())
    return result


# -- parent side: orchestrate children, print the table ----------------------------------------


@dataclass
class Measure:
    seconds: float = float("nan")
    peak_bytes: int = 0
    rows: int = 0
    users: int = 0
    items: int = 0
    runs: int = 0
    error: str = ""

    def delta_mib(self, floor: int) -> float:
        return (self.peak_bytes - floor) / MIB


@dataclass
class Row:
    label: str
    kind: str  # "real", "csv", "memory"
    size: str = ""  # synthetic preset, for the aims
    file_bytes: int = 0
    tastespace: Measure = field(default_factory=Measure)
    baseline: Measure | None = None


def child(target: str, mode: str, min_rating: float | None) -> Measure:
    """Run one load in a fresh interpreter and collect its JSON report."""
    command = [sys.executable, str(Path(__file__).resolve()), "--one", target, "--mode", mode]
    if min_rating is not None:
        command += ["--min-rating", repr(min_rating)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        return Measure(error=tail[:80])
    report = json.loads(lines[-1])
    return Measure(
        seconds=report["seconds"],
        peak_bytes=report["peak_bytes"],
        rows=report["rows"],
        users=report.get("users", 0),
        items=report.get("items", 0),
        runs=1,
    )


def measured(target: str, mode: str, min_rating: float | None, repeat: int) -> Measure:
    """Best time and highest peak over ``repeat`` fresh children."""
    best = Measure()
    for _ in range(max(1, repeat)):
        one = child(target, mode, min_rating)
        if one.error:
            return one
        if best.runs == 0 or one.seconds < best.seconds:
            best.seconds, best.rows, best.users, best.items = (
                one.seconds, one.rows, one.users, one.items
            )  # fmt: skip
        best.peak_bytes = max(best.peak_bytes, one.peak_bytes)
        best.runs += 1
    return best


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _inputs(extra: list[str]) -> list[tuple[str, Path]]:
    found = [(name.removesuffix(".zip"), REAL_DIR / name) for name in REAL_ZIPS]
    found = [(label, path) for label, path in found if path.exists()]
    for text in extra:
        path = Path(text).expanduser()
        if not path.exists():
            raise SystemExit(f"{path}: no such file or folder")
        label = path.name.removesuffix(".zip")
        found.append((label, path))
    return found


def _size_of(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def run_all(args: argparse.Namespace) -> tuple[list[Row], Measure, dict[str, tuple[int, float]]]:
    """Every measurement; returns the rows, the idle floor and {preset: (rows, write seconds)}."""
    from tastespace.data.synthetic import PRESETS, write_synthetic_csv

    floor = child("-", "idle", None)
    if floor.error:
        raise SystemExit(f"idle child failed: {floor.error}")
    rows: list[Row] = []

    def file_row(label: str, path: Path, kind: str, size: str = "") -> None:
        nbytes = _size_of(path)
        repeat = args.repeat if nbytes < REPEAT_BELOW_BYTES else 1
        row = Row(label, kind, size, nbytes)
        _log(f"[{label}] tastespace load ×{repeat} …")
        row.tastespace = measured(str(path), "tastespace", args.min_rating, repeat)
        if not args.no_baseline:
            _log(f"[{label}] baseline (pandas + scipy) ×{repeat} …")
            row.baseline = measured(str(path), "baseline", args.min_rating, repeat)
        rows.append(row)

    for label, path in _inputs(args.paths):
        file_row(label, path, "real")

    written: dict[str, tuple[int, float]] = {}
    with tempfile.TemporaryDirectory(prefix="tastespace-bench-", dir=args.tmpdir) as folder:
        for size in args.sizes:
            path = Path(folder) / f"synthetic-{size}.csv"
            _log(f"[{size}] writing synthetic CSV …")
            begin = time.perf_counter()
            n = write_synthetic_csv(PRESETS[size], path)
            written[size] = (n, time.perf_counter() - begin)
            os.sync()  # flush the new file first, so the loads do not compete with writeback
            megabytes = path.stat().st_size / 1e6
            _log(f"[{size}] {n:,} rows, {megabytes:.0f} MB in {written[size][1]:.1f} s")
            file_row(f"synthetic {size} CSV", path, "csv", size)
            path.unlink()
    for size in args.sizes:
        _log(f"[{size}] load_synthetic (in memory) …")
        row = Row(f"load_synthetic({size!r})", "memory", size)
        repeat = 1 if size == "large" else args.repeat
        row.tastespace = measured(size, "synthetic", args.min_rating, repeat)
        rows.append(row)
    return rows, floor, written


def _fmt_s(m: Measure | None) -> str:
    if m is None:
        return "—"
    return f"failed: {m.error}" if m.error else f"{m.seconds:.2f}"


def _fmt_mb(m: Measure | None, floor: int) -> str:
    if m is None or m.error:
        return "—"
    return f"{m.delta_mib(floor):,.0f} ({m.peak_bytes / MIB:,.0f})"


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}×" if b > 0 and a == a and b == b else "—"


def table_rows(rows: list[Row], floor: int) -> list[list[str]]:
    out = []
    for row in rows:
        t, b = row.tastespace, row.baseline
        usable = b is not None and not b.error and not t.error
        out.append(
            [
                row.label,
                f"{t.rows:,}" if not t.error else "—",
                f"{row.file_bytes / 1e6:,.1f}" if row.file_bytes else "—",
                _fmt_s(t),
                _fmt_mb(t, floor),
                _fmt_s(b),
                _fmt_mb(b, floor),
                _ratio(t.seconds, b.seconds) if usable else "—",
                _ratio(t.delta_mib(floor), b.delta_mib(floor)) if usable else "—",
            ]
        )
    return out


HEADERS = [
    "dataset",
    "rows (nnz)",
    "file MB",
    "tastespace s",
    "tastespace peak MiB Δ (abs)",
    "baseline s",
    "baseline peak MiB Δ (abs)",
    "time ratio",
    "memory ratio (Δ)",
]


def aims(rows: list[Row]) -> list[str]:
    """One line per aim: met, missed, or not measured."""
    lines = []
    one_m = next((r for r in rows if r.kind == "csv" and r.size == "medium"), None)
    if one_m is None or one_m.tastespace.error:
        lines.append("1 M rows < 2 s: not measured (needs --sizes medium)")
    else:
        t = one_m.tastespace
        verdict = "MET" if t.seconds < ONE_M_AIM_S else "MISSED"
        lines.append(
            f"1 M rows < {ONE_M_AIM_S:g} s: {verdict} ({t.rows:,} rows in {t.seconds:.2f} s)"
        )
    twenty_m = next((r for r in rows if r.kind == "csv" and r.size == "large"), None)
    if twenty_m is None or twenty_m.tastespace.error:
        lines.append("20 M rows < 4 GB peak: not measured (needs --sizes large)")
    else:
        t = twenty_m.tastespace
        verdict = "MET" if t.peak_bytes < TWENTY_M_AIM_BYTES else "MISSED"
        lines.append(
            f"20 M rows < 4 GB peak: {verdict} ({t.rows:,} rows, absolute peak "
            f"{t.peak_bytes / 1e9:.2f} GB, {t.seconds:.1f} s)"
        )
    return lines


def render(
    rows: list[Row], floor: Measure, written: dict[str, tuple[int, float]], markdown: bool
) -> None:
    body = table_rows(rows, floor.peak_bytes)
    notes = [
        f"idle child (imports only): peak {floor.peak_bytes / MIB:,.0f} MiB; "
        "peak columns show MiB above that floor (Δ) and the absolute peak in parentheses",
        "ratios are tastespace / baseline (below 1 = tastespace is faster / leaner)",
        *(
            f"writing the {size} CSV ({n:,} rows) took {seconds:.1f} s"
            for size, (n, seconds) in written.items()
        ),
        *aims(rows),
    ]
    if markdown:
        print("| " + " | ".join(HEADERS) + " |")
        print("|" + "|".join(" --- " for _ in HEADERS) + "|")
        for cells in body:
            print("| " + " | ".join(cells) + " |")
        print()
        for note in notes:
            print(f"- {note}")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="load_dataset vs pandas.read_csv + coo_matrix.tocsr()")
    for k, header in enumerate(HEADERS):
        table.add_column(header, justify="left" if k == 0 else "right")
    for cells in body:
        table.add_row(*cells)
    console = Console(width=None if sys.stdout.isatty() else 150)
    console.print(table)
    for note in notes:
        console.print(f"• {note}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", help="extra MovieLens zips/folders or CSV files")
    parser.add_argument(
        "--sizes",
        default=",".join(SIZES),
        help="synthetic CSV presets, comma-separated: medium (≈1 M rows), large (≈20 M rows), "
        "or 'none' (default: medium,large)",
    )
    parser.add_argument("--min-rating", type=float, default=None, help="binarise at this rating")
    parser.add_argument("--repeat", type=int, default=3, help="runs per input under 100 MB")
    parser.add_argument("--no-baseline", action="store_true", help="skip the pandas baseline")
    parser.add_argument("--tmpdir", default=None, help="where to write the synthetic CSVs")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument("--one", metavar="TARGET", help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=MODES, default="tastespace", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.one is not None:  # child: one load, one JSON line
        print(json.dumps(run_one(args.one, args.mode, args.min_rating)), flush=True)
        return 0

    sizes = [s.strip() for s in args.sizes.split(",") if s.strip() and s.strip() != "none"]
    unknown = sorted(set(sizes) - set(SIZES))
    if unknown:
        parser.error(f"unknown size(s) {unknown}; choose from {', '.join(SIZES)} or 'none'")
    args.sizes = sizes
    began = time.perf_counter()
    rows, floor, written = run_all(args)
    render(rows, floor, written, args.markdown)
    print(
        f"\n{platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"total {time.perf_counter() - began:.0f} s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
