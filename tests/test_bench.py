"""The benchmark scripts work (on tiny sizes; the figures themselves come from `make bench`)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import types

import numpy as np
import pytest
from conftest import REPO

sys.path.insert(0, str(REPO / "bench"))
import data as bench_data
import run as bench_run
import study as bench_study
import sweeps


def test_handwritten_baseline_trains_digits_and_reports_steps_over_its_timed_epochs(monkeypatch):
    """steps/s is the timed epochs' steps over the clock between them (the compiling call is
    not timed), and those epochs train: the loss falls."""
    import handwritten as hw

    made, losses = hw.setup, []

    def setup(*args, **kwargs):
        params, tx, opt_state, apply, make = made(*args, **kwargs)

        def counted_make(*make_args, **make_kwargs):
            epoch = make(*make_args, **make_kwargs)

            def run(*epoch_args):
                out = epoch(*epoch_args)
                losses.append(np.asarray(out[-1]))
                return out

            return run

        return params, tx, opt_state, apply, counted_make

    clock = iter([10.0, 12.5])
    monkeypatch.setattr(hw, "setup", setup)
    monkeypatch.setattr(bench_run, "time", types.SimpleNamespace(perf_counter=lambda: next(clock)))
    steps_per_s = bench_run.handwritten_steps_per_s("digits_mlp", "scan", epochs=3)
    steps = 1257 // 128  # the digits rows (as lrbench's train split) in batches of 128
    assert steps_per_s == pytest.approx(3 * steps / 2.5)
    assert len(losses) == 1 + 3 and all(len(epoch) == steps for epoch in losses)
    assert np.isfinite(losses).all() and losses[-1].mean() < 0.7 * losses[0].mean()


def _finite_numbers(tree):
    if isinstance(tree, dict):
        for value in tree.values():
            yield from _finite_numbers(value)
    elif isinstance(tree, list):
        for value in tree:
            yield from _finite_numbers(value)
    elif isinstance(tree, int | float) and not isinstance(tree, bool):
        yield tree


def test_bench_figures_are_the_quotients_of_the_measurements_they_name(monkeypatch, tmp_path):
    """`bench/run.py --quick` with each measurement replaced by known numbers: every ratio in
    the JSON is the quotient of the medians it names, the programs are measured in
    interleaved repetitions, and each program's samples are its own."""
    calls = []

    def measured(name, values):
        values = iter(values)

        def measure(*args, **kwargs):
            calls.append((name, *args))
            return next(values)

        return measure

    monkeypatch.setattr(bench_run, "lrbench_steps_per_s", measured("lrbench", [300, 100, 200]))
    monkeypatch.setattr(bench_run, "handwritten_steps_per_s", measured("jax", [50, 80, 40]))
    torch = {1: iter([7.0, 9.0, 8.0]), 2: iter([20.0, 30.0, 25.0])}

    def torch_steps_per_s(workload, threads):
        calls.append((f"torch_{threads}t", workload))
        return next(torch[threads])

    monkeypatch.setattr(bench_run, "torch_steps_per_s", torch_steps_per_s)
    monkeypatch.setattr(bench_run, "matmul_gflops", lambda: 150.0)
    imports = iter([1.2, 0.9, 1.0])

    def wall(cmd):
        if cmd == bench_run.IMPORT_BASELINE:
            calls.append(("import",))
            return next(imports)
        return 0.5

    monkeypatch.setattr(bench_run, "wall", wall)
    first_steps = iter([(2.0, 2.8), (1.5, 2.1), (2.5, 3.2)])

    def first_step_s():
        calls.append(("first_step",))
        to_loop, to_first_step = next(first_steps)
        return {"to_loop_start_s": to_loop, "compile_s": 1.0, "to_first_step_s": to_first_step}

    monkeypatch.setattr(bench_run, "first_step_s", first_step_s)
    monkeypatch.setattr(bench_run, "fake_runs", lambda root, n: None)
    monkeypatch.setattr(sweeps, "measure", lambda repeats, workloads: {"toy_16": {"n": 1}})
    toy = {"wall_s": {"median": 3.0}, "target_s": 2.5, "vs_target": 1.2, "target_met": False}
    monkeypatch.setattr(sweeps, "toy_vmap_figure", lambda repeats: toy)
    study_calls = []
    study_figure = {"study_s": 4.0, "multirun_s": 20.0, "speedup": 5.0, "speedup_target": 5.0}

    def study(quick):  # the real one runs two quick studies and their multirun (minutes)
        study_calls.append(quick)
        return study_figure

    monkeypatch.setattr(bench_study, "figure", study)
    out = tmp_path / "quick.json"
    monkeypatch.setattr(sys, "argv", ["run.py", "--quick", "--out", str(out)])
    bench_run.main()

    results = json.loads(out.read_text())
    figure = results["figures"]["steps_per_s/digits_mlp"]
    assert figure["lrbench"] == {"median": 200, "min": 100, "max": 300, "n": 3}
    assert figure["handwritten_jax"] == {"median": 50, "min": 40, "max": 80, "n": 3}
    assert figure["pytorch_1t"]["median"] == 8.0 and figure["pytorch_2t"]["median"] == 25.0
    assert figure["lrbench_vs_handwritten"] == pytest.approx(200 / 50)
    assert figure["lrbench_vs_pytorch_2t"] == pytest.approx(200 / 25)
    flops = bench_run.mlp_flops_per_step([64, 256, 256, 10])
    assert figure["lrbench_gflops"] == pytest.approx(200 * flops / 1e9)
    assert figure["matmul_gflops"] == 150.0
    steady = [call for call in calls if call[0] in ("lrbench", "jax", "torch_1t", "torch_2t")]
    one_round = [
        ("lrbench", ["train.epochs=30"]),
        ("jax", "digits_mlp", "scan"),
        ("torch_1t", "digits_mlp"),
        ("torch_2t", "digits_mlp"),
    ]
    assert steady == 3 * one_round  # interleaved: drift hits every program alike
    startup = results["figures"]["startup_s"]
    assert startup["import_jax_optax_flax"] == {"median": 1.0, "min": 0.9, "max": 1.2, "n": 3}
    assert startup["to_first_step"]["median"] == pytest.approx(2.8)  # 2.8, 2.1, 3.2
    assert startup["to_loop_start"]["median"] == 2.0
    assert startup["first_step_vs_import"] == pytest.approx(2.8 / 1.0)
    assert startup["first_step_vs_import_target"] == 2.0
    assert startup["first_step_target_met"] is False
    startup_calls = [call for call in calls if call[0] in ("import", "first_step")]
    assert startup_calls == 3 * [("import",), ("first_step",)]  # interleaved
    assert results["figures"]["sweep_toy_64_vmap_s"] == toy
    assert results["figures"]["study_quick"] == study_figure and study_calls == [True]
    numbers = list(_finite_numbers(results["figures"]))
    assert numbers and all(math.isfinite(v) for v in numbers)


