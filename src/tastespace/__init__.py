"""tastespace: dense embeddings for sparse recommender data.

The pipeline reads left to right: ``data`` → ``features`` → ``models`` → ``index`` →
``evaluate`` → ``viz`` → ``serve``. Heavy engines (torch, gensim, implicit, faiss) are imported
lazily by the modules that need them, so ``import tastespace`` stays cheap.

Two faces: :func:`open` is the front door (raw ids and titles in, pandas DataFrames out); the
models' ``Recommender`` protocol is the engine room (dense indices, batch-first numpy).

Example
-------
>>> import tastespace
>>> from tastespace.models.baselines import EASE
>>> ds = tastespace.load_dataset("synthetic:tiny")
>>> session = tastespace.open(EASE(l2=50.0).fit(ds))
>>> session.similar(1, k=2)["item"].tolist() != []
True
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("tastespace")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

if TYPE_CHECKING:
    from tastespace.session import Session


def open(source: str | Path | Any, name: str | None = None) -> Session:  # noqa: A001
    """The raw-id front door over a bundle directory or a fitted model.

    >>> session = open("runs/neural")                                  # doctest: +SKIP
    >>> session.recommend(history=["Toy Story (1995)", 50], k=5)       # doctest: +SKIP
    """
    from tastespace.session import open_session

    return open_session(source, name)


def load_dataset(source: Any, **options: Any) -> Any:
    """:func:`tastespace.data.load_dataset` (files, folders, ``synthetic:``, DataFrames)."""
    from tastespace.data.load import load_dataset as load

    return load(source, **options)


def keep_freed_memory() -> bool:
    """Keep freed memory in this process, as the CLI does on start (a 5M neural fit ran 15 %
    faster on glibc; :mod:`tastespace.models.allocator` says why). Call it once, early, in a
    program that fits or serves; False where the C library is not glibc."""
    from tastespace.models.allocator import keep_freed_memory as keep

    return keep()


# ``open`` stays out of ``__all__``: ``from tastespace import *`` must not shadow the builtin.
__all__ = ["__version__", "keep_freed_memory", "load_dataset"]
