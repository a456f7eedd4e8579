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

from lrbench import optim
from lrbench.config import Config
from lrbench.optim.hyperparams import with_hyperparams
from lrbench.runs import RunDir
from lrbench.sweep.index import SweepIndex
from lrbench.sweep.members import Member, expand
from lrbench.train.epochs import run_epochs
from lrbench.train.evaluate import Evaluator
from lrbench.train.feedback import ValidationFeedback
from lrbench.train.recorder import Recorder
from lrbench.train.run import (
    Setup,
    build_runner,
    environment,
    eval_splits,
    prepared,
    run_keys,
    timing,
)
from lrbench.train.state import state_initializer

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
                index.append(member.index, out_dir / str(member.index), member.values, summary)
                summaries.append(summary)
    return summaries


def _train_chunk(chunk: list[Member], setup: Setup, out_dir: Path) -> list[dict]:
    start = time.perf_counter()
    cfg = chunk[0].config
    keys = [run_keys(member.config.seed) for member in chunk]
    init_keys = jnp.stack([k for k, _ in keys])
    data_keys = jnp.stack([k for _, k in keys])
    init = jax.jit(
        jax.vmap(
            state_initializer(setup.model, setup.tx, setup.dataset.spec.input_shape, setup.dtype)
        )
    )
    states = init(init_keys)
    hyperparams = {
        key.split(".", 1)[1]: np.array([member.values[key] for member in chunk])
        for key in chunk[0].values
        if key.startswith("optimizer.")
    }
    states = states.replace(opt_state=with_hyperparams(states.opt_state, hyperparams))
    runner, loop = build_runner(cfg, setup, data_keys, members=True)
    evaluate = Evaluator(setup.model, members=True, eval_params=optim.eval_params(cfg.optimizer))
    observer = optim.validation_observer(cfg.schedule, setup.dtype)
    feedback = None if observer is None else ValidationFeedback(observer, members=True)
    splits = eval_splits(cfg, setup)
    plan = setup.plan
    recorders = []
    for member in chunk:
        run_dir = RunDir(out_dir / str(member.index))
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
    states, loop_s = run_epochs(states, runner, evaluate, splits, plan, record, feedback)
    compile_s = runner.compile_s + evaluate.compile_s + (feedback.compile_s if feedback else 0.0)
    summaries = []
    for k, (member, recorder) in enumerate(zip(chunk, recorders, strict=True)):
        params = jax.tree.map(lambda a, k=k: a[k], states.params)
        summary = (
            recorder.outcome(plan)
            | timing(start, setup_s, compile_s, loop_s, recorder.steps_done, setup.load_s)
            | {
                "loop": f"vmap/{loop}",
                "loop_started_unix": round(loop_started_unix, 4),
                "sweep": {"member": member.index, "members": len(chunk), "values": member.values},
            }
            | environment(setup, params)
        )
        recorder.run_dir.write_summary(summary)
        recorder.run_dir.close()
        summaries.append(summary)
    log.info("vmap sweep chunk of %d members done in %.2fs", len(chunk), loop_s)
    return summaries
