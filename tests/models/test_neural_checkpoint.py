"""Resume checkpoints of the neural model: exact continuation, and refusal of anything else."""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

from tastespace.cli import main
from tastespace.errors import CheckpointError
from tastespace.models.fitting import TrainingOptions
from tastespace.models.neural import NeuralRecommender

FAST = dict(
    epochs=4,
    dim=16,
    hidden=32,
    item_hidden=32,
    batch_size=64,
    lr=3e-3,
    patience=50,
    validation_users=0.1,
)


def fault(case: str, outcome: str) -> pytest.MarkDecorator:
    return pytest.mark.fault("checkpoint", case, outcome)


def run_options(folder: Path, resume: bool = False) -> TrainingOptions:
    return TrainingOptions(threads=1, checkpoint_dir=str(folder), resume=resume)


def fit(data, folder: Path, resume: bool = False, **options) -> NeuralRecommender:
    model = NeuralRecommender(**{**FAST, **options})
    return model.fit(data, training=run_options(folder, resume))


@pytest.fixture(scope="module")
def data(planted_split):
    return planted_split.train


@pytest.fixture(scope="module")
def stopped_at_two(data, tmp_path_factory):
    """A checkpoint folder holding epoch 2 of a 4-epoch run, and that first run's report."""
    folder = tmp_path_factory.mktemp("ckpt")
    first = fit(data, folder, epochs=2)
    return folder, first.train_report_


def copy_of(folder: Path, tmp_path: Path) -> Path:
    target = tmp_path / "ckpt"
    target.mkdir()
    (target / "last.pt").write_bytes((folder / "last.pt").read_bytes())
    return target


@fault("resume after stopping at epoch 2 of 4", "same weights and report as never stopping")
def test_resume_continues_exactly_and_keeps_the_earlier_epochs(data, stopped_at_two, tmp_path):
    folder, first = stopped_at_two
    resumed = fit(data, copy_of(folder, tmp_path), resume=True)
    straight = NeuralRecommender(**FAST).fit(data)
    np.testing.assert_array_equal(resumed.item_vectors(), straight.item_vectors())
    assert [h["epoch"] for h in resumed.train_report_.history] == [1, 2, 3, 4]
    assert resumed.train_report_.history[:2] == first.history
    assert resumed.train_report_.history == straight.train_report_.history
    manifest = json.loads((resumed.save(tmp_path / "bundle") / "manifest.json").read_text())
    saved = manifest["extra"]["train_report"]
    assert [h["epoch"] for h in saved["history"]] == [1, 2, 3, 4]


MISMATCHES = [
    pytest.param(
        {"seed": 1},
        "seed 0 → 1",
        marks=fault("resume with another seed", "CheckpointError naming seed 0 → 1"),
        id="seed",
    ),
    pytest.param(
        {"dim": 8},
        "dim 16 → 8",
        marks=fault("resume with another dim", "CheckpointError naming dim 16 → 8"),
        id="dim",
    ),
    pytest.param(
        {"lr": 0.01},
        "lr 0.003 → 0.01",
        marks=fault("resume with another learning rate", "CheckpointError naming lr"),
        id="lr",
    ),
]


@pytest.mark.parametrize(("change", "named"), MISMATCHES)
def test_resume_with_other_options_is_refused(data, stopped_at_two, tmp_path, change, named):
    folder, _ = stopped_at_two
    with pytest.raises(CheckpointError, match="written by another run") as info:
        fit(data, copy_of(folder, tmp_path), resume=True, **change)
    assert named in str(info.value) and "\n" not in str(info.value)


@fault("resume on other data (fewer users)", "CheckpointError: other training data (fingerprints)")
def test_resume_on_other_data_is_refused(data, stopped_at_two, tmp_path):
    folder, _ = stopped_at_two
    fewer = data.subset_users(np.arange(data.n_users - 10))
    with pytest.raises(CheckpointError, match="other training data"):
        fit(fewer, copy_of(folder, tmp_path), resume=True)


