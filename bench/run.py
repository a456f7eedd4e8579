"""`make bench`: lrbench against baselines measured in the same invocation.

Figures (medians over --repeats, with min-max; ratios against baselines of this run):
  1. steady-state steps/s: lrbench vs hand-written JAX (a) and PyTorch eager (b), digits and
     MNIST MLPs; the MLP's GFLOP/s as a fraction of this machine's matmul GFLOP/s (c)
  2. time from process start to 97% / 98% MNIST test accuracy (MLP, batch 128, Adam 1e-3)
  2b. MNIST CNN steps/s
  3. start-up: `lrbench --help`; process start to the loop and to the first training step
     against `python -c "import jax, optax, flax"` (target: <= 2x)
  4. sweeps: see bench/sweeps.py; the 64-member toy vmap sweep (target: <= 2.5 s wall)
  5. `lrbench compare` over 1,000 run directories
  7. the norm columns' cost: the default run's steps/s against the same with the step's
     norms replaced by constants (target: <= 3%)
  8. `lrbench study`: see bench/study.py; the quick study against the same runs as basic
     Hydra multiruns (target: >= 5x), halving's choice of LR and member-steps (<= 50%)
Writes bench/results/<date>.json and prints one table. --quick: fewer, smaller figures.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from data import MNIST  # noqa: E402  (after the sys.path entry)

IDX = ["dataset.source=idx", f"dataset.path={MNIST}"]
# Steady-state figures: lrbench's train_s includes the final evaluation, which the baselines'
# loops do not do; 1% val and test splits (carved from train) keep it negligible.
SMALL_EVAL = ["dataset.test_split=null", "dataset.val_fraction=0.01", "dataset.test_fraction=0.01"]


def stats(values: list[float]) -> dict:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def repeat(fn: Callable[[], float], n: int) -> dict:
    return stats([fn() for _ in range(n)])


# -------------------------------------------------------------- 1, 2b: steady-state steps/s
def lrbench_steps_per_s(overrides: list[str]) -> float:
    """In process, as `lrbench train`; train_s excludes compiles. Evaluation only at the end,
    as the baselines' steady-state loops do not evaluate."""
    from lrbench.cli import main
    from lrbench.runs import read_summary

    with tempfile.TemporaryDirectory() as tmp:
        code = main(
            [
                "train",
                *overrides,
                "train.eval_every=1000",
                "compile_cache=null",
                f"hydra.run.dir={tmp}",
                "hydra/job_logging=disabled",
            ]
        )
        assert code == 0
        return read_summary(tmp)["steps_per_s"]


def handwritten_steps_per_s(
    workload: str, loop: str, epochs: int = 3, max_steps: int | None = None
) -> float:
    """``max_steps``: epochs of at most that many steps (the slow CNN loops)."""
    import handwritten as hw
    import jax
    import jax.numpy as jnp

    x, y = hw.WORKLOADS[workload]["data"]()
    if max_steps is not None:
        x, y = x[: max_steps * 128], y[: max_steps * 128]
    params, tx, opt_state, apply, make = hw.setup(workload, 128, loop)
    steps = len(y) // 128
    epoch = make(tx, 128, steps, apply=apply)
    x, y = jnp.asarray(x), jnp.asarray(y)
    params, opt_state, losses = epoch(params, opt_state, x, y, jax.random.key(0))  # compile
    losses.block_until_ready()
    start = time.perf_counter()
    for e in range(epochs):
        params, opt_state, losses = epoch(params, opt_state, x, y, jax.random.key(e))
    losses.block_until_ready()
    return epochs * steps / (time.perf_counter() - start)


