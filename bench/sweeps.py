"""Sweep wall time from the shell: `sweep=vmap` vs Hydra multirun (basic, joblib).

Each figure is the end-to-end wall time of one `lrbench train` command (process start,
imports, compiles, training, writing every run directory), median of --repeats runs.
Usage: python bench/sweeps.py [--repeats 3] [--quick] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

WORKLOADS = {  # name -> (overrides, number of learning rates)
    "digits_mlp_16": (["train.epochs=20"], 16),
    "toy_16": (["experiment=toy"], 16),
    "toy_64": (["experiment=toy"], 64),
}


def lrs(n: int) -> str:
    return ",".join(f"{lr:.6g}" for lr in np.logspace(-4, -1, n))


def commands(overrides: list[str], n: int, out: Path) -> dict[str, list[str]]:
    grid = lrs(n)
    multirun = ["-m", f"optimizer.lr={grid}", *overrides, f"hydra.sweep.dir={out}/m"]
    return {
        "vmap": ["sweep=vmap", f"sweep.lr=[{grid}]", *overrides, f"hydra.run.dir={out}/v"],
        "basic": [*multirun, f"compile_cache={out}/cache"],
        "basic_no_cache": [*multirun, "compile_cache=null"],
        "joblib": [*multirun, "hydra/launcher=parallel", f"compile_cache={out}/cache"],
    }


def wall(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "lrbench.cli", "train", *args], check=True, capture_output=True
    )
    return time.perf_counter() - start


TOY_64_TARGET_S = 2.5  # issue 13.4: the 64-member toy vmap sweep, wall time on 2 cores


def toy_vmap_figure(repeats: int) -> dict:
    """The 64-member toy `sweep=vmap` (30 epochs), end to end from the shell, against its
    target. The compile cache is the default's, in a folder of its own: the first run fills
    it (``first_run_s``: compiles and cache writes), the timed repetitions read it, as a
    sweep run again does."""
    overrides, n = WORKLOADS["toy_64"]
    with tempfile.TemporaryDirectory() as tmp:

        def run(i: int) -> float:
            vmap = commands(overrides, n, Path(tmp) / str(i))["vmap"]
            return wall([*vmap, f"compile_cache={tmp}/cache"])

        first = run(0)
        times = [run(i) for i in range(1, repeats + 1)]
    median = statistics.median(times)
    return {
        "members": n,
        "first_run_s": first,
        "wall_s": {
            "median": median,
            "min": min(times),
            "max": max(times),
            "n": len(times),
        },
        "target_s": TOY_64_TARGET_S,
        "vs_target": median / TOY_64_TARGET_S,
        "target_met": median <= TOY_64_TARGET_S,
    }


def measure(repeats: int, workloads: dict) -> dict:
    results = {}
    for name, (overrides, n) in workloads.items():
        times: dict[str, list[float]] = {}
        for _ in range(repeats):
            with tempfile.TemporaryDirectory() as tmp:
                for method, args in commands(overrides, n, Path(tmp)).items():
                    times.setdefault(method, []).append(wall(args))
        medians = {m: statistics.median(t) for m, t in times.items()}
        results[name] = {
            "members": n,
            "median_s": medians,
            "min_s": {m: min(t) for m, t in times.items()},
            "max_s": {m: max(t) for m, t in times.items()},
            "speedup_of_vmap": {m: medians[m] / medians["vmap"] for m in medians},
        }
        print(name, json.dumps(results[name]["median_s"]), flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="toy_16 only, one repeat")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    workloads = {"toy_16": WORKLOADS["toy_16"]} if args.quick else WORKLOADS
    results = measure(1 if args.quick else args.repeats, workloads)
    print(
        f"{'workload':<16}{'vmap s':>9}{'basic s':>9}{'basic/vmap':>12}{'no cache/vmap':>15}"
        f"{'joblib/vmap':>13}"
    )
    for name, r in results.items():
        m, x = r["median_s"], r["speedup_of_vmap"]
        print(
            f"{name:<16}{m['vmap']:>9.1f}{m['basic']:>9.1f}{x['basic']:>12.1f}"
            f"{x['basic_no_cache']:>15.1f}{x['joblib']:>13.1f}"
        )
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
