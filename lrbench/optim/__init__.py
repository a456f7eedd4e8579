"""Optimizers and schedules built from config; the learning rate lives in the state."""

from lrbench.optim.learning_rate import ScheduledLRState, current_lr, scale_by_scheduled_lr
from lrbench.optim.optimizers import NAMES, build, is_full_batch
from lrbench.optim.schedules import build_multiplier

__all__ = [
    "NAMES",
    "ScheduledLRState",
    "build",
    "build_multiplier",
    "current_lr",
    "is_full_batch",
    "scale_by_scheduled_lr",
]
