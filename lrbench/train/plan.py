"""How many steps a run takes, from the train split size, batch size and epochs or steps."""

from __future__ import annotations

from dataclasses import dataclass

from lrbench.config import TrainConfig
from lrbench.errors import ConfigError


@dataclass(frozen=True)
class Plan:
    steps_per_epoch: int  # whole batches only: the last partial batch is dropped (static shapes)
    total_steps: int
    batch_size: int
    eval_every: int
    log_every: int

    @property
    def n_epochs(self) -> int:
        return -(-self.total_steps // self.steps_per_epoch)

    def steps_in_epoch(self, epoch: int) -> int:
        return min(self.steps_per_epoch, self.total_steps - epoch * self.steps_per_epoch)

    def evaluates_after(self, epoch: int) -> bool:
        return (epoch + 1) % self.eval_every == 0 or epoch + 1 == self.n_epochs


def make_plan(cfg: TrainConfig, n_train: int, full_batch: bool) -> Plan:
    """Full-batch optimizers take one step per epoch over the whole train split."""
    batch_size = n_train if full_batch else cfg.batch_size
    if batch_size > n_train:
        raise ConfigError(
            "train.batch_size",
            cfg.batch_size,
            f"must be between 1 and the train split size ({n_train})",
        )
    steps_per_epoch = n_train // batch_size
    total = cfg.steps if cfg.steps is not None else cfg.epochs * steps_per_epoch
    return Plan(steps_per_epoch, total, batch_size, cfg.eval_every, cfg.log_every)
