"""Bad input, overrides and files: one line naming the key, the value and what is allowed,
exit code 2, no traceback, nothing written (no run directory; a run given to resume is left
as it was). docs/resuming.md "Bad input" table summarizes these."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from image_files import write_image_folder

from lrbench.cli import main

ADAM = "adagrad, adam, adam_hd, adamw, cocob, dadapt_adamw, dog, lbfgs, lion, mechanize, momentum"
OPTIMIZERS = f"{ADAM}, prodigy, rmsprop, schedule_free_adamw, schedule_free_sgd, sgd, sgd_hd"
END = "must be in [0, 1] (the decay ends at end_factor * optimizer.lr)"
ZERO_OVER_ZERO = "at 0 the update is 0/0 wherever the gradients have been 0"
FIRST_STEPS = "at 0 the first steps divide by 0"

# (overrides, the line after "lrbench: error: "); a message ending in "..." is its start.
OVERRIDES = [
    (["optimizer.lr=-1"], "optimizer.lr=-1.0: must be > 0"),
    (["optimizer.lr=0"], "optimizer.lr=0.0: must be > 0"),
    (["optimizer.lr=inf"], "optimizer.lr=inf: must be a finite number"),
    (["optimizer.lr=fast"], "optimizer.lr=fast: must be a number > 0 or auto"),
    (["optimizer=adamx"], f"optimizer=adamx: unknown option (allowed: {ADAM}..."),
    (
        ["optimizer.momentum=0.9"],
        "optimizer.momentum: unknown key (allowed: name, lr, weight_decay, grad_clip_norm, b1, b2, "
        "eps)",
    ),
    (["+train.epoch=3"], "train.epoch=3: unknown key (allowed: epochs, steps, batch_size, ..."),
    (["epochs=3"], "epochs: unknown key (allowed: name, seed, device, model, dataset, ..."),
    (["optimizer.b1=1.0"], "optimizer.b1=1.0: must be in [0, 1)"),
    (["optimizer.b2=-0.1"], "optimizer.b2=-0.1: must be in [0, 1)"),
    (["optimizer=momentum", "optimizer.momentum=1.0"], "optimizer.momentum=1.0: must be in [0, 1)"),
    (["optimizer.weight_decay=-1e-4"], "optimizer.weight_decay=-0.0001: must be >= 0"),
    (["optimizer.grad_clip_norm=0"], "optimizer.grad_clip_norm=0.0: must be > 0"),
    (
        ["train.batch_size=5000"],
        "train.batch_size=5000: must be between 1 and the train split size (1257)",
    ),
    (["train.batch_size=0"], "train.batch_size=0: must be > 0"),
    (
        ["train.batch_size=abc"],
        "train.batch_size: Value 'abc' of type 'str' could not be converted to Integer",
    ),
    (["train.epochs=0"], "train.epochs=0: must be > 0"),
    (
        ["train.epochs=1.5"],
        "train.epochs: Value '1.5' of type 'float' could not be converted to Integer",
    ),
    (
        ["train.dtype=float16"],
        "train.dtype: Invalid value 'float16', expected one of [float32, float64]",
    ),
    (["train.keep_checkpoints=0"], "train.keep_checkpoints=0: must be > 0"),
    (["train.checkpoint_every=-1"], "train.checkpoint_every=-1: must be >= 0"),
    (
        ["schedule=step", "schedule.boundaries=[1.5]"],
        "schedule.boundaries=[1.5]: strictly increasing positions inside training (in fractions, "
        "steps 1..179)",
    ),
    (
        ["schedule=step", "schedule.unit=epoch", "schedule.boundaries=[25]"],
        "schedule.boundaries=[25.0]: strictly increasing positions inside training (in epochs, "
        "steps 1..179)",
    ),
    (
        ["schedule=warmup_cosine", "schedule.warmup=0.999"],
        "schedule.warmup=0.999: warmup must end before step 180",
    ),
    (
        ["schedule=reduce_on_plateau", "schedule.factor=1.5"],
        "schedule.factor=1.5: must be in (0, 1)",
    ),
    (
        ["schedule=reduce_on_plateau", "schedule.min_scale=2"],
        "schedule.min_scale=2.0: must be in [0, 1] (the LR never goes below min_scale * "
        "optimizer.lr)",
    ),
    (["schedule=cosine", "schedule.end_factor=2"], f"schedule.end_factor=2.0: {END}"),
    (["schedule=linear", "schedule.end_factor=-0.5"], f"schedule.end_factor=-0.5: {END}"),
    (["schedule=polynomial", "schedule.end_factor=1.5"], f"schedule.end_factor=1.5: {END}"),
    (["schedule=warmup_cosine", "schedule.end_factor=1.1"], f"schedule.end_factor=1.1: {END}"),
    (
        ["schedule=warmup_cosine", "schedule.init_factor=2"],
        "schedule.init_factor=2.0: must be in [0, 1] (the warmup starts at init_factor * "
        "optimizer.lr)",
    ),
    (
        ["schedule=exponential", "schedule.decay_rate=1.1"],
        "schedule.decay_rate=1.1: must be in (0, 1] (the LR's factor per epoch)",
    ),
    (
        ["schedule=exponential", "schedule.decay_rate=0"],
        "schedule.decay_rate=0.0: must be in (0, 1] (the LR's factor per epoch)",
    ),
    (
        ["schedule=one_cycle", "schedule.div_factor=0.5"],
        "schedule.div_factor=0.5: must be >= 1 (the cycle starts at optimizer.lr / div_factor)",
    ),
    (
        ["schedule=one_cycle", "schedule.final_div_factor=0.1"],
        "schedule.final_div_factor=0.1: must be >= 1 (the cycle ends at optimizer.lr / "
        "(div_factor * final_div_factor))",
    ),
    (["optimizer.eps=0"], f"optimizer.eps=0.0: must be > 0 ({ZERO_OVER_ZERO})"),
    (
        ["optimizer=prodigy", "optimizer.eps=0"],
        f"optimizer.eps=0.0: must be > 0 ({ZERO_OVER_ZERO})",
    ),
    (
        ["optimizer=rmsprop", "optimizer.eps=0"],
        f"optimizer.eps=0.0: must be > 0 ({ZERO_OVER_ZERO})",
    ),
    (
        ["optimizer=adagrad", "optimizer.eps=0", "optimizer.initial_accumulator_value=0"],
        f"optimizer.eps=0.0: must be > 0 when initial_accumulator_value is 0 ({ZERO_OVER_ZERO})",
    ),
    (["optimizer=cocob", "optimizer.eps=0"], f"optimizer.eps=0.0: must be > 0 ({FIRST_STEPS})"),
    (["optimizer=mechanize", "optimizer.eps=0"], f"optimizer.eps=0.0: must be > 0 ({FIRST_STEPS})"),
    (
        ["optimizer=lbfgs", "model.dropout=0.5"],
        "model.dropout=0.5: must be 0 with optimizer=lbfgs (its line search needs a deterministic "
        "loss)",
    ),
    (
        ["optimizer=lbfgs", "schedule=cosine"],
        "schedule=cosine: must be constant with optimizer=lbfgs (the line search sets the step)",
    ),
    (["model.activation=swishy"], "model.activation: Invalid value 'swishy', expected one of ..."),
    (
        ["model=cnn", "dataset=breast_cancer"],
        "model=cnn: needs an image dataset (digits, mnist, ...)",
    ),
    (["model.widths=[0]"], "model.widths=[0]: every width must be > 0"),
    (
        ["dataset.val_fraction=0"],
        "dataset.val_fraction=0.0: must be in (0, 1): every run is validated and tested",
    ),
    (["dataset.split_seed=-1"], "dataset.split_seed=-1: must be in [0, 2**32 - 1]"),
    (["seed=4294967296"], "seed=4294967296: must be in [0, 2**32 - 1]"),
    (["device=tpu"], "device=tpu: not available here (backend: cpu)"),
    (["lr_find.max_lr=1e-8"], "lr_find.max_lr=1e-08: must be > lr_find.min_lr (1e-07)"),
    (["sweep=vmap", "optimizer=lbfgs"], "sweep=vmap: optimizer=lbfgs is full-batch: use -m"),
    (
        ["resume=auto", "sweep=vmap"],
        "resume=auto: resume=<sweep dir> for a vmap sweep (not auto)",
    ),
    (
        ["resume_allow_changes=[train.epochs]"],
        "resume_allow_changes=[train.epochs]: only with resume=<run dir> or resume=auto",
    ),
]


def assert_one_line(capsys, message: str) -> None:
    err = capsys.readouterr().err
    expected = f"lrbench: error: {message}"
    if message.endswith("..."):
        assert err.startswith(expected[:-3]), err
    else:
        assert err == expected + "\n", err
    assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize(("overrides", "message"), OVERRIDES, ids=lambda v: str(v))
def test_bad_override(overrides, message, tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(["train", *overrides, f"hydra.run.dir={run_dir}"]) == 2
    assert_one_line(capsys, message)
    assert not run_dir.exists()


# ------------------------------------------------------------------- arguments
# What Hydra itself reports as argparse's usage, "Ambiguous value", ANTLR's token sets or a
# MissingMandatoryValue: (the command line, the line after "lrbench: error: ").
ARGUMENTS = [
    (
        ["train", "seed=0,1"],
        "seed=0,1: several values: use -m for a sweep, or [a,b] for a list",
    ),
    (
        ["train", "sweep=vmap", "sweep.lr=1e-3,1e-2"],
        "sweep.lr=1e-3,1e-2: several values: use -m for a sweep, or [a,b] for a list",
    ),
    (["train", "seed=range(3)"], "seed=range(3): a sweep: use -m"),
    (
        ["train", "-m", "optimizer.lr=1e-3,", "1e-2"],  # `optimizer.lr=1e-3, 1e-2` in a shell
        "optimizer.lr=1e-3,: cannot parse this override: a space after a comma splits it in two "
        "(write a,b without spaces, or quote the whole override)",
    ),
    (
        ["train", "optimizer.lr=[1e-3"],
        "optimizer.lr=[1e-3: cannot parse this override (Hydra's grammar: "
        "https://hydra.cc/docs/advanced/override_grammar/basic/)",
    ),
    (
        ["train", "optimizer", "adam"],
        "optimizer: not an override (key=value or group=option, e.g. train.epochs=5)",
    ),
    (
        ["train", "--epochs", "5"],
        "--epochs 5: unknown flag (overrides are key=value: train.epochs=5)",
    ),
    (
        ["train", "-m", "--batch-size=64,128"],
        "--batch-size=64,128: unknown flag (overrides are key=value: train.batch_size=64,128)",
    ),
    (
        ["train", "optimizer=momentum", "--nesterov"],
        "--nesterov: unknown flag (overrides are key=value: optimizer.nesterov=true)",
    ),
    (
        ["train", "--learning-rate", "-0.1"],
        "--learning-rate -0.1: unknown flag (overrides are key=value: optimizer.lr=-0.1)",
    ),
    (
        ["find-lr", "--epoch", "3"],
        "--epoch 3: unknown flag (overrides are key=value: train.epochs=3)",
    ),
    (
        ["find-lr", "--foo"],
        "--foo: unknown flag (overrides are key=value, e.g. train.epochs=5; lrbench find-lr "
        "--help lists the keys)",
    ),
    (
        ["train", "optimizer=adam_schema"],
        f"optimizer=adam_schema: unknown option (allowed: {OPTIMIZERS})",
    ),
    (
        ["train", "-m", "schedule=cosine,step_schema"],
        "schedule=step_schema: unknown option (allowed: constant, cosine, exponential, linear, "
        "one_cycle, polynomial, reduce_on_plateau, step, warmup_cosine)",
    ),
    (
        ["train", "--cfg", "job", "dataset=image_schema"],
        "dataset=image_schema: unknown option (allowed: breast_cancer, cats_vs_dogs, ...",
    ),
]


@pytest.mark.parametrize(("argv", "message"), ARGUMENTS, ids=lambda v: str(v))
def test_bad_argument(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert_one_line(capsys, message)
    assert list(tmp_path.iterdir()) == []  # no runs/, no sweep folder


# ----------------------------------------------------------------------- files
STOPPED = ("model.widths=[16]", "train.epochs=3", "train.checkpoint_every=1", "compile_cache=null")


@pytest.fixture(scope="module")
def stopped(tmp_path_factory) -> Path:
    """A real run with checkpoints at steps 9 and 18, stopped before its summary (as by a
    kill while it wrote it)."""
    run_dir = tmp_path_factory.mktemp("stopped") / "run"
    assert main(["train", *STOPPED, f"hydra.run.dir={run_dir}"]) == 0
    (run_dir / "summary.json").unlink()
    return run_dir


def _missing(run: Path) -> list[str]:
    return [*STOPPED, f"resume={run.parent / 'missing'}"]


def _not_a_run(run: Path) -> list[str]:
    (run / "config.yaml").unlink()
    return [*STOPPED, f"resume={run}"]


def _broken_config(run: Path) -> list[str]:
    (run / "config.yaml").write_text("model: {name: mlp\n")
    return [*STOPPED, f"resume={run}"]


def _list_config(run: Path) -> list[str]:
    (run / "config.yaml").write_text("- model\n- dataset\n")
    return [*STOPPED, f"resume={run}"]


def _broken_summary(run: Path) -> list[str]:
    (run / "summary.json").write_text('{"status": "compl')
    return [*STOPPED, f"resume={run}"]


def _other_config(run: Path) -> list[str]:
    return [*STOPPED, f"resume={run}", "optimizer.lr=0.01", "+tag=b"]


def _unknown_allowed(run: Path) -> list[str]:
    return [*STOPPED, f"resume={run}", "resume_allow_changes=[optimizer.lrr]"]


def _damaged_checkpoints(run: Path) -> list[str]:
    for step in ("9", "18"):
        for file in (run / "checkpoints" / step).rglob("*"):
            if file.is_file() and file.stat().st_size > 200:
                file.write_bytes(file.read_bytes()[:100])
    return [*STOPPED, f"resume={run}"]


def _emptied_metrics(run: Path) -> list[str]:
    (run / "metrics.csv").write_text("")
    return [*STOPPED, f"resume={run}"]


def _in_a_sweep(run: Path) -> list[str]:
    return ["-m", *STOPPED, f"resume={run}", f"hydra.sweep.dir={run.parent / 'sweep'}"]


def _lbfgs_streamed(run: Path) -> list[str]:
    folder = write_image_folder(run.parent / "images", {"train": 4, "test": 2})
    return [
        "optimizer=lbfgs",
        "model=linear",
        "dataset=image_folder",
        f"dataset.path={folder}",
        "dataset.image_size=8",
        "dataset.max_device_bytes=10",
        "dataset.val_fraction=0.25",
        "dataset.test_fraction=0.25",
    ]


# (damage done to a copy of the stopped run -> overrides, the line; {run} is its path)
FILES: list[tuple[Callable[[Path], list[str]], str]] = [
    (_missing, "resume={run.parent}/missing: no such run directory"),
    (_not_a_run, "resume={run}: not a run directory (no config.yaml)"),
    (
        _broken_config,
        "resume={run}: config.yaml is not valid YAML (while parsing a flow mapping...",
    ),
    (_list_config, "resume={run}: config.yaml is not a mapping of keys to values"),
    (_broken_summary, "resume={run}: summary.json is not valid JSON (Unterminated string ..."),
    (
        _other_config,
        "resume={run}: the config differs from the run's in optimizer.lr (run: 0.001, "
        "now: 0.01), tag (run: <absent>, now: b): allow with "
        "resume_allow_changes=[optimizer.lr,tag], or leave those overrides out",
    ),
    (
        _unknown_allowed,
        "resume_allow_changes=[optimizer.lrr]: optimizer.lrr is not a key or group "
        "of the config (e.g. train.epochs)",
    ),
    (_damaged_checkpoints, "resume={run}: no usable checkpoint (checkpoints/18: ..."),
    (
        _emptied_metrics,
        "resume={run}: no usable checkpoint (checkpoints/18: metrics.csv has 0 "
        "bytes, fewer than the ...",
    ),
    (
        _in_a_sweep,
        "resume={run}: one run's directory, not with -m: re-launch a sweep with "
        "resume=auto and the same hydra.sweep.dir",
    ),
    (
        _lbfgs_streamed,
        "dataset.max_device_bytes=10: below the train split's 1176 bytes: "
        "optimizer=lbfgs needs the whole split on device",
    ),
]


def snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize(("damage", "message"), FILES, ids=[f.__name__[1:] for f, _ in FILES])
def test_bad_file(damage, message, stopped, tmp_path, monkeypatch, capsys):
    run = shutil.copytree(stopped, tmp_path / "run")
    overrides = damage(run)
    before = snapshot(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["train", *overrides]) == 2
    assert_one_line(capsys, message.format(run=run))
    assert not (tmp_path / "sweep" / "0").exists()  # -m: Hydra's sweep folder, no job's
    shutil.rmtree(tmp_path / "sweep", ignore_errors=True)
    assert snapshot(tmp_path) == before  # no run directory of Hydra's, the run untouched
