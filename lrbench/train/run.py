"""One training run, config to run directory: the flow of README's "Design"."""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from lrbench import data, models, optim
from lrbench.config import Config, Device, DType, OptimizerConfig, check_combination
from lrbench.errors import ConfigError
from lrbench.optim.resumed_values import apply_resume_changes
from lrbench.runs import RunDir
from lrbench.train.boundary import EpochBoundary
from lrbench.train.checkpoint import CheckpointError, Checkpoints, Restored
from lrbench.train.epochs import run_epochs
from lrbench.train.evaluate import Evaluator, pad_split
from lrbench.train.feedback import ValidationFeedback
from lrbench.train.interrupt import Interrupted, stop_on_signals
from lrbench.train.loop import FullBatchEpochs, make_epoch_runner, resolve_loop
from lrbench.train.plan import Plan, make_plan
from lrbench.train.recorder import Recorder
from lrbench.train.resume import Resume, files_fit, log_into
from lrbench.train.state import TrainState, count_params, create_state
from lrbench.train.step import make_lbfgs_step, make_train_step
from lrbench.train.stream import StreamEpochs, fits_on_device, train_bytes

log = logging.getLogger("lrbench")


@contextlib.contextmanager
def precision(dtype: DType):
    """float64 runs switch JAX to 64-bit for their duration only."""
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", dtype is DType.float64)
    try:
        yield jnp.float64 if dtype is DType.float64 else jnp.float32
    finally:
        jax.config.update("jax_enable_x64", previous)


def select_device(device: Device) -> jax.Device:
    if device is Device.auto:
        return jax.devices()[0]
    try:
        return jax.devices(device.value)[0]
    except RuntimeError:
        raise ConfigError(
            "device", device.value, f"not available here (backend: {jax.default_backend()})"
        ) from None


@dataclass(frozen=True)
class Setup:
    """Everything built and validated from a config before any file is written."""

    dataset: data.Dataset
    plan: Plan
    tx: optax.GradientTransformation
    model: nn.Module
    dtype: jnp.dtype
    device: jax.Device
    load_s: float = 0.0  # reading the data into host memory (data.load)


@contextlib.contextmanager
def prepared(cfg: Config) -> Iterator[Setup]:
    """Validate and build; the block runs under the run's precision and device."""
    check_combination(cfg)
    device = select_device(cfg.device)
    with precision(cfg.train.dtype) as dtype, jax.default_device(device):
        load_start = time.perf_counter()
        dataset = data.load(cfg.dataset)
        load_s = time.perf_counter() - load_start
        full_batch = optim.is_full_batch(cfg.optimizer)
        if full_batch and not _on_device(cfg, dataset):
            raise ConfigError(
                "dataset.max_device_bytes",
                cfg.dataset.max_device_bytes,
                f"below the train split's {_train_bytes(dataset)} bytes: "
                f"optimizer={cfg.optimizer.name} needs the whole split on device",
            )
        plan = make_plan(cfg.train, dataset.n_train, full_batch)
        multiplier = optim.build_multiplier(cfg.schedule, plan.total_steps, plan.steps_per_epoch)
        tx = optim.watch_validation(
            optim.build(cfg.optimizer, multiplier, dtype), cfg.schedule, dtype
        )
        model = models.build(cfg.model, dataset.spec, dtype)
        yield Setup(dataset, plan, tx, model, dtype, device, load_s)


def _on_device(cfg: Config, dataset: data.Dataset) -> bool:
    """Whether the train split fits ``dataset.max_device_bytes`` (image sets have one)."""
    budget = getattr(cfg.dataset, "max_device_bytes", None)
    return fits_on_device(dataset.x_train, dataset.y_train, budget)


def _train_bytes(dataset: data.Dataset) -> int:
    return train_bytes(dataset.x_train, dataset.y_train)


