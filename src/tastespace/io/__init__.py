"""Model bundles (save / load / export): safe formats only, crash-safe writes.

Names resolve lazily so that ``tastespace.io.swap`` (the ``--out`` check the CLI runs before
training) starts without importing numpy or pandas.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BundleContents", "read_bundle", "write_bundle"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from tastespace.io import bundle

        return getattr(bundle, name)
    raise AttributeError(f"module 'tastespace.io' has no attribute {name!r}")
