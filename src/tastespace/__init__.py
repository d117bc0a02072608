"""tastespace: dense embeddings for sparse recommender data.

The pipeline reads left to right: ``data`` → ``features`` → ``models`` → ``index`` →
``evaluate`` → ``viz`` → ``serve``. Heavy engines (torch, gensim, implicit, faiss) are imported
lazily by the modules that need them, so ``import tastespace`` stays cheap.

Example
-------
>>> from tastespace.data import load_dataset
>>> ds = load_dataset("synthetic:tiny")
>>> ds.n_users > 0
True
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tastespace")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
