"""Learning-rate-free and schedule-free optimizers from ``optax.contrib``, LR held in state.

Prodigy, D-Adaptation, schedule-free and COCOB use their learning rate inside their own
estimates (Prodigy's and D-Adaptation's D is weighted by it, schedule-free's averaging
weights are powers of it), so scaling their output afterwards would not be the same
optimizer. Instead the scheduled LR held in our state (``ScheduledLRState``) is written into
the optimizer's own ``learning_rate`` hyperparameter before every update, as optax documents
for ``inject_hyperparams``. Mechanize wraps a base optimizer that carries our scheduled LR.

``current_lr`` reports lr x the optimizer's own step size where optax keeps one in its
state (docs/lr-tools.md "Learning-rate tools").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from optax import contrib

from lrbench.optim.learning_rate import (
    ScheduledLRState,
    current_lr,
    register_lr_state,
    scale_by_scheduled_lr,
)
from lrbench.optim.state_tree import find_states

# (inner state before the update, inner state after it) -> the step size the update applied
StepSize = Callable[[optax.OptState, optax.OptState], jax.Array]


# ------------------------------------------------------------------ optax.contrib adapters
# Flat float arguments, so ``inject_hyperparams`` holds each one as an array in the state.
def prodigy(
    learning_rate, weight_decay, b1, b2, eps, estim_lr0, estim_lr_coef, safeguard_warmup
) -> optax.GradientTransformation:
    return contrib.prodigy(
        learning_rate, betas=(b1, b2), eps=eps, estim_lr0=estim_lr0,
        estim_lr_coef=estim_lr_coef, weight_decay=weight_decay, safeguard_warmup=safeguard_warmup,
    )  # fmt: skip


def dadapt_adamw(
    learning_rate, weight_decay, b1, b2, eps, estim_lr0
) -> optax.GradientTransformation:
    return contrib.dadapt_adamw(
        learning_rate, betas=(b1, b2), eps=eps, estim_lr0=estim_lr0, weight_decay=weight_decay
    )


def cocob(learning_rate, weight_decay, alpha, eps) -> optax.GradientTransformation:
    return contrib.cocob(learning_rate, alpha=alpha, eps=eps, weight_decay=weight_decay)


def dog(learning_rate, weight_decay, init_distance, eps) -> optax.GradientTransformation:
    """r_eps = init_distance * (1 + ||x_0||): the paper's (and optax's) "heuristic" start."""
    return contrib.dog(
        learning_rate, init_step=("heuristic", init_distance), eps=eps, weight_decay=weight_decay
    )


def schedule_free_adamw(
    learning_rate, weight_decay, b1, b2, eps, weight_lr_power
) -> optax.GradientTransformation:
    return contrib.schedule_free_adamw(
        learning_rate, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay,
        weight_lr_power=weight_lr_power,
    )  # fmt: skip


def schedule_free_sgd(
    learning_rate, weight_decay, b1, weight_lr_power
) -> optax.GradientTransformation:
    return contrib.schedule_free_sgd(
        learning_rate, b1=b1, weight_decay=weight_decay, weight_lr_power=weight_lr_power
    )


def mechanize(base_optimizer, weight_decay, eps, s_init, num_betas) -> optax.GradientTransformation:
    return contrib.mechanize(
        base_optimizer, weight_decay=weight_decay, eps=eps, s_init=s_init, num_betas=num_betas
    )


# Mechanize's base optimizers, at learning rate 1 (our scheduled LR follows them), with
# optax's default hyperparameters.
MECHANIZE_BASES: dict[str, Callable[[], optax.GradientTransformation]] = {
    "sgd": lambda: optax.sgd(1.0),
    "momentum": lambda: optax.sgd(1.0, momentum=0.9),
    "adam": lambda: optax.adam(1.0),
    "lion": lambda: optax.lion(1.0),
}


# --------------------------------------------------------------- step sizes kept by optax
def d_estimate(state_type: type) -> StepSize:
    """Prodigy's / D-Adaptation's D: the estimate the update used (the one before it)."""
    return lambda before, after: find_states(before, state_type)[0].estim_lr


def dog_step_size(before: optax.OptState, after: optax.OptState) -> jax.Array:
    """DoG's eta_t = max_dist / sqrt(sum of squared gradient norms + eps), as applied."""
    state = find_states(after, contrib.DoGState)[0]
    return state.max_dist / jnp.sqrt(state.sum_sq_norm_grads + after.hyperparams["eps"])


