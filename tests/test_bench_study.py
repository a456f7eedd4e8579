"""bench/study.py: the multirun baseline runs the study's own runs, and the pruning figure
compares the right LRs and member-steps (hand-made study records; the figure itself comes
from `make bench`)."""

from __future__ import annotations

import sys

import pytest
from conftest import REPO

sys.path.insert(0, str(REPO / "bench"))
import study as bench_study


def unit(problem, optimizer, how, lr, steps, lrs=()):
    return {
        "problem": problem,
        "optimizer": optimizer,
        "how": how,
        "lr": lr,
        "sensitivity": [{"lr": x} for x in lrs],
        "tuning_cost": {"member_steps": steps},
    }


RECORD = {
    "study": {
        "tune_seeds": 2,
        "confirm_seeds": 3,
        "confirm_seed": 1000,
        "variants": {"adam_auto": ["optimizer=adam", "optimizer.lr=auto"]},
        "problem_overrides": {"toy": ["train.epochs=3"]},
        "norms": "every_step",
    },
    "units": [
        unit("toy", "sgd", "grid", 0.1, 600, lrs=(0.01, 0.1, 1.0)),
        unit("toy", "prodigy", "free", 1.0, 0),
        unit("toy", "adam_auto", "auto", 0.02, 100),
    ],
}


def test_the_multirun_baseline_runs_every_run_of_the_study():
    commands = bench_study.multirun_commands(RECORD)
    base = ["experiment=toy", "train.epochs=3"]
    # the study's norms, as its members compute them
    progress = ("train.progress=off", "train.norms=every_step")
    assert commands == [
        [*base, "optimizer=sgd", *progress, "optimizer.lr=0.01,0.1,1.0", "seed=0,1"],
        [*base, "optimizer=sgd", *progress, "optimizer.lr=0.1", "seed=1000,1001,1002"],
        [*base, "optimizer=prodigy", *progress, "optimizer.lr=1.0", "seed=1000,1001,1002"],
        # each auto run does its own range test, as a user's multirun would
        [*base, "optimizer=adam", "optimizer.lr=auto", *progress, "seed=1000,1001,1002"],
    ]


def test_pruning_figure_compares_the_grid_units():
    halved = {
        "units": [
            unit("toy", "sgd", "grid", 1.0, 240),
            unit("toy", "prodigy", "free", 1.0, 0),
            unit("toy", "adam_auto", "auto", 0.02, 100),
        ]
    }
    figure = bench_study.pruning(RECORD, halved)
    assert figure["units"] == 1 and figure["same_lr"] == 0
    assert figure["differ"] == ["toy/sgd: 0.1 vs 1"]
    assert figure["member_steps_fraction"] == pytest.approx(240 / 600)
