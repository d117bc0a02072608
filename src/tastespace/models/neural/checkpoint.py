"""Resume checkpoints of neural training: one file, ``DIR/last.pt``, checked before it is used.

A checkpoint continues *one* run. Resumed on other data, with another seed or other model
options it would crash deep inside ``load_state_dict`` or, worse, quietly train a blend of two
runs. So every checkpoint carries the run's *stamp* — the training data's fingerprint, the
validation users' digest, each option that shapes training, the number of processes — and a
resume under another stamp is refused with one line naming what differs. Options that only
say how long or where to train (:data:`FREE_OPTIONS`: ``epochs``, ``device``, ``threads``,
``checkpoint_dir``, ``resume``) may change: raising ``epochs`` is how a finished run goes on.

Written with ``torch.save`` to a temporary name, flushed and renamed, so a crash at any moment
leaves the previous epoch's file; read with ``torch.load(weights_only=True)``, which runs no
code. A truncated, foreign or older-layout file is a :class:`CheckpointError` naming it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from tastespace.errors import CheckpointError

FILE_NAME = "last.pt"
FORMAT_VERSION = 1
FREE_OPTIONS = frozenset({"epochs", "device", "threads", "checkpoint_dir", "resume"})
"""Options a resume may change: how long and where to train, not what is trained."""

_LAYOUT: dict[str, type | tuple[type, ...]] = {
    "format_version": int,
    "stamp": str,
    "model": dict,
    "optimiser": dict,
    "rng": torch.Tensor,
    "best_model": dict,
    "averaged": dict,
    "averaged_steps": int,
    "epoch": int,
    "best_epoch": int,
    "best_score": float,
    "history": list,
    "stopped": bool,
}
_FRESH = "delete it, or set another checkpoint_dir, to train afresh"


def run_stamp(
    options: Mapping[str, Any],
    data: str | None,
    validation: str | None,
    world_size: int,
) -> dict[str, Any]:
    """What a checkpoint must match to be resumed (JSON-able, compared after a JSON round trip)."""
    shaping = {k: v for k, v in sorted(options.items()) if k not in FREE_OPTIONS}
    stamp = {"data": data, "validation": validation, "world_size": world_size, "options": shaping}
    return json.loads(json.dumps(stamp))


def matrix_digest(*matrices: sp.spmatrix) -> str:
    """Short hash of sparse matrices' structure and values (the validation users' rows)."""
    digest = hashlib.sha256()
    for matrix in matrices:
        csr = sp.csr_matrix(matrix)
        digest.update(str(csr.shape).encode())
        for part in (csr.indptr, csr.indices, csr.data):
            digest.update(np.ascontiguousarray(part).tobytes())
    return digest.hexdigest()[:16]


def prepare(directory: str | os.PathLike[str]) -> Path:
    """The checkpoint's path in ``directory``, created now so a bad folder fails before training."""
    folder = Path(directory).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CheckpointError(
            f"{folder}: cannot use as checkpoint_dir ({err.strerror or err}); expected a folder "
            "this process can write"
        ) from err
    if not os.access(folder, os.W_OK):
        raise CheckpointError(f"{folder}: checkpoint_dir is not writable")
    return folder / FILE_NAME


def save(path: Path, payload: dict[str, Any], stamp: dict[str, Any]) -> None:
    """Write ``payload`` (see :data:`_LAYOUT`) with the stamp; atomic and flushed to disk."""
    tmp = path.with_name(path.name + ".tmp")
    content = {**payload, "format_version": FORMAT_VERSION, "stamp": json.dumps(stamp)}
    with open(tmp, "wb") as handle:
        torch.save(content, handle)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)


def load(path: Path, stamp: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint's payload, after checking it is readable, complete and from this run."""
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # garbage makes the unpickler fail in any way (even IndexError)
        text = str(err).strip().splitlines()
        reason = text[0] if text else type(err).__name__
        raise CheckpointError(
            f"{path}: not a readable training checkpoint ({reason[:160]}); {_FRESH}"
        ) from err
    _check_layout(path, saved)
    _check_stamp(path, json.loads(saved["stamp"]), stamp)
    return saved


def _check_layout(path: Path, saved: Any) -> None:
    if not isinstance(saved, dict):
        raise CheckpointError(f"{path}: holds a {type(saved).__name__}, not a checkpoint; {_FRESH}")
    if "stamp" not in saved or "format_version" not in saved:
        raise CheckpointError(
            f"{path}: not a tastespace checkpoint of this version (no run stamp); {_FRESH}"
        )
    if saved["format_version"] != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format {saved['format_version']!r}, this tastespace reads "
            f"{FORMAT_VERSION}; {_FRESH}"
        )
    for key, kind in _LAYOUT.items():
        if not isinstance(saved.get(key), kind):
            found = "missing" if key not in saved else type(saved[key]).__name__
            raise CheckpointError(f"{path}: checkpoint entry {key!r} is {found}; {_FRESH}")


def _check_stamp(path: Path, saved: dict[str, Any], current: dict[str, Any]) -> None:
    differences = []
    if saved.get("data") != current["data"]:
        differences.append(
            f"other training data (fingerprint {saved.get('data')}, now {current['data']})"
        )
    if saved.get("validation") != current["validation"]:
        differences.append("other validation users")
    if saved.get("world_size") != current["world_size"]:
        differences.append(f"{saved.get('world_size')} processes, now {current['world_size']}")
    before, now = saved.get("options", {}), current["options"]
    for key in sorted(set(before) | set(now)):
        if before.get(key) != now.get(key):
            differences.append(f"{key} {before.get(key)!r} → {now.get(key)!r}")
    if differences:
        raise CheckpointError(
            f"{path}: written by another run ({'; '.join(differences)}); resume needs the same "
            f"data and options — {_FRESH}"
        )
