"""``sweep=vmap``: K members that differ only in float hyperparameters and/or seed, trained by
one compiled program (``jax.vmap`` over train state and hyperparameters).

Each member writes its own run directory ``<sweep dir>/<member>/`` with the files of a
single run. A member whose loss stops being finite is marked diverged and its records stop;
its lane keeps computing (vmap lanes cannot be removed from a compiled program) but never
touches the others.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from lrbench.config import Config
from lrbench.runs import RunDir
from lrbench.sweep import member_dir
from lrbench.sweep.index import SweepIndex
from lrbench.sweep.members import Member, expand
from lrbench.train.epochs import run_epochs
from lrbench.train.program import build_program, initial_states
from lrbench.train.recorder import Recorder
from lrbench.train.report import run_summary, timing
from lrbench.train.setup import Setup, prepared, run_keys

log = logging.getLogger("lrbench")


def run_vmap_sweep(cfg: Config, config_record: dict, out_dir: Path) -> list[dict]:
    """Train every member (in chunks of sweep.max_members); return their summaries."""
    members = expand(cfg, config_record)
    with prepared(members[0].config) as setup:
        index = SweepIndex(out_dir)
        summaries = []
        size = cfg.sweep.max_members
        for first in range(0, len(members), size):
            chunk = members[first : first + size]
            for member, summary in zip(chunk, _train_chunk(chunk, setup, out_dir), strict=True):
                index.append(
                    member.index, member_dir(out_dir, member.index), member.values, summary
                )
                summaries.append(summary)
    return summaries


def _train_chunk(chunk: list[Member], setup: Setup, out_dir: Path) -> list[dict]:
    start = time.perf_counter()
    keys = [run_keys(member.config.seed) for member in chunk]
    hyperparams = {
        key.split(".", 1)[1]: np.array([member.values[key] for member in chunk])
        for key in chunk[0].values
        if key.startswith("optimizer.")
    }
    states = initial_states(setup, jnp.stack([k for k, _ in keys]), hyperparams)
    program = build_program(setup, jnp.stack([k for _, k in keys]), members=True)
    plan = setup.plan
    recorders = []
    for member in chunk:
        run_dir = RunDir(member_dir(out_dir, member.index))
        run_dir.write_config(member.record)
        recorders.append(Recorder(run_dir, plan.steps_per_epoch, plan.log_every))
    setup_s = time.perf_counter() - start

    def record(metrics, evaluation, elapsed_s: float) -> bool:
        """Each live member records its lane; stop when none is left."""
        for k, recorder in enumerate(recorders):
            if recorder.diverged_at is None:
                lane = jax.tree.map(lambda a, k=k: a[k], (metrics, evaluation))
                recorder.record(*lane, elapsed_s)
        return all(recorder.diverged_at is not None for recorder in recorders)

    loop_started_unix = time.time()
    states, loop_s = run_epochs(states, program, plan, record=record)
    summaries = []
    for k, (member, recorder) in enumerate(zip(chunk, recorders, strict=True)):
        times = timing(
            start=start,
            setup_s=setup_s,
            compile_s=program.compile_s,
            loop_s=loop_s,
            steps=recorder.steps_done,
            load_s=setup.load_s,
        )
        summary = run_summary(
            recorder=recorder,
            plan=plan,
            times=times,
            loop=program.loop,
            loop_started_unix=loop_started_unix,
            setup=setup,
            params=jax.tree.map(lambda a, k=k: a[k], states.params),
            sweep={"member": member.index, "members": len(chunk), "values": member.values},
        )
        recorder.run_dir.write_summary(summary)
        recorder.run_dir.close()
        summaries.append(summary)
    log.info("vmap sweep chunk of %d members done in %.2fs", len(chunk), loop_s)
    return summaries
