"""Optimizers from optax, built from config, with the learning rate held in their state.

Each entry wraps an optax alias at learning rate 1.0 (so its output is the descent
direction, with any decoupled weight decay already inside) in ``inject_hyperparams``, so
its float hyperparameters are arrays in the state (sweepable with vmap), and scales the
result by ``scale_by_scheduled_lr`` (hypergradient, LR-free and schedule-free
optimizers apply the LR held in state their own way: ``OptimizerEntry.stage``).
L2 ("coupled") weight decay, PyTorch's ``weight_decay`` for SGD/Adam/RMSprop/Adagrad, is
``add_decayed_weights`` before the optimizer; AdamW and Lion decay decoupled, as in their
papers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax.numpy as jnp
import optax

from lrbench.config import (
    SCHEMAS,
    LBFGSConfig,
    OptimizerConfig,
)
from lrbench.errors import ConfigError
from lrbench.optim import contrib, hypergradient
from lrbench.optim.learning_rate import scale_by_scheduled_lr


def _with_l2(weight_decay, direction: optax.GradientTransformation) -> optax.GradientTransformation:
    return optax.chain(optax.add_decayed_weights(weight_decay), direction)


def _sgd(weight_decay):
    return _with_l2(weight_decay, optax.sgd(1.0))


def _momentum(weight_decay, momentum, nesterov):
    return _with_l2(weight_decay, optax.sgd(1.0, momentum=momentum, nesterov=nesterov))


def _adam(weight_decay, b1, b2, eps):
    return _with_l2(weight_decay, optax.adam(1.0, b1=b1, b2=b2, eps=eps))


def _adamw(weight_decay, b1, b2, eps):
    return optax.adamw(1.0, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay)


def _lion(weight_decay, b1, b2):
    return optax.lion(1.0, b1=b1, b2=b2, weight_decay=weight_decay)


def _rmsprop(weight_decay, decay, eps, eps_in_sqrt, centered, momentum):
    # momentum is always a trace (an array in the state, so sweepable): at 0 it is the
    # identity, as PyTorch's momentum=0.
    return _with_l2(
        weight_decay,
        optax.rmsprop(
            1.0, decay=decay, eps=eps, eps_in_sqrt=eps_in_sqrt, centered=centered, momentum=momentum
        ),
    )


def _adagrad(weight_decay, initial_accumulator_value, eps):
    return _with_l2(
        weight_decay,
        optax.adagrad(1.0, initial_accumulator_value=initial_accumulator_value, eps=eps),
    )


def scheduled(
    inject: Callable[..., optax.GradientTransformation],
    hyperparams: dict,
    cfg: OptimizerConfig,
    multiplier: optax.Schedule,
    dtype: jnp.dtype,
) -> optax.GradientTransformation:
    """The direction, then our scheduled LR (docs/running.md "The learning rate is state")."""
    return optax.chain(inject(**hyperparams), scale_by_scheduled_lr(cfg.lr, multiplier, dtype))


def trained_params(opt_state: optax.OptState, params: optax.Params) -> optax.Params:
    """Evaluate the parameters being trained (all but schedule-free)."""
    return params


@dataclass(frozen=True)
class OptimizerEntry:
    """How to build one optimizer: its direction and which config fields feed it."""

    direction: Callable[..., optax.GradientTransformation]
    floats: tuple[str, ...] = ()  # injected as arrays in the state
    statics: tuple[str, ...] = ()  # fixed at compile time (booleans)
    # How the LR held in state applies: (inject_hyperparams(direction), hyperparams, cfg,
    # multiplier, dtype) -> optimizer. Ours scales the direction; see optim/contrib.py and
    # optim/hypergradient.py for the others.
    stage: Callable[..., optax.GradientTransformation] = scheduled
    # (opt_state, params) -> the parameters to evaluate
    eval_params: Callable[[optax.OptState, optax.Params], optax.Params] = trained_params
    # Config values that only seed adaptive state at step 0 (a resumed run cannot change
    # them: lrbench.optim.resumed_values); tests/test_resumed_values.py checks each claim.
    seeds: tuple[str, ...] = ()


OPTIMIZERS: dict[str, OptimizerEntry] = {
    "sgd": OptimizerEntry(_sgd),
    "momentum": OptimizerEntry(_momentum, ("momentum",), ("nesterov",)),
    "adam": OptimizerEntry(_adam, ("b1", "b2", "eps")),
    "adamw": OptimizerEntry(_adamw, ("b1", "b2", "eps")),
    "lion": OptimizerEntry(_lion, ("b1", "b2")),
    "rmsprop": OptimizerEntry(_rmsprop, ("decay", "eps", "momentum"), ("eps_in_sqrt", "centered")),
    "adagrad": OptimizerEntry(
        _adagrad, ("initial_accumulator_value", "eps"), seeds=("initial_accumulator_value",)
    ),
    "sgd_hd": OptimizerEntry(
        hypergradient.sgd_direction,
        ("momentum",),
        ("nesterov",),
        hypergradient.hypergradient_stage,
        seeds=("lr",),
    ),
    "adam_hd": OptimizerEntry(
        hypergradient.adam_direction,
        ("b1", "b2", "eps"),
        (),
        hypergradient.hypergradient_stage,
        seeds=("lr",),
    ),
    "prodigy": OptimizerEntry(
        contrib.prodigy,
        ("b1", "b2", "eps", "estim_lr0", "estim_lr_coef"),
        ("safeguard_warmup",),
        contrib.as_argument(contrib.d_estimate(optax.contrib.ProdigyState)),
    ),
    "dadapt_adamw": OptimizerEntry(
        contrib.dadapt_adamw,
        ("b1", "b2", "eps", "estim_lr0"),
        (),
        contrib.as_argument(contrib.d_estimate(optax.contrib.DAdaptAdamWState)),
        seeds=("estim_lr0",),
    ),
    "cocob": OptimizerEntry(
        contrib.cocob, ("alpha", "eps"), (), contrib.as_argument(), seeds=("eps",)
    ),
    "dog": OptimizerEntry(
        contrib.dog,
        ("init_distance", "eps"),
        (),
        contrib.as_argument(contrib.dog_step_size),
        seeds=("init_distance",),
    ),
    "schedule_free_adamw": OptimizerEntry(
        contrib.schedule_free_adamw,
        ("b1", "b2", "eps", "weight_lr_power"),
        (),
        contrib.as_argument(),
        contrib.schedule_free_eval_params,
    ),
    "schedule_free_sgd": OptimizerEntry(
        contrib.schedule_free_sgd,
        ("b1", "weight_lr_power"),
        (),
        contrib.as_argument(),
        contrib.schedule_free_eval_params,
    ),
    "mechanize": OptimizerEntry(
        contrib.mechanize, ("eps", "s_init"), ("num_betas",), contrib.mechanized
    ),
}
FULL_BATCH = {"lbfgs"}
NAMES = sorted({*OPTIMIZERS, *FULL_BATCH})


def is_full_batch(cfg: OptimizerConfig) -> bool:
    return cfg.name in FULL_BATCH


def build(
    cfg: OptimizerConfig, multiplier: optax.Schedule, dtype: jnp.dtype = jnp.float32
) -> optax.GradientTransformation:
    """clip -> optimizer direction -> its learning rate, held in state (``entry.stage``)."""
    if cfg.name in FULL_BATCH:
        return build_lbfgs(cfg)
    try:
        entry = OPTIMIZERS[cfg.name]
    except KeyError:
        raise ConfigError("optimizer.name", cfg.name, f"one of {NAMES}") from None
    expected = SCHEMAS["optimizer"].get(cfg.name)
    if expected is not None and not isinstance(cfg, expected):
        raise ConfigError("optimizer.name", cfg.name, f"needs the {expected.__name__} fields")
    hyperparams = {"weight_decay": cfg.weight_decay}
    hyperparams |= {k: getattr(cfg, k) for k in entry.floats + entry.statics}
    inject = optax.inject_hyperparams(
        entry.direction, static_args=entry.statics, hyperparam_dtype=dtype
    )
    clip = [] if cfg.grad_clip_norm is None else [optax.clip_by_global_norm(cfg.grad_clip_norm)]
    return optax.chain(*clip, entry.stage(inject, hyperparams, cfg, multiplier, dtype))


def eval_params(cfg: OptimizerConfig) -> Callable[[optax.OptState, optax.Params], optax.Params]:
    """(opt_state, params) -> the parameters to evaluate (schedule-free: its average)."""
    entry = OPTIMIZERS.get(cfg.name)
    return trained_params if entry is None else entry.eval_params


def build_lbfgs(cfg: LBFGSConfig) -> optax.GradientTransformation:
    """optax's L-BFGS with its zoom (strong Wolfe) line search; the objective carries L2."""
    return optax.lbfgs(
        learning_rate=None if cfg.lr == 1.0 else cfg.lr,
        memory_size=cfg.memory_size,
        # Each search starts from the unit step, as optax.lbfgs's default and PyTorch do
        # ("keep" would reuse a short accepted step for ever after).
        linesearch=optax.scale_by_zoom_linesearch(
            max_linesearch_steps=cfg.max_linesearch_steps, initial_guess_strategy="one"
        ),
    )
