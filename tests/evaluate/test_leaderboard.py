"""The leaderboard: one split per seed shared by every row, grids chosen on validation users,
targets and held-out users never reach ``fit``, failures reported per row."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tastespace.errors import ConfigError, DataError
from tastespace.evaluate.leaderboard import (
    Contender,
    Leaderboard,
    format_stat,
    merge_leaderboards,
    resolve_contenders,
    run_leaderboard,
)
from tastespace.models.baselines import EASE, Popularity


class RecordingPopularity(Popularity):
    """Popularity that remembers what ``fit`` was given."""

    log: list[dict] = []

    def _fit(self, dataset, validation, run):
        RecordingPopularity.log.append(
            {
                "users": dataset.user_ids.ids.copy(),
                "fingerprint": dataset.fingerprint(),
                "validation_users": None if validation is None else validation.users.copy(),
                "seed": self.config.seed,
            }
        )
        super()._fit(dataset, validation, run)


def spy(name: str) -> Contender:
    return Contender(name, lambda p: RecordingPopularity(**p), source="peer")


@pytest.fixture(scope="module")
def board(planted):
    RecordingPopularity.log.clear()
    return run_leaderboard(
        planted,
        ["popularity", "ease", spy("spy-a"), spy("spy-b")],
        seeds=(0, 1),
        n_heldout=60,
        tune={"ease": {"l2": [5.0, 50.0]}},
    )


def test_rows_are_marked_and_ease_beats_popularity(board):
    assert [r.name for r in board.rows] == ["popularity", "ease", "spy-a", "spy-b"]
    assert board.row("ease").source == "tastespace" and board.row("spy-a").source == "peer"
    assert board.sorted_by("recall@20")[0].name == "ease"
    assert board.row("ease").mean("recall@20") > 1.3 * board.row("popularity").mean("recall@20")
    assert {"recall@20", "recall@50", "ndcg@100", "mrr@20", "coverage@20", "diversity@20"} <= set(
        board.metrics()
    )


def test_every_row_sees_the_identical_split_per_seed_and_no_held_out_user(board, planted):
    log = RecordingPopularity.log
    assert [entry["seed"] for entry in log] == [0, 0, 1, 1]
    assert log[0]["fingerprint"] == log[1]["fingerprint"]
    assert log[2]["fingerprint"] == log[3]["fingerprint"]
    assert log[0]["fingerprint"] != log[2]["fingerprint"]
    for entry in log:
        validation = planted.user_ids.ids[entry["validation_users"]]
        assert len(validation) == 60
        assert not np.isin(validation, entry["users"]).any()
        assert len(entry["users"]) == planted.n_users - 120  # test users are not in train either


def test_spread_and_chosen_grid_point(board):
    ease = board.row("ease")
    assert len(ease.runs) == 2
    stats = ease.stats("recall@20")
    values = ease.values("recall@20")
    assert stats["min"] == values.min() and stats["max"] == values.max()
    assert stats["std"] == pytest.approx(values.std(ddof=1))
    for run in ease.runs:
        assert run.params["l2"] in (5.0, 50.0) and run.validation_score is not None
        assert run.fit_seconds > 0 and run.tune_seconds >= run.fit_seconds
    assert format_stat({"mean": 0.41234, "std": 0.0106}) == "0.412 ± 0.011"


def test_json_document(board):
    doc = json.loads(json.dumps(board.to_json()))
    assert doc["protocol"]["seeds"] == [0, 1]
    assert doc["rows"][0]["name"] == "ease"
    assert set(doc["rows"][0]["metrics"]["recall@20"]) == {"mean", "std", "min", "max"}
    assert doc["memory_method"] in ("vmhwm", "sampler", "unavailable")


def test_json_round_trip_and_merge(board, planted):
    again = Leaderboard.from_json(json.loads(json.dumps(board.to_json(), default=str)))
    assert again.row("ease").stats("ndcg@100") == board.row("ease").stats("ndcg@100")
    assert again.row("ease").runs[0].config["l2"] == board.row("ease").runs[0].params["l2"]
    extra = run_leaderboard(
        planted,
        {"ease-20": {"kind": "ease", "l2": 20.0}},
        seeds=(0, 1),
        n_heldout=60,
        tune={"ease": {"l2": [5.0, 50.0]}},
    )
    merged = merge_leaderboards([again, extra])
    names = [r.name for r in merged.rows]
    assert sorted(names) == ["ease", "ease-20", "popularity", "spy-a", "spy-b"]
    other = run_leaderboard(planted, ["popularity"], seeds=(0,), n_heldout=60)
    with pytest.raises(ConfigError, match="cannot merge"):
        merge_leaderboards([board, other])


def test_grid_is_chosen_on_validation(planted):
    choose = Contender(
        "either",
        lambda p: Popularity(seed=p["seed"]) if p["which"] == "pop" else EASE(l2=20.0),
        grid={"which": ["pop", "ease"]},
    )
    board = run_leaderboard(planted, [choose], seeds=(3,), n_heldout=60)
    assert board.row("either").runs[0].params == {"which": "ease"}


def test_a_failing_row_is_reported_and_the_rest_still_run(planted):
    class Broken(Popularity):
        def _fit(self, dataset, validation, run):
            raise DataError("engine exploded")

    board = run_leaderboard(
        planted, ["popularity", Contender("broken", lambda p: Broken())], seeds=(0,), n_heldout=60
    )
    assert "engine exploded" in board.row("broken").error
    assert board.row("popularity").runs
    assert board.sorted_by()[-1].name == "broken"


def test_bad_requests_fail_before_fitting():
    with pytest.raises(ConfigError, match="unknown model"):
        resolve_contenders(["ease", "nope"])
    with pytest.raises(ConfigError, match="no option"):
        resolve_contenders({"ease": {"lambda": 3}})
    with pytest.raises(ConfigError, match="unique"):
        resolve_contenders(["ease", "ease"])
    with pytest.raises(ConfigError, match="source"):
        Contender("x", lambda p: None, source="other")


def test_default_grid_and_labelled_variants():
    (ease,) = resolve_contenders(["ease"])
    assert ease.grid == {"l2": (30.0, 100.0, 300.0, 1000.0)}
    fixed, label = resolve_contenders(
        {"ease": {"l2": 500}, "ease-big": {"kind": "ease", "l2": 2e3}}
    )
    assert fixed.grid == {} and label.params == {"l2": 2e3}
    (untuned,) = resolve_contenders(["ease"], tune={})
    assert untuned.grid == {}
