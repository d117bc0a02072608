"""The Index protocol: every kind answers the same question, round-trips through bytes and
bundles, excludes exactly, and refuses bad input in one line."""

from __future__ import annotations

import builtins

import numpy as np
import pytest
import scipy.sparse as sp

from tastespace.errors import BundleError, ConfigError, DataError
from tastespace.index import build_index, index_from_bytes, measure_recall, resolve_kind
from tastespace.index.base import AUTO_EXACT_MAX_ITEMS, check_k
from tastespace.models.histories import ItemIndices

pytest.importorskip("faiss")

KINDS = ("exact", "hnsw", "ivfpq")


@pytest.fixture(scope="module")
def clustered():
    """2,000 items in 20 tight clusters in 16-D, queries near cluster centres: the true top
    ten of a query are its own cluster's nearest members, easy for any decent index."""
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((20, 16)).astype(np.float32) * 3
    labels = np.repeat(np.arange(20), 100)
    items = centres[labels] + 0.3 * rng.standard_normal((2000, 16)).astype(np.float32)
    queries = centres[rng.integers(0, 20, 200)] + 0.3 * rng.standard_normal((200, 16))
    return items.astype(np.float32), queries.astype(np.float32)


def test_cosine_and_dot_rank_differently_on_a_known_case():
    items = np.array([[1, 0], [10, 10], [0, 1]], np.float32)
    query = np.array([[1, 0.1]], np.float32)
    dot_ids, dot_scores = build_index("exact", items, "dot").search(query, 3)
    cos_ids, cos_scores = build_index("exact", items, "cosine").search(query, 3)
    assert dot_ids.tolist() == [[1, 0, 2]]  # the long vector wins on inner product
    assert cos_ids.tolist() == [[0, 1, 2]]  # the aligned one wins on angle
    np.testing.assert_allclose(cos_scores[0, 0], 1 / np.sqrt(1.01), rtol=1e-6)
    np.testing.assert_allclose(dot_scores[0], [11, 1, 0.1], rtol=1e-6)


@pytest.mark.parametrize("kind", ["exact", "hnsw"])
@pytest.mark.parametrize("metric", ["dot", "cosine"])
def test_exact_and_hnsw_find_the_planted_neighbours(clustered, kind, metric):
    items, queries = clustered
    exact = build_index("exact", items, metric)
    index = build_index(kind, items, metric)
    recall = measure_recall(index, exact, queries, k=10)
    assert recall >= (1.0 if kind == "exact" else 0.9), recall


@pytest.mark.parametrize("kind", KINDS)
def test_exclusion_is_exact_for_every_kind(clustered, kind):
    items, queries = clustered
    index = build_index(kind, items, "dot")
    top, _ = index.search(queries[:20], 10)
    # exclude each query's whole top ten plus 40 random items: none may come back
    rng = np.random.default_rng(1)
    banned = [np.union1d(row, rng.choice(2000, 40, replace=False)) for row in top]
    exclude = sp.csr_matrix(
        (
            np.ones(sum(map(len, banned)), np.float32),
            np.concatenate(banned),
            np.concatenate([[0], np.cumsum(list(map(len, banned)))]),
        ),
        shape=(20, 2000),
    )
    ids, scores = index.search(queries[:20], 10, exclude)
    for row, got in enumerate(ids):
        assert (got >= 0).all() and not np.intersect1d(got, banned[row]).size
    assert np.all(np.diff(scores, axis=1) <= 0)