def build_runner(cfg: Config, setup: Setup, data_key: jax.Array, members: bool = False):
    """The epoch runner for this config and backend, and the loop strategy's name."""
    dataset = setup.dataset
    is_conv = models.is_convolutional(cfg.model)
    loop = resolve_loop(cfg.train.loop, is_conv, setup.device.platform)
    step = make_train_step(setup.model, setup.tx)
    if not _on_device(cfg, dataset):
        if members:
            raise ConfigError(
                "dataset.max_device_bytes",
                cfg.dataset.max_device_bytes,
                f"below the train split's {_train_bytes(dataset)} bytes: "
                "vmap sweeps need the whole split on device",
            )
        runner = StreamEpochs(
            loop,
            step,
            dataset.x_train,
            dataset.y_train,
            data_key,
            setup.plan.batch_size,
            cfg.train.unroll,
            cfg.dataset.max_device_bytes,
        )
        return runner, f"stream/{loop.value}"
    x_train = jnp.asarray(data.model_input(dataset.x_train, setup.dtype))
    y_train = jnp.asarray(dataset.y_train)
    if optim.is_full_batch(cfg.optimizer):
        step = make_lbfgs_step(setup.model, setup.tx, cfg.optimizer.weight_decay)
        return FullBatchEpochs(step, x_train, y_train), "full_batch"
    runner = make_epoch_runner(
        loop, step, x_train, y_train, data_key, setup.plan.batch_size, cfg.train.unroll, members
    )
    return runner, loop.value


def eval_splits(cfg: Config, setup: Setup) -> dict:
    dataset = setup.dataset
    return {
        name: pad_split(x, y, cfg.train.eval_batch_size, setup.dtype)
        for name, x, y in (
            ("val", dataset.x_val, dataset.y_val),
            ("test", dataset.x_test, dataset.y_test),
        )
    }


def run_keys(seed: int) -> tuple[jax.Array, jax.Array]:
    """(init key, data-order key) of a seed: sweeps derive them the same way per member."""
    init_key, data_key = jax.random.split(jax.random.key(seed))
    return init_key, data_key


TIMES = ("wall_s", "load_s", "setup_s", "compile_s", "train_s")


def timing(
    start: float, setup_s: float, compile_s: float, loop_s: float, steps: int, load_s: float = 0.0
) -> dict:
    """``load_s`` (reading the data, before ``start``) counts in ``wall_s``."""
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


def environment(setup: Setup, params) -> dict:
    return {
        "n_params": count_params(params),
        "n_train": setup.dataset.n_train,
        "versions": _versions(),
        "backend": setup.device.platform,
        "device": str(setup.device.device_kind),
    }


def run(
    cfg: Config,
    config_record: dict,
    out_dir: Path,
    quiet: bool = False,
    resume: Resume | None = None,
) -> dict:
    """Validate everything, then train and write the run directory; return the summary.

    ``config_record`` is what config.yaml records (the resolved config as plain values).
    ``optimizer.lr=auto`` runs the LR range test first and trains with its suggestion.
    ``resume`` (``lrbench.train.resume.plan_resume``): ``out_dir`` holds a run that
    stopped; it goes on from its newest usable checkpoint. SIGTERM/SIGINT end the run at the
    end of an epoch with a checkpoint, status ``interrupted`` and ``Interrupted``.
    """
    lr_find = None
    if cfg.optimizer.lr_auto:
        from lrbench.lr_find import choose_lr

        cfg, lr_find = choose_lr(cfg)
    with prepared(cfg) as setup:
        start = time.perf_counter()
        init_key, _ = run_keys(cfg.seed)
        state = create_state(
            setup.model, setup.tx, setup.dataset.spec.input_shape, init_key, setup.dtype
        )
        checkpoints = Checkpoints(out_dir, cfg.train.keep_checkpoints)
        restored = None if resume is None else _restore(checkpoints, state, resume, cfg.optimizer)
        # Everything is validated: only now does the run directory get files of ours.
        run_dir = _open_run_dir(out_dir, config_record, checkpoints, resume, restored)
        if restored is not None:
            state = restored.state
        begin = Begin(start, state, checkpoints, restored, resumed=resume is not None)
        try:
            summary = _train(cfg, setup, run_dir, quiet, begin)
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
        restored = checkpoints.restore(state, files_fit(resume.run_dir))
        if restored is None or not resume.changes:
            return restored
        opt_state = apply_resume_changes(restored.state.opt_state, resume.changes, optimizer)
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
    if resume is None:
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


