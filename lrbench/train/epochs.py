"""The epoch loop shared by single runs and vectorized sweeps."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import jax

from lrbench import faults
from lrbench.train.plan import Plan
from lrbench.train.sharding import Layout

if TYPE_CHECKING:
    from lrbench.train.program import Program

# (host metrics, host evaluation or None, seconds since the loop started) -> stop?
Record = Callable[[object, dict | None, float], bool]

# Steps dispatched before the host fetches and records them (at least one epoch's worth).
# A diverging run is noticed at most this many steps (plus an epoch) late; rows reach
# metrics.csv in groups of about this many steps.
FETCH_EVERY_STEPS = 100


class Boundary(Protocol):
    """Between epochs: checkpoints and stop requests (``lrbench.train.boundary``)."""

    def due(self, epoch: int) -> bool:
        """Whether the end of ``epoch`` needs the state: a checkpoint or a stop is due."""

    def checkpoint_then_stop(self, state, epochs_done: int) -> bool:
        """Called once that epoch is recorded: writes the checkpoint; True: stop here."""


class Rungs(Protocol):
    """Epoch ends where a sweep drops members (``lrbench.sweep.halving``)."""

    compile_s: float  # the smaller programs' compile seconds

    def due(self, epoch: int) -> bool:
        """Whether the end of ``epoch`` is a rung."""

    def prune(self, state, program: Program, epochs_done: int) -> tuple[object, Program]:
        """Called once that epoch is recorded: the survivors' states and their program."""


def run_epochs(
    state,
    program: Program,
    plan: Plan,
    *,
    record: Record,
    boundary: Boundary | None = None,
    rungs: Rungs | None = None,
    first_epoch: int = 0,
):
    """Train for the plan's epochs from ``first_epoch``; return (final state, loop seconds,
    ``time.time()`` when the first epoch's program returned: compiled, its steps dispatched
    and the first running; None without epochs to run).

    Each evaluation is fed back into the state on device where the schedule watches it
    (reduce_on_plateau: ``program.feedback``).

    Epoch e+1 is dispatched before epoch e's metrics are fetched and recorded, so the host's
    bookkeeping overlaps the device's work and nothing syncs inside an epoch; short epochs
    are fetched together, once ``FETCH_EVERY_STEPS`` steps are waiting, so the host's
    per-fetch work stays small next to the device's (on two CPU cores it is taken from
    XLA's threads; on a GPU a 9-step epoch takes about as long as its bookkeeping). Where
    ``boundary`` wants an epoch's end (a checkpoint, a stop), everything up to that epoch is
    recorded at once, before the next is dispatched: the state saved and the rows on disk
    agree. At ``rungs`` likewise, and the members left train on in a smaller program.
    """
    fetch = _Fetcher(record)
    pending: list = []  # (steps, metrics, evaluation) of epochs dispatched, not yet recorded
    first_step_unix = None
    for epoch in range(first_epoch, plan.n_epochs):
        steps = plan.steps_in_epoch(epoch)
        state, metrics = program.runner(state, epoch, steps)
        if first_step_unix is None:  # (before the evaluator's compile: no sync added)
            first_step_unix = time.time()
        faults.point("epoch")
        evaluation = None
        if plan.evaluates_after(epoch):
            evaluation = program.evaluate(state, program.splits)
            faults.point("eval")
            if program.feedback is not None:
                state = program.feedback(state, evaluation)
        pending.append((steps, metrics, evaluation))
        last = epoch + 1 == plan.n_epochs
        if rungs is not None and not last and rungs.due(epoch):
            stop = fetch(pending)
            pending = []
            if stop:
                break
            state, program = rungs.prune(state, program, epoch + 1)
        elif boundary is not None and not last and boundary.due(epoch):
            stop = fetch(pending)
            pending = []
            if stop or boundary.checkpoint_then_stop(state, epoch + 1):
                break
        elif sum(p[0] for p in pending[:-1]) >= FETCH_EVERY_STEPS:
            stop = fetch(pending[:-1])
            pending = pending[-1:]
            if stop:
                pending = []
                break
    if pending:
        fetch(pending)
    jax.block_until_ready(state)
    return state, time.perf_counter() - fetch.start, first_step_unix


class _Fetcher:
    """One transfer for all pending epochs, then their rows in order.

    The host learns when a group of epochs ended, not when each did: each epoch's elapsed
    time is interpolated by steps between the previous fetch and this one.
    """

    def __init__(self, record: Record) -> None:
        self.record = record
        self.start = time.perf_counter()
        self.previous = 0.0

    def __call__(self, pending: list) -> bool:
        """True: stop (a record asked to)."""
        fetched = Layout.to_host([(metrics, evaluation) for _, metrics, evaluation in pending])
        now = time.perf_counter() - self.start
        total = sum(steps for steps, _, _ in pending)
        done = 0
        for (steps, _, _), (metrics, evaluation) in zip(pending, fetched, strict=True):
            done += steps
            elapsed = self.previous + (now - self.previous) * done / total
            if self.record(metrics, evaluation, elapsed):
                return True
        self.previous = now
        return False
