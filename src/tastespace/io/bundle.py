"""Model bundles: one directory, ``manifest.json`` + ``arrays.safetensors`` + ``items.parquet``.

Loading never unpickles and never executes code: JSON, safetensors and Parquet are data formats.
Writes are atomic — the bundle is assembled in a temporary sibling directory and renamed into
place, so a crash never leaves a half-written bundle behind.

Layout::

    DIR/manifest.json        format version, kind, config, id maps, encoders, fingerprint, versions
    DIR/arrays.safetensors   every learned array (float32 weights, int64 bag indices …)
    DIR/items.parquet        the item catalog table (titles, years, numeric features)
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tastespace.errors import BundleError

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
ARRAYS = "arrays.safetensors"
ITEMS = "items.parquet"


@dataclass
class BundleContents:
    """What a bundle holds, as plain data."""

    manifest: dict[str, Any]
    arrays: dict[str, np.ndarray]
    items: pd.DataFrame


def library_versions() -> dict[str, str]:
    """Versions of the packages that shaped a bundle (recorded, not enforced)."""
    found = {}
    for name in ("tastespace", "numpy", "scipy", "torch", "gensim", "implicit"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def write_bundle(
    path: str | Path, manifest: dict[str, Any], arrays: dict[str, np.ndarray], items: pd.DataFrame
) -> Path:
    """Write a bundle directory atomically, replacing an existing bundle at ``path``."""
    from safetensors.numpy import save_file

    target = Path(path).expanduser().resolve()
    if target.exists() and not (target / MANIFEST).exists():
        if not target.is_dir() or any(target.iterdir()):
            raise BundleError(
                f"{target} exists and is not a tastespace bundle; choose another --out"
            )
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        full = {
            "format_version": FORMAT_VERSION,
            "versions": library_versions(),
            **manifest,
            "item_rows": len(items),
        }
        (staging / MANIFEST).write_text(json.dumps(full, indent=1, default=_json_default))
        save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(staging / ARRAYS))
        _frame_for_parquet(items).to_parquet(staging / ITEMS, index=False)
        if target.exists():
            backup = target.with_name(f".{target.name}.old")
            shutil.rmtree(backup, ignore_errors=True)
            os.replace(target, backup)
            os.replace(staging, target)
            shutil.rmtree(backup, ignore_errors=True)
        else:
            os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def read_bundle(path: str | Path) -> BundleContents:
    """Read a bundle; a missing file, bad JSON or a newer format raises :class:`BundleError`."""
    from safetensors.numpy import load_file

    root = Path(path).expanduser()
    manifest_path = root / MANIFEST
    if not manifest_path.is_file():
        raise BundleError(
            f"{root}: not a tastespace bundle (no {MANIFEST}); train one with "
            "`tastespace fit --out DIR`"
        )
    try:
        manifest = json.loads(manifest_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise BundleError(f"{manifest_path}: corrupt manifest ({err})") from err
    found = manifest.get("format_version")
    if not isinstance(found, int) or found > FORMAT_VERSION:
        raise BundleError(
            f"{root}: bundle format {found!r} is not supported by this tastespace "
            f"(reads up to {FORMAT_VERSION}); upgrade tastespace"
        )
    try:
        arrays = load_file(str(root / ARRAYS))
        items = pd.read_parquet(root / ITEMS)
    except Exception as err:  # safetensors / pyarrow raise assorted types for corrupt files
        raise BundleError(f"{root}: cannot read bundle arrays or item table ({err})") from err
    return BundleContents(manifest, arrays, _restore_rows(items, manifest, root))


def _restore_rows(items: pd.DataFrame, manifest: dict[str, Any], root: Path) -> pd.DataFrame:
    """Give back the rows of an item table that had none of its own columns.

    Parquet stores a frame without columns as zero rows, so a catalog loaded from a plain
    user,item,rating file would come back empty; the manifest's row count restores it.
    """
    rows = manifest.get("item_rows")
    if rows is None:
        return items
    if not isinstance(rows, int) or rows < 0:
        raise BundleError(f"{root / MANIFEST}: item_rows must be a count, got {rows!r}")
    if items.shape[1] == 0:
        return pd.DataFrame(index=pd.RangeIndex(rows))
    if len(items) != rows:
        raise BundleError(
            f"{root / ITEMS}: {len(items)} rows but the manifest records {rows}; "
            "the bundle is damaged"
        )
    return items


def _frame_for_parquet(frame: pd.DataFrame) -> pd.DataFrame:
    """Parquet needs string column names and one type per object column."""
    out = frame.copy()
    out.columns = [str(c) for c in out.columns]
    for column in out.columns:
        if out[column].dtype == object:
            out[column] = out[column].map(lambda v: None if v is None else str(v))
    return out


def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in a bundle manifest")
