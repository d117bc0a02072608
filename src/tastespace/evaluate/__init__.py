"""Metrics, leak-free protocols and the leaderboard."""

from tastespace.evaluate.protocol import evaluate_model

__all__ = ["evaluate_model"]
