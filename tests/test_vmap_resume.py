"""A vmap sweep killed with -9 and resumed with resume=<sweep dir> gives every member the
metrics of the sweep never stopped (real processes: LRBENCH_FAULT kills at an epoch)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from stopped_runs import rows

from lrbench.runs import read_summary

SWEEP = (
    "sweep=vmap",
    "sweep.lr=[1e-3,1e-2]",
    "sweep.seeds=2",
    "sweep.max_members=2",  # two chunks: the first finishes, the second is killed
    "model.widths=[32]",
    "model.dropout=0.1",
    "train.epochs=4",
    "train.log_every=1",
    "train.checkpoint_every=1",
)


def lrbench(tmp_path, *args: str, fault: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("LRBENCH_FAULT", None)
    if fault:
        env["LRBENCH_FAULT"] = fault
    return subprocess.run(
        [sys.executable, "-m", "lrbench.cli", "train", *SWEEP, *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_killed_vmap_sweep_resumes_to_the_uninterrupted_metrics(tmp_path):
    assert lrbench(tmp_path, "hydra.run.dir=reference").returncode == 0
    # epoch points count over the process: the second chunk's 3rd epoch is the 7th
    killed = lrbench(tmp_path, "hydra.run.dir=sweep", fault="epoch:7:KILL")
    assert killed.returncode == -signal.SIGKILL
    sweep = tmp_path / "sweep"
    assert read_summary(sweep / "0")["status"] == "completed"
    assert read_summary(sweep / "2") is None  # the chunk in progress
    resumed = lrbench(tmp_path, f"resume={sweep}")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    for member in range(4):
        assert rows(sweep / str(member)) == rows(tmp_path / "reference" / str(member))
        summary = read_summary(sweep / str(member))
        assert summary["status"] == "completed"
    assert read_summary(sweep / "2")["resumed_from"][0] > 0  # from its checkpoint
    assert "resumed_from" not in read_summary(sweep / "0")  # finished: not trained again
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "runs") == ["reference", "sweep"]


def test_a_resumed_sweep_must_be_the_same_sweep(tmp_path):
    assert lrbench(tmp_path, "hydra.run.dir=sweep", "train.epochs=1").returncode == 0
    result = lrbench(tmp_path, f"resume={tmp_path / 'sweep'}", "model.widths=[64]")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "member 0 differs from the sweep's in model.widths" in lines[0]


def test_a_member_that_diverged_before_the_checkpoint_stays_diverged(tmp_path):
    """Its divergence is in the checkpoint: resumed, it records nothing more, and an
    interrupted sweep does not call it interrupted."""
    diverging = ("optimizer=sgd", "sweep.lr=[0.01,1000]", "sweep.seeds=1", "sweep.max_members=2")
    assert lrbench(tmp_path, *diverging, "hydra.run.dir=reference").returncode == 0
    stopped = lrbench(tmp_path, *diverging, "hydra.run.dir=sweep", fault="epoch:2:TERM")
    assert stopped.returncode == 128 + signal.SIGTERM
    assert read_summary(tmp_path / "sweep" / "1")["status"] == "diverged"
    assert read_summary(tmp_path / "sweep" / "0")["status"] == "interrupted"
    assert lrbench(tmp_path, *diverging, f"resume={tmp_path / 'sweep'}").returncode == 0
    for member in ("0", "1"):
        assert rows(tmp_path / "sweep" / member) == rows(tmp_path / "reference" / member)
        keys = ("status", "steps", "diverged_at_step")
        got, want = (read_summary(tmp_path / d / member) for d in ("sweep", "reference"))
        assert {k: got[k] for k in keys} == {k: want[k] for k in keys}
