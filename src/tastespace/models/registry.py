"""Model kinds by name, imported lazily so the CLI starts without loading torch or gensim."""

from __future__ import annotations

import importlib

from tastespace.errors import ConfigError

#: kind → "module:Class"; the CLI's ``--model`` choices come from here.
MODELS: dict[str, str] = {
    "neural": "tastespace.models.neural.model:NeuralRecommender",
    "item2vec": "tastespace.models.item2vec:Item2Vec",
    "glove": "tastespace.models.cooccurrence:GloVe",
    "ppmi-svd": "tastespace.models.cooccurrence:PPMISVD",
    "als": "tastespace.models.mf:ALS",
    "bpr": "tastespace.models.mf:BPR",
    "ease": "tastespace.models.baselines:EASE",
    "popularity": "tastespace.models.baselines:Popularity",
}


def model_class(kind: str) -> type:
    """The class for ``kind``; unknown kinds raise :class:`ConfigError` listing the known ones."""
    if kind not in MODELS:
        raise ConfigError(f"unknown model {kind!r}; choose one of {', '.join(MODELS)}")
    module_name, _, class_name = MODELS[kind].partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def available_models() -> list[str]:
    """Kinds whose module imports here (an engine such as gensim may be missing)."""
    found = []
    for kind in MODELS:
        try:
            model_class(kind)
        except ImportError:
            continue
        found.append(kind)
    return found
