"""Integrity checks for bundles: file digests, the manifest's own digest, finite weights.

SHA-256 because it is the fastest strong hash ``hashlib`` offers on these machines: with the
CPU's SHA instructions it ran at 1,961 MiB/s against BLAKE2b's 1,346 MiB/s on a 512 MiB file
(idle machine), 452 against 303 MiB/s under load (``bench/bundle_integrity.py``, which also
times load and save against bare safetensors + Parquet reads and writes).
The digests catch damage (a truncated copy, a flipped bit, a file swapped in from another
bundle); they are not signatures: anyone who can write the bundle can rewrite its manifest.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from tastespace.errors import BundleError

HASH = "sha256"
#: Manifest key holding the digest of the rest of the manifest.
SELF_DIGEST = "manifest_sha256"
_CHUNK = 1 << 20


def file_record(path: Path) -> dict[str, Any]:
    """``{"sha256": hex, "bytes": size}`` of a file, fsynced on the way (one read pass)."""
    digest = hashlib.new(HASH)
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
        os.fsync(handle.fileno())
    return {HASH: digest.hexdigest(), "bytes": path.stat().st_size}


def verify_file(path: Path, expected: dict[str, Any]) -> None:
    """Raise :class:`BundleError` naming ``path`` unless its size and digest match."""
    if not path.is_file():
        raise BundleError(f"{path}: missing (manifest.json lists it); re-save the bundle")
    size = path.stat().st_size
    if size != expected["bytes"]:
        raise BundleError(
            f"{path}: damaged ({size:,} bytes, manifest.json recorded {expected['bytes']:,}); "
            "copy the bundle again or re-train it"
        )
    with path.open("rb") as handle:
        found = hashlib.file_digest(handle, HASH).hexdigest()
    if found != expected[HASH]:
        raise BundleError(
            f"{path}: damaged ({HASH} does not match manifest.json); "
            "copy the bundle again or re-train it"
        )


def manifest_digest(manifest: dict[str, Any]) -> str:
    """Digest of a manifest's content without its own digest key (canonical JSON)."""
    body = {k: v for k, v in manifest.items() if k != SELF_DIGEST}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.new(HASH, text.encode()).hexdigest()


def non_finite(arrays: dict[str, np.ndarray]) -> tuple[str, int] | None:
    """``(name, count)`` of the first floating array holding NaN or ±inf, else ``None``.

    A float64 sum is one pass with no temporary and stays finite for any finite float32
    array, so only an array that fails it is counted element by element.
    """
    for name, array in arrays.items():
        if not np.issubdtype(array.dtype, np.floating) or array.size == 0:
            continue
        if not np.isfinite(array.sum(dtype=np.float64)):
            count = int(array.size - np.count_nonzero(np.isfinite(array)))
            if count:
                return name, count
    return None
