"""One training run, config to run directory: validate and build (``setup``), open or resume
the run directory, train (``program``, ``epochs``), write the summary (``report``)."""

from __future__ import annotations

import logging
import signal
import time
from dataclasses import replace
from pathlib import Path
from typing import Protocol

from lrbench.config import Config, OptimizerConfig
from lrbench.errors import ConfigError
from lrbench.optim.resumed_values import apply_resume_changes
from lrbench.runs import RunDir
from lrbench.train import distributed, session
from lrbench.train import progress as progress_lines
from lrbench.train.checkpoint import CheckpointError, Checkpoints, Restored, StateMismatch
from lrbench.train.interrupt import Interrupted
from lrbench.train.program import build_program
from lrbench.train.recorder import Recorder
from lrbench.train.report import run_summary
from lrbench.train.resume import Resume, files_fit, log_into
from lrbench.train.session import StartPoint
from lrbench.train.setup import Setup, prepared, seeded_state
from lrbench.train.state import TrainState
from lrbench.train.tracks import OneRun

log = logging.getLogger("lrbench")


class ChosenLR(Protocol):
    """What chose a run's LR (``lrbench.lr_find.range_test.RangeTest``, which builds on this
    package: it is passed in, never imported here)."""

    def write_csv(self, directory: Path) -> None: ...

    def summary(self) -> dict: ...


def run(
    cfg: Config,
    config_record: dict,
    out_dir: Path,
    *,
    quiet: bool = False,
    resume: Resume | None = None,
    lr_find: ChosenLR | None = None,
) -> dict:
    """Validate everything, then train and write the run directory; return the summary.

    ``config_record`` is what config.yaml records (the resolved config as plain values).
    ``lr_find``: the range test that chose ``cfg``'s LR (``optimizer.lr=auto``: the caller
    ran ``lrbench.lr_find.range_test.choose_lr``); its curve and summary are written too.
    ``resume`` (``lrbench.train.resume.plan_resume``): ``out_dir`` holds a run that
    stopped; it goes on from its newest usable checkpoint. SIGTERM/SIGINT end the run at the
    end of an epoch with a checkpoint, status ``interrupted`` and ``Interrupted``.
    """
    if cfg.mesh.members != 1:  # (a sweep member's config keeps its sweep's mesh)
        raise ConfigError(
            "mesh.members",
            cfg.mesh.members,
            "splits the members of a sweep: only with sweep=vmap (mesh=data for one run)",
        )
    with prepared(cfg) as setup, distributed.own_dir(out_dir) as write_dir:
        start = time.perf_counter()
        state, data_key = seeded_state(setup, cfg.seed)
        # orbax's multi-host mode: every process of a job opens the run's checkpoints (its
        # saves and restores are collective); process 0 writes the files
        checkpoints = Checkpoints(out_dir, cfg.train.keep_checkpoints)
        restored = None if resume is None else _restore(checkpoints, state, resume, cfg.optimizer)
        out_dir = write_dir
        # Everything is validated: only now does the run directory get files of ours.
        run_dir = _open_run_dir(out_dir, config_record, checkpoints, resume, restored)
        if restored is not None:
            state = restored.state
        state = setup.layout().place(state)
        start_point = StartPoint(start, state, checkpoints, restored, resumed=resume is not None)
        try:
            summary = _train(setup, run_dir, quiet, start_point, data_key)
            if resume is not None and resume.changes:
                summary["resume_changes"] = {k: list(v) for k, v in resume.changes.items()}
            if lr_find is not None:
                lr_find.write_csv(run_dir.path)
                summary["lr_find"] = lr_find.summary()
        except Exception as error:
            run_dir.write_summary({"status": "failed", "error": f"{type(error).__name__}: {error}"})
            raise
        finally:
            run_dir.close()
            checkpoints.close()
        run_dir.write_summary(summary)
    if summary["status"] == "interrupted":
        raise Interrupted(
            signal.Signals[summary["interrupted_by"]],
            f"interrupted by {summary['interrupted_by']} at step "
            f"{summary['steps']} of {setup.plan.total_steps}, checkpoint "
            f"written: go on with the same command and resume={out_dir}",
        )
    return summary


