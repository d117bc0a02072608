"""Models behind one protocol (:class:`Recommender`): neural, co-occurrence, MF, baselines.

``Recommender`` is imported on first use, so the CLI can read the registry's model kinds
without loading numpy, scipy and pandas.
"""

from typing import Any

from tastespace.models.registry import MODELS, model_class

__all__ = ["MODELS", "ItemIndices", "Recommender", "model_class"]


def __getattr__(name: str) -> Any:
    if name == "Recommender":
        from tastespace.models.base import Recommender

        return Recommender
    if name == "ItemIndices":
        from tastespace.models.histories import ItemIndices

        return ItemIndices
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
