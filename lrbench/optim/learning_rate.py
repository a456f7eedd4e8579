"""The learning rate as optimizer state.

optax.inject_hyperparams evaluates a schedule as a Python closure of the step count, so
the peak learning rate it scales is a compile-time constant. Here the peak (``base_lr``)
is an array in the state: sweeps vmap over it, adaptive methods rewrite it, checkpoints
carry it, and ``lr`` (what the last update applied) is read back for metrics.csv.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from lrbench.optim.state_tree import find_states, map_states


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


# States that hold (a factor of) the learning rate, and how to read it: ``current_lr`` is the
# product of the factors of the outermost such states (a reader covers what its state wraps).
LRReader = Callable[[Any], jax.Array]
_LR_STATES: dict[type, LRReader] = {}


def register_lr_state(state_type: type, read: LRReader) -> None:
    """Declare that ``read(state)`` is this state type's factor of the LR the last update
    applied. A ``base_lr`` field, if the type has one, is its peak LR (``scale_base_lr``)."""
    _LR_STATES[state_type] = read


def current_lr(opt_state: optax.OptState) -> jax.Array:
    """The LR applied by the last update: the product of the registered states' factors
    (ours, a hypergradient's alpha, an LR-free method's step size...), or the line-search
    step of L-BFGS."""
    registered = tuple(_LR_STATES)
    nodes = find_states(opt_state, registered)
    if not nodes:
        return optax.tree.get(opt_state, "learning_rate")
    return functools.reduce(operator.mul, (_LR_STATES[type(node)](node) for node in nodes))


def scale_base_lr(opt_state: optax.OptState, factor: jax.Array) -> optax.OptState:
    """Multiply every peak LR (``base_lr``) in the state by ``factor`` (reduce-on-plateau):
    whatever reads the LR from the state, schedules and LR-free estimates included, sees it."""
    for state_type in _LR_STATES:
        if "base_lr" in getattr(state_type, "_fields", ()):
            opt_state = map_states(
                opt_state,
                state_type,
                lambda s: s._replace(base_lr=(s.base_lr * factor).astype(s.base_lr.dtype)),
            )
    return opt_state


register_lr_state(ScheduledLRState, lambda state: state.lr)