def torch_steps_per_s(workload: str, threads: int) -> float:
    code = (
        f"import sys; sys.path.insert(0, {str(BENCH)!r}); import torch_baseline as t; "
        f"print(t.steps_per_s({workload!r}, {threads}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def matmul_gflops(m: int = 128, k: int = 256, reps: int = 2000) -> float:
    """(c) what XLA:CPU does at the MLP's matrix sizes: a chain of (m x k) @ (k x k) products,
    each depending on the last, so none can be hoisted or skipped."""
    import jax
    import jax.numpy as jnp

    x = jnp.ones((m, k))
    w = jnp.full((k, k), 1.0 / k)
    f = jax.jit(lambda x, w: jax.lax.fori_loop(0, reps, lambda i, x: x @ w, x))
    f(x, w).block_until_ready()
    start = time.perf_counter()
    f(x, w).block_until_ready()
    return 2 * m * k * k * reps / (time.perf_counter() - start) / 1e9


def mlp_flops_per_step(sizes: list[int], batch: int = 128) -> int:
    """Forward 2·b·in·out per layer, backward twice that."""
    return 6 * batch * sum(a * b for a, b in itertools.pairwise(sizes))


# ---------------------------------------------------------------- 7: the norm columns' cost
NORMS_COST_TARGET = 0.03  # issue 13.8: at most 3% of the digits MLP's steps/s


def steps_per_s_without_norms(overrides: list[str]) -> float:
    """``lrbench_steps_per_s`` with the step's norms replaced by constants (the programs are
    traced anew each run, so they compute none)."""
    import jax.numpy as jnp

    from lrbench.train import step

    zero = jnp.zeros([], jnp.float32)
    real, step.norms = step.norms, lambda *args: (zero, zero, zero)
    try:
        return lrbench_steps_per_s(overrides)
    finally:
        step.norms = real


def norms_cost_figure(reps: int, overrides: list[str]) -> dict:
    """Interleaved repetitions of the run with and without the norms."""
    samples: dict[str, list[float]] = {"with_norms": [], "without_norms": []}
    for _ in range(reps):
        samples["with_norms"].append(lrbench_steps_per_s(overrides))
        samples["without_norms"].append(steps_per_s_without_norms(overrides))
    medians = {k: statistics.median(v) for k, v in samples.items()}
    cost = 1 - medians["with_norms"] / medians["without_norms"]
    return {
        **{k: stats(v) for k, v in samples.items()},
        "cost": cost,
        "cost_target": NORMS_COST_TARGET,
        "target_met": cost <= NORMS_COST_TARGET,
    }


# ---------------------------------------------------------------- 2: time to accuracy
def time_to_targets(rows: list[tuple[float, float]], targets=(0.97, 0.98)) -> dict:
    """rows: (seconds since launch, test accuracy) per epoch -> first time at each target."""
    return {str(t): next((s for s, acc in rows if acc >= t), None) for t in targets}


@contextlib.contextmanager
def launched_run(*overrides: str):
    """`lrbench train <overrides>` as a fresh process; yields (launch unix time, run dir)."""
    with tempfile.TemporaryDirectory() as tmp:
        launched = time.time()
        cmd = [sys.executable, "-m", "lrbench.cli", "train", *overrides, "compile_cache=null"]
        subprocess.run([*cmd, f"hydra.run.dir={tmp}"], check=True, capture_output=True)
        yield launched, tmp


def program_steps_per_s(overrides: list[str], devices: int) -> float:
    """A vmap sweep's compiled program, steps/s, in a process with ``devices`` CPU devices."""
    from lrbench.runs import read_summary

    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "lrbench.cli", "train", *overrides, "compile_cache=null"]
        subprocess.run([*cmd, f"hydra.run.dir={tmp}"], check=True, capture_output=True, env=env)
        return read_summary(Path(tmp) / "0")["program_steps_per_s"]


