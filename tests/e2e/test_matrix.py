"""Every model × every input shape, the way a user arrives: through the CLI and the server.

Each cell runs ``fit → (bundle on disk) → recommend -H → recommend --history-file --json →
similar → evaluate → serve /api/recommend`` and names itself (model × input × step) when a
step fails. The data is planted (four disjoint taste groups, ``tests/e2e/planted.py``), so the
answers are checked, not only the exit codes: recommendations and neighbours of a history in
one group stay in that group, a batch answers each user exactly as one-at-a-time calls do, and
the server answers what the CLI does.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tastespace.cli import app
from tests.e2e.planted import Shape, write_shapes

# item2vec and BPR train lock-free on every core by default, so a seed alone does not fix
# their model (their docstrings say so): one thread each, or a cell's planted-group checks
# pass or fail by thread timing (BPR's item vectors moved by up to 0.3 between seeded fits)
MODELS = {
    "neural": ("-p", "epochs=15", "-p", "dim=16", "-p", "hidden=32"),
    "item2vec": ("-p", "epochs=30", "-p", "dim=16", "-p", "workers=1"),
    "glove": ("-p", "epochs=10", "-p", "dim=16"),
    "ppmi-svd": ("-p", "dim=16"),
    "als": ("-p", "iterations=5", "-p", "factors=16"),
    "bpr": (
        "-p",
        "iterations=100",
        "-p",
        "factors=16",
        "-p",
        "learning_rate=0.1",
        "-p",
        "num_threads=1",
    ),
    "ease": ("-p", "l2=20"),
    "popularity": (),
}
GROUPED = set(MODELS) - {"popularity"}  # popularity knows nothing of groups
SYNTHETIC = "synthetic:users=200,items=80,genres=4,noise=0.02,seed=3"
K = 5

runner = CliRunner()


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> dict[str, Shape]:
    from tastespace.data import load_dataset

    found = write_shapes(tmp_path_factory.mktemp("shapes"))
    synthetic = load_dataset(SYNTHETIC)
    genres = synthetic.items.frame["planted_genre"].tolist()
    item_of = {
        i: str(raw) for i, raw in enumerate(synthetic.item_ids.raws(range(synthetic.n_items)))
    }
    names = sorted(set(genres))
    found["synthetic"] = Shape(
        "synthetic",
        SYNTHETIC,
        (),
        item_of,
        {item_of[i]: names.index(g) for i, g in enumerate(genres)},
    )
    return found


def cli(cell: str, step: str, *args: str) -> str:
    result = runner.invoke(app, list(args), env={"COLUMNS": "200"})
    detail = (result.stderr or "") + result.stdout
    assert result.exit_code == 0, f"{cell} × {step}: exit {result.exit_code}\n{detail[-1500:]}"
    assert "Traceback" not in detail, f"{cell} × {step}: traceback in output\n{detail[-1500:]}"
    return result.stdout


def group_histories(shape: Shape) -> list[list[str]]:
    """Three watched items from each planted group, as raw ids."""
    by_group: dict[int, list[str]] = {}
    for raw, g in shape.group_of.items():
        by_group.setdefault(g, []).append(raw)
    return [sorted(raws)[:3] for _, raws in sorted(by_group.items())]


def assert_in_group(cell: str, step: str, shape: Shape, wanted: int, items: list[str]) -> None:
    groups = Counter(shape.group_of[str(raw)] for raw in items)
    assert groups[wanted] >= 3, f"{cell} × {step}: {items} are not mostly group {wanted} ({groups})"


@pytest.mark.parametrize(
    "shape_name",
    [
        "plain-csv",
        "string-ids",
        "parquet",
        "movielens",
        "some-item-features",
        "user-features",
        "synthetic",
    ],
)
@pytest.mark.parametrize("model", list(MODELS))
def test_cell(model: str, shape_name: str, shapes: dict[str, Shape], tmp_path: Path) -> None:
    shape = shapes[shape_name]
    cell = f"{model} × {shape_name}"
    bundle = tmp_path / "bundle"
    cli(
        cell,
        "fit",
        "fit",
        "--model",
        model,
        "--data",
        shape.data,
        *shape.fit_args,
        *MODELS[model],
        "--seed",
        "0",
        "--out",
        str(bundle),
    )
    histories = group_histories(shape)

    singles = []
    for wanted, history in enumerate(histories):
        args = [a for raw in history for a in ("-H", raw)]
        line = json.loads(
            cli(cell, "recommend -H", "recommend", str(bundle), *args, "-k", str(K), "--json")
        )
        items = [str(i) for i in line["items"]]
        assert len(items) == K and not set(items) & set(history), f"{cell} × recommend -H: {line}"
        assert all(i in shape.group_of for i in items), (
            f"{cell} × recommend -H: unknown ids {items}"
        )
        assert line["scores"] == sorted(line["scores"], reverse=True), f"{cell}: unsorted {line}"
        if model in GROUPED:
            assert_in_group(cell, "recommend -H", shape, wanted, items)
        singles.append(line)

    users = tmp_path / "users.jsonl"
    users.write_text(
        "".join(json.dumps({"user": f"u{g}", "history": h}) + "\n" for g, h in enumerate(histories))
    )
    out = cli(
        cell,
        "recommend --history-file",
        "recommend",
        str(bundle),
        "--history-file",
        str(users),
        "-k",
        str(K),
        "--json",
    )
    batch = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert [b["user"] for b in batch] == [f"u{g}" for g in range(len(histories))], (
        f"{cell}: {batch}"
    )
    for alone, together in zip(singles, batch, strict=True):
        assert alone["items"] == together["items"], f"{cell} × batch differs from one at a time"
        assert alone["scores"] == together["scores"], f"{cell} × batch scores differ"

    query = histories[1][0]
    similar = json.loads(
        cli(cell, "similar", "similar", str(bundle), query, "-k", str(K), "--json")
    )
    neighbours = [str(row["id"]) for row in similar["similar"]]
    assert len(neighbours) == K and query not in neighbours, f"{cell} × similar: {similar}"
    if model in GROUPED:
        assert_in_group(cell, "similar", shape, 1, neighbours)

    report = json.loads(
        cli(
            cell,
            "evaluate",
            "evaluate",
            str(bundle),
            "--data",
            shape.data,
            *shape.fit_args,
            "--json",
        )
    )
    recall = report["metrics"]["recall@20"]
    assert 0.0 <= recall <= 1.0, f"{cell} × evaluate: {report}"

    from fastapi.testclient import TestClient

    from tastespace.serve.app import create_app

    with TestClient(create_app([bundle]), base_url="http://localhost") as client:
        answer = client.post("/api/recommend", json={"history": histories[0], "k": K})
        assert answer.status_code == 200, f"{cell} × serve: {answer.status_code} {answer.text}"
        served = [str(item["id"]) for item in answer.json()["items"]]
        assert served == [str(i) for i in singles[0]["items"]], f"{cell} × serve ≠ CLI: {served}"
