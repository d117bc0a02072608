"""The one-hot vs embedding measurement: equal outputs, real input sizes, the ``cost`` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp

from tastespace.errors import ConfigError
from tastespace.features.cost import feature_cost
from tastespace.features.measure import METHODS, measure_bags, sample_rows, synthetic_bags


def test_every_method_measured_with_its_real_input_size():
    batch = synthetic_bags(batch=32, vocab=500, per_row=4, seed=1)
    assert np.all(np.diff(batch.offsets) == 4) and batch.indices.max() < 500
    measured = {m.method: m for m in measure_bags(batch, vocab=500, dim=8, repeats=1)}
    assert list(measured) == list(METHODS)
    assert all(m.seconds is not None and m.seconds > 0 for m in measured.values())
    assert measured["dense"].input_bytes == 4 * 32 * 500
    assert measured["embedding-bag"].input_bytes == 8 * (32 * 4 + 32)
    assert measured["embedding-bag-sparse"].input_bytes == 8 * (32 * 4 + 32)
    assert measured["sparse-mm"].input_bytes == 32 * 4 * (2 * 8 + 4)  # COO: 2 int64 + 1 float
    model = feature_cost(32, 500, 4, dim=8, hidden=8)
    assert model.one_hot_bytes == measured["dense"].input_bytes
    assert model.bag_bytes == measured["embedding-bag"].input_bytes + 8  # CSR's closing offset


def test_rows_sampled_from_data_keep_their_histories():
    matrix = sp.csr_matrix(np.array([[1, 0, 1, 0], [0, 0, 0, 0], [0, 1, 1, 1]], np.float32))
    batch = sample_rows(matrix, batch=5, seed=0, name="h")  # the empty row is never drawn
    assert batch.size == 2
    np.testing.assert_array_equal(batch.offsets, [0, 2])
    np.testing.assert_array_equal(batch.indices, [0, 2, 1, 2, 3])


def test_unknown_method_and_impossible_shape_are_refused():
    batch = synthetic_bags(batch=2, vocab=10, per_row=2, seed=0)
    with pytest.raises(ConfigError, match="unknown cost method"):
        measure_bags(batch, vocab=10, methods=["dense", "one-hot"])
    with pytest.raises(ConfigError, match="per_row"):
        synthetic_bags(batch=2, vocab=3, per_row=4, seed=0)


def _cost(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "tastespace", "cost", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def test_cost_command_prints_the_table_for_the_datas_shapes():
    done = _cost("synthetic:tiny", "--repeats", "1", "--batch", "64")
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if "embedding-bag-sparse" in line]
    assert len(rows) == 2  # user histories, item genres
    assert "user histories" in rows[0] and "200" in rows[0]


def test_cost_command_json_and_plot(tmp_path):
    plot = tmp_path / "cost.png"
    done = _cost("synthetic:tiny", "--repeats", "1", "--batch", "8", "--json", "--plot", str(plot))
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["method"] for r in lines[:4]] == list(METHODS)
    assert lines[-1] == {"plot": str(plot)}
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.fault("cli", "cost on a data path that does not exist", "exit 2, one line")
def test_cost_command_bad_data_is_one_line_exit_2(tmp_path):
    done = _cost(str(tmp_path / "missing.csv"))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "missing.csv" in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


@pytest.mark.fault("cli", "cost with --batch 0", "exit 2, one line")
def test_cost_command_bad_batch_is_one_line_exit_2():
    done = _cost("synthetic:tiny", "--batch", "0")
    assert done.returncode == 2
    assert done.stderr.strip() == "error: --batch, --dim, --repeats and --threads must be ≥ 1"
