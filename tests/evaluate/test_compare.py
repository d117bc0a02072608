"""`compare`: neighbourhood overlap and paired metrics of two bundles."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from tastespace.cli import app
from tastespace.data.build import build_dataset
from tastespace.evaluate.compare import compare_models, neighbour_overlap, paired_metric
from tastespace.models.baselines import EASE, Popularity

runner = CliRunner()
DATA = "synthetic:users=400,items=120,genres=4,noise=0.05,seed=2"


def test_identical_bundles_agree_completely(tmp_path):
    out = tmp_path / "ease"
    assert (
        runner.invoke(app, ["fit", "--model", "ease", "--data", DATA, "--out", str(out)]).exit_code
        == 0
    )
    result = runner.invoke(app, ["compare", str(out), str(out), "--data", DATA, "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["overlap@10"] == 1.0 and doc["items_compared"] == 120
    for metric in doc["metrics"].values():
        assert metric["diff"] == 0.0 and metric["p_ttest"] == 1.0


def test_a_real_gap_is_significant(planted_split):
    ease = EASE(l2=20.0).fit(planted_split.train)
    popular = Popularity().fit(planted_split.train)
    result = compare_models(ease, popular, planted_split.test)
    recall = result.metrics["recall@20"]
    assert recall.diff < 0 and recall.ci95[1] < 0
    assert recall.p_ttest < 0.01 and recall.p_wilcoxon < 0.01
    assert recall.a == pytest.approx(recall.b - recall.diff)


def test_overlap_matches_items_by_raw_id():
    """Planted partners (2k, 2k+1 always watched together, plus a random filler 40–59), the
    catalogs in opposite index order: both models name the same partner for every item."""
    rng = np.random.default_rng(0)
    pairs = 2 * rng.integers(0, 20, 600)
    items = np.column_stack([pairs, pairs + 1, 40 + rng.integers(0, 20, 600)]).ravel()
    users = np.repeat(np.arange(600), 3)
    forward = EASE(l2=1.0).fit(build_dataset(users, items, item_ids=np.arange(60)))
    backward = EASE(l2=1.0).fit(build_dataset(users, items, item_ids=np.arange(60)[::-1]))
    assert forward.item_ids_ != backward.item_ids_
    agree = neighbour_overlap(forward, backward, k=1)
    np.testing.assert_array_equal(agree[:40], 1.0)


def test_paired_metric_interval_and_tests():
    a = np.array([0.1, 0.2, 0.3, 0.4, 0.5, np.nan])
    b = a + np.array([0.1, 0.12, 0.08, 0.11, 0.09, 0.0])
    m = paired_metric(a, b)
    assert m.diff == pytest.approx(0.1) and m.ci95[0] < 0.1 < m.ci95[1]
    assert m.p_ttest < 0.001
