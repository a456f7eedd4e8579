"""Optimizers and schedules built from config; the learning rate lives in the state."""

from lrbench.optim.learning_rate import ScheduledLRState, current_lr, scale_by_scheduled_lr
from lrbench.optim.loss_scale import (
    LossScaleState,
    current_loss_scale,
    skipped_steps,
    with_loss_scaling,
)
from lrbench.optim.optimizers import NAMES, build, eval_params, is_full_batch
from lrbench.optim.plateau import validation_observer, watch_validation
from lrbench.optim.schedules import build_multiplier

__all__ = [
    "NAMES",
    "LossScaleState",
    "ScheduledLRState",
    "build",
    "build_multiplier",
    "current_loss_scale",
    "current_lr",
    "eval_params",
    "is_full_batch",
    "scale_by_scheduled_lr",
    "skipped_steps",
    "validation_observer",
    "watch_validation",
    "with_loss_scaling",
]