def test_stored_results_ratios_are_quotients_of_their_medians():
    """The result files docs/benchmarks.md quotes: each steady-state ratio and GFLOP/s figure is
    computed from the medians beside it (rounded in the hand-edited quiet-machine file)."""
    sizes = {"digits_mlp": [64, 256, 256, 10], "mnist_mlp": [784, 256, 256, 10]}
    checked = 0
    for path in sorted((REPO / "bench" / "results").glob("*.json")):
        for name, figure in json.loads(path.read_text())["figures"].items():
            if "lrbench_vs_handwritten" not in figure:
                continue
            medians = {k: v["median"] for k, v in figure.items() if isinstance(v, dict)}
            assert medians["lrbench"] != medians["handwritten_jax"], (path.name, name)
            expected = {
                "lrbench_vs_handwritten": medians["lrbench"] / medians["handwritten_jax"],
                "lrbench_vs_pytorch_2t": medians["lrbench"] / medians["pytorch_2t"],
                "lrbench_gflops": medians["lrbench"]
                * bench_run.mlp_flops_per_step(sizes[name.split("/")[1]])
                / 1e9,
            }
            for key, value in expected.items():
                assert figure[key] == pytest.approx(value, rel=2e-3), (path.name, name, key)
            checked += 1
    assert checked >= 4


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


def test_toy_sweep_figure_times_warm_runs_against_the_target(monkeypatch):
    """The first run fills a compile cache of its own and is reported apart; the timed runs
    are the 64-member toy vmap sweep, each into a run directory of its own, reading it."""
    runs = []
    times = iter([9.0, 2.0, 3.0, 2.4])

    def wall(args):
        runs.append(args)
        return next(times)

    monkeypatch.setattr(sweeps, "wall", wall)
    figure = sweeps.toy_vmap_figure(3)
    assert figure["first_run_s"] == 9.0
    assert figure["wall_s"] == {"median": 2.4, "min": 2.0, "max": 3.0, "n": 3}
    assert figure["target_s"] == 2.5 and figure["target_met"] is True
    assert figure["vs_target"] == pytest.approx(2.4 / 2.5)
    for args in runs:
        assert "sweep=vmap" in args and "experiment=toy" in args
        (lrs,) = [a for a in args if a.startswith("sweep.lr=")]
        assert len(lrs.split(",")) == 64
    caches = {a for args in runs for a in args if a.startswith("compile_cache=")}
    run_dirs = {a for args in runs for a in args if a.startswith("hydra.run.dir=")}
    assert len(caches) == 1 and len(run_dirs) == 4


def test_norms_cost_is_one_less_the_quotient_of_the_medians(monkeypatch):
    """Interleaved runs with and without the norms; the second runs with the step's norms
    replaced by constants, and the step gets its own back after."""
    from lrbench.train import step

    real = step.norms
    samples = {True: iter([100.0, 90.0, 95.0]), False: iter([100.0, 98.0, 102.0])}
    calls = []

    def steps_per_s(overrides):
        with_norms = step.norms is real
        calls.append(with_norms)
        return next(samples[with_norms])

    monkeypatch.setattr(bench_run, "lrbench_steps_per_s", steps_per_s)
    figure = bench_run.norms_cost_figure(3, ["train.epochs=100"])
    assert calls == 3 * [True, False]
    assert step.norms is real
    assert figure["with_norms"]["median"] == 95.0 and figure["without_norms"]["median"] == 100.0
    assert figure["cost"] == pytest.approx(0.05)
    assert figure["cost_target"] == 0.03 and figure["target_met"] is False
