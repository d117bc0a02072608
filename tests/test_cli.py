"""The command line as scripts use it: JSON contracts, exit codes, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tastespace.cli import app

runner = CliRunner()


def run(*args: str) -> subprocess.CompletedProcess:
    """Run the real console entry point (errors → exit 2, no traceback)."""
    return subprocess.run(
        [sys.executable, "-m", "tastespace", *args], capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def catalog_csv(tmp_path_factory):
    """Interactions + item features with real-looking titles and planted co-watching."""
    root = tmp_path_factory.mktemp("csv")
    titles = {
        1: ("Toy Story (1995)", "Animation|Children"),
        2: ("Toy Story 2 (1999)", "Animation"),
        3: ("Heat (1995)", "Action|Crime"),
        4: ("Heat (2013)", "Drama"),
        5: ("Casino (1995)", "Crime|Drama"),
        6: ("Aladdin (1992)", "Animation|Musical"),
    }
    (root / "items.csv").write_text(
        "item_id,title,genres\n" + "".join(f'{i},"{t}",{g}\n' for i, (t, g) in titles.items())
    )
    rows = []
    for user in range(60):
        group = [1, 2, 6] if user % 2 else [3, 5, 4]
        rows += [f"u{user},{item},5,{1000 + k}" for k, item in enumerate(group)]
    (root / "ratings.csv").write_text("user_id,item_id,rating,timestamp\n" + "\n".join(rows) + "\n")
    return root


def catalog_fit_args(catalog: Path, out: Path, *options: str) -> list[str]:
    """``fit`` on the planted catalog with its item features (the genres every test checks)."""
    return [
        "fit",
        "--data",
        str(catalog / "ratings.csv"),
        "--item-features",
        str(catalog / "items.csv"),
        "--out",
        str(out),
        *options,
    ]


@pytest.fixture(scope="module")
def bundle(catalog_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("bundle") / "ease"
    result = runner.invoke(app, catalog_fit_args(catalog_csv, out, "--model", "ease", "-p", "l2=1"))
    assert result.exit_code == 0, result.output
    return out


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and "tastespace" in result.output


def test_data_info_json_has_integer_counts():
    result = runner.invoke(app, ["data", "info", "synthetic:tiny", "--json"])
    info = json.loads(result.output)
    assert info["users"] == 300 and info["items"] == 200 and isinstance(info["interactions"], int)


def test_bad_input_is_one_line_exit_2(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("user,item,rating\n1,2,5\n1,3,five\n")
    done = run("data", "info", str(bad))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "bad.csv" in done.stderr and "line 3" in done.stderr


def test_similar_by_fuzzy_title_json(bundle):
    result = runner.invoke(app, ["similar", str(bundle), "Toy Story", "-k", "2", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["item"]["title"] == "Toy Story (1995)"
    assert {item["id"] for item in payload["similar"]} == {2, 6}


def test_recommend_for_fresh_history_json(bundle):
    result = runner.invoke(
        app, ["recommend", str(bundle), "-H", "Toy Story (1995)", "-H", "2", "-k", "1", "--json"]
    )
    assert result.exit_code == 0, result.output
    line = json.loads(result.output)
    assert line["user"] == "you" and line["items"] == [6] and len(line["scores"]) == 1


def test_recommend_history_file_batch(bundle, tmp_path):
    users = tmp_path / "users.jsonl"
    users.write_text(
        '{"user": "a", "history": ["Heat (1995)", 5]}\n\n{"user": "b", "history": [1]}\n'
    )
    result = runner.invoke(
        app, ["recommend", str(bundle), "--history-file", str(users), "-k", "2", "--json"]
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(x) for x in result.output.strip().splitlines()]
    assert [x["user"] for x in lines] == ["a", "b"]
    assert lines[0]["items"][0] == 4 and 1 not in lines[1]["items"]


@pytest.mark.fault("cli", "--skip-unknown batch with one unreadable history", "that line, others")
def test_skip_unknown_batch_reports_a_bad_user_in_its_own_line(bundle, tmp_path):
    users = tmp_path / "users.jsonl"
    users.write_text(
        '{"user": "a", "history": [5]}\n'
        '{"user": "b", "history": ["Heat"]}\n'  # ambiguous: Heat (1995) or Heat (2013)
        '{"user": "c", "history": [1, "Casablanca"]}\n'
    )
    args = ["recommend", str(bundle), "--history-file", str(users), "-k", "2", "--skip-unknown"]
    result = run(*args, "--json")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(x) for x in result.stdout.strip().splitlines()]
    assert [x["user"] for x in lines] == ["a", "b", "c"]
    assert lines[0]["items"] and lines[2]["items"]
    assert "error" in lines[1] and "items" not in lines[1]
    assert "users.jsonl:2" in lines[1]["error"] and "Heat (2013)" in lines[1]["error"]
    assert "1 of 3 users not answered" in result.stderr
    strict = run(*args[:-1], "--json")  # without --skip-unknown: the whole batch stops
    assert strict.returncode == 2 and "users.jsonl:2" in strict.stderr and not strict.stdout


def test_skip_unknown_batch_where_no_user_can_be_answered_is_an_error(bundle, tmp_path):
    users = tmp_path / "users.jsonl"
    users.write_text('{"user": "b", "history": ["Heat"]}\n')
    result = run("recommend", str(bundle), "--history-file", str(users), "--skip-unknown")
    assert result.returncode == 2 and "users.jsonl:1" in result.stderr and not result.stdout


def test_recommend_exclude_removes_items(bundle):
    base = ["recommend", str(bundle), "-H", "Toy Story (1995)", "-k", "2", "--json"]
    first = json.loads(runner.invoke(app, base).output)["items"]
    excluded = runner.invoke(app, [*base, "--exclude", str(first[0])])
    assert excluded.exit_code == 0, excluded.output
    items = json.loads(excluded.output)["items"]
    assert first[0] not in items and items[0] == first[1]


def test_recommend_errors(bundle, tmp_path):
    ambiguous = run("recommend", str(bundle), "-H", "Heat")
    assert (
        ambiguous.returncode == 2
        and "Heat (1995)" in ambiguous.stderr
        and "Heat (2013)" in ambiguous.stderr
    )
    unknown = run("recommend", str(bundle), "-H", "Casablanca")
    assert unknown.returncode == 2 and "Casablanca" in unknown.stderr
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"user": "a", "history": [1]}\nnot json\n')
    bad_file = run("recommend", str(bundle), "--history-file", str(broken))
    assert bad_file.returncode == 2 and "broken.jsonl:2" in bad_file.stderr
    neither = run("recommend", str(bundle))
    assert neither.returncode == 2 and "--history" in neither.stderr


def test_fit_neural_with_flags_and_unknown_option(tmp_path):
    out = tmp_path / "neural"
    result = runner.invoke(
        app,
        [
            "fit",
            "--data",
            "synthetic:tiny",
            "--out",
            str(out),
            "--epochs",
            "2",
            "--dim",
            "8",
            "--genre-dim",
            "2",
            "-p",
            "hidden=16",
        ],
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kind"] == "neural" and manifest["config"]["genre_dim"] == 2
    typo = run("fit", "--data", "synthetic:tiny", "--out", str(tmp_path / "x"), "-p", "dimm=3")
    assert typo.returncode == 2 and "dimm" in typo.stderr


def test_missing_bundle_is_a_clear_error(tmp_path):
    done = run("similar", str(tmp_path / "nothing"), "Toy Story")
    assert done.returncode == 2 and "not a tastespace bundle" in done.stderr


def test_fit_nproc_reads_item_features_like_a_single_process_fit(catalog_csv, tmp_path):
    """``--nproc 2`` hands the loader options to every torchrun process (genres included)."""
    out = tmp_path / "ddp"
    done = run(
        *catalog_fit_args(
            catalog_csv, out, "--nproc", "2", "--epochs", "2", "--dim", "8", "-p", "hidden=16"
        )
    )
    # the processes' own messages come first, torchrun's summary of who failed last
    assert done.returncode == 0, done.stderr[:2000] + "\n…\n" + done.stderr[-1000:]
    assert "OMP_NUM_THREADS" not in done.stderr + done.stdout  # torchrun's banner stays out
    from tastespace.models.base import Recommender

    model = Recommender.load(out)
    assert set(model.feature_embeddings("genres")) == {
        "Animation",
        "Children",
        "Action",
        "Crime",
        "Drama",
        "Musical",
    }


@pytest.mark.fault(
    "cli",
    "ambiguous title whose candidates carry [id N]",
    "one line, exit 2, every '[id N]' printed as written (no Rich markup)",
)
def test_ambiguity_error_keeps_its_brackets(bundle):
    result = run("similar", str(bundle), "Heat")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "[id 3]" in result.stderr and "[id 4]" in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_help_prints_brackets_as_written():
    result = run("recommend", "--help")
    assert result.returncode == 0
    assert "[ids" in result.stdout and "titles]" in result.stdout


def test_json_on_fit_map_and_export(tmp_path):
    out = tmp_path / "neural"
    result = runner.invoke(
        app,
        [
            "fit",
            "--data",
            "synthetic:tiny",
            "--out",
            str(out),
            "-p",
            "epochs=2",
            "-p",
            "dim=8",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["bundle"] == str(out.resolve()) and summary["kind"] == "neural"
    assert (summary["users"], summary["items"]) == (300, 200)
    assert 1 <= summary["best_epoch"] <= summary["epochs_run"] == 2
    assert 0.0 <= summary["best_validation_recall@20"] <= 1.0
    result = runner.invoke(
        app, ["export", str(out), "--format", "npy", "--out", str(tmp_path / "v"), "--json"]
    )
    assert result.exit_code == 0, result.output
    written = json.loads(result.stdout)["written"]
    assert all(Path(p).exists() for p in written) and len(written) == 2
    result = runner.invoke(
        app, ["map", str(out), "--method", "pca", "--out", str(tmp_path / "m.png"), "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"written": [str(tmp_path / "m.png")]}


def test_fit_prints_its_best_epoch_when_piped(tmp_path):
    result = run(
        "fit",
        "--data",
        "synthetic:tiny",
        "--out",
        str(tmp_path / "n"),
        "-p",
        "epochs=2",
        "-p",
        "dim=8",
    )
    assert result.returncode == 0, result.stderr
    assert "best epoch" in result.stdout and "validation recall@20" in result.stdout


@pytest.mark.fault("cli", "library error about an option", "one stderr line, flag named by the CLI")
def test_library_errors_name_options_and_the_cli_adds_the_flag(tmp_path):
    from tastespace.errors import ConfigError

    bundle = tmp_path / "ease"
    done = run("fit", "--model", "ease", "--data", "synthetic:tiny", "-o", str(bundle))
    assert done.returncode == 0, done.stderr
    done = run("map", str(bundle), "--method", "pca", "--top", "3", "--out", str(tmp_path / "m"))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: top must be at least 10 items, got 3 (option --top)"
    ]
    assert ConfigError("x", options=("min_rating",)).options == ("min_rating",)


def test_flag_hint_spells_library_options_as_the_cli_flags_that_set_them():
    from tastespace.cli.common import flag_hint

    assert flag_hint(()) == ""
    assert flag_hint(("min_rating", "nonpositive")) == " (options --min-rating, --nonpositive)"
    assert flag_hint(("path", "force")) == " (options --out, --force)"  # save(path) is fit --out
    assert flag_hint(("source",)) == " (option --data)"  # load_dataset(source) is --data
    assert flag_hint(("param",)) == " (option --param/-p)"


@pytest.mark.parametrize(
    ("message", "options", "shown"),
    [
        (
            "pass min_rating=N to keep them, or nonpositive='drop' to drop them",
            ("min_rating", "nonpositive"),
            "pass --min-rating N to keep them, or --nonpositive drop to drop them",
        ),
        ("no column 'x' (given as item_col)", ("item_col",), "no column 'x' (given as --item-col)"),
        (
            "choose another path, or pass force=True",
            ("path", "force"),
            "choose another path, or pass --force (option --out)",
        ),
        # a plain word is left alone, even inside a file name; the flag is listed after
        (
            "top must be at least 10, got 3",
            ("top",),
            "top must be at least 10, got 3 (option --top)",
        ),
        ("/data/item_col.csv: bad", ("item_col",), "/data/item_col.csv: bad (option --item-col)"),
        ("device='cuda:1': CPU only", ("device",), "--device cuda:1: CPU only"),
    ],
)
def test_cli_message_turns_code_spellings_into_flags(message, options, shown):
    from tastespace.cli.common import cli_message

    assert cli_message(message, options) == shown