@dataclass(frozen=True)
class Begin:
    """Where training starts: step 0, or a checkpoint of the run (``restored``)."""

    start: float  # time.perf_counter() when building began: setup_s counts from here
    state: TrainState  # the initial state, or the checkpoint's
    checkpoints: Checkpoints
    restored: Restored | None = None
    resumed: bool = False  # a stopped run going on (from step 0 when it has no checkpoint)


def _train(cfg: Config, setup: Setup, run_dir: RunDir, quiet: bool, begin: Begin) -> dict:
    _, data_key = run_keys(cfg.seed)
    runner, loop = build_runner(cfg, setup, data_key)
    evaluate = Evaluator(setup.model, eval_params=optim.eval_params(cfg.optimizer))
    observer = optim.validation_observer(cfg.schedule, setup.dtype)
    feedback = None if observer is None else ValidationFeedback(observer)
    splits = eval_splits(cfg, setup)
    plan = setup.plan
    before = {} if begin.restored is None else begin.restored.progress
    first_epoch = before.get("epochs_done", 0)
    progress = _progress_bar(plan.n_epochs, quiet, first_epoch)
    recorder = Recorder(run_dir, plan.steps_per_epoch, plan.log_every, progress)
    if begin.restored is not None:
        recorder.restore(before["recorder"])
    first_step = recorder.steps_done
    resumed_from = [*before.get("resumed_from", []), first_step] if begin.resumed else []
    setup_s = time.perf_counter() - begin.start

    def times(loop_s: float) -> dict:
        compile_s = (
            runner.compile_s + evaluate.compile_s + (feedback.compile_s if feedback else 0.0)
        )
        now = timing(
            begin.start, setup_s, compile_s, loop_s, recorder.steps_done - first_step, setup.load_s
        )
        return carry_timing(now, before.get("timing"), recorder.steps_done)

    def save(state: TrainState, epochs_done: int) -> None:
        begin.checkpoints.save(
            recorder.steps_done,
            state,
            {
                "epochs_done": epochs_done,
                "recorder": recorder.bookkeeping(),
                "files": run_dir.file_sizes(),
                "timing": {
                    k: v for k, v in times(time.perf_counter() - loop_start).items() if k in TIMES
                },
                "resumed_from": resumed_from,
            },
        )

    loop_started_unix = time.time()  # metrics.csv's elapsed_s counts from here
    loop_start = time.perf_counter()
    with stop_on_signals() as stop:
        boundary = EpochBoundary(
            cfg.train.checkpoint_every, cfg.train.checkpoint_interval_s, stop, save
        )
        state, loop_s = run_epochs(
            begin.state,
            runner,
            evaluate,
            splits,
            plan,
            recorder.record,
            feedback,
            boundary,
            first_epoch,
        )
    if progress is not None:
        progress.close()

    summary = (
        recorder.outcome(plan)
        | times(loop_s)
        | {"loop": loop, "loop_started_unix": round(loop_started_unix, 4)}
        | environment(setup, state.params)
    )
    if begin.resumed:
        summary["resumed_from"] = resumed_from
    if boundary.stopped_after is not None:
        summary |= {"status": "interrupted", "interrupted_by": stop.name}
    log.info("finished: %s", summary)
    return summary


def _progress_bar(n_epochs: int, quiet: bool, done: int = 0):
    if quiet or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=n_epochs, initial=done, unit="epoch", dynamic_ncols=True, leave=False)


def _versions() -> dict[str, str]:
    import flax
    import optax

    return {
        "jax": jax.__version__,
        "optax": optax.__version__,
        "flax": flax.__version__,
        "numpy": np.__version__,
    }
