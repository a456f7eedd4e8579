"""The CLI end to end: real Hydra composition, real runs, real files on disk."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys

import pytest

from lrbench.cli import main
from lrbench.runs import METRIC_COLUMNS, read_metrics, read_summary


def test_default_run_reaches_95_percent_test_accuracy(cli, tmp_path):
    result = cli("train", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (run_dir,) = (tmp_path / "runs" / "digits-mlp-adam").iterdir()
    summary = read_summary(run_dir)
    assert summary["status"] == "completed"
    assert summary["final"]["test_accuracy"] >= 0.95
    assert summary["steps"] == 20 * (1257 // 128)
    assert summary["n_params"] == 64 * 256 + 256 + 256 * 256 + 256 + 256 * 10 + 10
    for name in ("config.yaml", "metrics.csv", "summary.json", "train.log", ".hydra"):
        assert (run_dir / name).exists(), name
    assert "Traceback" not in result.stderr
    assert str(run_dir) in result.stdout


def test_toy_experiment_trains_and_logs_the_configured_lr(tmp_path):
    assert main(["train", "experiment=toy", f"hydra.run.dir={tmp_path}"]) == 0
    summary = read_summary(tmp_path)
    assert summary["status"] == "completed"
    assert summary["n_params"] == 5 * 3 + 3 + 3 + 1
    assert summary["final"]["val_accuracy"] > 0.8
    rows = read_metrics(tmp_path)
    assert {row["lr"] for row in rows} == {0.1}


def test_same_config_and_seed_give_identical_metrics(tmp_path):
    def metrics(name: str, seed: int) -> list[dict]:
        run_dir = tmp_path / name
        overrides = ["model.dropout=0.2", "train.epochs=3", f"seed={seed}"]
        assert main(["train", *overrides, f"hydra.run.dir={run_dir}"]) == 0
        with open(run_dir / "metrics.csv") as f:  # elapsed_s is wall time: all else must match
            return [{k: v for k, v in row.items() if k != "elapsed_s"} for row in csv.DictReader(f)]

    first = metrics("a", seed=1)
    assert metrics("b", seed=1) == first
    assert metrics("c", seed=2) != first


def test_metrics_csv_columns_and_lr_follow_the_schedule(tmp_path):
    overrides = [
        "schedule=cosine",
        "schedule.end_factor=0.1",
        "optimizer.lr=0.01",
        "train.epochs=2",
        "train.log_every=1",
    ]
    assert main(["train", *overrides, f"hydra.run.dir={tmp_path}"]) == 0
    with open(tmp_path / "metrics.csv") as f:
        assert tuple(next(csv.reader(f))) == METRIC_COLUMNS
    rows = read_metrics(tmp_path)
    total = 2 * (1257 // 128)
    assert [row["step"] for row in rows] == list(range(1, total + 1))
    for row in rows:  # the LR applied at step s is scheduled at count s - 1
        t = (row["step"] - 1) / total
        expected = 0.01 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)))
        assert row["lr"] == pytest.approx(expected, rel=1e-5)
    evaluated = [row for row in rows if row["val_accuracy"] is not None]
    assert [row["step"] for row in evaluated] == [9, 18]
    assert all(row["test_accuracy"] is not None for row in evaluated)
    assert all(row["elapsed_s"] >= 0 for row in rows)


def test_diverging_run_is_a_result_not_a_crash(tmp_path):
    overrides = ["optimizer=sgd", "optimizer.lr=1e6", "train.epochs=5"]
    assert main(["train", *overrides, f"hydra.run.dir={tmp_path}"]) == 0
    summary = read_summary(tmp_path)
    assert summary["status"] == "diverged"
    step = summary["diverged_at_step"]
    assert 1 <= step < 45
    rows = read_metrics(tmp_path)
    assert rows[-1]["step"] == step
    assert not math.isfinite(rows[-1]["train_loss"])
    json.loads((tmp_path / "summary.json").read_text())  # strict JSON: NaN written as null


def test_multirun_writes_one_complete_run_directory_per_job(tmp_path):
    args = ["train", "-m", "optimizer=adam,sgd", "train.epochs=1", f"hydra.sweep.dir={tmp_path}"]
    assert main(args) == 0
    jobs = sorted(p for p in tmp_path.iterdir() if p.is_dir() and p.name.isdigit())
    assert [p.name for p in jobs] == ["0", "1"]
    names = set()
    for job in jobs:
        assert read_summary(job)["status"] == "completed"
        names.add(json.dumps(read_summary(job)["final"]["val_accuracy"]))
        assert (job / "metrics.csv").exists() and (job / "config.yaml").exists()
    assert len(names) == 2


def test_hydra_flags_work(cli, tmp_path):
    result = cli("train", "--cfg", "job", "optimizer=momentum", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "nesterov: false" in result.stdout
    assert not (tmp_path / "runs").exists()
    result = cli("train", "--help", cwd=tmp_path)
    assert result.returncode == 0 and "optimizer: " in result.stdout


def test_list_shows_every_group(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("mlp", "cnn", "digits", "breast_cancer", "lbfgs", "one_cycle", "toy"):
        assert f"  {name} " in out


# Each bad input's message and exit code: tests/test_bad_inputs.py.


def test_bad_input_from_the_shell_has_no_traceback(cli, tmp_path):
    result = cli("train", "optimizer.lr=-0.1", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == "lrbench: error: optimizer.lr=-0.1: must be > 0\n"
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_unknown_command_is_exit_2(capsys):
    assert main(["trian"]) == 2
    assert "unknown command 'trian'" in capsys.readouterr().err


def test_help_and_list_import_neither_jax_nor_tensorflow(cli):
    code = (
        "import sys; from lrbench.cli import main; main(['--help']); main(['list']); "
        "heavy = {'jax', 'tensorflow', 'flax', 'optax'} & set(sys.modules); "
        "sys.exit(f'imported {heavy}' if heavy else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_a_digits_run_does_not_import_tensorflow(tmp_path):
    """TensorFlow (~3 s to import) loads only for TFDS datasets (lrbench.data.tfds)."""
    code = (
        "import sys; from lrbench.cli import main; "
        f"code = main(['train', 'train.epochs=1', 'hydra.run.dir={tmp_path}']); "
        "tf = {'tensorflow', 'tensorflow_datasets'} & set(sys.modules); "
        "sys.exit(f'imported {tf}' if tf else code)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "summary.json").exists()
