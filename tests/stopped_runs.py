"""Runs stopped and resumed, compared with the run never stopped (tests of checkpoints)."""

from __future__ import annotations

import csv
import sys
import types
from pathlib import Path

import pytest

from lrbench.cli import main
from lrbench.runs import read_summary

# digits, 9 steps per epoch: BatchNorm statistics, dropout keys, a schedule and Adam's moments
# all have to come back from the checkpoint for the numbers to match.
TINY = (
    "model.widths=[32]",
    "model.dropout=0.1",
    "model.batch_norm=true",
    "schedule=warmup_cosine",
    "train.epochs=5",
    "train.log_every=4",
    "train.checkpoint_every=1",
    "compile_cache=runs/.cache",
)
STEPS_PER_EPOCH = 9
OUTCOME = ("status", "diverged_at_step", "steps", "epochs", "final", "final_eval_step", "best")


def train_here(work: Path, *args: str) -> int:
    """``lrbench train <args>`` in this process, from ``work`` (its runs/.cache is shared)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(work)
        return main(["train", *args])


def rows(run_dir: Path) -> list[dict]:
    """metrics.csv as text, less the wall-clock column: bitwise comparisons."""
    with open(run_dir / "metrics.csv", newline="") as f:
        return [{k: v for k, v in row.items() if k != "elapsed_s"} for row in csv.DictReader(f)]


def outcome(run_dir: Path) -> dict:
    return {key: read_summary(run_dir)[key] for key in OUTCOME}


def scalars(run_dir: Path) -> dict[str, list]:
    """Every TensorBoard scalar of the run (all its event files, as TensorBoard reads a
    folder), less the wall-clock one."""
    sys.modules.setdefault("tensorboard.compat.notf", types.ModuleType("notf"))  # no TF
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(run_dir))
    accumulator.Reload()
    return {
        tag: [(e.step, e.value) for e in accumulator.Scalars(tag)]
        for tag in accumulator.Tags()["scalars"]
        if tag != "elapsed_s"
    }


def assert_same_as(reference: Path, run_dir: Path) -> None:
    """metrics.csv, summary.json's outcome and the TensorBoard scalars are the reference's."""
    assert rows(run_dir) == rows(reference)
    assert outcome(run_dir) == outcome(reference)
    assert scalars(run_dir) == scalars(reference)
