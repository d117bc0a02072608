"""The front door's insight methods: explanations in the frame, report and compare on the
split the model was fitted on (no data passed: the model's record reloads it)."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

import tastespace
from tastespace.cli import app
from tastespace.evaluate.heldout import fit_heldout
from tastespace.models.baselines import EASE, Popularity

DATA = "synthetic:users=300,items=80,genres=4,noise=0.05,seed=3"


def _fitted(model):
    return fit_heldout(model, tastespace.load_dataset(DATA), holdout=40, seed=1).model


def test_recommend_explains_each_row_from_the_history():
    session = tastespace.open(_fitted(EASE(l2=20.0)))
    history = session.item_vectors().index[:3].tolist()
    frame = session.recommend(history=history, k=4, explain=True)
    assert len(frame) == 4
    for because in frame["because"]:
        assert because and {entry["item"] for entry in because} <= set(history)
        shares = [entry["share"] for entry in because]
        assert shares == sorted(shares, reverse=True) and sum(shares) <= 1.0 + 1e-6


def test_compare_with_itself_and_with_popularity_on_the_recorded_split():
    ease = tastespace.open(_fitted(EASE(l2=20.0)))
    same = ease.compare(ease)  # data and held-out users from the model's record
    assert same.overlap == 1.0 and same.users == 40
    assert all(m.diff == 0.0 for m in same.metrics.values())
    worse = ease.compare(_fitted(Popularity()))
    assert worse.users == 40 and worse.metrics["recall@20"].diff < 0


def test_report_without_data_uses_the_bundles_split(tmp_path):
    bundle = tmp_path / "ease"
    fit = ["fit", "-m", "ease", "--data", DATA, "--holdout", "40", "--out", str(bundle)]
    assert runner_ok(fit)
    out = tmp_path / "r.html"
    result = CliRunner().invoke(app, ["report", str(bundle), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    numbers = json.loads(result.stdout)
    assert out.exists() and str(out) in numbers["written"]
    python = tastespace.open(bundle).report(tmp_path / "p.html")
    assert python["users"] == numbers["users"] == 40  # the recorded split's test users
    assert np.isclose(python["recommendations"]["gini"], numbers["recommendations"]["gini"])


def runner_ok(args: list[str]) -> bool:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return True
