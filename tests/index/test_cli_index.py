"""``--index`` as users meet it: fit builds and reports, serve shows recall, evaluate is exact."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from tastespace.cli import app

pytest.importorskip("faiss")
runner = CliRunner()
TINY = "synthetic:tiny"


@pytest.fixture(scope="module")
def hnsw_bundle(tmp_path_factory):
    out = tmp_path_factory.mktemp("bundles") / "als"
    args = ["fit", "--model", "als", "--data", TINY, "--dim", "16", "--index", "hnsw"]
    result = runner.invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    printed = " ".join(result.output.split())
    assert "recommend index: hnsw, recall@10" in printed
    assert "vs exact (300 sampled queries)" in printed
    return out


def test_fit_stores_the_index_and_its_recall_in_the_manifest(hnsw_bundle):
    manifest = json.loads((hnsw_bundle / "manifest.json").read_text())
    assert manifest["index"]["kind"] == "hnsw"
    for role in ("recommend", "similar"):
        assert 0.0 < manifest["index"][role]["recall@10"] <= 1.0
        assert manifest["index"][role]["params"]["M"] == 32


def test_evaluate_ranks_exactly_and_says_so(hnsw_bundle):
    result = runner.invoke(app, ["evaluate", str(hnsw_bundle), "--data", TINY, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.splitlines()[0])["search"] == "exact"
    table = runner.invoke(app, ["evaluate", str(hnsw_bundle), "--data", TINY])
    assert "exact search (the bundle's hnsw index is not used" in " ".join(table.stdout.split())


@pytest.mark.parametrize("index", ["auto", "exact"])
def test_server_lists_the_index_it_searches(hnsw_bundle, index):
    from tastespace.serve.app import create_app
    from tests.serve.client import local_client

    client = local_client(create_app([hnsw_bundle], index=index))
    served = client.get("/api/models").json()["models"][0]["index"]
    if index == "exact":
        assert served == {"kind": "exact"}
    else:
        manifest = json.loads((hnsw_bundle / "manifest.json").read_text())
        assert served == manifest["index"]
    assert client.post("/api/recommend", json={"history": [1, 2], "k": 3}).status_code == 200


@pytest.mark.fault("cli", "fit --index with an unknown kind", "exit 2, one line, before training")
def test_unknown_index_kind_is_one_line_exit_2(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "tastespace", "fit", "--model", "popularity", "--data", TINY]
        + ["--index", "annoy", "--out", str(tmp_path / "x")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    assert "unknown index kind 'annoy'; choose one of auto, exact, hnsw, ivfpq" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()
