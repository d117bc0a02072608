"""Explanations: exact splits sum to the score; one planted item alone explains its partner."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tastespace.data.build import build_dataset
from tastespace.errors import DataError
from tastespace.models.explain import explain
from tastespace.models.histories import ItemIndices
from tastespace.models.registry import model_class

FAST = {
    "ease": {"l2": 5.0},
    "popularity": {},
    "item2vec": {"epochs": 50, "dim": 32, "sample": 0.0},
    "glove": {"epochs": 30, "dim": 32},
    "ppmi-svd": {"dim": 48},
    "als": {"factors": 32, "iterations": 10},
    "bpr": {"factors": 32, "iterations": 60, "learning_rate": 0.1},
    "neural": {"epochs": 20, "dim": 32, "hidden": 32},
}


@pytest.fixture(scope="module")
def pairs():
    """Items 2k and 2k+1 (k < 20) are always watched together, plus one of 20 filler items
    (40–59) at random: each partner is the one item that explains the other."""
    rng = np.random.default_rng(0)
    users, items = [], []
    for user in range(800):
        pair = 2 * int(rng.integers(0, 20))
        for item in (pair, pair + 1, 40 + int(rng.integers(0, 20))):
            users.append(user)
            items.append(item)
    return build_dataset(np.array(users), np.array(items), item_ids=np.arange(60))


@pytest.fixture(scope="module", params=list(FAST))
def fitted(request, pairs):
    return model_class(request.param)(**FAST[request.param]).fit(pairs)


def test_exact_splits_add_up_to_the_score(fitted):
    if fitted.kind in ("neural", "bpr"):
        pytest.skip("explained by leave-one-out, not an exact split")
    history = [4, 17, 30]
    why = explain(fitted, history, range(fitted.n_items))
    assert why.exact
    score = fitted.score(ItemIndices([history]))[0]
    if fitted.kind == "popularity":
        assert not why.contributions.any()
        return
    baseline = score - why.contributions.sum(axis=1)
    np.testing.assert_allclose(baseline, baseline[0], atol=1e-4)  # constant (0 for these)
    np.testing.assert_allclose(why.contributions.sum(axis=1), score, rtol=1e-3, atol=1e-4)


def test_the_planted_partner_explains_the_recommendation(fitted):
    if fitted.kind == "popularity":
        pytest.skip("popularity ignores the history")
    index = fitted.item_ids_.index
    history = [index(6), index(21), index(34)]  # 6's partner is 7; 21's is 20; 34's is 35
    why = explain(fitted, history, [index(7), index(20), index(35)])
    for row, partner in enumerate((6, 21, 34)):
        (best, share), *_ = why.top(row)
        assert best == index(partner), f"{fitted.kind}: {why.items[row]} explained by {best}"
        assert share > 0.4, f"{fitted.kind}: share {share:.2f} (three watched items)"


@pytest.mark.fault(
    "models", "explain with an item index outside the catalog", "DataError naming the range"
)
def test_out_of_range_is_refused(fitted):
    with pytest.raises(DataError, match="outside 0..59"):
        explain(fitted, [0, 99], [1])


def test_recommend_explain_through_the_cli(pairs, tmp_path):
    """`recommend --explain --json`: each recommended partner is explained by its partner."""
    from typer.testing import CliRunner

    from tastespace.cli import app

    matrix = pairs.interactions.tocoo()
    raws = pairs.item_ids.raws(matrix.col)
    lines = [f"{u},{i},1" for u, i in zip(matrix.row, raws, strict=True)]
    (tmp_path / "r.csv").write_text("user,item,rating\n" + "\n".join(lines) + "\n")
    runner = CliRunner()
    fitted = runner.invoke(
        app,
        ["fit", "--model", "ease", "--data", str(tmp_path / "r.csv"), "--out", str(tmp_path / "b")],
    )
    assert fitted.exit_code == 0, fitted.output
    result = runner.invoke(
        app,
        [
            "recommend",
            str(tmp_path / "b"),
            "-H",
            "6",
            "-H",
            "21",
            "-H",
            "34",
            "-k",
            "3",
            "--explain",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    line = json.loads(result.stdout)
    partner = {7: 6, 20: 21, 35: 34}
    assert sorted(line["items"]) == [7, 20, 35]
    for item, because in zip(line["items"], line["because"], strict=True):
        assert because[0]["id"] == partner[item] and because[0]["share"] > 0.4, line
