"""Multi-process training with ``torchrun`` and DistributedDataParallel.

Each process loads the same dataset, trains on its shard of every epoch's users (gloo on CPU,
nccl on GPU), and rank 0 writes the bundle. Run it directly::

    torchrun --standalone --nproc_per_node 2 -m tastespace.models.neural.distributed \\
        --data ml-100k.zip --out runs/ddp --min-rating 4 -p epochs=50

or through the CLI: ``tastespace fit --model neural --nproc 2 ...``. Several machines use
torchrun's static rendezvous: the same command on each, with ``--nnodes``, that machine's
``--node-rank`` and rank 0's ``--rdzv-endpoint host:port`` (docs/scaling.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from tastespace.errors import ConfigError
from tastespace.models.fitting import TrainingOptions


@dataclass(frozen=True)
class Launch:
    """How many processes here, and how this machine joins the others (torchrun's flags)."""

    nproc: int = 1
    nnodes: int = 1
    node_rank: int = 0
    rdzv_endpoint: str | None = None

    def __post_init__(self) -> None:
        if self.nproc < 1 or self.nnodes < 1:
            raise ConfigError(f"--nproc and --nnodes must be ≥ 1, got {self.nproc}, {self.nnodes}")
        if not 0 <= self.node_rank < self.nnodes:
            raise ConfigError(
                f"--node-rank must be in [0, {self.nnodes}) for --nnodes {self.nnodes},"
                f" got {self.node_rank}"
            )
        if self.nnodes > 1 and not self.rdzv_endpoint:
            raise ConfigError(
                "--nnodes > 1 needs --rdzv-endpoint HOST:PORT (rank 0's machine, reachable"
                " from every node)"
            )

    @property
    def distributed(self) -> bool:
        return self.nproc > 1 or self.nnodes > 1 or self.rdzv_endpoint is not None

    def torchrun_flags(self) -> list[str]:
        """``--standalone`` on one machine; the static rendezvous (ranks fixed by
        ``--node-rank``, so every launch of the same command builds the same model) on many."""
        if self.nnodes == 1 and self.rdzv_endpoint is None:
            return ["--standalone", f"--nproc_per_node={self.nproc}"]
        return [
            f"--nnodes={self.nnodes}",
            f"--node_rank={self.node_rank}",
            "--rdzv_backend=static",
            f"--rdzv_endpoint={self.rdzv_endpoint}",
            f"--nproc_per_node={self.nproc}",
        ]


def spawn(
    launch: Launch,
    data: str,
    out: Path,
    min_rating: float | None,
    params: list[str],
    load_options: dict[str, str] | None = None,
    *,
    force: bool = False,
    training: TrainingOptions | None = None,
) -> int:
    """Start this machine's processes through torchrun; returns their exit code.

    ``load_options`` are the loader's string options (``item_features``, ``user_col``, …), so
    every process reads the dataset exactly as a single-process ``fit`` would; ``training``
    (device, threads, checkpoints) reaches every process as ``--train key=value``.
    """
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        *launch.torchrun_flags(),
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
    return subprocess.call(command, env=_process_env(launch.nproc))


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
    from tastespace.models.neural.runtime import resolve_device

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
    cuda = resolve_device(training.device).type == "cuda"
    torch.distributed.init_process_group(backend="nccl" if cuda else "gloo")
    try:
        rank = torch.distributed.get_rank()
        local = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if cuda else "cpu"
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
