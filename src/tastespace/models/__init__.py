"""Models behind one protocol (:class:`Recommender`): neural, co-occurrence, MF, baselines."""

from tastespace.models.base import Recommender
from tastespace.models.registry import MODELS, model_class

__all__ = ["MODELS", "Recommender", "model_class"]
