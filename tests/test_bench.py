"""The benchmark scripts work (on tiny sizes; the figures themselves come from `make bench`)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO

sys.path.insert(0, str(REPO / "bench"))
import data as bench_data
import run as bench_run
import sweeps


def test_handwritten_baseline_trains_digits():
    assert bench_run.handwritten_steps_per_s("digits_mlp", "scan", epochs=1) > 0


@pytest.mark.skipif(not bench_data.MNIST.exists(), reason="no MNIST IDX files at ../shared")
def test_handwritten_baseline_reports_time_to_accuracy_on_mnist():
    out = subprocess.run(
        [sys.executable, str(REPO / "bench" / "handwritten.py"), "mnist_mlp", "--epochs", "1"],
        capture_output=True,
        text=True,
        check=True,
    )
    (record,) = [json.loads(line) for line in out.stdout.splitlines()]
    assert record["epoch"] == 1 and record["test_accuracy"] > 0.9


def test_time_to_targets_takes_the_first_epoch_at_each_target():
    rows = [(1.0, 0.95), (2.0, 0.975), (3.0, 0.97), (4.0, 0.981)]
    assert bench_run.time_to_targets(rows) == {"0.97": 2.0, "0.98": 4.0}
    assert bench_run.time_to_targets(rows[:1]) == {"0.97": None, "0.98": None}


def test_mlp_flop_count_matches_the_layer_products():
    assert bench_run.mlp_flops_per_step([64, 256, 256, 10], batch=1) == 6 * (
        64 * 256 + 256 * 256 + 256 * 10
    )


def test_sweep_grid_is_log_spaced_from_1e_4_to_1e_1():
    grid = [float(v) for v in sweeps.lrs(16).split(",")]
    assert len(grid) == 16 and grid[0] == pytest.approx(1e-4) and grid[-1] == pytest.approx(0.1)
    assert np.allclose(np.diff(np.log10(grid)), 0.2)
