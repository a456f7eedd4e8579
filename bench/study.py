"""`lrbench study` against the same runs as basic Hydra multiruns, and what pruning costs.

Figures (end-to-end wall time from the shell, each with a fresh compilation cache):
  - the quick study (``--quick``: toy only, three optimizers) as `lrbench study`;
  - the same runs as `lrbench train -m` basic multiruns, one per unit and phase (tuning grid x
    seeds; confirmation seeds at the chosen LR; `optimizer.lr=auto` runs each do their range
    test) (target: the study >= 5x faster);
  - the study with `study.prune.name=halving`: the LR chosen per unit against the full grid's
    (target: the same in every unit) and its tuning member-steps (target: <= 50%);
  - both on Hydra's joblib launcher (`hydra/launcher=parallel`, 2 jobs at once): the study's
    units, and each multirun's jobs, two at a time.
Usage: python bench/study.py [--quick] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

QUICK = ["study.problems=[toy]", "study.optimizers=[sgd,adam,prodigy]"]
SPEEDUP_TARGET = 5.0
PARALLEL = "hydra/launcher=parallel"  # conf/hydra/launcher/parallel.yaml: 2 jobs at once
MEMBER_STEPS_TARGET = 0.5


def lrbench(command: str, *args: str) -> float:
    """Wall seconds of one `lrbench <command> <args>` process."""
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "lrbench.cli", command, *args], check=True, capture_output=True
    )
    return time.perf_counter() - start


def study(out: Path, *args: str) -> tuple[float, dict]:
    """Wall seconds of the study and its study.json."""
    seconds = lrbench("study", *args, f"hydra.sweep.dir={out}", f"compile_cache={out}.cache")
    return seconds, json.loads((out / "study.json").read_text())


def multirun_commands(record: dict) -> list[list[str]]:
    """`lrbench train -m` argument lists running the study's runs one job each."""
    config = record["study"]
    variants = config.get("variants") or {}
    problem_overrides = config.get("problem_overrides") or {}
    tune_seeds = ",".join(str(s) for s in range(config["tune_seeds"]))
    first = config["confirm_seed"]
    confirm_seeds = ",".join(str(first + k) for k in range(config["confirm_seeds"]))
    commands = []
    for unit in record["units"]:
        entry = unit["optimizer"]
        base = [
            f"experiment={unit['problem']}",
            *problem_overrides.get(unit["problem"], []),
            *variants.get(entry, [f"optimizer={entry}"]),
            "train.progress=off",
            f"train.norms={config['norms']}",  # as the study's members compute them
        ]
        if unit["how"] == "grid":
            grid = ",".join(repr(p["lr"]) for p in unit["sensitivity"])
            commands.append([*base, f"optimizer.lr={grid}", f"seed={tune_seeds}"])
        lr = [] if unit["how"] == "auto" else [f"optimizer.lr={unit['lr']!r}"]
        commands.append([*base, *lr, f"seed={confirm_seeds}"])
    return commands


def multirun(record: dict, out: Path, *launcher: str) -> float:
    """Wall seconds of the study's runs as multiruns (basic, or on ``launcher``) sharing one
    compilation cache."""
    seconds = 0.0
    for k, args in enumerate(multirun_commands(record)):
        sweep = [f"hydra.sweep.dir={out}/{k}", f"compile_cache={out}.cache"]
        seconds += lrbench("train", "-m", *args, *launcher, *sweep)
    return seconds


def pruning(full: dict, halved: dict) -> dict:
    """Per grid unit: the LR each chose, and the tuning member-steps of the pruned study."""
    grid = [u for u in full["units"] if u["how"] == "grid"]
    chosen = {(u["problem"], u["optimizer"]): u["lr"] for u in halved["units"]}
    differ = [
        f"{u['problem']}/{u['optimizer']}: {u['lr']:g} vs {chosen[u['problem'], u['optimizer']]:g}"
        for u in grid
        if chosen[u["problem"], u["optimizer"]] != u["lr"]
    ]
    spent = sum(u["tuning_cost"]["member_steps"] for u in halved["units"] if u["how"] == "grid")
    whole = sum(u["tuning_cost"]["member_steps"] for u in grid)
    return {
        "units": len(grid),
        "same_lr": len(grid) - len(differ),
        "differ": differ,
        "member_steps_fraction": spent / whole,
        "member_steps_target": MEMBER_STEPS_TARGET,
    }


def figure(quick: bool) -> dict:
    extra = QUICK if quick else []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        study_s, full = study(root / "full", *extra)
        halving_s, halved = study(root / "halved", *extra, "study.prune.name=halving")
        multirun_s = multirun(full, root / "multirun")
        parallel_s, _ = study(root / "parallel", *extra, PARALLEL)
        multirun_parallel_s = multirun(full, root / "multirun_parallel", PARALLEL)
    return {
        "study_s": study_s,
        "multirun_s": multirun_s,
        "speedup": multirun_s / study_s,
        "speedup_target": SPEEDUP_TARGET,
        "parallel": {
            "study_s": parallel_s,
            "multirun_s": multirun_parallel_s,
            "speedup": multirun_parallel_s / parallel_s,
        },
        "halving_study_s": halving_s,
        "halving": pruning(full, halved),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    result = figure(args.quick)
    print(json.dumps(result, indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
