"""Checkpoints and resume, in this process: a run stopped by SIGTERM (a real signal, sent by
the fault hook), its files damaged, resumed; each must end as the run never stopped.
Real processes killed with -9 are tests/test_fault_injection.py's (make test-faults)."""

from __future__ import annotations

import os
import shutil
import signal

import pytest
import yaml
from stopped_runs import STEPS_PER_EPOCH, TINY, assert_same_as, rows, train_here

from lrbench import faults
from lrbench.runs import METRIC_COLUMNS, RunDir, read_metrics, read_summary
from lrbench.train.checkpoint import FOLDER, Checkpoints


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("resume")


@pytest.fixture(scope="module")
def reference(work):
    """The run never stopped."""
    run_dir = work / "reference"
    assert train_here(work, *TINY, f"hydra.run.dir={run_dir}") == 0
    return run_dir


@pytest.fixture(scope="module")
def interrupted(work):
    """SIGTERM while the 4th epoch runs: it finishes that epoch, writes a checkpoint at step
    36 (27 before it) and summary.json (interrupted), and the command exits 143."""
    run_dir = work / "interrupted"
    handler = signal.getsignal(signal.SIGTERM)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(faults, "point", faults._point_from("epoch:4:TERM"))
        code = train_here(work, *TINY, f"hydra.run.dir={run_dir}")
    return run_dir, code, handler


@pytest.fixture
def stopped(interrupted, tmp_path):
    """A copy of the interrupted run to resume (or damage first)."""
    return shutil.copytree(interrupted[0], tmp_path / "run")


def test_sigterm_ends_the_epoch_with_a_checkpoint_and_status_interrupted(interrupted, reference):
    run_dir, code, handler = interrupted
    assert code == 128 + signal.SIGTERM
    summary = read_summary(run_dir)
    assert summary["status"] == "interrupted" and summary["interrupted_by"] == "SIGTERM"
    assert summary["steps"] == 4 * STEPS_PER_EPOCH
    assert Checkpoints(run_dir, 2).steps() == [36, 27]
    assert rows(run_dir) == rows(reference)[: len(rows(run_dir))]
    assert signal.getsignal(signal.SIGTERM) is handler  # restored after the loop


TIMES = ("wall_s", "load_s", "setup_s", "compile_s", "train_s")  # summary.json's, in seconds


def _checkpointed_timing(run_dir, step: int) -> dict:
    """The times a checkpoint carries: the run's so far, up to that checkpoint."""
    import orbax.checkpoint as ocp

    manager = ocp.CheckpointManager((run_dir / FOLDER).absolute())
    try:
        restored = manager.restore(step, args=ocp.args.Composite(progress=ocp.args.JsonRestore()))
    finally:
        manager.close()
    return restored["progress"]["timing"]


def test_resumed_run_ends_as_the_run_never_stopped(stopped, work, reference):
    first = _checkpointed_timing(stopped, 36)
    assert train_here(work, *TINY, f"resume={stopped}") == 0
    assert_same_as(reference, stopped)
    summary = read_summary(stopped)
    assert summary["resumed_from"] == [36]
    # The times are the first process's up to its checkpoint plus the second process's: what
    # the second one adds is a measurement (train_s is clamped to 1e-9, which rounds to 0),
    # and within each process setup, compile and training fit in its wall time.
    second = {key: summary[key] - first[key] for key in TIMES}
    assert second["train_s"] >= 1e-4 and second["compile_s"] >= 0
    for times in (first, second):
        spent = times["load_s"] + times["setup_s"] + times["compile_s"] + times["train_s"]
        assert spent <= times["wall_s"] + 5e-4, times
    # Steps per second of the whole run: all 45 steps over both processes' training time.
    assert summary["steps_per_s"] == round(5 * STEPS_PER_EPOCH / summary["train_s"], 2)
    assert len(list(stopped.glob("events.out.tfevents.*"))) == 2  # the second from step 36
    assert not [p for p in (work / "runs").iterdir() if p.name != ".cache"]  # Hydra's: gone


