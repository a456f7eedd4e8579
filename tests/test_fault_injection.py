"""Fault injection: real ``lrbench train`` processes killed (kill -9) at five points,
interrupted (SIGTERM, Ctrl-C twice), and sweeps; each resumed run must end exactly as the
run never stopped, and no file it left may be unreadable.

The processes stop themselves with ``LRBENCH_FAULT`` (``lrbench/faults.py``). Slow (a few
seconds per process): marked ``faults``, run by ``make test-faults``, not ``make test``.
Damaged checkpoints and metrics.csv tails are tests/test_resume.py's (in-process, fast).
"""

from __future__ import annotations

import json
import os

import pytest
import yaml
from stopped_runs import STEPS_PER_EPOCH, TINY, assert_same_as, rows, scalars, train_here

from lrbench.analysis.discover import KILLED, live_status
from lrbench.runs import HEARTBEAT_FILE, read_metrics, read_summary
from lrbench.sweep.index import SweepIndex
from lrbench.train.checkpoint import FOLDER, Checkpoints
from tests.conftest import compose_config, run_cli

pytestmark = pytest.mark.faults


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """One working folder: its runs/.cache (JAX's compilation cache) is shared by every run."""
    return tmp_path_factory.mktemp("faults")


def train(work, *overrides: str, fault: str):
    """``lrbench train`` in a process of its own, stopped by ``fault`` (LRBENCH_FAULT)."""
    return run_cli("train", *overrides, cwd=work, env=dict(os.environ, LRBENCH_FAULT=fault))


@pytest.fixture(scope="module")
def reference(work):
    """The run never stopped."""
    run_dir = work / "reference"
    assert train_here(work, *TINY, f"hydra.run.dir={run_dir}") == 0
    return run_dir


@pytest.fixture(scope="module")
def template():
    """A fresh train state of TINY's config: the structure checkpoints restore into."""
    from lrbench.train.setup import prepared, run_keys
    from lrbench.train.state import create_state

    cfg = compose_config(*TINY)
    with prepared(cfg) as setup:
        yield create_state(
            setup.model,
            setup.tx,
            setup.dataset.spec.input_shape,
            run_keys(cfg.seed)[0],
            setup.dtype,
        )


def assert_every_file_reads(run_dir, template) -> None:
    """Each file a reader may open reads whole, and each complete checkpoint restores (the
    folders of checkpoint writes cut short are orbax's temporaries: skipped, then removed)."""
    for path in run_dir.rglob("*"):
        if not path.is_file() or FOLDER in path.relative_to(run_dir).parts:
            continue
        if path.suffix == ".yaml":
            assert isinstance(yaml.safe_load(path.read_text()), dict | list), path
        elif path.suffix in (".json", ".tmp"):  # .tmp: an atomic write's, cut before its rename
            assert isinstance(json.loads(path.read_text()), dict), path
        elif path.name == "metrics.csv":
            assert all(row["train_loss"] is not None for row in read_metrics(run_dir))
        elif "tfevents" in path.name:
            scalars(run_dir)
        else:
            path.read_text()
    checkpoints = Checkpoints(run_dir, keep=2)
    for step in checkpoints.steps():
        assert checkpoints.read(step, template).progress["recorder"]["steps_done"] == step


# (point, count): kill -9 while the first program compiles, while epoch 4 runs (3 done),
# while the 3rd checkpoint is written, while the 3rd evaluation runs, while summary.json is
# written (its temp file complete, not yet renamed).
KILLS = [("compile", 1), ("epoch", 4), ("checkpoint", 3), ("eval", 3), ("write:summary.json", 1)]


@pytest.mark.parametrize(("point", "count"), KILLS, ids=[p for p, _ in KILLS])
def test_killed_run_resumes_to_the_same_numbers(point, count, work, reference, template):
    run_dir = work / f"killed-{point.replace(':', '-')}"
    result = train(work, *TINY, f"hydra.run.dir={run_dir}", fault=f"{point}:{count}")
    assert result.returncode == -9, result.stderr
    assert read_summary(run_dir) is None
    assert live_status(run_dir) == KILLED  # compare: its heartbeat's process is gone
    assert_every_file_reads(run_dir, template)

    assert train_here(work, *TINY, f"resume={run_dir}") == 0
    assert_same_as(reference, run_dir)
    assert not (run_dir / HEARTBEAT_FILE).exists()  # the summary says what became of it
    assert_every_file_reads(run_dir, template)
    assert not list(run_dir.glob(".*.tmp")) and not list((run_dir / FOLDER).glob("*tmp*"))
    resumed_from = read_summary(run_dir)["resumed_from"]
    assert resumed_from == [0] if point == "compile" else resumed_from[0] > 0


