"""Schedules as multipliers of ``optimizer.lr``, built from optax's schedule functions.

Positions are given relative to training (fractions, epochs) and turned into steps here,
once the number of steps is known.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise

import optax

from lrbench.config import (
    BoundaryUnit,
    CosineConfig,
    ExponentialConfig,
    LinearScheduleConfig,
    OneCycleConfig,
    PolynomialConfig,
    ScheduleConfig,
    StepConfig,
    WarmupCosineConfig,
)
from lrbench.errors import ConfigError


def _constant(cfg: ScheduleConfig, total_steps: int, steps_per_epoch: int) -> optax.Schedule:
    return optax.constant_schedule(1.0)


def _step(cfg: StepConfig, total_steps: int, steps_per_epoch: int) -> optax.Schedule:
    per_unit = {
        BoundaryUnit.fraction: total_steps,
        BoundaryUnit.epoch: steps_per_epoch,
        BoundaryUnit.step: 1,
    }[cfg.unit]
    steps = [round(b * per_unit) for b in cfg.boundaries]
    if any(not 0 < s < total_steps for s in steps) or any(b <= a for a, b in pairwise(steps)):
        raise ConfigError(
            "schedule.boundaries",
            list(cfg.boundaries),
            f"strictly increasing positions inside training "
            f"(in {cfg.unit.value}s, steps 1..{total_steps - 1})",
        )
    return optax.piecewise_constant_schedule(1.0, {s: cfg.factor for s in steps})


def _exponential(cfg: ExponentialConfig, total_steps: int, steps_per_epoch: int):
    return optax.exponential_decay(1.0, steps_per_epoch, cfg.decay_rate, staircase=cfg.staircase)


def _cosine(cfg: CosineConfig, total_steps: int, steps_per_epoch: int) -> optax.Schedule:
    return optax.cosine_decay_schedule(1.0, total_steps, alpha=cfg.end_factor)


def _warmup_cosine(cfg: WarmupCosineConfig, total_steps: int, steps_per_epoch: int):
    warmup_steps = round(cfg.warmup * total_steps)
    if warmup_steps >= total_steps:
        raise ConfigError(
            "schedule.warmup", cfg.warmup, f"warmup must end before step {total_steps}"
        )
    return optax.warmup_cosine_decay_schedule(
        init_value=cfg.init_factor,
        peak_value=1.0,
        warmup_steps=warmup_steps,
        decay_steps=total_steps,
        end_value=cfg.end_factor,
    )


def _linear(cfg: LinearScheduleConfig, total_steps: int, steps_per_epoch: int):
    return optax.linear_schedule(1.0, cfg.end_factor, total_steps)


def _polynomial(cfg: PolynomialConfig, total_steps: int, steps_per_epoch: int):
    return optax.polynomial_schedule(1.0, cfg.end_factor, cfg.power, total_steps)


def _one_cycle(cfg: OneCycleConfig, total_steps: int, steps_per_epoch: int):
    """optax.cosine_onecycle_schedule's formula with the peak step rounded, not truncated
    (int(0.29 * 100) is 28)."""
    peak = round(cfg.pct_start * total_steps)
    return optax.piecewise_interpolate_schedule(
        "cosine",
        1.0 / cfg.div_factor,
        {peak: cfg.div_factor, total_steps: 1.0 / (cfg.div_factor * cfg.final_div_factor)},
    )


BUILDERS: dict[str, Callable[..., optax.Schedule]] = {
    "constant": _constant,
    "step": _step,
    "exponential": _exponential,
    "cosine": _cosine,
    "warmup_cosine": _warmup_cosine,
    "linear": _linear,
    "polynomial": _polynomial,
    "one_cycle": _one_cycle,
    # A constant multiplier: the reduction is state, driven by validation (optim/plateau.py).
    "reduce_on_plateau": _constant,
}


def build_multiplier(cfg: ScheduleConfig, total_steps: int, steps_per_epoch: int) -> optax.Schedule:
    """The LR multiplier as a function of the step (1.0 = optimizer.lr)."""
    try:
        builder = BUILDERS[cfg.name]
    except KeyError:
        raise ConfigError("schedule.name", cfg.name, f"one of {sorted(BUILDERS)}") from None
    return builder(cfg, total_steps, steps_per_epoch)
