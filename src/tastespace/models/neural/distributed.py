"""Multi-process training with ``torchrun`` and DistributedDataParallel.

Each process loads the same dataset, trains on its shard of every epoch's users (gloo on CPU,
nccl on GPU), and rank 0 writes the bundle. Run it directly::

    torchrun --standalone --nproc_per_node 2 -m tastespace.models.neural.distributed \\
        --data ml-100k.zip --out runs/ddp --min-rating 4 -p epochs=50

or through the CLI: ``tastespace fit --model neural --nproc 2 ...``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import torch

from tastespace.models.fitting import TrainingOptions


def spawn(
    nproc: int,
    data: str,
    out: Path,
    min_rating: float | None,
    params: list[str],
    load_options: dict[str, str] | None = None,
    *,
    force: bool = False,
    training: TrainingOptions | None = None,
) -> int:
    """Start ``nproc`` local processes through torchrun; returns their exit code.

    ``load_options`` are the loader's string options (``item_features``, ``user_col``, …), so
    every process reads the dataset exactly as a single-process ``fit`` would; ``training``
    (device, threads, checkpoints) reaches every process as ``--train key=value``.
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
    for key, value in (training.to_json() if training else {}).items():
        if value is not None:
            command += ["--train", f"{key}={value}"]
    return subprocess.call(command, env=_process_env(nproc))


def _process_env(nproc: int) -> dict[str, str]:
    """The environment with OMP_NUM_THREADS set (to the cores each process gets) unless the
    user set it: torchrun otherwise prints a multi-line banner into ``fit``'s output."""
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    return env


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
    parser.add_argument("--train", action="append", default=[], help="training option key=value")
    args = parser.parse_args(argv)

    training = TrainingOptions(threads=1).with_options(parse_options(args.train))
    cuda = training.device.startswith("cuda")
    torch.distributed.init_process_group(backend="nccl" if cuda else "gloo")
    try:
        rank = torch.distributed.get_rank()
        if cuda:
            local = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
            training = dataclasses.replace(training, device=local)
        extra: dict[str, object] = dict(parse_options(args.load))
        if args.min_rating is not None:
            extra["min_rating"] = args.min_rating
        dataset = load_dataset(args.data, **extra)
        model = NeuralRecommender(**parse_options(args.param)).fit(dataset, training=training)
        if rank == 0:
            model.save(args.out, force=args.force)
        torch.distributed.barrier()
    finally:
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
