"""Model bundles: one directory, ``manifest.json`` + ``arrays.safetensors`` + ``items.parquet``.

Loading never unpickles and never executes code: JSON, safetensors and Parquet are data formats.
The manifest records the size and SHA-256 of every other file and a digest of itself, so a
damaged bundle is refused in one line naming the file; weights holding NaN or ±inf are refused
too (on save and on load). Saving replaces only the bundle's own files — a ``NOTES.md`` or an
``eval/`` folder the user keeps in the directory survives — and the swap is crash-safe: at every
instant the directory holds the old or the new bundle (``io/swap.py``).

Layout::

    DIR/manifest.json        format version, kind, config, id maps, encoders, fingerprint, versions,
                             files: {name: {sha256, bytes}}, manifest_sha256
    DIR/arrays.safetensors   every learned array (float32 weights, int64 bag indices …)
    DIR/items.parquet        the item catalog table (titles, years, numeric features)

Format 1 bundles (before the digests) still load, with a :class:`BundleWarning` saying that
damage cannot be detected and that saving the model again (``Recommender.load(p).save(p)``)
adds the digests.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tastespace.errors import BundleError, BundleWarning
from tastespace.io.integrity import HASH, SELF_DIGEST, file_record, manifest_digest, non_finite
from tastespace.io.integrity import verify_file as _verify_file
from tastespace.io.manifest import FIRST_HASHED_VERSION, FORMAT_VERSION, parse_manifest
from tastespace.io.swap import MANIFEST, check_target, install_new, locked, replace_in_place
from tastespace.io.swap import resolve as _resolve

ARRAYS = "arrays.safetensors"
ITEMS = "items.parquet"
DATA_FILES = (ARRAYS, ITEMS)
_READ_ATTEMPTS = 3

__all__ = [
    "ARRAYS",
    "FORMAT_VERSION",
    "ITEMS",
    "MANIFEST",
    "BundleContents",
    "check_target",
    "read_bundle",
    "write_bundle",
]


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
    path: str | Path,
    manifest: dict[str, Any],
    arrays: dict[str, np.ndarray],
    items: pd.DataFrame,
    *,
    force: bool = False,
) -> Path:
    """Write a bundle at ``path``, replacing only an existing bundle's own files.

    ``path`` is checked first (:func:`check_target`): a folder holding other files that is not
    a bundle is refused unless ``force``. Every file is fsynced; a crash at any point leaves the
    old or the new bundle. Returns the absolute path.
    """
    bad = non_finite(arrays)
    if bad is not None:
        raise BundleError(
            f"refusing to save: array {bad[0]!r} holds {bad[1]:,} NaN/inf values (training "
            "diverged? lower the learning rate or check the data)"
        )
    target = check_target(path, force=force)

    def build(folder: Path) -> None:
        _write_files(folder, manifest, arrays, items)

    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with locked(target.parent):
            if target.is_dir() and any(target.iterdir()):
                replace_in_place(target, build, DATA_FILES, _own_files(target))
            else:
                install_new(target, build)
    except OSError as err:
        raise BundleError(f"cannot write the bundle at {target}: {_one_line(err)}") from err
    return target


def _write_files(
    folder: Path, manifest: dict[str, Any], arrays: dict[str, np.ndarray], items: pd.DataFrame
) -> None:
    """The bundle's files in ``folder``, each fsynced, the manifest (with their digests) last."""
    from safetensors.numpy import save_file

    save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(folder / ARRAYS))
    _frame_for_parquet(items).to_parquet(folder / ITEMS, index=False)
    full = {
        "format_version": FORMAT_VERSION,
        "versions": library_versions(),
        **manifest,
        "item_rows": len(items),
        "files": {name: file_record(folder / name) for name in DATA_FILES},
    }
    full = json.loads(json.dumps(full, default=_json_default))  # the form a reader will see
    full[SELF_DIGEST] = manifest_digest(full)
    with (folder / MANIFEST).open("w", encoding="utf-8") as handle:
        handle.write(json.dumps(full, indent=1))
        handle.flush()
        os.fsync(handle.fileno())


