"""The epoch loop shared by single runs and vectorized sweeps."""

from __future__ import annotations

import time
from collections.abc import Callable

import jax

from lrbench.train.plan import Plan

# (host metrics, host evaluation or None, seconds since the loop started) -> stop?
Record = Callable[[object, dict | None, float], bool]


def run_epochs(state, runner, evaluate, splits, plan: Plan, record: Record, observe=None):
    """Train for the plan's epochs; return (final state, loop seconds).

    ``observe(state, evaluation) -> state``, if given, feeds each evaluation back into the
    state on device (reduce_on_plateau: ``lrbench.train.feedback``).

    Epoch e+1 is dispatched before epoch e's metrics are fetched and recorded, so the host's
    bookkeeping overlaps the device's work and nothing syncs inside an epoch.
    """
    start = time.perf_counter()
    pending = None
    for epoch in range(plan.n_epochs):
        state, metrics = runner(state, epoch, plan.steps_in_epoch(epoch))
        evaluation = evaluate(state, splits) if plan.evaluates_after(epoch) else None
        if evaluation is not None and observe is not None:
            state = observe(state, evaluation)
        if pending is not None and _fetch_and_record(pending, record, start):
            pending = None
            break
        pending = (metrics, evaluation)
    if pending is not None:
        _fetch_and_record(pending, record, start)
    jax.block_until_ready(state)
    return state, time.perf_counter() - start


def _fetch_and_record(pending, record: Record, start: float) -> bool:
    metrics, evaluation = jax.device_get(pending)
    return record(metrics, evaluation, time.perf_counter() - start)
