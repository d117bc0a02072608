"""ALS and BPR through implicit: the contract, fold-in against direct solves, bias handling."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import minimize
from scipy.special import log_expit

from tastespace.data.build import build_dataset
from tastespace.errors import ConfigError
from tastespace.models.histories import ItemIndices
from tastespace.models.mf import ALS, BPR, bpr_fold_in
from tests.models.contract import ModelContract

pytest.importorskip("implicit")  # mf imports implicit lazily, so the module above imports anyway


class TestALS(ModelContract):
    def make_model(self, seed: int = 0):
        return ALS(factors=16, regularization=1.0, alpha=10.0, iterations=10, seed=seed)


class TestBPR(ModelContract):
    def make_model(self, seed: int = 0):
        return BPR(factors=16, learning_rate=0.05, iterations=30, num_threads=1, seed=seed)


class TestBPRObjectiveFoldIn(ModelContract):
    def make_model(self, seed: int = 0):
        return BPR(
            factors=16,
            learning_rate=0.05,
            iterations=30,
            fold_in="objective",
            num_threads=1,
            seed=seed,
        )


def _random_dataset(seed: int = 0, n_users: int = 60, n_items: int = 25, density: float = 0.25):
    rng = np.random.default_rng(seed)
    users, items = np.nonzero(rng.random((n_users, n_items)) < density)
    return build_dataset(users, items, item_ids=np.arange(n_items))


# -- ALS ------------------------------------------------------------------------------------------
def test_als_fold_in_is_the_weighted_least_squares_solution():
    """implicit's recalculate_user (what user_vectors uses) equals Hu et al.'s closed form."""
    model = ALS(factors=6, regularization=0.7, alpha=8.0, iterations=5).fit(_random_dataset())
    y = model.item_vectors().astype(np.float64)
    histories = sp.csr_matrix(
        (
            np.array([1.0, 1.0, 1.0, 2.0, 0.5, 1.0], np.float32),
            np.array([0, 3, 9, 2, 4, 24]),
            np.array([0, 3, 5, 6, 6]),
        ),
        shape=(4, 25),
    )  # weights 2.0 / 0.5 scale the confidence; the last row is empty
    expected = np.zeros((4, 6))
    for u in range(4):
        items = histories.indices[histories.indptr[u] : histories.indptr[u + 1]]
        confidence = (
            model.config.alpha * histories.data[histories.indptr[u] : histories.indptr[u + 1]]
        )
        a = y.T @ y + (y[items].T * (confidence - 1.0)) @ y[items] + 0.7 * np.eye(6)
        expected[u] = np.linalg.solve(a, y[items].T @ confidence)
    np.testing.assert_allclose(model.user_vectors(histories), expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
        model.user_vectors(ItemIndices([[0, 3, 9]]))[0], expected[0], rtol=1e-4
    )


def test_als_fold_in_of_own_history_reproduces_training_factors(planted_split):
    train = planted_split.train
    model = ALS(factors=16, regularization=1.0, alpha=10.0, iterations=30).fit(train)
    folded = model.user_vectors(train.interactions)
    trained = model.user_factors_
    cosine = (folded * trained).sum(1) / (
        np.linalg.norm(folded, axis=1) * np.linalg.norm(trained, axis=1)
    )
    assert np.quantile(cosine, 0.05) > 0.999, np.quantile(cosine, [0.0, 0.05, 0.5])
    ratio = np.linalg.norm(folded, axis=1) / np.linalg.norm(trained, axis=1)
    assert np.all(np.abs(ratio - 1) < 0.02), (ratio.min(), ratio.max())


def test_als_results_do_not_depend_on_thread_count(planted_split):
    one = ALS(factors=8, iterations=4, num_threads=1).fit(planted_split.train)
    two = ALS(factors=8, iterations=4, num_threads=2).fit(planted_split.train)
    np.testing.assert_array_equal(one.item_vectors(), two.item_vectors())
    history = planted_split.test.fold_in[:5]
    np.testing.assert_allclose(one.user_vectors(history), two.user_vectors(history), atol=1e-6)


def test_defaults_use_every_core_and_compute_training_loss_only_when_asked(planted_split):
    assert ALS().config.num_threads == 0 and BPR().config.num_threads == 0
    losses = {}
    for asked in (False, True):
        model = ALS(factors=8, iterations=3, training_loss=asked)
        events: list = []
        model.fit(planted_split.train, callback=events.append)
        assert [e.batch for e in events] == [1, 2, 3, 3] and events[-1].scored
        assert {(e.stage, e.batches) for e in events} == {("sweeps", 3)}
        losses[asked] = [e.loss for e in events[:-1]]
    assert len(losses[False]) == len(losses[True]) == 3
    assert all(np.isnan(loss) for loss in losses[False])
    assert all(np.isfinite(loss) and loss > 0 for loss in losses[True])


def test_different_seeds_give_different_models(planted_split):
    for cls in (ALS, BPR):
        a = cls(factors=8, iterations=3, seed=0).fit(planted_split.train)
        b = cls(factors=8, iterations=3, seed=1).fit(planted_split.train)
        assert not np.allclose(a.item_vectors(), b.item_vectors())


def test_fit_limits_blas_threads_instead_of_warning(planted_split, monkeypatch):
    """implicit warns when OpenBLAS is multi-threaded; fit must limit BLAS, not hide the warning."""
    import implicit.utils
    from threadpoolctl import threadpool_info, threadpool_limits

    with threadpool_limits(limits=2, user_api="blas"):
        before = [api["num_threads"] for api in threadpool_info() if api["user_api"] == "blas"]
        if not before or max(before) < 2:
            pytest.skip("BLAS is single-threaded here; implicit has nothing to warn about")
        monkeypatch.setattr(implicit.utils, "_checked_blas_config", False)
        with pytest.warns(RuntimeWarning, match="threads"):
            implicit.utils.check_blas_config()  # the condition implicit warns about holds
        monkeypatch.setattr(implicit.utils, "_checked_blas_config", False)
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            model = ALS(factors=8, iterations=2).fit(planted_split.train)
            model.user_vectors(ItemIndices([[0, 1, 2]]))
        after = [api["num_threads"] for api in threadpool_info() if api["user_api"] == "blas"]
        assert after == before  # the limit is lifted again after fit


# -- BPR ------------------------------------------------------------------------------------------
def test_bpr_splits_implicits_bias_column():
    """item_vectors is the factor part, item_bias the last column; scores add the bias back."""
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    full = _random_dataset(seed=3)
    watched_24 = np.unique(full.interactions.tocoo().row[full.interactions.tocoo().col == 24])
    ds = full.subset_users(np.setdiff1d(np.arange(full.n_users), watched_24))  # item 24: unseen
    model = BPR(
        factors=5, learning_rate=0.05, iterations=20, seed=4, fold_in="objective", num_threads=1
    ).fit(ds)
    engine = BayesianPersonalizedRanking(
        factors=5, learning_rate=0.05, iterations=20, num_threads=1, random_state=4
    )
    engine.fit((ds.interactions > 0).astype(np.float32).tocsr(), show_progress=False)
    assert model.item_vectors().shape == (25, 5)
    np.testing.assert_allclose(model.item_vectors(), engine.item_factors[:, :5], atol=1e-6)
    np.testing.assert_allclose(model.item_bias(), engine.item_factors[:, 5], atol=1e-6)
    # Training users: our scoring ranks exactly like implicit's full-column dot product.
    trained = model.user_factors_ @ model.item_vectors().T + model.item_bias()
    theirs = engine.user_factors @ engine.item_factors.T
    np.testing.assert_allclose(trained, theirs, atol=1e-5)

    history = ItemIndices([[0, 3, 7], []])
    users, weight = model.fold_in(history)
    np.testing.assert_array_equal(weight, 1.0)  # the objective fold-in keeps implicit's scoring
    np.testing.assert_allclose(
        model.score(history), users @ model.item_vectors().T + model.item_bias(), atol=1e-5
    )
    np.testing.assert_array_equal(model.user_vectors(history), users)


@pytest.mark.parametrize("fold_in", ["least_squares", "objective"])
def test_bpr_empty_history_ranks_by_bias(fold_in):
    model = BPR(factors=4, iterations=10, fold_in=fold_in).fit(_random_dataset(seed=2))
    users, weight = model.fold_in(ItemIndices([[]]))
    np.testing.assert_array_equal(users, 0.0)
    np.testing.assert_array_equal(weight, 1.0)
    ids, _ = model.recommend(ItemIndices([]), k=5)
    np.testing.assert_array_equal(ids, np.argsort(-model.item_bias(), kind="stable")[:5])


def test_bpr_least_squares_fold_in_is_the_ridge_solution():
    model = BPR(factors=4, iterations=15, fold_in_l2=0.2).fit(_random_dataset(seed=6))
    columns = np.hstack([model.item_vectors(), model.item_bias()[:, None]]).astype(np.float64)
    gram = columns.T @ columns
    ridge = 0.2 * np.trace(gram) / 5
    history = ItemIndices([[1, 2, 8, 13], [4]])
    x = np.zeros((2, 25))
    x[0, history.rows[0]] = x[1, history.rows[1]] = 1.0
    expected = np.linalg.solve(gram + ridge * np.eye(5), columns.T @ x.T).T  # (2, [u, β])
    users, weight = model.fold_in(history)
    np.testing.assert_allclose(users, expected[:, :4], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(weight, expected[:, 4], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(model.score(history), expected @ columns.T, rtol=1e-4, atol=1e-5)


def _bpr_objective(u, y, b, counts, watched, lam):
    negative = np.setdiff1d(np.arange(len(y)), watched)
    w = counts[negative] / counts[negative].sum()
    x = y @ u + b
    pairs = log_expit(x[watched][:, None] - x[negative][None, :])
    return (pairs * w).sum(axis=1).mean() - lam / 2 * u @ u


def test_bpr_fold_in_reaches_the_objectives_maximum_monotonically():
    rng = np.random.default_rng(5)
    y = rng.normal(size=(30, 4)).astype(np.float32)
    b = rng.normal(scale=0.5, size=30).astype(np.float32)
    counts = rng.integers(1, 20, size=30).astype(np.float32)
    watched, lam = np.array([1, 5, 7, 20]), 0.05
    history = sp.csr_matrix((np.ones(4, np.float32), watched, [0, 4]), shape=(1, 30))
    optimum = minimize(
        lambda u: -_bpr_objective(u, y, b, counts, watched, lam), np.zeros(4), tol=1e-12
    ).x
    values = [
        _bpr_objective(
            bpr_fold_in(history, y, b, counts, lam, steps)[0], y, b, counts, watched, lam
        )
        for steps in (0, 1, 2, 5, 10, 200)
    ]
    assert np.all(np.diff(values) >= -1e-9), values  # every step increases the objective
    np.testing.assert_allclose(bpr_fold_in(history, y, b, counts, lam, 200)[0], optimum, atol=1e-3)


def test_bpr_fold_in_is_the_same_alone_in_a_batch_or_in_chunks(planted_split):
    model = BPR(factors=8, iterations=10, fold_in="objective", fold_in_steps=4)
    model.fit(planted_split.train)
    history = planted_split.test.fold_in[:6]
    together = model.user_vectors(history)
    alone = np.vstack([model.user_vectors(history[i]) for i in range(6)])
    np.testing.assert_allclose(together, alone, atol=1e-6)
    chunked = bpr_fold_in(
        history, model.item_factors_, model.item_bias_, model.item_counts_, 0.01, 4, block_cells=50
    )
    np.testing.assert_allclose(together, chunked, atol=1e-5)


# -- configs and CLI ------------------------------------------------------------------------------
def test_configs_parse_from_strings_and_reject_bad_values():
    assert ALS(factors="32", alpha="5").config.factors == 32  # CLI -p values arrive as strings
    with pytest.raises(ConfigError, match="factors"):
        ALS(factors=0)
    with pytest.raises(ConfigError, match="learning_rate"):
        BPR(learning_rate=-0.1)
    with pytest.raises(ConfigError, match="no option"):
        BPR(alpha=3.0)
    with pytest.raises(ConfigError, match="fold_in"):
        BPR(fold_in="magic")
    assert BPR(fold_in="objective").config.fold_in == "objective"


def test_generic_dim_and_epochs_name_the_factor_options():
    """``--dim`` / ``--epochs`` mean the vector size and training passes for every model."""
    assert ALS(dim=16, epochs=3).config.factors == 16
    assert ALS(dim="16", epochs="3").config.iterations == 3
    assert BPR(dim=8).config.factors == 8


def test_cli_fit_als_with_defaults(tmp_path):
    from typer.testing import CliRunner

    from tastespace.cli import app
    from tastespace.models.base import Recommender

    out = tmp_path / "als"
    result = CliRunner().invoke(
        app, ["fit", "--model", "als", "--data", "synthetic:tiny", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    loaded = Recommender.load(out)
    assert isinstance(loaded, ALS) and loaded.config == ALS().config
    assert loaded.item_vectors().shape[1] == ALS().config.factors


def test_als_trained_in_locality_order_keeps_every_item_its_own_vector():
    """``locality_order="on"`` trains on renumbered users and items; the vectors must come
    back in the dataset's numbering, so each planted group's items stay each other's nearest."""
    rng = np.random.default_rng(0)
    rows, cols = [], []
    for user in range(120):
        group = user % 3
        for item in rng.choice(10, 6, replace=False):
            rows.append(user)
            cols.append(group * 10 + item)
    ds = build_dataset(np.array(rows), np.array(cols), item_ids=np.arange(30))
    on = ALS(factors=8, iterations=10, seed=0, locality_order="on").fit(ds)
    ids, _ = on.similar_items(np.arange(30), k=5)
    assert ((ids // 10) == (np.arange(30) // 10)[:, None]).mean() > 0.95
    # a training user's in-memory factor is their own: it scores their group's items highest
    scores = on.user_factors_ @ on.item_vectors().T
    assert ((scores.argmax(1) // 10) == np.arange(120) % 3).all()


def test_locality_order_is_a_deterministic_permutation_and_permuted_matches_indexing():
    from tastespace.models.locality import locality_order, permuted

    m = sp.random(40, 25, density=0.15, format="csr", random_state=1)
    rows, cols = locality_order(m)
    assert sorted(rows.tolist()) == list(range(40)) and sorted(cols.tolist()) == list(range(25))
    again = locality_order(m)
    assert np.array_equal(rows, again[0]) and np.array_equal(cols, again[1])
    np.testing.assert_array_equal(permuted(m, rows, cols).toarray(), m.toarray()[rows][:, cols])
