"""Configs and run options: validated once from their type hints, round-tripped through JSON."""

from __future__ import annotations

import dataclasses
import json

import pytest

from tastespace.errors import ConfigError
from tastespace.models.config import ModelConfig, field_docs, parse_options
from tastespace.models.fitting import TrainingOptions
from tastespace.models.registry import MODELS, model_class


def _config(kind: str) -> type[ModelConfig]:
    try:
        return model_class(kind).Config
    except ImportError as err:  # an optional engine missing
        pytest.skip(str(err))


@pytest.mark.parametrize("kind", list(MODELS))
def test_defaults_round_trip_through_json(kind):
    config = _config(kind)()
    assert type(config).from_json(json.loads(json.dumps(config.to_json()))) == config


@pytest.mark.parametrize("kind", list(MODELS))
def test_every_field_is_documented(kind):
    cls = _config(kind)
    missing = {f.name for f in dataclasses.fields(cls)} - set(field_docs(cls))
    assert not missing, f"{cls.__name__} fields without a docstring: {sorted(missing)}"


@pytest.mark.fault("config", "Literal field given an unknown choice", "ConfigError")
def test_unknown_literal_choice_names_field_value_and_choices():
    from tastespace.models.neural.config import NeuralConfig

    with pytest.raises(ConfigError) as err:
        NeuralConfig(pooling="max")
    message = str(err.value)
    assert message.startswith(
        "NeuralConfig.pooling='max': expected one of 'sqrtn', 'mean', 'attention'"
    )
    assert "\n" not in message
    with pytest.raises(ConfigError, match=r"NeuralConfig.loss='bogus': expected one of 'auto'"):
        NeuralConfig(loss="bogus")


@pytest.mark.fault("config", "string where an int belongs, from a manifest", "ConfigError")
def test_from_json_with_a_string_number_is_a_config_error_not_a_type_error():
    from tastespace.models.mf import ALSConfig

    with pytest.raises(ConfigError, match=r"^ALSConfig.factors='64': expected int"):
        ALSConfig.from_json({"factors": "64"})


@pytest.mark.fault("config", "bool where an int belongs", "ConfigError")
def test_bool_is_not_an_int_and_float_fields_take_ints():
    from tastespace.models.mf import ALSConfig

    with pytest.raises(ConfigError, match="ALSConfig.iterations=True: expected int"):
        ALSConfig(iterations=True)
    config = ALSConfig(regularization=3)
    assert config.regularization == 3.0 and isinstance(config.regularization, float)


@pytest.mark.fault("config", "None for a required option", "ConfigError")
def test_optional_fields_take_none_and_others_do_not():
    from tastespace.models.neural.config import NeuralConfig

    assert NeuralConfig(patience=None).patience is None
    with pytest.raises(ConfigError, match=r"NeuralConfig.dim=None: expected int — Vector size"):
        NeuralConfig(dim=None)


def test_cli_strings_are_parsed_by_field_type():
    from tastespace.models.neural.config import NeuralConfig

    config = NeuralConfig().with_options(
        parse_options(["dim=16", "lr=1e-3", "patience=none", "tied-history=off", "pooling=sqrtn"])
    )
    assert (config.dim, config.lr, config.patience, config.tied_history, config.pooling) == (
        16,
        1e-3,
        None,
        False,
        "sqrtn",
    )


@pytest.mark.fault("config", "-p value that does not parse", "ConfigError")
def test_bad_cli_string_names_the_field_and_its_doc():
    from tastespace.models.mf import ALSConfig

    with pytest.raises(ConfigError) as err:
        ALSConfig().with_options({"dim": "sixty"})
    assert str(err.value) == "ALSConfig.factors='sixty': expected int — Vector size"


@pytest.mark.fault("config", "unknown option name", "ConfigError")
def test_unknown_option_lists_the_valid_ones():
    from tastespace.models.baselines import EASEConfig

    with pytest.raises(ConfigError, match=r"EASEConfig has no option 'l3'; valid: \['l2', "):
        EASEConfig().with_options({"l3": "1"})
    with pytest.raises(ConfigError, match=r"unknown EASEConfig option\(s\) \['l3'\]"):
        EASEConfig.from_json({"l3": 1})


def test_describe_lists_every_field_with_type_default_and_doc():
    from tastespace.models.baselines import EASEConfig

    lines = EASEConfig.describe()
    assert lines[0] == "seed: int = 0 — Seed of every randomised step of the fit."
    assert [line.split(":")[0] for line in lines] == ["seed", "l2", "max_items"]


def test_training_options_are_frozen_and_checked():
    options = TrainingOptions(device="cuda:0", threads=2, checkpoint_dir="ck", resume=True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.threads = 3  # type: ignore[misc]
    assert TrainingOptions.from_json(options.to_json()) == options


@pytest.mark.fault("config", "bad training option", "ConfigError")
def test_bad_training_options_fail_in_one_line():
    with pytest.raises(ConfigError, match=r"TrainingOptions.threads must be ≥ 1, got 0"):
        TrainingOptions(threads=0)
    with pytest.raises(ConfigError, match="resume=True needs a checkpoint_dir"):
        TrainingOptions(resume=True)
    with pytest.raises(ConfigError, match=r"TrainingOptions.device=1: expected str"):
        TrainingOptions(device=1)  # type: ignore[arg-type]