@pytest.mark.parametrize("kind", KINDS)
def test_a_query_gets_its_batched_answer_alone_whatever_the_others_exclude(kind):
    """A fetch depth shared by the batch let HNSW explore further for every query once one
    excluded many items (14 of 40 users of a 40k catalog got another answer alone), and
    faiss's own rotation gave IVF's batched queries other bits than a lone one's."""
    rng = np.random.default_rng(6)
    items = rng.standard_normal((5000, 64)).astype(np.float32)
    queries = rng.standard_normal((30, 64)).astype(np.float32)
    index = build_index(kind, items, "dot")
    banned = [rng.choice(5000, 400 if row % 3 == 0 else 3, replace=False) for row in range(30)]
    exclude = sp.csr_matrix(
        (
            np.ones(sum(map(len, banned)), np.float32),
            np.concatenate([np.sort(row) for row in banned]),
            np.concatenate([[0], np.cumsum(list(map(len, banned)))]),
        ),
        shape=(30, 5000),
    )
    ids, scores = index.search(queries, 10, exclude)
    for row in range(30):
        alone_ids, alone_scores = index.search(queries[row : row + 1], 10, exclude[row])
        np.testing.assert_array_equal(alone_ids[0], ids[row], err_msg=f"query {row}")
        np.testing.assert_array_equal(alone_scores[0], scores[row], err_msg=f"query {row}")


@pytest.mark.parametrize("kind", KINDS)
def test_round_trip_through_bytes_answers_identically(clustered, kind):
    items, queries = clustered
    index = build_index(kind, items, "cosine")
    data = index.to_bytes()
    assert data.dtype == np.uint8
    restored = index_from_bytes(data)
    assert (restored.kind, restored.metric, restored.n_items) == (kind, "cosine", 2000)
    for a, b in zip(index.search(queries, 7), restored.search(queries, 7), strict=True):
        np.testing.assert_array_equal(a, b)


def test_auto_picks_exact_for_small_catalogs_and_hnsw_above_the_threshold():
    assert resolve_kind("auto", 1000) == "exact"
    assert resolve_kind("auto", AUTO_EXACT_MAX_ITEMS + 1) == "hnsw"
    assert resolve_kind("ivfpq", 10) == "ivfpq"


@pytest.mark.fault("index", "k = 0 or k not an integer", "DataError naming k")
@pytest.mark.parametrize("k", [0, -3, 2.5])
def test_bad_k_is_a_clear_error(clustered, k):
    items, queries = clustered
    with pytest.raises(DataError, match="k must be a positive integer"):
        build_index("exact", items).search(queries, k)


@pytest.mark.parametrize(
    ("k", "most", "message"),
    [
        (True, None, "k must be a positive integer, got True"),
        (-2, None, "k must be a positive integer, got -2"),
        (1001, 1000, "k must be an integer between 1 and 1000, got 1001"),
        (0, 1000, "k must be an integer between 1 and 1000, got 0"),
    ],
)
def test_check_k_refuses_booleans_non_positive_and_above_the_callers_limit(k, most, message):
    with pytest.raises(DataError, match=f"^{message}$"):
        check_k(k, most)
    check_k(np.int32(5), 5)  # numpy integers up to the limit pass


@pytest.mark.fault("index", "queries of the wrong width", "DataError naming the shape")
def test_wrong_query_width_is_a_clear_error(clustered):
    items, _ = clustered
    with pytest.raises(DataError, match=r"queries must be an \(n, 16\) array, got shape \(2, 3\)"):
        build_index("exact", items).search(np.ones((2, 3), np.float32), 5)


@pytest.mark.fault("index", "NaN in a query", "DataError naming the row")
@pytest.mark.parametrize("kind", KINDS)
def test_nan_query_is_a_clear_error(clustered, kind):
    items, queries = clustered
    bad = queries[:4].copy()
    bad[2, 5] = np.nan
    with pytest.raises(DataError, match="query row 2 is not finite"):
        build_index(kind, items).search(bad, 5)


@pytest.mark.fault("index", "NaN in an item vector", "DataError naming the item")
def test_nan_item_vector_is_a_clear_error():
    items = np.ones((5, 3), np.float32)
    items[3, 1] = np.inf
    with pytest.raises(DataError, match="item vector 3 is not finite"):
        build_index("exact", items)


@pytest.mark.fault("index", "unknown index kind or metric", "ConfigError listing the choices")
def test_unknown_kind_and_metric_are_clear_errors():
    with pytest.raises(ConfigError, match="unknown index kind 'annoy'; choose one of auto, exact"):
        build_index("annoy", np.ones((3, 2), np.float32))
    with pytest.raises(ConfigError, match="unknown metric 'l1'"):
        build_index("exact", np.ones((3, 2), np.float32), "l1")


