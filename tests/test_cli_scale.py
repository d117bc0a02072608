"""``fit`` at scale through the console: --device, --quiet / --json progress, several nodes."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from tastespace.models.base import Recommender

TINY = ["-p", "dim=8", "-p", "hidden=16", "-p", "item_hidden=16", "-p", "batch_size=64"]
NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")


def tastespace(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tastespace", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def one_line_error(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    return lines[0]


@NO_CUDA
@pytest.mark.fault("cli", "fit --device cuda without CUDA", "exit 2, one line naming cpu/auto")
def test_fit_on_cuda_without_cuda_is_one_line_exit_2(tmp_path):
    line = one_line_error(
        tastespace(
            "fit", "--data", "synthetic:tiny", "--out", str(tmp_path / "m"), "--device", "cuda"
        )
    )
    assert "device 'cuda' asked for" in line and "--device cpu" in line
    assert not (tmp_path / "m").exists()


@pytest.mark.fault("cli", "fit --device cuda for a CPU-only model", "exit 2, one line")
def test_cpu_only_model_refuses_cuda_and_accepts_auto(tmp_path):
    args = ["fit", "--model", "popularity", "--data", "synthetic:tiny"]
    line = one_line_error(tastespace(*args, "--out", str(tmp_path / "p"), "--device", "cuda"))
    assert "popularity model runs on the CPU only" in line
    done = tastespace(*args, "--out", str(tmp_path / "q"), "--device", "auto")
    assert done.returncode == 0, done.stderr


@NO_CUDA
@pytest.mark.fault("cli", "recommend / evaluate --device cuda without CUDA", "exit 2, one line")
def test_query_on_a_device(tmp_path):
    out = tmp_path / "neural"
    done = tastespace(
        "fit", "--data", "synthetic:tiny", "--out", str(out), "--epochs", "2", "--quiet", *TINY
    )
    assert done.returncode == 0, done.stderr
    recommend = ["recommend", str(out), "-H", "1", "-H", "2", "-k", "3", "--json"]
    on_cpu = tastespace(*recommend, "--device", "cpu")
    assert on_cpu.returncode == 0, on_cpu.stderr
    assert len(json.loads(on_cpu.stdout)["items"]) == 3
    assert "asked for" in one_line_error(tastespace(*recommend, "--device", "cuda"))
    evaluate = ["evaluate", str(out), "--data", "synthetic:tiny", "--device", "cuda:0"]
    assert "asked for" in one_line_error(tastespace(*evaluate))


@pytest.mark.fault("cli", "--nnodes 2 without --rdzv-endpoint", "exit 2, one line")
def test_several_nodes_need_a_rendezvous_endpoint(tmp_path):
    line = one_line_error(
        tastespace("fit", "--data", "synthetic:tiny", "--out", str(tmp_path / "m"), "--nnodes", "2")
    )
    assert "--rdzv-endpoint" in line


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def two_loopback_nodes(common: list[str], tmp_path) -> list[str]:
    """``common`` run as 2 "machines" × 1 process on 127.0.0.1 (static rendezvous), bundles
    to ``tmp_path / node0|node1``; what each printed, whitespace folded."""
    endpoint = f"127.0.0.1:{_free_port()}"
    nodes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tastespace",
                *common,
                "--out",
                str(tmp_path / f"node{rank}"),
                "--nnodes",
                "2",
                "--node-rank",
                str(rank),
                "--rdzv-endpoint",
                endpoint,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in (0, 1)
    ]
    said = []
    for node in nodes:
        out, err = node.communicate(timeout=600)
        assert node.returncode == 0, err[-2000:]
        said.append(" ".join(out.split()))
    return said


def test_two_nodes_on_loopback_train_the_same_model_as_two_local_processes(tmp_path):
    """torchrun's static rendezvous fixes each node's ranks, so 2 "machines" × 1 process and
    1 machine × 2 processes run the same shards in the same order."""
    common = ["fit", "--data", "synthetic:tiny", "--epochs", "2", *TINY]
    local = tastespace(*common, "--out", str(tmp_path / "local"), "--nproc", "2")
    assert local.returncode == 0, local.stderr[-2000:]
    said = two_loopback_nodes(common, tmp_path)
    assert not (tmp_path / "node1").exists()  # only rank 0 writes the bundle
    assert "node 0 saved the bundle" in said[1] and "saved neural model" in said[0]
    a, b = Recommender.load(tmp_path / "local"), Recommender.load(tmp_path / "node0")
    np.testing.assert_allclose(a.item_vectors(), b.item_vectors(), atol=1e-6)
    assert a.train_report_.history == b.train_report_.history


@pytest.fixture(scope="module")
def grouped_parquet(tmp_path_factory):
    """synthetic:tiny as Parquet sorted by user, in 5 row groups that end inside users."""
    from tastespace.data import load_dataset

    ds = load_dataset("synthetic:tiny")
    coo = ds.interactions.tocoo()
    table = pa.table({"user": ds.user_ids.ids[coo.row], "item": ds.item_ids.ids[coo.col]})
    path = tmp_path_factory.mktemp("grouped") / "clicks.parquet"
    pq.write_table(table, path, row_group_size=coo.nnz // 5 + 1)
    return path


def test_sharded_parquet_two_processes_and_two_nodes_read_only_their_row_groups(
    grouped_parquet, tmp_path
):
    """Each process parses only its row groups; a user whose rows straddle two processes'
    groups is trained on one; 2 "nodes" on 127.0.0.1 build the model of 2 local processes."""
    groups = pq.ParquetFile(grouped_parquet)
    last0 = groups.read_row_group(1, columns=["user"]).column(0)[-1].as_py()
    first1 = groups.read_row_group(2, columns=["user"]).column(0)[0].as_py()
    assert last0 == first1  # this user's history spans rank 0's and rank 1's row groups
    common = ["fit", "--data", str(grouped_parquet), "--epochs", "2", *TINY]
    local = tastespace(*common, "--out", str(tmp_path / "local"), "--nproc", "2")
    assert local.returncode == 0, local.stderr[-2000:]
    said = " ".join(local.stdout.split())
    assert "rank 0 read row groups 0–1: 2,308 rows" in said, said
    assert "rank 1 read row groups 2–4: 3,458 rows" in said, said
    two_loopback_nodes(common, tmp_path)
    a, b = Recommender.load(tmp_path / "local"), Recommender.load(tmp_path / "node0")
    np.testing.assert_allclose(a.item_vectors(), b.item_vectors(), atol=1e-6)
    assert [r["rows"] for r in a.data_["shards"]] == [2308, 3458]
    from tastespace.data import load_dataset

    assert a.fingerprint_ == load_dataset(grouped_parquet).fingerprint()  # the whole data's
    similar = tastespace("similar", str(tmp_path / "local"), "5", "-k", "3", "--json")
    assert similar.returncode == 0 and len(json.loads(similar.stdout)["similar"]) == 3
    recommend = tastespace("recommend", str(tmp_path / "local"), "-H", "1", "-H", "2", "--json")
    assert recommend.returncode == 0, recommend.stderr
    answer = json.loads(recommend.stdout)
    assert len(answer["items"]) == 10 and not {1, 2} & set(answer["items"])


@pytest.mark.fault("cli", "fit --nproc 2: bad value in one Parquet shard", "exit 2, one line")
def test_a_bad_row_in_one_shard_is_one_line_naming_file_row_and_column(tmp_path):
    users = pa.array([1, 1, 2, 2, None, 3, 3, 4], pa.int64())
    path = tmp_path / "bad.parquet"
    pq.write_table(
        pa.table({"user": users, "item": [1, 2, 1, 3, 2, 1, 4, 2]}), path, row_group_size=2
    )
    line = one_line_error(
        tastespace("fit", "--data", str(path), "--out", str(tmp_path / "m"), "--nproc", "2")
    )
    assert line == (
        f"error: {path}: missing user id at row 5 (column 'user'); every row needs a user and "
        "an item"
    )


@pytest.mark.fault("cli", "fit --shard-data on with a CSV", "exit 2, one line")
def test_insisting_on_shards_of_a_csv_is_one_line(tmp_path):
    (tmp_path / "r.csv").write_text("user,item\n1,2\n2,3\n")
    line = one_line_error(
        tastespace(
            "fit",
            "--data",
            str(tmp_path / "r.csv"),
            "--out",
            str(tmp_path / "m"),
            "--nproc",
            "2",
            "--shard-data",
            "on",
        )
    )
    assert "needs a Parquet file with at least 2 row groups" in line and "not a Parquet" in line
