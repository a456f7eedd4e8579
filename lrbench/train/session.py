"""Training a program from a start point, with checkpoints and stop requests: what a single
run and a vmap sweep chunk share. They differ only in what records the members' rows
(``Tracks``: one run's recorder, or one recorder per member lane)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from lrbench.train.boundary import EpochBoundary
from lrbench.train.checkpoint import Checkpoints, Restored
from lrbench.train.epochs import Rungs, run_epochs
from lrbench.train.interrupt import stop_on_signals
from lrbench.train.program import Program
from lrbench.train.report import TIMES, carry_timing, timing
from lrbench.train.setup import Setup
from lrbench.train.state import TrainState


@dataclass(frozen=True)
class StartPoint:
    """Where training starts: step 0, or a checkpoint (``restored``)."""

    start: float  # time.perf_counter() when building began: setup_s counts from here
    state: TrainState  # the initial state (states, for members), or the checkpoint's
    checkpoints: Checkpoints
    restored: Restored | None = None
    resumed: bool = False  # a stopped run going on (from step 0 when it has no checkpoint)

    @property
    def progress(self) -> dict:
        return {} if self.restored is None else self.restored.progress


class Tracks(Protocol):
    """What records the program's members (``lrbench.train.recorder``)."""

    def record(self, metrics, evaluation: dict | None, elapsed_s: float) -> bool:
        """The fetched rows of every member; True: stop (none is left)."""

    def bookkeeping(self) -> dict:
        """What a checkpoint keeps of the rows and files written so far."""

    def restore(self, progress: dict) -> None:
        """Back to a checkpoint's bookkeeping."""

    @property
    def steps_done(self) -> int:
        """The steps recorded (a sweep chunk: its longest member's)."""


@dataclass
class Trained:
    state: TrainState
    loop_s: float
    loop_started_unix: float
    first_step_unix: float | None  # this process's first training step (``run_epochs``)
    times: Callable[[int, int], dict]  # (steps done, steps at the start) -> summary times
    resumed_from: list[int] = field(default_factory=list)
    interrupted_by: str | None = None  # the signal that stopped training at a checkpoint


def train(
    setup: Setup,
    program: Program,
    tracks: Tracks,
    start_point: StartPoint,
    rungs: Rungs | None = None,
) -> Trained:
    """Run the plan's epochs from the start point; checkpoints at the epoch ends the config
    asks for, and where SIGTERM/SIGINT asks to stop. ``rungs``: where a pruned sweep drops
    members (it then compiles more programs: their compile time is ``rungs.compile_s``)."""
    cfg, plan, before = setup.cfg, setup.plan, start_point.progress
    if start_point.restored is not None:
        tracks.restore(before)
    first_step = tracks.steps_done
    resumed_from = [*before.get("resumed_from", []), first_step] if start_point.resumed else []
    setup_s = time.perf_counter() - start_point.start

    def times(steps: int, first: int, loop_s: float) -> dict:
        now = timing(
            start=start_point.start,
            setup_s=setup_s,
            compile_s=program.compile_s + (0.0 if rungs is None else rungs.compile_s),
            loop_s=loop_s,
            steps=steps - first,
            load_s=setup.load_s,
        )
        return carry_timing(now, before.get("timing"), steps)

    def save(state: TrainState, epochs_done: int) -> None:
        so_far = times(tracks.steps_done, first_step, time.perf_counter() - loop_start)
        start_point.checkpoints.save(
            tracks.steps_done,
            state,
            {
                "epochs_done": epochs_done,
                **tracks.bookkeeping(),
                "timing": {k: v for k, v in so_far.items() if k in TIMES},
                "resumed_from": resumed_from,
            },
        )

    loop_started_unix = time.time()  # metrics.csv's elapsed_s counts from here
    loop_start = time.perf_counter()
    with stop_on_signals() as stop:
        # a pruned chunk checkpoints only where it is asked to stop (its member count
        # changes at rungs: a resume starts it over)
        every, interval_s = (
            (0, 0.0)
            if rungs is not None
            else (cfg.train.checkpoint_every, cfg.train.checkpoint_interval_s)
        )
        boundary = EpochBoundary(every, interval_s, stop, save)
        state, loop_s, first_step_unix = run_epochs(
            start_point.state,
            program,
            plan,
            record=tracks.record,
            boundary=boundary,
            rungs=rungs,
            first_epoch=before.get("epochs_done", 0),
        )
    return Trained(
        state=state,
        loop_s=loop_s,
        loop_started_unix=loop_started_unix,
        first_step_unix=first_step_unix,
        times=lambda steps, first: times(steps, first, loop_s),
        resumed_from=resumed_from,
        interrupted_by=None if boundary.stopped_after is None else stop.name,
    )
