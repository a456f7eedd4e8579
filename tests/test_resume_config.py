"""``resume=<run dir>`` goes on with the run's own config.yaml: the overrides typed with it are
the changes. A change the checkpoint cannot take is one line naming it (checked in real
processes: nothing else may reach stderr). ``train.checkpoints_when_done``. The heartbeat
that tells ``compare`` a killed run from a running one."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest
import yaml
from stopped_runs import assert_same_as, train_here

from lrbench import faults
from lrbench.analysis.discover import KILLED, STALE, STALE_AFTER_S, live_status
from lrbench.runs import HEARTBEAT_FILE, Heartbeat, read_config, read_summary
from lrbench.summary import RUNNING
from lrbench.train.checkpoint import FOLDER, Checkpoints
from lrbench.train.resume import LAUNCH, run_choices, typed_keys, with_run_choices
from tests.conftest import run_cli

# A run whose groups are not the defaults (momentum, not adam), with a key added with +, its
# own name, and a checkpoint every epoch (9 steps each).
RUN = (
    "optimizer=momentum",
    "model.widths=[16]",
    "train.epochs=3",
    "train.log_every=4",
    "train.checkpoint_every=1",
    "+tag=a",
    "name=resume-config",
    "compile_cache=runs/.cache",
)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("resume-config")


@pytest.fixture(scope="module")
def reference(work):
    """The run never stopped."""
    run_dir = work / "reference"
    assert train_here(work, *RUN, f"hydra.run.dir={run_dir}") == 0
    return run_dir


def _interrupted(work, name: str, *extra: str):
    """RUN (and ``extra``) stopped by SIGTERM in its 2nd epoch: checkpoints at 9 and 18."""
    run_dir = work / name
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(faults, "point", faults._point_from("epoch:2:TERM"))
        assert train_here(work, *RUN, *extra, f"hydra.run.dir={run_dir}") == 143
    assert Checkpoints(run_dir, 2).steps() == [18, 9]
    return run_dir


@pytest.fixture(scope="module")
def interrupted(work):
    return _interrupted(work, "interrupted")


@pytest.fixture
def stopped(interrupted, tmp_path):
    """A copy of the interrupted run to resume."""
    return shutil.copytree(interrupted, tmp_path / "run")


def snapshot(folder) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _without_launch(config: dict) -> dict:
    return {k: v for k, v in config.items() if k not in LAUNCH}


@pytest.mark.parametrize("typed", [(), RUN], ids=["alone", "overrides-typed-again"])
def test_resume_goes_on_with_the_runs_own_config(typed, stopped, work, reference):
    """`resume=<dir>` alone; and with the run's overrides typed again: no change either way."""
    before = read_config(stopped)
    assert train_here(work, *typed, f"resume={stopped}") == 0
    assert_same_as(reference, stopped)
    summary = read_summary(stopped)
    assert summary["resumed_from"] == [18] and "resume_changes" not in summary
    after = read_config(stopped)
    assert _without_launch(after) == _without_launch(before)  # momentum, tag, name: the run's
    assert after["resume"] == str(stopped)
    assert not (work / "runs" / "resume-config").exists()  # Hydra's folder for it: removed


def test_a_typed_override_is_the_change_to_the_runs_config(stopped, work):
    """optimizer.momentum exists in the run's group only (momentum, not the default adam)."""
    overrides = ("optimizer.momentum=0.5", "resume_allow_changes=[optimizer.momentum]")
    assert train_here(work, f"resume={stopped}", *overrides) == 0
    summary = read_summary(stopped)
    assert summary["status"] == "completed" and summary["steps"] == 27
    assert summary["resume_changes"] == {"optimizer.momentum": [0.9, 0.5]}
    config = read_config(stopped)
    assert config["optimizer"] == {
        "name": "momentum",
        "lr": 0.01,
        "momentum": 0.5,
        "nesterov": False,
        "weight_decay": 0.0,
        "grad_clip_norm": None,
    }
    assert config["model"]["widths"] == [16] and config["train"]["epochs"] == 3
    assert config["tag"] == "a" and config["name"] == "resume-config"


