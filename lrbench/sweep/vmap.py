"""``sweep=vmap``: K members that differ only in float hyperparameters and/or seed, trained by
one compiled program (``jax.vmap`` over train state and hyperparameters).

Each member writes its own run directory ``<sweep dir>/<member>/`` with the files of a
single run. A member whose loss stops being finite is marked diverged and its records stop;
its lane keeps computing (vmap lanes cannot be removed from a compiled program) but never
touches the others. Chunks of members checkpoint like single runs
(``<sweep dir>/checkpoints/chunk-<first member>/``), and ``resume=<sweep dir>`` goes on
where a killed sweep stopped: finished chunks are kept, the chunk in progress goes on from
its checkpoint.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import time
from pathlib import Path

import jax
import numpy as np

from lrbench.config import Config
from lrbench.config.sweep import PruneConfig, Pruning, VmapSweepConfig
from lrbench.errors import ConfigError
from lrbench.flat_config import flatten
from lrbench.runs import RunDir, read_config
from lrbench.summary import COMPLETED, DIVERGED, PRUNED, read_summary
from lrbench.sweep import member_dir
from lrbench.sweep.halving import Halving, rung_epochs
from lrbench.sweep.index import SweepIndex
from lrbench.sweep.members import Member, expand
from lrbench.train import distributed, session
from lrbench.train import progress as progress_lines
from lrbench.train.checkpoint import FOLDER, CheckpointError, Checkpoints
from lrbench.train.interrupt import Interrupted
from lrbench.train.program import build_program, initial_states
from lrbench.train.recorder import Recorder
from lrbench.train.report import run_summary
from lrbench.train.resume import FREE
from lrbench.train.session import StartPoint
from lrbench.train.setup import Setup, member_keys, prepared
from lrbench.train.sharding import MEMBERS
from lrbench.train.tracks import Lanes

log = logging.getLogger("lrbench")
FINISHED = (COMPLETED, DIVERGED, PRUNED)


def run_vmap_sweep(
    cfg: Config, config_record: dict, out_dir: Path, *, resume: bool = False
) -> list[dict]:
    """Train every member (in chunks of sweep.max_members); return their summaries.
    ``resume``: ``out_dir`` holds this sweep, stopped; it goes on."""
    members = expand(cfg, config_record)
    size = cfg.sweep.max_members
    chunks = [members[first : first + size] for first in range(0, len(members), size)]
    if resume:
        _check_same_sweep(out_dir, members)
    with prepared(members[0].config) as setup, distributed.own_dir(out_dir) as out_dir:
        _check_split(setup, len(members), size, cfg.sweep.min_lanes)
        index = SweepIndex(out_dir)
        summaries = []
        for chunk in chunks:
            done = [read_summary(member_dir(out_dir, m.index)) for m in chunk] if resume else []
            if done and all(s is not None and s.get("status") in FINISHED for s in done):
                summaries += done  # finished before the sweep stopped
                continue
            trained = _train_chunk(chunk, setup, out_dir, resume=resume, sweep=cfg.sweep)
            # one rewrite of sweep.csv per chunk, not one per member
            index.append_many(
                (m.index, member_dir(out_dir, m.index), m.values, summary)
                for m, summary in zip(chunk, trained, strict=True)
            )
            summaries += trained
    return summaries


def _check_same_sweep(out_dir: Path, members: list[Member]) -> None:
    """A resumed sweep is the one in ``out_dir``: each member's config.yaml equals the new
    expansion's (but for the keys that change no number)."""
    for member in members:
        path = member_dir(out_dir, member.index)
        try:
            then = flatten(read_config(path))
        except OSError:
            raise ConfigError(
                "resume", str(out_dir), f"no member {member.index} of this sweep in it"
            ) from None
        now = flatten(member.record)
        differ = [
            f"{k} (run: {then.get(k, '<absent>')}, now: {now.get(k, '<absent>')})"
            for k in dict.fromkeys([*then, *now])
            if k not in FREE and then.get(k) != now.get(k)
        ]
        if differ:
            raise ConfigError(
                "resume",
                str(out_dir),
                f"member {member.index} differs from the sweep's in {', '.join(differ)}: "
                "give the sweep's overrides again",
            )


def _check_split(setup: Setup, n_members: int, chunk: int, min_lanes: int) -> None:
    """Every chunk's lanes split evenly over the mesh's member groups (bad input first)."""
    groups = 1 if setup.mesh is None else setup.mesh.shape[MEMBERS]
    sizes = {max(min(chunk, n_members - first), min_lanes) for first in range(0, n_members, chunk)}
    if any(size % groups for size in sizes):
        padded = f", at least sweep.min_lanes={min_lanes} lanes" if min_lanes else ""
        raise ConfigError(
            "mesh.members",
            groups,
            f"the sweep's {n_members} members (in chunks of sweep.max_members={chunk}"
            f"{padded}) must split evenly over {groups} device groups",
        )


def _lane_members(chunk: list[Member], min_lanes: int) -> list[Member]:
    """The member each program lane trains: the chunk's, the last repeated up to
    ``min_lanes`` (those lanes are never recorded)."""
    return chunk + [chunk[-1]] * (min_lanes - len(chunk))