def lrbench_time_to_accuracy(epochs: int, seed: int = 0) -> dict:
    from lrbench.runs import read_metrics, read_summary

    # val_split=test: train on all 60,000 images, as the baselines do.
    overrides = [
        "experiment=mnist_mlp",
        *IDX,
        "dataset.val_split=test",
        f"train.epochs={epochs}",
        f"seed={seed}",
    ]
    with launched_run(*overrides) as (launched, tmp):
        loop_start = read_summary(tmp)["loop_started_unix"]
        rows = [
            (loop_start + r["elapsed_s"] - launched, r["test_accuracy"])
            for r in read_metrics(tmp)
            if r["test_accuracy"] is not None
        ]
    return time_to_targets(rows)


def baseline_time_to_accuracy(script: str, epochs: int, *args: str) -> dict:
    launched = time.time()
    out = subprocess.run(
        [sys.executable, str(BENCH / script), "mnist_mlp", "--epochs", str(epochs), *args],
        capture_output=True,
        text=True,
        check=True,
    )
    records = [json.loads(line) for line in out.stdout.splitlines()]
    return time_to_targets([(r["unix"] - launched, r["test_accuracy"]) for r in records])


def time_to_accuracy_figure(reps: int, epochs: int) -> dict:
    """Repetition i uses seed i in every program: whether 98% is reached within the epochs
    depends on the seed, so each target reports how many seeds reached it."""
    rows: dict[str, list] = {
        "lrbench": [],
        "handwritten_jax": [],
        "pytorch_1t": [],
        "pytorch_2t": [],
    }
    for seed in range(reps):
        rows["lrbench"].append(lrbench_time_to_accuracy(epochs, seed))
        seeded = ["--seed", str(seed)]
        rows["handwritten_jax"].append(baseline_time_to_accuracy("handwritten.py", epochs, *seeded))
        for t in (1, 2):
            rows[f"pytorch_{t}t"].append(
                baseline_time_to_accuracy("torch_baseline.py", epochs, "--threads", str(t), *seeded)
            )
    summary = {}
    for who, runs in rows.items():
        for target in ("0.97", "0.98"):
            times = [r[target] for r in runs if r[target] is not None]
            summary[f"{who}@{target}"] = (stats(times) if times else {}) | {
                "reached": f"{len(times)}/{len(runs)}"
            }
    return summary


