"""Multi-process training with ``torchrun`` and DistributedDataParallel.

Each process trains on its share of the users (gloo on CPU, nccl on GPU), and rank 0 writes
the bundle. A Parquet file with at least as many row groups as processes is read in shards:
each process parses only its row groups and trains on the users it holds
(:mod:`tastespace.data.shards`); anything else is loaded whole by every process, which takes its
slice of every epoch's shuffle (``--shard-data auto|on|off``). Run it directly::

    torchrun --standalone --nproc_per_node 2 -m tastespace.models.neural.distributed \\
        --data ml-100k.zip --out runs/ddp --min-rating 4 -p epochs=50

or through the CLI: ``tastespace fit --model neural --nproc 2 ...``. Several machines use
torchrun's static rendezvous: the same command on each, with ``--nnodes``, that machine's
``--node-rank`` and rank 0's ``--rdzv-endpoint host:port`` (docs/scaling.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from tastespace import errors
from tastespace.errors import ConfigError, TastespaceError
from tastespace.models.allocator import keep_freed_memory
from tastespace.models.fitting import TrainingOptions

SHARD_MODES = ("auto", "on", "off")


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
    shard_data: str = "auto",
    error_file: Path | None = None,
) -> int:
    """Start this machine's processes through torchrun; returns their exit code.

    ``load_options`` are the loader's string options (``item_features``, ``user_col``, …), so
    every process reads the dataset exactly as a single-process ``fit`` would; ``training``
    (device, threads, checkpoints) reaches every process as ``--train key=value``;
    ``shard_data`` says whether a Parquet file is read in shards. With ``error_file``, a
    tastespace error in the processes is written there (:func:`raise_reported`) and they exit
    quietly, so the caller can report it in one line.
    """
    if shard_data not in SHARD_MODES:
        raise ConfigError(f"shard_data must be one of {'|'.join(SHARD_MODES)}, got {shard_data!r}")
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
    command += ["--shard-data", shard_data]
    if error_file is not None:
        command += ["--error-file", str(error_file)]
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


def raise_reported(error_file: Path) -> None:
    """Raise the tastespace error the processes wrote to ``error_file``, if they wrote one."""
    if not error_file.exists() or not error_file.read_text(encoding="utf-8").strip():
        return
    report = json.loads(error_file.read_text(encoding="utf-8"))
    kind = getattr(errors, report["type"], None)
    if not (isinstance(kind, type) and issubclass(kind, TastespaceError)):
        kind = TastespaceError
    raise kind(report["message"], options=tuple(report["options"]))


class TorchExchange:
    """:class:`~tastespace.data.shards.Exchange` over ``torch.distributed``'s object
    collectives, on a gloo group of its own (objects travel on the CPU, nccl or not)."""

    def __init__(self) -> None:
        self.rank = torch.distributed.get_rank()
        self.world = torch.distributed.get_world_size()
        self.group = torch.distributed.new_group(backend="gloo")

    def all_gather(self, value: object) -> list[object]:
        out: list[object] = [None] * self.world
        torch.distributed.all_gather_object(out, value, group=self.group)
        return out

    def gather(self, value: object) -> list[object] | None:
        out: list[object] | None = [None] * self.world if self.rank == 0 else None
        torch.distributed.gather_object(value, out, dst=0, group=self.group)
        return out


def load_for_rank(data: str, options: dict[str, object], shard_data: str) -> object:
    """This process's dataset: its shard of a Parquet file with enough row groups (``on``:
    required, ``auto``: when possible), else the whole data."""
    from tastespace.data import load_dataset
    from tastespace.data.shards import load_shard, parquet_row_groups

    world = torch.distributed.get_world_size()
    groups = parquet_row_groups(data) if shard_data != "off" else None
    if shard_data == "on" and (groups is None or len(groups) < world):
        have = "it is not a Parquet file" if groups is None else f"it has {len(groups)}"
        raise ConfigError(
            f"{data}: reading in shards needs a Parquet file with at least {world} row groups "
            f"(one per process); {have}",
            options=("shard_data",),
        )
    if world > 1 and groups is not None and len(groups) >= world:
        return load_shard(data, TorchExchange(), **options)
    return load_dataset(data, **options)


def main(argv: list[str] | None = None) -> None:
    from tastespace.models.config import parse_options

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--min-rating", type=float, default=None)
    parser.add_argument("-p", "--param", action="append", default=[])
    parser.add_argument("--load", action="append", default=[], help="loader option key=value")
    parser.add_argument("--force", action="store_true", help="write beside other files")
    parser.add_argument("--train", action="append", default=[], help="training option key=value")
    parser.add_argument("--shard-data", choices=SHARD_MODES, default="auto")
    parser.add_argument("--error-file", type=Path, default=None, help="report errors here")
    args = parser.parse_args(argv)
    keep_freed_memory()  # a training process of the CLI's, as the CLI's own is
    training = TrainingOptions(threads=1).with_options(parse_options(args.train))
    try:
        _train_and_save(args, training)
    except TastespaceError as err:
        if args.error_file is None:
            raise
        report = {"type": type(err).__name__, "message": str(err), "options": err.options}
        args.error_file.write_text(json.dumps(report), encoding="utf-8")
    _exit_without_finalizing()


def _exit_without_finalizing() -> None:
    """Leave the process with exit code 0 once its work is written, skipping interpreter
    shutdown.

    Gloo's worker thread frees a finished collective (the closing barrier's) a moment after
    the main thread sees it done; that destructor takes the GIL to drop a Python reference,
    and when the main thread is already finalizing the interpreter, the worker is killed
    mid-destructor and the process aborts ("terminate called without an active exception",
    7 of 150 two-rank fits under load; 0 of 100 since). Nothing is left to finalize here:
    the bundle is saved, the group destroyed, the streams flushed below.
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _train_and_save(args: argparse.Namespace, training: TrainingOptions) -> None:
    """Join the process group, load this rank's data, train; rank 0 saves the bundle."""
    from tastespace.models.config import parse_options
    from tastespace.models.neural.model import NeuralRecommender
    from tastespace.models.neural.runtime import resolve_device

    cuda = resolve_device(training.device).type == "cuda"
    torch.distributed.init_process_group(backend="nccl" if cuda else "gloo")
    try:
        rank = torch.distributed.get_rank()
        local = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if cuda else "cpu"
        training = dataclasses.replace(training, device=local)
        extra: dict[str, object] = dict(parse_options(args.load))
        if args.min_rating is not None:
            extra["min_rating"] = args.min_rating
        dataset = load_for_rank(args.data, extra, args.shard_data)
        model = NeuralRecommender(**parse_options(args.param)).fit(dataset, training=training)
        if rank == 0:
            model.save(args.out, force=args.force)
        torch.distributed.barrier()
    finally:
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