def _halving(
    prune: PruneConfig, chunk: list[Member], setup: Setup, lanes: Lanes, data_keys: jax.Array
) -> Halving | None:
    """The rungs of a pruned chunk (None: no pruning, or no rung fits in its epochs)."""
    if prune.name is Pruning.none:
        return None
    settings = [tuple(v for k, v in m.values.items() if k != "seed") for m in chunk]
    plan = setup.plan
    ends = rung_epochs(len(set(settings)), prune.eta, plan.n_epochs, plan.eval_every)
    if not ends:
        return None
    return Halving(
        lanes=lanes,
        settings=settings,
        data_keys=data_keys,
        ends=ends,
        metric=prune.metric,
        eta=prune.eta,
        groups=1 if setup.mesh is None else setup.mesh.shape[MEMBERS],
        rebuild=lambda keys: build_program(setup, keys, members=True),
    )


def _files_fit(out_dir: Path, chunk: list[Member]):
    """A chunk's checkpoint is usable when each member's files hold its bytes then."""

    def problem(progress: dict) -> str | None:
        for member, kept in zip(chunk, progress["members"], strict=True):
            for name, size in kept["files"].items():
                file = member_dir(out_dir, member.index) / name
                have = file.stat().st_size if file.exists() else 0
                if have < size:
                    return (
                        f"{member.index}/{name} has {have} bytes, fewer than the {size} it had then"
                    )
        return None

    return problem


def _train_chunk(
    chunk: list[Member], setup: Setup, out_dir: Path, *, resume: bool, sweep: VmapSweepConfig
) -> list[dict]:
    start = time.perf_counter()
    cfg, plan = setup.cfg, setup.plan
    lane_members = _lane_members(chunk, sweep.min_lanes)
    init_keys, data_keys = member_keys([member.config.seed for member in lane_members])
    hyperparams = {
        key.split(".", 1)[1]: np.array([member.values[key] for member in lane_members])
        for key in chunk[0].values
        if key.startswith("optimizer.")
    }
    states = initial_states(setup, init_keys, hyperparams)
    program = build_program(setup, data_keys, members=True)
    checkpoints = Checkpoints(
        out_dir, cfg.train.keep_checkpoints, f"{FOLDER}/chunk-{chunk[0].index}"
    )
    restored = None
    if resume:
        # none usable: the chunk starts over (its members' files with it)
        with contextlib.suppress(CheckpointError):
            restored = checkpoints.restore(states, _files_fit(out_dir, chunk))
    # one bar (a terminal) or one line per evaluation for the program, not one per member
    progress = progress_lines.for_members(
        setup, chunk, out_dir, {} if restored is None else restored.progress
    )
    recorders = []
    for k, member in enumerate(chunk):
        run_dir = RunDir(member_dir(out_dir, member.index))
        if restored is None:
            run_dir.start_over()
            run_dir.write_config(member.record)
        else:
            run_dir.resume(member.record, restored.progress["members"][k]["files"], restored.step)
        recorders.append(
            Recorder(
                run_dir,
                plan.steps_per_epoch,
                plan.log_every,
                progress.lane(k),
                target=member.config.train.target,
                norms=cfg.train.norms,
            )
        )
    if restored is not None:
        states = setup.layout(members=True).place(restored.state)
        log.info(
            "resuming members %d-%d from step %d", chunk[0].index, chunk[-1].index, restored.step
        )
    else:
        checkpoints.clear()
    announced = progress.announcing(checkpoints)  # a line per checkpoint
    start_point = StartPoint(start, states, announced, restored, resumed=restored is not None)
    lanes = Lanes(list(recorders))
    rungs = _halving(sweep.prune, chunk, setup, lanes, data_keys)
    try:
        trained = session.train(setup, program, lanes, start_point, rungs)
    finally:
        checkpoints.close()
        progress.close()
    if rungs is not None:
        rungs.finish()
    # a member's parameters' shapes (counted only): no per-member slicing on device
    params = jax.tree.map(
        lambda a: jax.ShapeDtypeStruct(a.shape[1:], a.dtype), trained.state.params
    )
    summaries = []
    for member, recorder in zip(chunk, recorders, strict=True):
        first = trained.resumed_from[-1] if trained.resumed_from else 0
        times = trained.times(recorder.steps_done, min(first, recorder.steps_done))
        # Each member's share of the program's time: steps_per_s is then comparable with a
        # single run's (the program advances every member one step at a time).
        times["program_steps_per_s"] = times["steps_per_s"]
        times["steps_per_s"] = round(times["steps_per_s"] * len(chunk), 2)
        summary = run_summary(
            recorder=recorder,
            plan=plan,
            times=times,
            loop=program.loop,
            loop_started_unix=trained.loop_started_unix,
            first_step_unix=trained.first_step_unix,
            setup=setup,
            params=params,
            sweep={"member": member.index, "members": len(chunk), "values": member.values}
            | ({} if len(lane_members) == len(chunk) else {"lanes": len(lane_members)})
            | ({} if rungs is None else {"rungs": rungs.ends, "lane_steps": rungs.lane_steps}),
        )
        if trained.resumed_from:
            summary["resumed_from"] = trained.resumed_from
        if trained.interrupted_by is not None and not recorder.done:
            summary |= {"status": "interrupted", "interrupted_by": trained.interrupted_by}
        recorder.run_dir.write_summary(summary)
        recorder.run_dir.close()
        summaries.append(summary)
    progress.end_members(summaries)
    if trained.interrupted_by is not None:
        raise Interrupted(
            signal.Signals[trained.interrupted_by],
            f"interrupted by {trained.interrupted_by} at step {Lanes(recorders).steps_done} of "
            f"{plan.total_steps}, checkpoint written: go on with the same command and "
            f"resume={out_dir}",
        )
    return summaries
