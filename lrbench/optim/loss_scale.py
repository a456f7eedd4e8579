"""Dynamic loss scaling for float16 compute (``train.compute_dtype=float16``).

float16 keeps 5 exponent bits: gradients below ~6e-8 flush to zero, above 65504 overflow.
Loss scaling (Micikevicius et al., "Mixed Precision Training", ICLR 2018, section 3.2):
multiply the loss by a scale S before differentiating and divide the gradients by S. The
dynamic rule for S (NVIDIA's "Training with Mixed Precision" guide; PyTorch's
``torch.amp.GradScaler``; jmp's ``DynamicLossScale``):

- when a gradient is not finite, skip the update and halve S (jmp: never below 1);
- after ``period`` finite steps in a row, double S.

The scale rule is DeepMind's ``jmp.DynamicLossScale`` (``adjust``); the skip is optax's
``apply_if_finite``, which keeps the optimizer's state (its step count, moments, the
scheduled LR) as it was, so a skipped step is a step the optimizer never saw. Its
``max_consecutive_errors`` makes a run whose gradients stay non-finite however small S
gets end as diverged rather than stall: after that many non-finite gradients in a row the
update is applied, the parameters become NaN and so does the next loss.

This transformation is the outermost of the optimizer: its input is the gradient of the
scaled loss, and what it hands on (gradient clipping first) is the true gradient. The train
step scales the loss by ``current_loss_scale(opt_state)``; the reported loss is unscaled, so
a skipped step's loss is finite and never counts as divergence.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import jmp
import optax

from lrbench.config import OptimizerConfig
from lrbench.config.train import ComputeDType
from lrbench.errors import ConfigError
from lrbench.optim.optimizers import is_full_batch
from lrbench.optim.state_tree import find_states

INITIAL_SCALE = 2.0**15  # jmp's documented starting point (PyTorch's GradScaler: 2**16)
PERIOD = 2000  # finite steps before the scale doubles (jmp's and PyTorch's default)
FACTOR = 2
# Consecutive non-finite gradients before an update is applied anyway (the run then diverges).
# S halves at each: 64 take any scale a float16 backward pass can carry down to 1.
MAX_CONSECUTIVE_SKIPS = 64


class LossScaleState(NamedTuple):
    scale: jax.Array  # float32: the loss is multiplied by it before differentiation
    counter: jax.Array  # int32: finite steps since the scale last changed (mod period)
    inner_state: Any  # optax.ApplyIfFiniteState around the optimizer's state


def dynamic_loss_scaling(
    inner: optax.GradientTransformation,
    initial_scale: float = INITIAL_SCALE,
    period: int = PERIOD,
    factor: int = FACTOR,
    max_consecutive_skips: int = MAX_CONSECUTIVE_SKIPS,
) -> optax.GradientTransformationExtraArgs:
    """``inner`` fed the unscaled gradients of a scaled loss, skipping non-finite ones."""
    skipping = optax.apply_if_finite(inner, max_consecutive_errors=max_consecutive_skips)

    def rule(state: LossScaleState) -> jmp.DynamicLossScale:
        return jmp.DynamicLossScale(state.scale, state.counter, period=period, factor=factor)

    def init(params) -> LossScaleState:
        return LossScaleState(
            scale=jnp.asarray(initial_scale, jnp.float32),
            counter=jnp.zeros([], jnp.int32),
            inner_state=skipping.init(params),
        )

    def update(scaled_grads, state: LossScaleState, params=None, **extra_args):
        grads = rule(state).unscale(scaled_grads)
        updates, inner_state = skipping.update(grads, state.inner_state, params, **extra_args)
        adjusted = rule(state).adjust(inner_state.last_finite)
        return updates, LossScaleState(adjusted.loss_scale, adjusted.counter, inner_state)

    return optax.GradientTransformationExtraArgs(init, update)


def with_loss_scaling(
    tx: optax.GradientTransformation,
    compute_dtype: ComputeDType | None,
    optimizer: OptimizerConfig,
) -> optax.GradientTransformation:
    """``tx`` with dynamic loss scaling where the model computes in float16; else ``tx``."""
    if compute_dtype is not ComputeDType.float16:
        return tx
    if is_full_batch(optimizer):
        raise ConfigError(
            "train.compute_dtype",
            compute_dtype.value,
            f"not with optimizer={optimizer.name} (a line search cannot skip the steps that "
            "dynamic loss scaling skips): use bfloat16 or float32",
        )
    return dynamic_loss_scaling(tx, INITIAL_SCALE, PERIOD, FACTOR, MAX_CONSECUTIVE_SKIPS)


def current_loss_scale(opt_state: optax.OptState) -> jax.Array | None:
    """The factor the train step multiplies the loss by; None without loss scaling."""
    states = find_states(opt_state, LossScaleState)
    return states[0].scale if states else None


def skipped_steps(opt_state: optax.OptState) -> jax.Array | None:
    """How many updates loss scaling skipped so far (non-finite gradients); None without."""
    states = find_states(opt_state, LossScaleState)
    return states[0].inner_state.total_notfinite if states else None


__all__ = [
    "FACTOR",
    "INITIAL_SCALE",
    "MAX_CONSECUTIVE_SKIPS",
    "PERIOD",
    "LossScaleState",
    "current_loss_scale",
    "dynamic_loss_scaling",
    "skipped_steps",
    "with_loss_scaling",
]
