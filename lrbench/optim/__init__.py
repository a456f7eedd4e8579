"""Optimizers and schedules built from config; the learning rate lives in the state."""

from lrbench.optim.learning_rate import ScheduledLRState, current_lr, scale_by_scheduled_lr
from lrbench.optim.optimizers import NAMES, build, eval_params, is_full_batch
from lrbench.optim.plateau import validation_observer, watch_validation
from lrbench.optim.schedules import build_multiplier

__all__ = [
    "NAMES",
    "ScheduledLRState",
    "build",
    "build_multiplier",
    "current_lr",
    "eval_params",
    "is_full_batch",
    "scale_by_scheduled_lr",
    "validation_observer",
    "watch_validation",
]