def _one_line(capsys, expected: str) -> None:
    err = capsys.readouterr().err
    assert err == f"lrbench: error: {expected}\n", err


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["train.epochs=4", "+tag2=b"],
            "resume={run}: the config differs from the run's in train.epochs (run: 3, now: 4), "
            "tag2 (run: <absent>, now: b): allow with resume_allow_changes=[train.epochs,tag2], "
            "or leave those overrides out",
        ),
        (
            ["model.widths=[8,8]"],
            "resume={run}: the config differs from the run's in model.widths (run: [16], now: "
            "[8, 8]): allow with resume_allow_changes=[model.widths], or leave those overrides out",
        ),
        (["train.epochs=abc"], "train.epochs: Value 'abc' of type 'str' could not be converted..."),
        (["optimizer.b1=0.9"], "optimizer.b1: unknown key (allowed: name, lr, weight_decay, ..."),
        (["optimizer.momentum=1.5"], "optimizer.momentum=1.5: must be in [0, 1)"),
    ],
    ids=["not-allowed", "list", "type", "key-of-another-group", "range"],
)
def test_bad_typed_override_is_one_line_and_the_run_stays(
    overrides, message, stopped, work, capsys
):
    before = snapshot(stopped)
    capsys.readouterr()
    assert train_here(work, f"resume={stopped}", *overrides) == 2
    err = capsys.readouterr().err
    expected = "lrbench: error: " + message.format(run=stopped)
    if expected.endswith("..."):
        assert err.startswith(expected[:-3]) and err.count("\n") == 1, err
    else:
        assert err == expected + "\n", err
    assert snapshot(stopped) == before
    assert not (work / "runs" / "resume-config").exists()


# A change the checkpoint cannot take: (overrides, the change named). In real processes: the
# one line must be all of stderr (orbax's abandoned reads used to add tracebacks at exit).
INCOMPATIBLE = [
    (
        ["model.widths=[8]", "resume_allow_changes=[model]"],
        "model.widths changed (run: [16], now: [8])",
    ),
    (
        ["optimizer=adam", "resume_allow_changes=[optimizer]"],
        "optimizer.name changed (run: momentum, now: adam)",
    ),
    (
        ["dataset=breast_cancer", "resume_allow_changes=[dataset]"],
        "dataset.name changed (run: digits, now: breast_cancer)",
    ),
    (
        ["train.dtype=float64", "resume_allow_changes=[train.dtype]"],
        "train.dtype changed (run: float32, now: float64)",
    ),
]


@pytest.mark.parametrize(
    ("overrides", "change"), INCOMPATIBLE, ids=["shape", "optimizer", "dataset", "dtype"]
)
def test_change_the_checkpoint_cannot_take_is_named_in_one_line(overrides, change, stopped, work):
    before = snapshot(stopped)
    result = run_cli("train", f"resume={stopped}", *overrides, cwd=work)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (
        f"lrbench: error: resume={stopped}: {change}: the checkpoint cannot take it; "
        "start a new run\n"
    )
    assert snapshot(stopped) == before


def test_checkpoints_that_fail_to_read_are_one_line_too(stopped, work):
    """Every checkpoint's biggest file cut short: orbax's read fails while others are in
    flight; those it abandons must not add tracebacks (in tensorstore's threads, at exit)."""
    for step in (9, 18):
        files = [p for p in (stopped / FOLDER / str(step)).rglob("*") if p.is_file()]
        biggest = max(files, key=lambda p: p.stat().st_size)
        os.truncate(biggest, biggest.stat().st_size // 2)
    result = run_cli("train", f"resume={stopped}", cwd=work)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith(f"lrbench: error: resume={stopped}: no usable checkpoint (")
    assert result.stderr.count("\n") == 1, result.stderr


def test_checkpoints_when_done_delete_removes_them_once_the_run_finished(work):
    """Interrupted: kept (the resume needs them). Resumed to the end: removed."""
    run_dir = _interrupted(work, "delete", "train.checkpoints_when_done=delete")
    assert train_here(work, f"resume={run_dir}") == 0
    assert read_summary(run_dir)["status"] == "completed"
    assert not (run_dir / FOLDER).exists()


def test_resume_of_a_finished_run_with_delete_only_removes_its_checkpoints(
    reference, tmp_path, work, capsys
):
    run_dir = shutil.copytree(reference, tmp_path / "finished")
    assert Checkpoints(run_dir, 2).steps() == [18, 9]  # kept (the default)
    before = {k: v for k, v in snapshot(run_dir).items() if not k.startswith(FOLDER)}
    capsys.readouterr()
    assert train_here(work, f"resume={run_dir}", "train.checkpoints_when_done=delete") == 0
    assert capsys.readouterr().out.startswith(f"{run_dir}: completed, 27 steps")
    assert not (run_dir / FOLDER).exists()
    after = snapshot(run_dir)
    assert {k: v for k, v in after.items() if not k.startswith(".hydra") and k != "train.log"} == {
        k: v for k, v in before.items() if not k.startswith(".hydra") and k != "train.log"
    }


def test_bad_checkpoints_when_done_is_one_line(tmp_path, capsys):
    from lrbench.cli import main

    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path)
        assert main(["train", "train.checkpoints_when_done=never"]) == 2
    assert capsys.readouterr().err.startswith(
        "lrbench: error: train.checkpoints_when_done: Invalid value 'never', expected one of "
        "[keep, delete]"
    )