def test_sigterm_writes_interrupted_and_the_run_resumes(work, reference, template):
    run_dir = work / "sigterm"
    result = train(work, *TINY, f"hydra.run.dir={run_dir}", fault="epoch:4:TERM")
    assert result.returncode == 128 + 15, result.stderr
    assert result.stderr.endswith(
        f"lrbench: interrupted by SIGTERM at step 36 of 45, checkpoint written: go on with the "
        f"same command and resume={run_dir}\n"
    )
    summary = read_summary(run_dir)
    assert summary["status"] == "interrupted" and summary["steps"] == 4 * STEPS_PER_EPOCH
    assert Checkpoints(run_dir, 2).steps() == [36, 27]
    assert_every_file_reads(run_dir, template)
    assert train_here(work, *TINY, f"resume={run_dir}") == 0
    assert_same_as(reference, run_dir)
    assert read_summary(run_dir)["resumed_from"] == [36]


def test_second_ctrl_c_exits_at_once_and_the_run_resumes(work, reference, template):
    run_dir = work / "ctrl-c-twice"
    result = train(work, *TINY, f"hydra.run.dir={run_dir}", fault="epoch:4:INT+INT")
    assert result.returncode == 128 + 2, result.stderr
    assert "SIGINT again: exiting now" in result.stderr
    assert read_summary(run_dir) is None  # no epoch end reached: as a kill
    assert live_status(run_dir) == KILLED
    assert rows(run_dir) == rows(reference)[: len(rows(run_dir))]
    assert_every_file_reads(run_dir, template)
    # resume=<run dir> alone, in a process of its own: the run's config.yaml is the config
    result = run_cli("train", f"resume={run_dir}", cwd=work)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{run_dir}: completed, 45 steps")
    assert_same_as(reference, run_dir)
    assert "resume_changes" not in read_summary(run_dir)


def test_parallel_sweep_of_8_jobs_indexes_all(work, tmp_path):
    """Two joblib worker processes write 8 run folders and one sweep.csv (under its lock)."""
    lrs = ",".join(f"{k}e-3" for k in range(1, 9))
    result = run_cli(
        "train",
        "-m",
        "hydra/launcher=parallel",
        f"optimizer.lr={lrs}",
        "model.widths=[32]",
        "train.epochs=1",
        f"hydra.sweep.dir={tmp_path}",
        cwd=work,
        env=dict(os.environ, XLA_FLAGS="--xla_cpu_multi_thread_eigen=false"),
    )
    assert result.returncode == 0, result.stderr
    jobs = sorted(p.name for p in tmp_path.iterdir() if p.is_dir() and p.name.isdigit())
    assert jobs == [str(k) for k in range(8)]
    assert all(read_summary(tmp_path / job)["status"] == "completed" for job in jobs)
    index = SweepIndex(tmp_path).read()
    assert sorted(int(row["job"]) for row in index) == list(range(8))
    assert {row["status"] for row in index} == {"completed"}


def test_relaunched_sweep_skips_finished_jobs_and_resumes_the_killed_one(work, tmp_path):
    """The jobs run one after the other in one process: kill -9 during job 1's 3rd epoch
    (the sweep's 8th), then the same sweep again with resume=auto."""
    sweep = ["-m", "optimizer.lr=1e-3,3e-3,1e-2", *TINY, f"hydra.sweep.dir={tmp_path}"]
    result = train(work, *sweep, fault="epoch:8")
    assert result.returncode == -9, result.stderr
    assert read_summary(tmp_path / "0")["status"] == "completed"
    assert read_summary(tmp_path / "1") is None
    assert live_status(tmp_path / "1") == KILLED
    finished = (tmp_path / "0" / "summary.json").stat().st_mtime_ns

    assert train_here(work, *sweep, "resume=auto") == 0
    assert (tmp_path / "0" / "summary.json").stat().st_mtime_ns == finished  # skipped
    assert read_summary(tmp_path / "1")["resumed_from"][0] in (9, 18)  # 18's write may be cut
    assert "resumed_from" not in read_summary(tmp_path / "2")  # a fresh run
    index = SweepIndex(tmp_path).read()
    assert sorted(int(row["job"]) for row in index) == [0, 1, 2]
    assert {row["status"] for row in index} == {"completed"}