# ---------------------------------------------------------------- 3, 5: start-up, compare
def wall(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - start


IMPORT_BASELINE = [sys.executable, "-c", "import jax, optax, flax"]
FIRST_STEP_TARGET = 2.0  # issue 13.4: spawn to the first step <= 2x the import baseline


def first_step_s() -> dict:
    """The default run (one epoch, compile cache off) launched as a fresh process: seconds
    from the spawn to the training loop's start (imports, Hydra, data, initialization), and
    to its first step (summary.json's ``first_step_unix``: the first epoch's program compiled
    and its steps dispatched; the evaluation's compile comes after it). ``compile_s``: every
    compile of the run, the evaluation's included."""
    from lrbench.runs import read_summary

    with launched_run("train.epochs=1") as (launched, tmp):
        summary = read_summary(tmp)
        return {
            "to_loop_start_s": summary["loop_started_unix"] - launched,
            "compile_s": summary["compile_s"],
            "to_first_step_s": summary["first_step_unix"] - launched,
        }


def startup_figure(reps: int) -> dict:
    """3: `lrbench --help`, and the default run's first step against the import baseline
    (`python -c "import jax, optax, flax"`), measured in interleaved repetitions."""
    help_s, import_s, runs = [], [], []
    for _ in range(reps):
        help_s.append(wall([sys.executable, "-m", "lrbench.cli", "--help"]))
        import_s.append(wall(IMPORT_BASELINE))
        runs.append(first_step_s())
    first_step = [run["to_first_step_s"] for run in runs]
    ratio = statistics.median(first_step) / statistics.median(import_s)
    return {
        "lrbench_help": stats(help_s),
        "import_jax_optax_flax": stats(import_s),
        "to_loop_start": stats([run["to_loop_start_s"] for run in runs]),
        "compile": stats([run["compile_s"] for run in runs]),
        "to_first_step": stats(first_step),
        "first_step_vs_import": ratio,
        "first_step_vs_import_target": FIRST_STEP_TARGET,
        "first_step_target_met": ratio <= FIRST_STEP_TARGET,
    }


def fake_runs(root: Path, n: int) -> None:
    """n run directories with the files of real runs (copied from one tiny real run)."""
    from lrbench.cli import main

    template = root / "template"
    assert (
        main(["train", "train.epochs=1", f"hydra.run.dir={template}", "hydra/job_logging=disabled"])
        == 0
    )
    for i in range(n):
        run = root / "runs" / f"{i:04d}"
        run.mkdir(parents=True)
        for name in ("config.yaml", "metrics.csv", "summary.json"):
            text = (template / name).read_text()
            if name == "config.yaml":
                text = text.replace("lr: 0.001", f"lr: {10 ** -(1 + i % 4)}").replace(
                    "\nseed: 0", f"\nseed: {i % 3}"
                )
            (run / name).write_text(text)


# ---------------------------------------------------------------- the run
def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="< 2 minutes: fewer figures")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    reps = 3 if args.quick else args.repeats
    mnist = MNIST.exists()
    results: dict = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "quick": args.quick,
        "cpus": os.cpu_count(),
        "figures": {},
    }
    fig = results["figures"]

    suffix = "-quick" if args.quick else ""
    out = args.out or BENCH / "results" / f"{datetime.date.today()}{suffix}.json"
    out.parent.mkdir(exist_ok=True)

    def report(name: str, value) -> None:
        """Print a figure and save everything so far (a failing later figure loses none)."""
        fig[name] = value
        print(f"{name}: {json.dumps(value)}", flush=True)
        out.write_text(json.dumps(results, indent=2))

    # 1. steady-state steps/s (interleaved repetitions, so drift hits all alike)
    workloads = [("digits_mlp", [], [64, 256, 256, 10])]
    if mnist and not args.quick:
        workloads.append(
            (
                "mnist_mlp",
                ["experiment=mnist_mlp", *IDX, *SMALL_EVAL, "train.epochs=2"],
                [784, 256, 256, 10],
            )
        )
    for name, overrides, sizes in workloads:
        samples: dict[str, list[float]] = {}
        for _ in range(reps):
            samples.setdefault("lrbench", []).append(
                lrbench_steps_per_s(overrides or ["train.epochs=30"])
            )
            samples.setdefault("handwritten_jax", []).append(handwritten_steps_per_s(name, "scan"))
            for threads in (1, 2):
                samples.setdefault(f"pytorch_{threads}t", []).append(
                    torch_steps_per_s(name, threads)
                )
        medians = {k: statistics.median(v) for k, v in samples.items()}
        gflops = matmul_gflops()
        report(
            f"steps_per_s/{name}",
            {
                **{k: stats(v) for k, v in samples.items()},
                "lrbench_vs_handwritten": medians["lrbench"] / medians["handwritten_jax"],
                "lrbench_vs_pytorch_2t": medians["lrbench"] / medians["pytorch_2t"],
                "matmul_gflops": gflops,
                "lrbench_gflops": medians["lrbench"] * mlp_flops_per_step(sizes) / 1e9,
            },
        )

    # 2. time to accuracy from process start (MNIST MLP)
    if mnist and not args.quick:
        report("time_to_accuracy_s/mnist_mlp", time_to_accuracy_figure(reps, epochs=10))

    # 2b. the MNIST CNN
    if mnist and not args.quick:
        cnn = {
            "lrbench": [],
            "handwritten_jax_step": [],
            "handwritten_jax_scan": [],
            "pytorch_2t": [],
        }
        for _ in range(max(2, reps // 2)):
            cnn["lrbench"].append(
                lrbench_steps_per_s(
                    ["dataset=mnist", *IDX, *SMALL_EVAL, "model=cnn", "train.steps=150"]
                )
            )
            cnn["handwritten_jax_step"].append(
                handwritten_steps_per_s("mnist_cnn", "step", 1, max_steps=60)
            )
            cnn["pytorch_2t"].append(torch_steps_per_s("mnist_cnn", 2))
        cnn["handwritten_jax_scan"].append(
            handwritten_steps_per_s("mnist_cnn", "scan", 1, max_steps=20)
        )
        report("steps_per_s/mnist_cnn", {k: stats(v) for k, v in cnn.items()})

    # 3. start-up
    report("startup_s", startup_figure(reps))

    # 5. compare over 1,000 run directories
    with tempfile.TemporaryDirectory() as tmp:
        n = 200 if args.quick else 1000
        fake_runs(Path(tmp), n)
        report(
            f"compare_s/{n}_runs",
            repeat(
                lambda: wall(
                    [
                        sys.executable,
                        "-m",
                        "lrbench.cli",
                        "compare",
                        f"{tmp}/runs",
                        "-o",
                        f"{tmp}/all.csv",
                    ]
                ),
                reps,
            ),
        )

    # 6. meshes (docs/scaling.md): the cost of mesh=data on one real device, and a vmap sweep
    # split over 2 CPU devices against the same sweep on one
    if not args.quick:
        samples = {"single": [], "data_1_device": []}
        for _ in range(reps):
            samples["single"].append(lrbench_steps_per_s(["train.epochs=30"]))
            samples["data_1_device"].append(lrbench_steps_per_s(["train.epochs=30", "mesh=data"]))
        medians = {k: statistics.median(v) for k, v in samples.items()}
        report(
            "mesh/data_on_one_device",
            {
                **{k: stats(v) for k, v in samples.items()},
                "overhead": 1 - medians["data_1_device"] / medians["single"],
            },
        )
        sweep = [
            "sweep=vmap",
            "sweep.lr=[1e-4,3e-4,1e-3,3e-3,1e-2,3e-2,1e-1,3e-1]",
            "train.epochs=20",
        ]
        sharded = {"one_device": [], "members_on_2_devices": []}
        for _ in range(reps):
            for key, mesh in (
                ("one_device", "mesh=single"),
                ("members_on_2_devices", "mesh=members"),
            ):
                sharded[key].append(program_steps_per_s([*sweep, mesh], devices=2))
        medians = {k: statistics.median(v) for k, v in sharded.items()}
        report(
            "mesh/vmap_sweep_8_members",
            {
                **{k: stats(v) for k, v in sharded.items()},
                "speedup": medians["members_on_2_devices"] / medians["one_device"],
            },
        )

    # 7. the norm columns' cost on the default run
    if not args.quick:
        report("norms_cost/digits_mlp", norms_cost_figure(reps, ["train.epochs=100"]))

    # 4. sweeps: the 64-member toy vmap sweep against its target, then every workload and
    # launcher (quick: toy_16 only)
    import sweeps

    report("sweep_toy_64_vmap_s", sweeps.toy_vmap_figure(reps))
    report(
        "sweeps_wall_s",
        sweeps.measure(
            1,  # one repetition: a full sweep figure takes minutes
            {"toy_16": sweeps.WORKLOADS["toy_16"]} if args.quick else sweeps.WORKLOADS,
        ),
    )

    # 8. lrbench study (bench/study.py): the quick study against its runs as basic multiruns
    # (target: >= 5x faster), and halving's LRs and member-steps (quick: toy, 3 optimizers)
    import study

    report("study_quick", study.figure(args.quick))

    print_table(results)
    print(f"wrote {out}")


def print_table(results: dict) -> None:
    print("\nfigure                                  value")
    for name, value in results["figures"].items():
        if isinstance(value, dict):
            for key, v in value.items():
                shown = v["median"] if isinstance(v, dict) and "median" in v else v
                if isinstance(shown, float):
                    shown = f"{shown:.3g}"
                print(f"{name + ' ' + key:<60.60} {shown}")


if __name__ == "__main__":
    main()
