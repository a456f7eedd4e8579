"""The training program: what trains the members of one config, built in one place.

Single runs, vectorized sweep chunks (``members``: K states with a leading member axis,
trained by ``jax.vmap`` of the same step) and the LR range test all build their compiled
pieces here: the initial states, the epoch runner (the train split on device and gathered
there each step, streamed from the host past ``dataset.max_device_bytes``, or the whole
split at once for full-batch methods), the evaluator, the validation feedback
(reduce_on_plateau) and the padded evaluation splits. A single run has no member axis, so
its numbers are those of a plain jitted step.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import numpy as np

from lrbench import data, models, optim
from lrbench.config import Norms
from lrbench.optim.hyperparams import with_hyperparams
from lrbench.train.evaluate import Evaluator, PaddedSplit, pad_split
from lrbench.train.feedback import ValidationFeedback
from lrbench.train.runners import EpochRunner, FullBatchEpochs, make_epoch_runner, resolve_loop
from lrbench.train.setup import Setup
from lrbench.train.state import TrainState, run_once, state_initializer
from lrbench.train.step import make_lbfgs_step, make_train_step
from lrbench.train.stream import StreamEpochs


@dataclass(frozen=True)
class Program:
    runner: EpochRunner
    loop: str  # the loop strategy, as summary.json's "loop" ("vmap/..." for members)
    evaluate: Evaluator
    feedback: ValidationFeedback | None  # None: no schedule watches validation
    splits: dict[str, PaddedSplit]  # val and test, on device

    @property
    def compile_s(self) -> float:
        """Seconds spent compiling so far (each piece compiles on first use)."""
        parts = (self.runner, self.evaluate, self.feedback)
        return sum(part.compile_s for part in parts if part is not None)


def build_program(setup: Setup, data_keys: jax.Array, *, members: bool = False) -> Program:
    """``data_keys``: the data-order key (``run_keys``), or one per member (``members``)."""
    cfg, layout = setup.cfg, setup.layout(members)
    runner, loop = build_runner(setup, data_keys, members=members)
    observer = optim.validation_observer(cfg.schedule, setup.dtype)
    return Program(
        runner=runner,
        loop=f"vmap/{loop}" if members else loop,
        evaluate=Evaluator(setup.model, layout, eval_params=optim.eval_params(cfg.optimizer)),
        feedback=None if observer is None else ValidationFeedback(observer, layout),
        splits=layout.replicated(eval_splits(setup)),
    )


def build_runner(
    setup: Setup, data_keys: jax.Array, *, members: bool = False, norms: Norms | None = None
) -> tuple[EpochRunner, str]:
    """The epoch runner for this config and backend, and the loop strategy's name.
    ``norms``: which steps compute the norms (default: ``train.norms``)."""
    cfg, dataset, layout = setup.cfg, setup.dataset, setup.layout(members)
    norms = cfg.train.norms if norms is None else norms
    data_keys = layout.place(data_keys)
    loop = resolve_loop(cfg.train.loop, models.is_convolutional(cfg.model), setup.device.platform)
    step = make_train_step(setup.model, setup.tx)
    if not setup.train_on_device:
        if members:
            raise setup.too_big("vmap sweeps need")
        runner = StreamEpochs(
            loop,
            step,
            x=dataset.x_train,
            y=dataset.y_train,
            data_key=data_keys,
            batch_size=setup.plan.batch_size,
            unroll=cfg.train.unroll,
            max_device_bytes=cfg.dataset.max_device_bytes,
            layout=layout,
            norms=norms,
        )
        return runner, f"stream/{loop.value}"
    x_train, y_train = layout.replicated(
        (data.model_input(dataset.x_train, setup.dtype), dataset.y_train)
    )
    if optim.is_full_batch(cfg.optimizer):
        step = make_lbfgs_step(setup.model, setup.tx, cfg.optimizer.weight_decay)
        return FullBatchEpochs(step, x_train, y_train), "full_batch"
    runner = make_epoch_runner(
        loop,
        step,
        x=x_train,
        y=y_train,
        data_key=data_keys,
        batch_size=setup.plan.batch_size,
        unroll=cfg.train.unroll,
        layout=layout,
        norms=norms,
    )
    return runner, loop.value


def eval_splits(setup: Setup) -> dict[str, PaddedSplit]:
    dataset, batch_size = setup.dataset, setup.cfg.train.eval_batch_size
    return {
        "val": pad_split(dataset.x_val, dataset.y_val, batch_size, setup.dtype),
        "test": pad_split(dataset.x_test, dataset.y_test, batch_size, setup.dtype),
    }


def initial_states(
    setup: Setup, init_keys: jax.Array, hyperparams: dict[str, np.ndarray] | None = None
) -> TrainState:
    """Each member's initial state, from its init key: one vmapped initialization (``run_once``).
    ``hyperparams``: optimizer hyperparameter -> one value per member, written into the
    states (a sweep member's LR, weight decay, betas... live in its optimizer state)."""
    init = state_initializer(setup.model, setup.tx, setup.dataset.spec.input_shape, setup.dtype)
    states = run_once(jax.vmap(init), init_keys)
    if hyperparams:
        states = states.replace(opt_state=with_hyperparams(states.opt_state, hyperparams))
    return setup.layout(members=True).place(states)
