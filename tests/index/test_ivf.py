"""The ivfpq index keeps its memory budget and reaches its recall target on planted low-rank
vectors, tunes nprobe by measurement, and survives a bundle round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tastespace.errors import BundleError, ConfigError
from tastespace.index import build_index, index_from_bytes, measure_recall

pytest.importorskip("faiss")


@pytest.fixture(scope="module")
def low_rank():
    """8,000 items and 300 queries in 64-D sharing a rank-8 basis plus a little noise: the
    shape of learned embeddings (few strong directions, varying norms)."""
    rng = np.random.default_rng(3)
    basis = rng.standard_normal((8, 64)) / np.sqrt(8)
    scale = rng.lognormal(0.0, 0.3, (8000, 1))
    items = scale * (rng.standard_normal((8000, 8)) @ basis) + 0.05 * rng.standard_normal(
        (8000, 64)
    )
    queries = rng.standard_normal((300, 8)) @ basis + 0.05 * rng.standard_normal((300, 64))
    return items.astype(np.float32), queries.astype(np.float32)


@pytest.fixture(scope="module")
def default_ivf(low_rank):
    return build_index("ivfpq", low_rank[0], "dot")


def test_default_ivfpq_fits_an_eighth_of_the_raw_memory_at_high_recall(low_rank, default_ivf):
    items, queries = low_rank
    assert default_ivf.memory_bytes() <= items.nbytes / 8
    assert default_ivf.params["dims"] == 8 and default_ivf.params["bits"] == 8  # the planted rank
    recall = measure_recall(default_ivf, build_index("exact", items), queries, k=10)
    assert recall >= 0.9, recall


def test_nprobe_is_the_smallest_that_reaches_the_target(low_rank, default_ivf):
    items, _ = low_rank
    tuned = default_ivf.params["nprobe"]
    assert 1 <= tuned < default_ivf.params["nlist"]
    lax = build_index("ivfpq", items, "dot", target_recall=0.3)
    assert lax.params["nprobe"] < tuned
    fixed = build_index("ivfpq", items, "dot", nprobe=5)
    assert fixed.params["nprobe"] == 5


def test_round_trip_keeps_the_chosen_layout_and_answers(low_rank, default_ivf):
    _, queries = low_rank
    restored = index_from_bytes(default_ivf.to_bytes())
    assert restored.params == default_ivf.params
    for a, b in zip(default_ivf.search(queries, 10), restored.search(queries, 10), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.fault("index", "ivfpq bits not 4, 6 or 8", "ConfigError listing the choices")
def test_bad_bits_is_a_clear_error(low_rank):
    with pytest.raises(ConfigError, match="ivfpq bits must be one of 8, 6, 4"):
        build_index("ivfpq", low_rank[0], bits=5)


@pytest.mark.fault("index", "ivfpq index from an older version", "BundleError: rebuild it")
def test_an_older_ivfpq_payload_is_refused_with_a_rebuild_hint(default_ivf):
    data = bytes(default_ivf.to_bytes())
    start = data.index(b"\n") + 1
    end = data.index(b"\n", start)
    header = json.loads(data[start:end])
    header["params"] = {"nlist": 4, "pq_m": 16, "nprobe": 32, "opq": False, "seed": 0}
    old = data[:start] + json.dumps(header).encode() + data[end:]
    with pytest.raises(
        BundleError, match=r"older tastespace .* rebuild it with build_index\('ivfpq'\)"
    ):
        index_from_bytes(old)
