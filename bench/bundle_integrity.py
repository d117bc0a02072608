"""What bundle integrity costs: digest throughput, and save / load time with the checks.

Builds an ALS-shaped bundle in a temporary folder (``--items`` × ``--dim`` float32 item factors,
256 MiB by default) and measures, in this one process:

* **hash** — SHA-256 (the digest bundles use) against BLAKE2b and MD5 over the arrays file, so
  the choice can be re-checked on another CPU (SHA-256 wins where the CPU has SHA instructions);
* **load** — ``Recommender.load`` (digests + NaN/inf scan + the shape check), against the bare
  reads it is built on (``safetensors.numpy.load_file`` + ``pandas.read_parquet``) as baseline;
* **save** — ``model.save`` over an existing bundle (digests, fsync, the crash-safe swap),
  against ``safetensors.numpy.save_file`` + ``to_parquet`` into a fresh folder.

Best of ``--repeat`` runs; files are warm in the page cache after the first run, so the table
shows CPU cost, not disk speed. Usage::

    python bench/bundle_integrity.py
    python bench/bundle_integrity.py --items 1000000 --dim 64 --repeat 3
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd


def best_of(repeat: int, action: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return min(times)


def build_model(n_items: int, dim: int):
    """A fitted ALS model without training: random factors, a catalog of ``n_items`` titles."""
    from tastespace.data.dataset import FeatureTable
    from tastespace.data.vocab import Vocabulary
    from tastespace.models.registry import model_class

    model = model_class("als")(factors=dim)
    rng = np.random.default_rng(0)
    model.item_factors_ = rng.standard_normal((n_items, dim), dtype=np.float32)
    model._engine = None
    model.item_ids_ = Vocabulary(np.arange(n_items), name="item")
    model.items_ = FeatureTable(pd.DataFrame({"title": [f"item {i}" for i in range(n_items)]}))
    model.fingerprint_, model.fit_seconds_ = "bench", 0.0
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=524_288)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from safetensors.numpy import load_file, save_file

    from tastespace.models.base import Recommender

    model = build_model(args.items, args.dim)
    with tempfile.TemporaryDirectory() as tmp:
        bundle = model.save(Path(tmp) / "bundle")
        arrays = bundle / "arrays.safetensors"
        size = arrays.stat().st_size
        mib = size / 2**20

        rows = []
        for name in ("sha256", "blake2b", "md5"):
            with arrays.open("rb") as handle:
                seconds = best_of(
                    args.repeat, lambda h=handle, n=name: (h.seek(0), hashlib.file_digest(h, n))
                )
            rows.append((f"hash {name}", seconds, mib / seconds))
        print(f"arrays file: {mib:,.0f} MiB ({args.items:,} items × {args.dim} float32)\n")
        print("| digest | seconds | MiB/s | vs sha256 |")
        print("|---|---:|---:|---:|")
        for label, seconds, rate in rows:
            print(f"| {label} | {seconds:.3f} | {rate:,.0f} | {seconds / rows[0][1]:.2f}× |")

        bare_load = best_of(
            args.repeat,
            lambda: (load_file(str(arrays)), pd.read_parquet(bundle / "items.parquet")),
        )
        checked_load = best_of(args.repeat, lambda: Recommender.load(bundle))

        def bare_write() -> None:
            folder = Path(tempfile.mkdtemp(dir=tmp))
            save_file({"item_factors": model.item_factors_}, str(folder / "a.safetensors"))
            model.items_.frame.to_parquet(folder / "items.parquet", index=False)

        bare_save = best_of(args.repeat, bare_write)
        checked_save = best_of(args.repeat, lambda: model.save(bundle))
        print("\n| step | bare (baseline) s | tastespace s | ratio |")
        print("|---|---:|---:|---:|")
        print(f"| load | {bare_load:.3f} | {checked_load:.3f} | {checked_load / bare_load:.2f}× |")
        print(f"| save | {bare_save:.3f} | {checked_save:.3f} | {checked_save / bare_save:.2f}× |")


if __name__ == "__main__":
    main()
