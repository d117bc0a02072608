"""The feature-aware neural two-tower model (PyTorch)."""

from tastespace.models.neural.config import NeuralConfig
from tastespace.models.neural.model import NeuralRecommender

__all__ = ["NeuralConfig", "NeuralRecommender"]