# --- which overrides are the user's, which groups are the run's ---------------------------


def test_hydra_composes_the_runs_groups_and_name(interrupted):
    args, inserted = with_run_choices([f"resume={interrupted}", "optimizer.momentum=0.5"])
    assert {"optimizer=momentum", "model=mlp", "dataset=digits", "schedule=constant"} <= set(
        inserted
    )
    assert "name='resume-config'" in inserted
    assert args == [*inserted, f"resume={interrupted}", "optimizer.momentum=0.5"]
    # a group typed is the user's; -m, resume=auto and experiment presets are left alone
    assert (
        "optimizer=momentum" not in with_run_choices([f"resume={interrupted}", "optimizer=sgd"])[1]
    )
    for args in (
        ["-m", f"resume={interrupted}"],
        ["resume=auto"],
        [f"resume={interrupted}", "experiment=toy"],
        [f"resume={interrupted.parent / 'missing'}"],
    ):
        assert with_run_choices(args) == (args, [])


def test_run_choices_fall_back_on_hydras_record(tmp_path):
    """A TFDS run is named after its set (kmnist): its option is Hydra's record (tfds)."""
    (tmp_path / ".hydra").mkdir()
    (tmp_path / ".hydra" / "hydra.yaml").write_text(
        yaml.safe_dump({"hydra": {"runtime": {"choices": {"dataset": "tfds", "model": "cnn"}}}})
    )
    config = {"dataset": {"name": "kmnist"}, "model": {"name": "mlp"}, "optimizer": {"name": "x"}}
    assert run_choices(tmp_path, config) == {"dataset": "tfds", "model": "mlp"}


def test_typed_keys():
    run = {"dataset": "digits", "model": "mlp", "optimizer": "momentum", "schedule": "constant"}
    typed = typed_keys(["optimizer=momentum", "optimizer.lr=0.1", "+tag=b", "~name"], run)
    assert typed.keys == {"optimizer.lr", "tag", "name"}  # the run's own option: no change
    assert typed_keys(["optimizer=sgd"], run).keys == {"optimizer"}
    toy = typed_keys(["experiment=toy"], run).keys  # its keys, and its groups the run lacks
    assert {"name", "model.widths", "optimizer.lr", "train.epochs", "dataset", "optimizer"} <= toy
    assert "model" not in toy and "schedule" not in toy
    assert typed.covers("optimizer.lr") and not typed.covers("optimizer.lrr")


# --- the heartbeat: running, killed, stale ------------------------------------------------


def _beat(run_dir, **changes) -> None:
    Heartbeat(run_dir)
    path = run_dir / HEARTBEAT_FILE
    path.write_text(json.dumps(json.loads(path.read_text()) | changes))


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_run_whose_process_is_gone_is_killed(tmp_path):
    _beat(tmp_path)  # this process: alive
    assert live_status(tmp_path) == RUNNING
    _beat(tmp_path, pid=_dead_pid())
    assert live_status(tmp_path) == KILLED
    _beat(tmp_path, process_start="1")  # this pid, but since given to another process
    assert live_status(tmp_path) == (KILLED if os.path.exists("/proc/self/stat") else RUNNING)


def test_a_run_of_another_host_is_stale_after_a_silence(tmp_path):
    now = time.time()
    _beat(tmp_path, host=socket.gethostname() + "-other", updated_unix=now - 60)
    assert live_status(tmp_path, now=now) == RUNNING
    assert live_status(tmp_path, now=now + STALE_AFTER_S) == STALE
    _beat(tmp_path, host="other", updated_unix=now, longest_gap_s=STALE_AFTER_S)  # slow epochs
    assert live_status(tmp_path, now=now + 2 * STALE_AFTER_S) == RUNNING
    assert live_status(tmp_path, now=now + 3.5 * STALE_AFTER_S) == STALE


def test_runs_without_a_heartbeat_are_running_and_finished_ones_have_none(tmp_path, reference):
    assert live_status(tmp_path) == RUNNING  # a run from before heartbeats
    (tmp_path / HEARTBEAT_FILE).write_text("{")
    assert live_status(tmp_path) == RUNNING
    assert not (reference / HEARTBEAT_FILE).exists()  # removed with the summary's writing
