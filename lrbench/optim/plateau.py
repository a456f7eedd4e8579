"""reduce_on_plateau: the LR is multiplied by ``factor`` when the validation loss stalls.

optax.contrib.reduce_on_plateau holds the rule (patience, cooldown, tolerances, min_scale)
and its state. Here that state rides in the optimizer state inside a monitor that passes
updates through unchanged, and the observer (``plateau_observer``, looked up by
``validation_observer``) feeds it the validation loss at each evaluation, not at each step
(a small jitted update between epochs: no host sync). A
reduction multiplies every peak LR in the state (``scale_base_lr``), so it multiplies the
scheduled LR and everything that reads it (hypergradient alpha, LR-free estimates).

optax 0.2.8 counts ``value < (1 - rtol) * best - atol`` as an improvement; for a negative
``best`` that threshold lies above ``best``, so a stalled negative value keeps "improving"
and the LR is never reduced (fixed upstream later). The monitored value here is the
validation cross-entropy, which is >= 0, so it cannot happen (tests/test_plateau.py checks
that, and checks the rule against PyTorch's ReduceLROnPlateau).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from optax import contrib

from lrbench.config import ReduceOnPlateauConfig, ScheduleConfig
from lrbench.optim.learning_rate import scale_base_lr
from lrbench.optim.state_tree import find_states, map_states


class PlateauState(NamedTuple):
    # inject_hyperparams(reduce_on_plateau)'s state: patience, cooldown and min_scale as
    # arrays, and optax's ReduceLROnPlateauState (scale, best_value, plateau_count, ...)
    monitor: optax.OptState


Observe = Callable[[optax.OptState, jax.Array], optax.OptState]


def _rule(cfg: ReduceOnPlateauConfig, dtype: jnp.dtype) -> optax.GradientTransformationExtraArgs:
    # optax checks factor, rtol and atol in Python: they stay static, the rest is state.
    return optax.inject_hyperparams(
        contrib.reduce_on_plateau, static_args=("factor", "rtol", "atol"), hyperparam_dtype=dtype
    )(
        factor=cfg.factor, patience=cfg.patience, rtol=cfg.rtol, atol=cfg.atol,
        cooldown=cfg.cooldown, min_scale=cfg.min_scale,
    )  # fmt: skip


def plateau_monitor(cfg: ReduceOnPlateauConfig, dtype: jnp.dtype) -> optax.GradientTransformation:
    """Holds the plateau state; updates pass through (the reduction acts on the LR)."""
    rule = _rule(cfg, dtype)

    def init(params: optax.Params) -> PlateauState:
        return PlateauState(rule.init(params))

    def update(updates, state: PlateauState, params=None):
        return updates, state

    return optax.GradientTransformation(init, update)


def plateau_observer(cfg: ReduceOnPlateauConfig, dtype: jnp.dtype) -> Observe:
    """(opt_state, validation loss) -> opt_state: one step of the rule; on a reduction, every
    peak LR in the state is scaled by it."""
    rule = _rule(cfg, dtype)

    def observe(opt_state: optax.OptState, val_loss: jax.Array) -> optax.OptState:
        (state,) = find_states(opt_state, PlateauState)
        _, monitor = rule.update((), state.monitor, value=val_loss)
        old, new = state.monitor.inner_state.scale, monitor.inner_state.scale
        ratio = jnp.where(old > 0, new / old, 1.0)
        opt_state = map_states(opt_state, PlateauState, lambda _: PlateauState(monitor))
        return scale_base_lr(opt_state, ratio)

    return observe


# schedule name -> (the monitor in the optimizer state, the observer of validation losses)
WATCHES = {"reduce_on_plateau": (plateau_monitor, plateau_observer)}


def watch_validation(
    tx: optax.GradientTransformation, schedule: ScheduleConfig, dtype: jnp.dtype
) -> optax.GradientTransformation:
    """``tx`` with the schedule's validation monitor added, if the schedule has one."""
    if schedule.name not in WATCHES:
        return tx
    monitor, _ = WATCHES[schedule.name]
    return optax.chain(tx, monitor(schedule, dtype))


def validation_observer(schedule: ScheduleConfig, dtype: jnp.dtype) -> Observe | None:
    """How the state reacts to each validation loss, or None if the schedule does not."""
    if schedule.name not in WATCHES:
        return None
    _, observer = WATCHES[schedule.name]
    return observer(schedule, dtype)