@pytest.mark.fault("index", "exclusion matrix of the wrong shape", "DataError naming shapes")
def test_exclusion_of_the_wrong_shape_is_a_clear_error(clustered):
    items, queries = clustered
    with pytest.raises(DataError, match=r"exclude must be \(3, 2000\)"):
        build_index("exact", items).search(queries[:3], 5, sp.csr_matrix((3, 10)))


@pytest.mark.fault("index", "corrupt serialised index", "BundleError")
def test_corrupt_bytes_are_a_bundle_error(clustered):
    items, _ = clustered
    data = build_index("hnsw", items).to_bytes()
    with pytest.raises(BundleError, match="not a serialised tastespace index"):
        index_from_bytes(data[10:])
    header_end = bytes(data[:400]).index(b"\n", 6) + 1
    with pytest.raises(BundleError, match="corrupt hnsw index"):
        index_from_bytes(np.concatenate([data[:header_end], data[header_end + 50 :]]))


@pytest.mark.fault("index", "faiss not installed, hnsw asked for", "one-line ConfigError")
def test_without_faiss_exact_works_and_hnsw_is_a_one_line_error(clustered, monkeypatch):
    items, queries = clustered
    real_import = builtins.__import__

    def no_faiss(name, *args, **kwargs):
        if name == "faiss":
            raise ImportError("No module named 'faiss'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_faiss)
    assert build_index("exact", items).search(queries[:2], 3)[0].shape == (2, 3)
    with pytest.raises(ConfigError, match="need faiss: pip install faiss-cpu") as err:
        build_index("hnsw", items)
    assert "\n" not in str(err.value)


# -- through the models and their bundles --------------------------------------------------------


@pytest.fixture(scope="module")
def fitted_als(planted):
    from tastespace.models.mf import ALS

    return ALS(factors=16, iterations=5, seed=0).fit(planted)


def test_a_model_searches_its_built_index_and_keeps_it_in_the_bundle(fitted_als, planted, tmp_path):
    import json

    from tastespace.models.base import Recommender

    info = fitted_als.build_index("hnsw", histories=planted.interactions, M=8, ef_search=16)
    assert info["kind"] == "hnsw" and set(info) == {"kind", "recommend", "similar"}
    assert 0.5 <= info["recommend"]["recall@10"] <= 1.0
    assert info["recommend"]["recall_queries"] == 600  # every planted user, sample capped at 1000
    histories = planted.interactions[:30]
    approx_ids, _ = fitted_als.recommend(histories, k=10)
    exact_ids, _ = fitted_als.recommend(histories, k=10, exact=True)
    assert fitted_als.index("recommend").kind == "hnsw"
    assert not any(
        np.intersect1d(r, h.indices).size for r, h in zip(approx_ids, histories, strict=True)
    )
    path = fitted_als.save(tmp_path / "als")
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["index"] == json.loads(json.dumps(info))
    loaded = Recommender.load(path)
    np.testing.assert_array_equal(loaded.recommend(histories, k=10)[0], approx_ids)
    np.testing.assert_array_equal(loaded.recommend(histories, k=10, exact=True)[0], exact_ids)
    np.testing.assert_array_equal(
        loaded.similar_items(np.arange(5), k=4)[0], fitted_als.similar_items(np.arange(5), k=4)[0]
    )
    loaded.build_index("exact")
    assert loaded.index_info_ == {"kind": "exact"} and loaded.index("recommend").kind == "exact"


def test_exact_index_is_what_a_model_uses_by_default(fitted_als):
    assert fitted_als.index("recommend", exact=True).kind == "exact"
    ids, scores = fitted_als.recommend(ItemIndices([0, 1, 2]), k=5, exact=True)
    full = fitted_als.score(ItemIndices([[0, 1, 2]]))[0]
    full[[0, 1, 2]] = -np.inf
    np.testing.assert_array_equal(ids, np.argsort(-full, kind="stable")[:5])
    np.testing.assert_allclose(scores, full[ids], rtol=1e-5)
