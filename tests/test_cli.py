"""The CLI end to end: real Hydra composition, real runs, real files on disk."""

from __future__ import annotations

import csv
import json
import math
import re
import subprocess
import sys

import pytest

from lrbench import catalog
from lrbench.cli import main
from lrbench.paths import conf_dir
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
    assert "_schema" not in result.stdout


def test_train_help_lists_options_not_the_schemas_they_start_from(tmp_path, monkeypatch, capsys):
    """Hydra's help lists every ConfigStore entry of a group; adam_schema is adam's typed
    base, not an option (choosing it fails: tests/test_bad_inputs.py)."""
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--help"]) == 0
    out = capsys.readouterr().out
    listed = out.split("== Configuration groups ==")[1].split("== Config ==")[0]
    groups = dict(line.split(": ", 1) for line in listed.splitlines()[3:] if ": " in line)
    assert groups["optimizer"].startswith("adagrad, adam, adam_hd, adamw, cocob, ")
    assert groups["model"] == "cnn, linear, mlp, resnet"
    assert groups["sweep"] == "vmap"
    assert "_schema" not in out
    assert "train.epochs=5 (not --epochs 5)" in out  # conf/config.yaml's hydra.help.header
    assert "== Config ==" in out and "lr: 0.001" in out
    assert not (tmp_path / "runs").exists()


def test_list_shows_every_group(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("mlp", "cnn", "digits", "breast_cancer", "lbfgs", "one_cycle", "toy"):
        assert f"  {name} " in out


def test_list_takes_plural_group_names_and_help(capsys):
    assert main(["list", "optimizers", "schedule"]) == 0
    plural = capsys.readouterr().out
    assert main(["list", "optimizer", "schedules"]) == 0
    assert capsys.readouterr().out == plural
    assert plural.startswith("optimizer:\n") and "\nschedule:\n" in plural
    for flag in ("--help", "-h"):
        assert main(["list", flag]) == 0
        assert capsys.readouterr().out.startswith("usage: lrbench list [group ...]\n")
    assert main(["list", "optimiser"]) == 2
    assert capsys.readouterr().err == (
        "lrbench: error: group=optimiser: unknown group "
        "(allowed: model, dataset, optimizer, schedule, experiment, mesh, distributed)\n"
    )


def test_list_descriptions_are_whole_sentences(capsys):
    """Each option's description is the first sentence of its yaml's first comment block
    (the whole block when it has no sentence end), wrapped, never cut."""
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert all(len(line) <= catalog.WIDTH for line in out.splitlines())
    unwrapped = re.sub(r"\n {3,}", " ", out)  # continuation lines joined
    for group in catalog.GROUPS:
        for path in sorted((conf_dir() / group).glob("*.yaml")):
            doc, summary = catalog.option_doc(path), catalog.option_summary(path)
            assert doc.startswith(summary), path
            assert summary == doc or summary.endswith("."), path
            assert f"  {summary}\n" in unwrapped, path
    summaries = {name: catalog.option_summary(conf_dir() / name) for name in SENTENCES}
    assert summaries == SENTENCES


SENTENCES = {  # the sentence ends a naive cut gets wrong
    "optimizer/adam.yaml": "Adam (Kingma & Ba, 2015), eps outside the square root.",
    "optimizer/dadapt_adamw.yaml": "D-Adaptation AdamW (Defazio & Mishchenko, 2023): "
    "learning-rate-free AdamW; estimates D and steps with lr * D.",  # "D." ends it
    "optimizer/adam_hd.yaml": "Adam-HD (Baydin et al., 2018): Adam whose LR learns online, "
    "alpha <- alpha + beta * g_t . u_{t-1} (u: the previous bias-corrected Adam direction "
    "m_hat / (sqrt(v_hat) + eps)).",  # " . " is a dot product
    "model/resnet.yaml": "ResNet for small images (He et al. 2016, CIFAR): 3x3 conv, stages of "
    "basic blocks doubling the channels and halving the resolution, BatchNorm, global average "
    "pool.",
    "experiment/cifar10_resnet.yaml": 'ResNet-20 on CIFAR-10 as in He et al. 2016 ("Deep '
    'Residual Learning", section 4.2): 45k/5k train/val split, 4-pixel padded random crops + '
    "horizontal flips, SGD momentum 0.9, weight decay 1e-4 (L2), batch 128, lr 0.1 divided by "
    "10 at 32k and 48k of 64k iterations.",  # "al." ends nothing
    "schedule/constant.yaml": "The learning rate stays at optimizer.lr.",
}


@pytest.mark.parametrize(
    ("text", "sentence"),
    [
        ("One. Two.", "One."),
        ("As in e.g. adam. Then", "As in e.g. adam."),
        ("f(x. y) is g. Next", "f(x. y) is g."),
        ("a . b is a dot product. Next", "a . b is a dot product."),
        ("v1.2 and train.epochs stay. Next", "v1.2 and train.epochs stay."),
        ("No end: lrbench train x=1", "No end: lrbench train x=1"),
    ],
)
def test_first_sentence(text, sentence):
    assert catalog.first_sentence(text) == sentence


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
