"""What a run reports in summary.json besides its metrics: times, environment, versions.

``run_summary`` assembles the summary of a single run and of a sweep member alike (the
fields are documented in docs/design.md "The run directory").
"""

from __future__ import annotations

import time

import jax
import numpy as np

from lrbench.train.plan import Plan
from lrbench.train.recorder import Recorder
from lrbench.train.setup import Setup
from lrbench.train.state import count_params

TIMES = ("wall_s", "load_s", "setup_s", "compile_s", "train_s")


def timing(
    *, start: float, setup_s: float, compile_s: float, loop_s: float, steps: int, load_s: float
) -> dict:
    """``start``: when building began (perf_counter); ``load_s`` (reading the data, before
    ``start``) counts in ``wall_s``; training time is the loop's less its compiles."""
    train_s = max(loop_s - compile_s, 1e-9)
    return {
        "wall_s": round(time.perf_counter() - start + load_s, 4),
        "load_s": round(load_s, 4),
        "setup_s": round(setup_s, 4),
        "compile_s": round(compile_s, 4),
        "train_s": round(train_s, 4),
        "steps_per_s": round(steps / train_s, 2),
    }


def carry_timing(current: dict, earlier: dict | None, steps: int) -> dict:
    """A resumed run's times: those up to its checkpoint plus this process's (the work
    lost between the checkpoint and the stop is not counted)."""
    if not earlier:
        return current
    total = {key: round(current[key] + earlier[key], 4) for key in TIMES}
    return total | {"steps_per_s": round(steps / max(total["train_s"], 1e-9), 2)}


def versions() -> dict[str, str]:
    import flax
    import optax

    return {
        "jax": jax.__version__,
        "optax": optax.__version__,
        "flax": flax.__version__,
        "numpy": np.__version__,
    }


def environment(setup: Setup, params) -> dict:
    layout = setup.layout().shape
    return {
        "n_params": count_params(params),
        "n_train": setup.dataset.n_train,
        "versions": versions(),
        "backend": setup.device.platform,
        "device": str(setup.device.device_kind),
        "devices": 1 if layout is None else layout["members"] * layout["data"],
        "processes": jax.process_count(),
        "mesh": layout,
    }


def run_summary(
    *,
    recorder: Recorder,
    plan: Plan,
    times: dict,
    loop: str,
    loop_started_unix: float,
    first_step_unix: float | None,
    setup: Setup,
    params,
    sweep: dict | None = None,
) -> dict:
    """One run's summary.json (a sweep member's names its place in ``sweep``)."""
    summary = (
        recorder.outcome(plan)
        | times
        | {"loop": loop, "loop_started_unix": round(loop_started_unix, 4)}
    )
    if first_step_unix is not None:
        summary["first_step_unix"] = round(first_step_unix, 4)
    if "target" in summary and summary["target"]["reached"]:
        # the loop's clock of this process: loop_s less what earlier processes (a resume) ran
        at_unix = loop_started_unix + summary["target"]["loop_s"] - recorder.clock_offset
        summary["target"]["process_s"] = round(at_unix - process_started_unix(), 4)
    if sweep is not None:
        summary["sweep"] = sweep
    return summary | environment(setup, params)


def process_started_unix() -> float:
    """When this process was spawned (time to target counts from there, imports included)."""
    import psutil

    return psutil.Process().create_time()
