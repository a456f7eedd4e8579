"""The learning rate as optimizer state.

optax.inject_hyperparams evaluates a schedule as a Python closure of the step count, so
the peak learning rate it scales is a compile-time constant. Here the peak (``base_lr``)
is an array in the state: sweeps vmap over it, adaptive methods rewrite it, checkpoints
carry it, and ``lr`` (what the last update applied) is read back for metrics.csv.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax


class ScheduledLRState(NamedTuple):
    count: jax.Array  # updates applied so far
    base_lr: jax.Array  # the peak learning rate (optimizer.lr)
    lr: jax.Array  # base_lr * multiplier(count) used by the last update


def scale_by_scheduled_lr(
    base_lr: float, multiplier: optax.Schedule, dtype: jnp.dtype = jnp.float32
) -> optax.GradientTransformation:
    """updates <- base_lr * multiplier(count) * updates (updates already point downhill)."""

    def init(params: optax.Params) -> ScheduledLRState:
        del params
        base = jnp.asarray(base_lr, dtype)
        return ScheduledLRState(
            count=jnp.zeros([], jnp.int32), base_lr=base, lr=base * multiplier(0)
        )

    def update(updates, state: ScheduledLRState, params=None):
        del params
        # The count in the LR's precision: optax divides it by Python ints, which JAX does in
        # float32 for an int32 count even in float64 runs.
        step = state.count.astype(state.base_lr.dtype)
        lr = (state.base_lr * multiplier(step)).astype(state.base_lr.dtype)
        updates = jax.tree.map(lambda u: (lr * u).astype(u.dtype), updates)
        return updates, ScheduledLRState(count=state.count + 1, base_lr=state.base_lr, lr=lr)

    return optax.GradientTransformation(init, update)


def current_lr(opt_state: optax.OptState) -> jax.Array:
    """The LR applied by the last update: ours, or the line-search step of L-BFGS."""
    for state in jax.tree.leaves(opt_state, is_leaf=lambda s: isinstance(s, ScheduledLRState)):
        if isinstance(state, ScheduledLRState):
            return state.lr
    return optax.tree.get(opt_state, "learning_rate")
