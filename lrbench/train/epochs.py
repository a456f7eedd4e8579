"""The epoch loop shared by single runs and vectorized sweeps."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

import jax

from lrbench import faults
from lrbench.train.plan import Plan

# (host metrics, host evaluation or None, seconds since the loop started) -> stop?
Record = Callable[[object, dict | None, float], bool]


class Boundary(Protocol):
    """Between epochs: checkpoints and stop requests (``lrbench.train.boundary``)."""

    def due(self, epoch: int) -> bool:
        """Whether the end of ``epoch`` needs the state: a checkpoint or a stop is due."""

    def reached(self, state, epochs_done: int) -> bool:
        """Called once that epoch is recorded; True: stop here."""


def run_epochs(state, runner, evaluate, splits, plan: Plan, record: Record, observe=None,
               boundary: Boundary | None = None, first_epoch: int = 0):
    """Train for the plan's epochs from ``first_epoch``; return (final state, loop seconds).

    ``observe(state, evaluation) -> state``, if given, feeds each evaluation back into the
    state on device (reduce_on_plateau: ``lrbench.train.feedback``).

    Epoch e+1 is dispatched before epoch e's metrics are fetched and recorded, so the host's
    bookkeeping overlaps the device's work and nothing syncs inside an epoch. Where
    ``boundary`` wants an epoch's end (a checkpoint, a stop), that epoch is recorded at once
    instead, before the next is dispatched: the state saved and the rows on disk agree.
    """
    start = time.perf_counter()
    pending = None
    for epoch in range(first_epoch, plan.n_epochs):
        state, metrics = runner(state, epoch, plan.steps_in_epoch(epoch))
        faults.point("epoch")
        evaluation = evaluate(state, splits) if plan.evaluates_after(epoch) else None
        if evaluation is not None:
            faults.point("eval")
            if observe is not None:
                state = observe(state, evaluation)
        if pending is not None and _fetch_and_record(pending, record, start):
            pending = None
            break
        pending = (metrics, evaluation)
        last = epoch + 1 == plan.n_epochs
        if boundary is not None and not last and boundary.due(epoch):
            stop = _fetch_and_record(pending, record, start)
            pending = None
            if stop or boundary.reached(state, epoch + 1):
                break
    if pending is not None:
        _fetch_and_record(pending, record, start)
    jax.block_until_ready(state)
    return state, time.perf_counter() - start


def _fetch_and_record(pending, record: Record, start: float) -> bool:
    metrics, evaluation = jax.device_get(pending)
    return record(metrics, evaluation, time.perf_counter() - start)