# ----------------------------------------------------------- the LR as the optimizer's own
class LRArgumentState(NamedTuple):
    schedule: ScheduledLRState  # base_lr * multiplier(count), the optimizer's learning_rate
    step_size: jax.Array  # the optimizer's own step size the last update applied (1: none)
    inner: optax.OptState  # inject_hyperparams' state of the optimizer


def lr_as_argument(
    injected: optax.GradientTransformationExtraArgs,
    base_lr: float,
    multiplier: optax.Schedule,
    dtype: jnp.dtype,
    step_size: StepSize | None = None,
) -> optax.GradientTransformationExtraArgs:
    """Run ``injected`` (an ``inject_hyperparams`` optimizer with a ``learning_rate``) with
    our scheduled LR as its learning rate at every update."""
    schedule = scale_by_scheduled_lr(base_lr, multiplier, dtype)

    def init(params: optax.Params) -> LRArgumentState:
        return LRArgumentState(schedule.init(params), jnp.ones([], dtype), injected.init(params))

    def update(grads, state: LRArgumentState, params=None, **extra_args):
        _, scheduled = schedule.update((), state.schedule)  # only its LR bookkeeping
        inner = state.inner._replace(
            hyperparams={**state.inner.hyperparams, "learning_rate": scheduled.lr}
        )
        updates, new_inner = injected.update(grads, inner, params, **extra_args)
        size = jnp.ones([], dtype) if step_size is None else step_size(inner, new_inner)
        return updates, LRArgumentState(scheduled, size.astype(dtype), new_inner)

    return optax.GradientTransformationExtraArgs(init, update)


# ------------------------------------------------------------------------ LR build stages
# (inject_hyperparams(direction), its hyperparameters, optimizer config, multiplier, dtype)
# -> the optimizer with its learning rate; see ``lrbench.optim.optimizers.OptimizerEntry``.
Injector = Callable[..., optax.GradientTransformationExtraArgs]  # inject_hyperparams(direction)


def as_argument(step_size: StepSize | None = None) -> Callable[..., optax.GradientTransformation]:
    """The stage of optimizers whose learning rate is their own argument."""

    def stage(
        inject: Injector, hyperparams: dict, cfg: Any, multiplier: optax.Schedule, dtype: jnp.dtype
    ) -> optax.GradientTransformation:
        injected = inject(learning_rate=cfg.lr, **hyperparams)  # overwritten at each update
        return lr_as_argument(injected, cfg.lr, multiplier, dtype, step_size)

    return stage


def mechanized(
    inject: Injector, hyperparams: dict, cfg: Any, multiplier: optax.Schedule, dtype: jnp.dtype
) -> optax.GradientTransformation:
    """Mechanize around ``cfg.base`` followed by our scheduled LR."""
    scheduled = scale_by_scheduled_lr(cfg.lr, multiplier, dtype)
    base = optax.chain(MECHANIZE_BASES[cfg.base.value](), scheduled)
    return inject(base_optimizer=base, **hyperparams)


# ----------------------------------------------------------------- evaluation parameters
def schedule_free_eval_params(opt_state: optax.OptState, params: optax.Params) -> optax.Params:
    """Schedule-free trains at y and is evaluated at its average x (optax's formula)."""
    (state,) = find_states(opt_state, contrib.ScheduleFreeState)
    return contrib.schedule_free_eval_params(state, params)


register_lr_state(LRArgumentState, lambda state: state.schedule.lr * state.step_size)
# Mechanic scales its base optimizer's update (our scheduled LR inside) by sum(s).
register_lr_state(
    contrib.MechanicState,
    lambda state: jnp.sum(state.s) * current_lr(state.base_optimizer_state),
)
