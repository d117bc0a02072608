"""Multi-process training with ``torchrun`` and DistributedDataParallel.

Each process loads the same dataset, trains on its shard of every epoch's users (gloo on CPU,
nccl on GPU), and rank 0 writes the bundle. Run it directly::

    torchrun --standalone --nproc_per_node 2 -m tastespace.models.neural.distributed \\
        --data ml-100k.zip --out runs/ddp --min-rating 4 -p epochs=50

or through the CLI: ``tastespace fit --model neural --nproc 2 ...``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import torch


def spawn(
    nproc: int,
    data: str,
    out: Path,
    min_rating: float | None,
    params: list[str],
    load_options: dict[str, str] | None = None,
    *,
    force: bool = False,
) -> int:
    """Start ``nproc`` local processes through torchrun; returns their exit code.

    ``load_options`` are the loader's string options (``item_features``, ``user_col``, …), so
    every process reads the dataset exactly as a single-process ``fit`` would.
    """
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        "-m",
        __name__,
        "--data",
        data,
        "--out",
        str(out),
    ]
    if min_rating is not None:
        command += ["--min-rating", str(min_rating)]
    for param in params:
        command += ["-p", param]
    for key, value in (load_options or {}).items():
        command += ["--load", f"{key}={value}"]
    if force:
        command.append("--force")
    return subprocess.call(command)


def main(argv: list[str] | None = None) -> None:
    from tastespace.data import load_dataset
    from tastespace.models.config import parse_options
    from tastespace.models.neural.model import NeuralRecommender

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--min-rating", type=float, default=None)
    parser.add_argument("-p", "--param", action="append", default=[])
    parser.add_argument("--load", action="append", default=[], help="loader option key=value")
    parser.add_argument("--force", action="store_true", help="write beside other files")
    args = parser.parse_args(argv)

    options = parse_options(args.param)
    device = options.get("device", "cpu")
    backend = "nccl" if device.startswith("cuda") else "gloo"
    torch.distributed.init_process_group(backend=backend)
    try:
        rank = torch.distributed.get_rank()
        if device.startswith("cuda"):
            options["device"] = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
        options.setdefault("threads", "1")
        extra: dict[str, object] = dict(parse_options(args.load))
        if args.min_rating is not None:
            extra["min_rating"] = args.min_rating
        dataset = load_dataset(args.data, **extra)
        model = NeuralRecommender(**options).fit(dataset)
        if rank == 0:
            model.save(args.out, force=args.force)
        torch.distributed.barrier()
    finally:
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