def _restore(
    checkpoints: Checkpoints, state: TrainState, resume: Resume, optimizer: OptimizerConfig
) -> Restored | None:
    """The newest usable checkpoint, with the allowed changes written into its state."""
    try:
        restored = checkpoints.restore(
            state, files_fit(resume.run_dir), prune_newer=distributed.is_writer()
        )
        if restored is None or not resume.changes:
            return restored
        opt_state = apply_resume_changes(restored.state.opt_state, resume.changes, optimizer)
    except StateMismatch as error:  # another model, data shape, optimizer, dtype: name it
        checkpoints.close()
        raise resume.cannot_take(error) from None
    except CheckpointError as error:
        checkpoints.close()
        raise ConfigError(
            "resume", str(resume.run_dir), f"no usable checkpoint ({error})"
        ) from None
    except ConfigError:
        checkpoints.close()
        raise
    return replace(restored, state=restored.state.replace(opt_state=opt_state))


def _open_run_dir(
    out_dir: Path,
    config_record: dict,
    checkpoints: Checkpoints,
    resume: Resume | None,
    restored: Restored | None,
) -> RunDir:
    """A fresh run starts over (a folder Hydra reused may hold an older run); a resumed
    one cuts its files back to its checkpoint (or to nothing, without one)."""
    run_dir = RunDir(out_dir)
    if resume is None or not distributed.is_writer():  # (the others' folder is a scratch one)
        if distributed.is_writer():
            checkpoints.clear()
        run_dir.start_over()
        run_dir.write_config(config_record)
    else:
        log_into(out_dir)
        sizes, step = ({}, 0) if restored is None else (restored.progress["files"], restored.step)
        run_dir.resume(config_record, sizes, step)
        if restored is not None and restored.skipped:
            log.warning("skipped damaged checkpoints: %s", "; ".join(restored.skipped))
        log.info("resuming %s from step %d", out_dir, step)
    return run_dir


def _train(setup: Setup, run_dir: RunDir, quiet: bool, start_point: StartPoint, data_key) -> dict:
    plan = setup.plan
    program = build_program(setup, data_key)
    progress = _progress_bar(setup, run_dir, quiet, start_point)
    recorder = Recorder(
        run_dir,
        plan.steps_per_epoch,
        plan.log_every,
        progress,
        target=setup.cfg.train.target,
        norms=setup.cfg.train.norms,
    )
    tracks = OneRun(recorder)
    announced = replace(start_point, checkpoints=progress.announcing(start_point.checkpoints))
    trained = session.train(setup, program, tracks, announced)
    progress.close()
    first_step = trained.resumed_from[-1] if trained.resumed_from else 0
    summary = run_summary(
        recorder=recorder,
        plan=plan,
        times=trained.times(recorder.steps_done, first_step),
        loop=program.loop,
        loop_started_unix=trained.loop_started_unix,
        first_step_unix=trained.first_step_unix,
        setup=setup,
        params=trained.state.params,
    )
    if start_point.resumed:
        summary["resumed_from"] = trained.resumed_from
    if trained.interrupted_by is not None:
        summary |= {"status": "interrupted", "interrupted_by": trained.interrupted_by}
    progress.end(summary)
    return summary


def _progress_bar(
    setup: Setup, run_dir: RunDir, quiet: bool, start_point: StartPoint
) -> progress_lines.RunProgress:
    """A bar on a terminal, lines elsewhere (``train.progress``), and the lines in train.log
    always; its start line is said (``lrbench.train.progress``)."""
    return progress_lines.for_run(setup, run_dir.path, quiet, start_point.progress)
