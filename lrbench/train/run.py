"""One training run, config to run directory: the flow of README's "Design"."""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from lrbench import data, models, optim
from lrbench.config import CNNConfig, Config, Device, DType, check_combination
from lrbench.errors import ConfigError
from lrbench.runs import RunDir
from lrbench.train.evaluate import Evaluator, pad_split
from lrbench.train.loop import FullBatchEpochs, make_epoch_runner, resolve_loop
from lrbench.train.plan import Plan, make_plan
from lrbench.train.recorder import Recorder, shortest
from lrbench.train.state import count_params, create_state
from lrbench.train.step import make_lbfgs_step, make_train_step

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


def run(cfg: Config, config_record: dict, out_dir: Path, quiet: bool = False) -> dict:
    """Validate everything, then train and write the run directory; return the summary.

    ``config_record`` is what config.yaml records (the resolved config as plain values).
    """
    check_combination(cfg)
    device = select_device(cfg.device)
    with precision(cfg.train.dtype) as dtype, jax.default_device(device):
        dataset = data.load(cfg.dataset)
        full_batch = optim.is_full_batch(cfg.optimizer)
        plan = make_plan(cfg.train, dataset.n_train, full_batch)
        multiplier = optim.build_multiplier(cfg.schedule, plan.total_steps, plan.steps_per_epoch)
        tx = optim.build(cfg.optimizer, multiplier, dtype)
        model = models.build(cfg.model, dataset.spec, dtype)
        # Everything is validated: only now does the run directory get files of ours.
        run_dir = RunDir(out_dir)
        run_dir.write_config(config_record)
        try:
            summary = _train(cfg, dataset, plan, model, tx, dtype, device, run_dir, quiet)
        except Exception as error:
            run_dir.write_summary({"status": "failed", "error": f"{type(error).__name__}: {error}"})
            raise
        finally:
            run_dir.close()
        run_dir.write_summary(summary)
    return summary


def _train(cfg: Config, dataset, plan: Plan, model, tx, dtype, device, run_dir, quiet) -> dict:
    start = time.perf_counter()
    init_key, data_key = jax.random.split(jax.random.key(cfg.seed))
    state = create_state(model, tx, dataset.spec.input_shape, init_key, dtype)
    x_train = jnp.asarray(dataset.x_train, dtype)
    y_train = jnp.asarray(dataset.y_train)
    if optim.is_full_batch(cfg.optimizer):
        step = make_lbfgs_step(model, tx, cfg.optimizer.weight_decay)
        runner = FullBatchEpochs(step, x_train, y_train)
        loop = "full_batch"
    else:
        resolved = resolve_loop(cfg.train.loop, isinstance(cfg.model, CNNConfig), device.platform)
        runner = make_epoch_runner(resolved, make_train_step(model, tx), x_train, y_train,
                                   data_key, plan.batch_size, cfg.train.unroll)
        loop = resolved.value
    evaluate = Evaluator(model)
    splits = {
        name: pad_split(x, y, cfg.train.eval_batch_size, dtype)
        for name, x, y in (("val", dataset.x_val, dataset.y_val),
                           ("test", dataset.x_test, dataset.y_test))
    }
    progress = _progress_bar(plan.n_epochs, quiet)
    recorder = Recorder(run_dir, plan.steps_per_epoch, plan.log_every, progress)
    setup_s = time.perf_counter() - start

    loop_start = time.perf_counter()
    pending = None
    for epoch in range(plan.n_epochs):
        state, metrics = runner(state, epoch, plan.steps_in_epoch(epoch))
        evaluation = evaluate(state, splits) if plan.evaluates_after(epoch) else None
        # Record the previous epoch while the device runs this one.
        if pending is not None and _record(recorder, *pending, loop_start):
            pending = None
            break
        pending = (metrics, evaluation)
    if pending is not None:
        _record(recorder, *pending, loop_start)
    jax.block_until_ready(state)
    loop_s = time.perf_counter() - loop_start
    if progress is not None:
        progress.close()

    compile_s = runner.compile_s + evaluate.compile_s
    train_s = max(loop_s - compile_s, 1e-9)
    status = "diverged" if recorder.diverged_at is not None else "completed"
    summary = {
        "status": status,
        "diverged_at_step": recorder.diverged_at,
        "steps": recorder.steps_done,
        "epochs": round(recorder.steps_done / plan.steps_per_epoch, 6),
        "final": {k: recorder.last_row.get(k) for k in ("lr", "train_loss", "train_accuracy")}
        | {k: v for k, v in recorder.last_eval.items() if k != "step"},
        "final_eval_step": recorder.last_eval.get("step"),
        "best": {
            "val_accuracy": recorder.best_val_accuracy.value,
            "val_accuracy_step": recorder.best_val_accuracy.step,
            "val_loss": recorder.best_val_loss.value,
            "val_loss_step": recorder.best_val_loss.step,
        },
        "wall_s": round(time.perf_counter() - start, 4),
        "setup_s": round(setup_s, 4),
        "compile_s": round(compile_s, 4),
        "train_s": round(train_s, 4),
        "steps_per_s": round(recorder.steps_done / train_s, 2),
        "loop": loop,
        "n_params": count_params(state.params),
        "n_train": dataset.n_train,
        "versions": _versions(),
        "backend": device.platform,
        "device": str(device.device_kind),
    }
    log.info("finished: %s", summary)
    return summary


def _record(recorder: Recorder, metrics, evaluation, loop_start: float) -> bool:
    metrics = jax.device_get(metrics)
    if evaluation is not None:
        evaluation = {
            f"{split}_{name}": shortest(value)
            for split, values in jax.device_get(evaluation).items()
            for name, value in values._asdict().items()
        }
    return recorder.record_epoch(metrics, evaluation, time.perf_counter() - loop_start)


def _progress_bar(n_epochs: int, quiet: bool):
    if quiet or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=n_epochs, unit="epoch", dynamic_ncols=True, leave=False)


def _versions() -> dict[str, str]:
    import flax
    import optax

    return {"jax": jax.__version__, "optax": optax.__version__, "flax": flax.__version__,
            "numpy": np.__version__}
