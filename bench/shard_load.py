"""Sharded against whole-file loading under ``--nproc N``: peak RSS per rank and load seconds.

Writes a synthetic interactions set to Parquet (rows in user order, ``--row-groups`` groups),
then starts ``torchrun --standalone --nproc_per_node N`` (``--nproc``, 2 by default) three
times, one after the other:

* ``idle``: each process joins the group and imports what the loads import (the floor);
* ``whole``: each process runs ``load_dataset(path)``, as ``fit --nproc N --shard-data off``;
* ``sharded``: each process runs ``load_shard`` over its row groups, as ``fit --nproc N``.

Each rank reports its load seconds and its peak resident set (``VmHWM``); rank 0 prints them.
The table gives the peak above the idle floor too, and the whole ÷ sharded ratios (same run).

Usage::

    python bench/shard_load.py                              # 50k × 15k, ~5M rows, 16 groups
    python bench/shard_load.py --spec synthetic:medium      # ~1M rows
    python bench/shard_load.py --nproc 4
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

DEFAULT_SPEC = "synthetic:users=50000,items=15000,history=100"
MODES = ("idle", "whole", "sharded")
GIB = 1 << 30


def write_parquet(spec: str, path: Path, row_groups: int) -> int:
    """The synthetic set's interactions as Parquet in user order; returns the row count."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tastespace.data import load_dataset

    ds = load_dataset(spec)
    coo = ds.interactions.tocoo()
    table = pa.table(
        {
            "user": ds.user_ids.ids[coo.row],
            "item": ds.item_ids.ids[coo.col],
            "rating": coo.data.astype("float32"),
        }
    )
    pq.write_table(table, path, row_group_size=-(-coo.nnz // row_groups))
    return int(coo.nnz)


def peak_rss() -> int:
    """This process's peak resident set in bytes (``VmHWM``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def worker(mode: str, path: str) -> None:
    """One torchrun process: join, load as ``mode`` says, report to rank 0."""
    import torch

    import tastespace.data.generic  # noqa: F401 - pyarrow and the loader in every mode's floor
    from tastespace.data import load_dataset
    from tastespace.data.shards import load_shard
    from tastespace.models.neural.distributed import TorchExchange

    torch.distributed.init_process_group(backend="gloo")
    exchange = TorchExchange()
    started = time.perf_counter()
    rows = None
    if mode == "whole":
        rows = load_dataset(path).interactions.nnz
    elif mode == "sharded":
        rows = load_shard(path, exchange).interactions.nnz
    seconds = time.perf_counter() - started
    report = {"rank": exchange.rank, "load_s": seconds, "peak": peak_rss(), "nnz": rows}
    reports = exchange.gather(report)
    if reports is not None:
        print("REPORT " + json.dumps(reports), flush=True)
    torch.distributed.destroy_process_group()


def launch(mode: str, path: Path, nproc: int) -> list[dict[str, Any]]:
    """Run ``mode`` under torchrun with ``nproc`` processes; every rank's report."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += [f"--nproc_per_node={nproc}", __file__, "--worker", mode, str(path)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    line = next(x for x in done.stdout.splitlines() if x.startswith("REPORT "))
    return json.loads(line.removeprefix("REPORT "))


def table(results: dict[str, Any], rows: int, groups: int, nproc: int) -> str:
    floor = {r["rank"]: r["peak"] for r in results["idle"]}
    lines = [
        f"{rows:,} rows in {groups} row groups, --nproc {nproc}; load average before / after: "
        f"{results['load_before']} / {results['load_after']}",
        "",
        "| mode | rank | load s | peak RSS GiB | above idle GiB | interactions held |",
        "|---|---|---|---|---|---|",
    ]
    for mode in MODES:
        for r in results[mode]:
            above = (r["peak"] - floor[r["rank"]]) / GIB
            held = "-" if r["nnz"] is None else f"{r['nnz']:,}"
            lines.append(
                f"| {mode} | {r['rank']} | {r['load_s']:.2f} | {r['peak'] / GIB:.2f} |"
                f" {above:.2f} | {held} |"
            )
    lines.append("")
    for key, label in (("load_s", "load s"), ("peak", "peak RSS")):
        whole = max(r[key] for r in results["whole"])
        sharded = max(r[key] for r in results["sharded"])
        lines.append(f"whole ÷ sharded, slowest/largest rank, {label}: {whole / sharded:.2f}×")
    above = [(max(r["peak"] - floor[r["rank"]] for r in results[m])) for m in ("whole", "sharded")]
    lines.append(f"whole ÷ sharded, peak above idle: {above[0] / above[1]:.2f}×")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default=DEFAULT_SPEC)
    parser.add_argument("--row-groups", type=int, default=16)
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument("--worker", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker)
        return
    with tempfile.TemporaryDirectory(prefix="shard-bench-") as scratch:
        path = Path(scratch) / "interactions.parquet"
        rows = write_parquet(args.spec, path, args.row_groups)
        results: dict[str, Any] = {"load_before": " ".join(f"{x:.1f}" for x in os.getloadavg())}
        for mode in MODES:
            results[mode] = launch(mode, path, args.nproc)
        results["load_after"] = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(table(results, rows, args.row_groups, args.nproc))


if __name__ == "__main__":
    main()
