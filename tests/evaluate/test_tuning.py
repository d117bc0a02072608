"""Optuna search: seeded, chosen on validation users, test users scored exactly once."""

from __future__ import annotations

import dataclasses

import pytest

import tastespace.evaluate.tuning as tuning
from tastespace.errors import ConfigError
from tastespace.evaluate.tuning import SEARCH_SPACES, search_space, tune_model
from tastespace.models.registry import MODELS, model_class


def test_best_config_is_reported_with_test_metrics_computed_once(planted, monkeypatch):
    scored = []
    real = tuning.evaluate_model

    def counting(model, heldout, *args, **kwargs):
        scored.append(heldout)
        return real(model, heldout, *args, **kwargs)

    monkeypatch.setattr(tuning, "evaluate_model", counting)
    result = tune_model("ease", planted, trials=4, seed=0, n_heldout=60)
    assert len(scored) == 1  # the test users, once, for the winner only
    assert len(result.trials) == 4
    best = max(result.trials, key=lambda t: t["validation_recall@20"])
    assert result.best_params == best["params"]
    assert result.best_validation == best["validation_recall@20"]
    assert 10.0 <= result.best_params["l2"] <= 5000.0
    assert 0 < result.test_metrics["recall@20"] <= 1
    assert result.model.config.l2 == result.best_params["l2"]


def test_same_seed_proposes_the_same_trials(planted):
    a = tune_model("ease", planted, trials=3, seed=5, n_heldout=60)
    b = tune_model("ease", planted, trials=3, seed=5, n_heldout=60)
    assert [t["params"] for t in a.trials] == [t["params"] for t in b.trials]


def test_fixed_options_and_budget_checks(planted):
    with pytest.raises(ConfigError, match="both fixed and searched"):
        tune_model("ease", planted, trials=1, fixed={"l2": 3.0})
    with pytest.raises(ConfigError, match="trials"):
        tune_model("ease", planted, trials=0)
    with pytest.raises(ConfigError, match="minutes"):
        tune_model("ease", planted, minutes=-1)
    result = tune_model("ease", planted, minutes=0.001, n_heldout=60)
    assert len(result.trials) >= 1  # a time budget still runs the first trial


def test_unknown_or_untunable_kinds_are_clear_errors():
    with pytest.raises(ConfigError, match="no hyper-parameters"):
        search_space("popularity")
    with pytest.raises(ConfigError, match="not a model kind"):
        search_space("word2vec")


@pytest.mark.parametrize("kind", sorted(SEARCH_SPACES))
def test_every_space_names_real_config_options(kind):
    assert kind in MODELS
    try:
        config = model_class(kind).Config()
    except ImportError:
        pytest.skip(f"{kind}'s module is not importable here")
    fields = {f.name for f in dataclasses.fields(config)}
    assert set(SEARCH_SPACES[kind]) <= fields
