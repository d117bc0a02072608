"""Feature encoders (numeric → normalised, categoricals → index bags) and the one-hot cost model."""

from tastespace.features.encoders import EncodedFeatures, FeatureEncoder

__all__ = ["EncodedFeatures", "FeatureEncoder"]