def _damage(run_dir, step: int, how: str) -> None:
    """The biggest file of the checkpoint: cut to half, or a block zeroed (orbax reads the
    latter back silently as other numbers: the checkpoint's digest must catch it)."""
    files = [p for p in (run_dir / FOLDER / str(step)).rglob("*") if p.is_file()]
    biggest = max(files, key=lambda p: p.stat().st_size)
    size = biggest.stat().st_size
    with open(biggest, "r+b") as f:
        if how == "truncated":
            f.truncate(size // 2)
        else:
            f.seek(size // 2)
            f.write(bytes(min(64, size - size // 2)))


@pytest.mark.parametrize("how", ["truncated", "zeroed"])
def test_damaged_latest_checkpoint_gives_way_to_the_previous(how, stopped, work, reference):
    _damage(stopped, 36, how)
    assert train_here(work, *TINY, f"resume={stopped}") == 0
    assert_same_as(reference, stopped)
    assert read_summary(stopped)["resumed_from"] == [27]
    assert "skipped damaged checkpoints: checkpoints/36" in (stopped / "train.log").read_text()


def test_row_cut_short_after_the_checkpoint_is_cut_off(stopped, work, reference):
    """A kill in the middle of writing a row: readers skip it, a resume writes it again."""
    (stopped / "summary.json").unlink()
    with open(stopped / "metrics.csv", "a") as f:
        f.write("40,4.444444,0.0003,2.30")
    assert len(read_metrics(stopped)) == len(rows(stopped)) - 1
    assert train_here(work, *TINY, f"resume={stopped}") == 0
    assert_same_as(reference, stopped)
    assert read_summary(stopped)["resumed_from"] == [36]


def test_metrics_shorter_than_the_latest_checkpoint_falls_back(stopped, work, reference):
    """metrics.csv lost bytes the latest checkpoint counted (a crash of the machine): the
    previous checkpoint is used."""
    metrics = stopped / "metrics.csv"
    os.truncate(metrics, metrics.stat().st_size - 20)
    assert train_here(work, *TINY, f"resume={stopped}") == 0
    assert_same_as(reference, stopped)
    assert read_summary(stopped)["resumed_from"] == [27]


def test_allowed_change_trains_on_and_is_recorded(stopped, work):
    assert (
        train_here(
            work, *TINY, "train.epochs=6", "resume_allow_changes=[train]", f"resume={stopped}"
        )
        == 0
    )
    summary = read_summary(stopped)
    assert summary["steps"] == 6 * STEPS_PER_EPOCH and summary["resumed_from"] == [36]
    assert summary["resume_changes"] == {"train.epochs": [5, 6]}
    assert yaml.safe_load((stopped / "config.yaml").read_text())["train"]["epochs"] == 6


def test_resume_auto_skips_a_finished_run_and_resume_of_it_changes_nothing(reference, work, capsys):
    def ours():  # not Hydra's record of the launch (.hydra/) or its log, which it reopens
        return {
            p: p.stat().st_mtime_ns
            for p in reference.rglob("*")
            if ".hydra" not in p.parts and p.name != "train.log"
        }

    before = ours()
    assert train_here(work, *TINY, f"hydra.run.dir={reference}", "resume=auto") == 0
    assert train_here(work, *TINY, f"resume={reference}") == 0
    assert ours() == before
    assert capsys.readouterr().out.count(f"{reference}: completed, 45 steps") == 2


def test_fresh_run_in_a_used_folder_starts_over(stopped, work, reference):
    """No resume: the folder's old run (checkpoints, rows, events) does not leak in."""
    assert train_here(work, *TINY, f"hydra.run.dir={stopped}") == 0
    assert_same_as(reference, stopped)
    assert "resumed_from" not in read_summary(stopped)
    assert len(list(stopped.glob("events.out.tfevents.*"))) == 1


def test_without_checkpoints_a_resume_starts_from_step_0(work, reference, tmp_path):
    """A run killed before its first checkpoint (e.g. while compiling) goes on from 0."""
    run_dir = tmp_path / "run"
    assert (
        train_here(
            work,
            *TINY,
            "train.checkpoint_every=0",
            "train.checkpoint_interval_s=0",
            f"hydra.run.dir={run_dir}",
        )
        == 0
    )
    assert not (run_dir / FOLDER).exists()
    (run_dir / "summary.json").unlink()
    assert train_here(work, *TINY, f"resume={run_dir}") == 0
    assert_same_as(reference, run_dir)
    assert read_summary(run_dir)["resumed_from"] == [0]


def test_resuming_a_run_from_before_the_norm_columns_keeps_its_header(tmp_path):
    """metrics.csv with the ten columns of old runs: the rows written after a resume have
    the same ten fields (the norms are left out), so the file reads back whole."""
    old = METRIC_COLUMNS[: METRIC_COLUMNS.index("elapsed_s") + 1]
    metrics = tmp_path / "metrics.csv"
    metrics.write_text(",".join(old) + "\n" + "9,1.0,0.001,2.1,0.3,,,,,0.5\n")
    run_dir = RunDir(tmp_path)
    run_dir.resume({"seed": 0}, {"metrics.csv": metrics.stat().st_size}, step=9)
    row = dict.fromkeys(METRIC_COLUMNS, 1.5) | {"step": 18, "epoch": 2.0}
    run_dir.append_metrics([row])
    run_dir.close()
    lines = metrics.read_text().splitlines()
    assert lines[0] == ",".join(old)
    assert [len(line.split(",")) for line in lines] == [len(old)] * 3
    assert [r["step"] for r in read_metrics(tmp_path)] == [9.0, 18.0]
    assert set(read_metrics(tmp_path)[1]) == set(old)
