"""Data layer: ``Dataset`` (CSR interactions + id maps + feature tables), loaders, splits.

``load_dataset`` is the one entry point the CLI and the library use: it accepts a MovieLens zip or
folder (any GroupLens release), a CSV/Parquet interactions file, or a ``synthetic:`` spec.
"""

from tastespace.data.bags import Bags
from tastespace.data.dataset import Dataset, FeatureTable
from tastespace.data.load import load_dataset
from tastespace.data.vocab import Vocabulary

__all__ = ["Bags", "Dataset", "FeatureTable", "Vocabulary", "load_dataset"]