@fault("resume with other explicit validation users", "CheckpointError: other validation users")
def test_resume_with_other_validation_is_refused(planted_split, tmp_path):
    train, validation = planted_split.train, planted_split.validation
    NeuralRecommender(**{**FAST, "epochs": 1}).fit(
        train, validation=validation, training=run_options(tmp_path)
    )
    other = replace(
        validation, fold_in=planted_split.test.fold_in, targets=planted_split.test.targets
    )
    model = NeuralRecommender(**FAST)
    with pytest.raises(CheckpointError, match="other validation users"):
        model.fit(train, validation=other, training=run_options(tmp_path, resume=True))


def damaged(folder: Path, tmp_path: Path, content: object = None, raw: bytes | None = None) -> Path:
    target = tmp_path / "bad"
    target.mkdir()
    if raw is not None:
        (target / "last.pt").write_bytes(raw)
    else:
        torch.save(content, target / "last.pt")
    return target


def saved_payload(folder: Path) -> dict:
    return torch.load(folder / "last.pt", weights_only=True)


@fault("truncated checkpoint (half its bytes)", "CheckpointError: not a readable checkpoint")
def test_truncated_checkpoint(data, stopped_at_two, tmp_path):
    folder, _ = stopped_at_two
    raw = (folder / "last.pt").read_bytes()
    bad = damaged(folder, tmp_path, raw=raw[: len(raw) // 2])
    with pytest.raises(CheckpointError, match="last.pt: not a readable training checkpoint"):
        fit(data, bad, resume=True)


@fault("checkpoint file holding text", "CheckpointError: not a readable checkpoint")
def test_text_file_as_checkpoint(data, stopped_at_two, tmp_path):
    bad = damaged(stopped_at_two[0], tmp_path, raw=b"epoch=2\n")
    with pytest.raises(CheckpointError, match="not a readable training checkpoint"):
        fit(data, bad, resume=True)


@fault("foreign torch file (a plain state_dict)", "CheckpointError: no run stamp")
def test_foreign_state_dict(data, stopped_at_two, tmp_path):
    bad = damaged(stopped_at_two[0], tmp_path, content={"weight": torch.zeros(3)})
    with pytest.raises(CheckpointError, match="not a tastespace checkpoint of this version"):
        fit(data, bad, resume=True)


@fault("torch file holding a list", "CheckpointError: holds a list, not a checkpoint")
def test_torch_list(data, stopped_at_two, tmp_path):
    bad = damaged(stopped_at_two[0], tmp_path, content=[1, 2, 3])
    with pytest.raises(CheckpointError, match="holds a list, not a checkpoint"):
        fit(data, bad, resume=True)


@fault("checkpoint entry of the wrong type", "CheckpointError naming the entry")
def test_entry_of_wrong_type(data, stopped_at_two, tmp_path):
    payload = saved_payload(stopped_at_two[0])
    payload["history"] = torch.zeros(2)
    bad = damaged(stopped_at_two[0], tmp_path, content=payload)
    with pytest.raises(CheckpointError, match="checkpoint entry 'history' is Tensor"):
        fit(data, bad, resume=True)


@fault("checkpoint of another format version", "CheckpointError naming both versions")
def test_other_format_version(data, stopped_at_two, tmp_path):
    payload = saved_payload(stopped_at_two[0])
    payload["format_version"] = 99
    bad = damaged(stopped_at_two[0], tmp_path, content=payload)
    with pytest.raises(CheckpointError, match="checkpoint format 99, this tastespace reads 1"):
        fit(data, bad, resume=True)


@fault("checkpoint weights of other shapes under a forged stamp", "CheckpointError: do not fit")
def test_weights_that_do_not_fit(data, stopped_at_two, tmp_path):
    payload = saved_payload(stopped_at_two[0])
    payload["model"] = {k: v[:1] for k, v in payload["model"].items()}
    bad = damaged(stopped_at_two[0], tmp_path, content=payload)
    with pytest.raises(CheckpointError, match="its weights do not fit this model"):
        fit(data, bad, resume=True)


@fault("checkpoint_dir is an existing file", "CheckpointError before the first epoch")
def test_checkpoint_dir_is_a_file(data, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    model = NeuralRecommender(**FAST)
    epochs = []
    with pytest.raises(CheckpointError, match="cannot use as checkpoint_dir"):
        model.fit(
            data,
            callback=lambda epoch, *_: epochs.append(epoch),
            training=run_options(blocker),
        )
    assert epochs == []


@fault("resume=true with no checkpoint in the folder", "trains from epoch 1 and logs a warning")
def test_resume_without_a_checkpoint_starts_afresh(data, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="tastespace.models.neural.training"):
        model = fit(data, tmp_path, resume=True, epochs=1)
    assert model.train_report_.epochs_run == 1 and "no checkpoint" in caplog.text


@fault("resume of a run that had stopped early", "stays stopped: no extra epoch, same weights")
def test_resume_after_early_stop_adds_no_epoch(data, tmp_path):
    options = {"epochs": 40, "patience": 1}
    first = fit(data, tmp_path, **options)
    assert first.train_report_.epochs_run < 40  # it did stop early
    again = fit(data, tmp_path, resume=True, **options)
    assert again.train_report_.epochs_run == first.train_report_.epochs_run
    np.testing.assert_array_equal(again.item_vectors(), first.item_vectors())


# -- through the command line ------------------------------------------------------------------


def fit_command(
    out: Path, folder: Path, *extra: str, epochs: int = 30, resume: bool = False
) -> list[str]:
    params = ["dim=16", "hidden=32", "item_hidden=32", "batch_size=32"]
    params += ["patience=100", "validation_users=0.1", *extra]
    command = [sys.executable, "-m", "tastespace", "fit", "--data", "synthetic:tiny"]
    command += ["--epochs", str(epochs), "-o", str(out), "--threads", "1"]
    command += ["--checkpoint-dir", str(folder)] + (["--resume"] if resume else [])
    for param in params:
        command += ["-p", param]
    return command


@pytest.mark.slow
@fault("kill -9 mid-run, then fit again with --resume", "bit-identical bundle to an unbroken run")
def test_kill_nine_then_resume_is_bit_identical(tmp_path):
    folder = tmp_path / "ckpt"
    victim = subprocess.Popen(fit_command(tmp_path / "killed", folder), stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not (folder / "last.pt").exists() and victim.poll() is None:
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.01)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=60)
    assert victim.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (tmp_path / "killed").exists()
    reached = torch.load(folder / "last.pt", weights_only=True)["epoch"]
    assert 1 <= reached < 30
    resume = fit_command(tmp_path / "resumed", folder, resume=True)
    assert subprocess.run(resume, capture_output=True, timeout=600).returncode == 0
    straight = fit_command(tmp_path / "straight", tmp_path / "other")
    assert subprocess.run(straight, capture_output=True, timeout=600).returncode == 0
    a = load_file(tmp_path / "resumed" / "arrays.safetensors")
    b = load_file(tmp_path / "straight" / "arrays.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    reports = [
        json.loads((tmp_path / name / "manifest.json").read_text())
        for name in ("resumed", "straight")
    ]
    assert _report(reports[0]) == _report(reports[1]) and len(_report(reports[0])["history"]) == 30


def _report(manifest: dict) -> dict:
    return manifest["extra"]["train_report"]


@fault("fit --resume with another seed via the CLI", "one stderr line naming it; exit 2")
def test_cli_resume_with_other_options(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "ckpt"

    def run(*argv: str) -> int:
        monkeypatch.setattr(sys, "argv", ["tastespace", *argv[3:]])  # drop "python -m"
        with pytest.raises(SystemExit) as exited:
            main()
        return int(exited.value.code or 0)

    assert run(*fit_command(tmp_path / "a", folder, epochs=1)) == 0
    capsys.readouterr()
    assert run(*fit_command(tmp_path / "b", folder, "seed=3", epochs=1, resume=True)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.strip().count("\n") == 0 and "seed 0 → 3" in err
    assert not (tmp_path / "b").exists()