def _own_files(target: Path) -> list[str]:
    """The data files the bundle now at ``target`` lists (the fixed names when unreadable)."""
    try:
        files = json.loads((target / MANIFEST).read_text()).get("files")
    except (OSError, ValueError, AttributeError):
        return list(DATA_FILES)
    return [str(name) for name in files] if isinstance(files, dict) else list(DATA_FILES)


def read_bundle(path: str | Path) -> BundleContents:
    """Read and verify a bundle; anything missing, damaged or unsupported is a
    :class:`BundleError` whose one-line message names the file."""
    root = Path(path).expanduser()
    manifest_path = root / MANIFEST
    if not manifest_path.is_file():
        raise BundleError(
            f"{root}: not a tastespace bundle (no {MANIFEST}); fit a model and save it there"
        )
    for attempt in range(_READ_ATTEMPTS):
        raw = manifest_path.read_bytes()
        try:
            return _read_verified(root, raw)
        except BundleError:
            # A save that committed while we read makes old manifest + new files: read again.
            if attempt + 1 == _READ_ATTEMPTS or manifest_path.read_bytes() == raw:
                raise
    raise AssertionError("unreachable")


def _read_verified(root: Path, raw: bytes) -> BundleContents:
    manifest_path = root / MANIFEST
    manifest = parse_manifest(manifest_path, raw)
    if manifest["format_version"] >= FIRST_HASHED_VERSION:
        if manifest_digest(manifest) != manifest[SELF_DIGEST]:
            raise BundleError(
                f"{manifest_path}: damaged or edited ({HASH} of its content does not match "
                f"'{SELF_DIGEST}'); copy the bundle again or re-train it"
            )
        for name in DATA_FILES:
            if name not in manifest["files"]:
                raise BundleError(f"{manifest_path}: 'files' does not list {name}")
        files = {name: _resolve(root, name) for name in manifest["files"]}
        for name, file in files.items():
            _verify_file(file, manifest["files"][name])
    else:
        warnings.warn(
            f"{root}: bundle format {manifest['format_version']} has no file digests, so damage "
            "cannot be detected; save the model again to add them "
            "(Recommender.load(p).save(p))",
            BundleWarning,
            stacklevel=4,
        )
        files = {name: root / name for name in DATA_FILES}
    arrays = _read_arrays(files[ARRAYS])
    bad = non_finite(arrays)
    if bad is not None:
        raise BundleError(
            f"{files[ARRAYS]}: array {bad[0]!r} holds {bad[1]:,} NaN/inf values; the model is "
            "damaged or its training diverged — re-train it"
        )
    items = _restore_rows(_read_items(files[ITEMS]), manifest, files[ITEMS])
    return BundleContents(manifest, arrays, items)


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    if not path.is_file():
        raise BundleError(f"{path}: missing; the bundle is incomplete")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise BundleError(f"{path}: not a readable safetensors file ({_one_line(err)})") from err


def _read_items(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise BundleError(f"{path}: missing; the bundle is incomplete")
    try:
        return pd.read_parquet(path)
    except Exception as err:  # pyarrow raises assorted types (ArrowInvalid, OSError …)
        raise BundleError(f"{path}: not a readable Parquet file ({_one_line(err)})") from err


def _restore_rows(items: pd.DataFrame, manifest: dict[str, Any], path: Path) -> pd.DataFrame:
    """Give back the rows of an item table that had none of its own columns.

    Parquet stores a frame without columns as zero rows, so a catalog loaded from a plain
    user,item,rating file would come back empty; the manifest's row count restores it (bundles
    saved before ``item_rows`` existed fall back on the number of item ids).
    """
    rows = manifest.get("item_rows")
    if rows is None and items.shape[1] == 0:
        rows = len(manifest["item_ids"]["ids"])
    if rows is None:
        return items
    if not isinstance(rows, int) or isinstance(rows, bool) or rows < 0:
        raise BundleError(f"{path.with_name(MANIFEST)}: item_rows must be a count, got {rows!r}")
    if items.shape[1] == 0:
        return pd.DataFrame(index=pd.RangeIndex(rows))
    if len(items) != rows:
        raise BundleError(
            f"{path}: {len(items):,} rows but the manifest records {rows:,}; the bundle is damaged"
        )
    return items


def _one_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return " ".join(text.split())


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
