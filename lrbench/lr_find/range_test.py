"""The LR range test (Smith, "Cyclical Learning Rates for Training Neural Networks", 2017):
train from the run's initialization while the LR ramps from min_lr to max_lr, one step per
LR, and read the loss curve (``rules``).

The steps run on device with the run's own epoch runner (``lrbench.train.program``: its
model, data order, input stage, loop strategy and streaming), the optimizer's LR
multiplier replaced by the ramp; the host then smooths the losses, stops the curve at
divergence and suggests. All ``num_steps`` steps run (one dispatch per epoch, no host sync
between them); points after the stop are discarded, as fastai never computes them.
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass, replace
from pathlib import Path

import jax
import numpy as np

from lrbench import optim
from lrbench.config import Config, LRFindConfig, Norms, Ramp
from lrbench.errors import ConfigError
from lrbench.lr_find.rules import Suggestion, n_recorded, smooth, suggest
from lrbench.train.program import build_runner
from lrbench.train.setup import Setup, prepared, run_keys
from lrbench.train.state import TrainState, create_state


def ramp_multiplier(cfg: LRFindConfig):
    """count -> lr / min_lr, traceable (jnp) and exact on the host (numpy float64)."""
    ratio, last = cfg.max_lr / cfg.min_lr, cfg.num_steps - 1
    if cfg.ramp is Ramp.exponential:
        return lambda count: ratio ** (count / last)
    return lambda count: 1 + (ratio - 1) * count / last


@dataclass(frozen=True)
class RangeTest:
    cfg: LRFindConfig
    lrs: np.ndarray  # the LR of each step (float64, the ramp's exact values)
    losses: np.ndarray  # each batch's loss, before its update
    smoothed: np.ndarray
    n_recorded: int  # points up to and including the divergence stop
    suggestions: dict[str, Suggestion | None]
    wall_s: float

    @property
    def stopped_at_step(self) -> int | None:
        """The 1-based step whose smoothed loss diverged, or None if the ramp completed."""
        return self.n_recorded if self.n_recorded < len(self.losses) else None

    @property
    def chosen(self) -> Suggestion | None:
        return self.suggestions[self.cfg.suggestion.value]

    def summary(self) -> dict:
        return {
            "suggestion": self.cfg.suggestion.value,
            "lr": None if self.chosen is None else self.chosen.lr,
            "suggestions": {
                name: None if s is None else s.as_dict() for name, s in self.suggestions.items()
            },
            "min_lr": self.cfg.min_lr,
            "max_lr": self.cfg.max_lr,
            "ramp": self.cfg.ramp.value,
            "num_steps": self.cfg.num_steps,
            "steps": self.n_recorded,
            "stopped_at_step": self.stopped_at_step,
            "best_smoothed_loss": float(np.min(self.smoothed[: self.n_recorded])),
            "wall_s": round(self.wall_s, 4),
        }

    def write_csv(self, directory: Path) -> None:
        """lr_find.csv: step (1-based), lr, loss, smoothed_loss; the recorded points."""
        with open(Path(directory) / "lr_find.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["step", "lr", "loss", "smoothed_loss"])
            for i in range(self.n_recorded):
                writer.writerow(
                    [
                        i + 1,
                        repr(float(self.lrs[i])),
                        repr(float(self.losses[i])),
                        repr(float(self.smoothed[i])),
                    ]
                )


def run_range_test(cfg: Config) -> RangeTest:
    """Validate ``cfg`` (as a run would) and run its range test; writes nothing."""
    if optim.is_full_batch(cfg.optimizer):
        raise ConfigError(
            "optimizer", cfg.optimizer.name, "the LR range test needs a minibatch optimizer"
        )
    test = cfg.lr_find
    ramp = ramp_multiplier(test)
    cfg = replace(cfg, optimizer=replace(cfg.optimizer, lr=test.min_lr))
    start = time.perf_counter()
    with prepared(cfg, lr_multiplier=ramp) as setup:
        init_key, data_key = run_keys(cfg.seed)
        state = create_state(
            setup.model, setup.tx, setup.dataset.spec.input_shape, init_key, setup.dtype
        )
        losses = _ramp_losses(setup, state, data_key, test.num_steps)
    lrs = test.min_lr * ramp(np.arange(test.num_steps, dtype=np.float64))
    smoothed = smooth(losses, test.smoothing)
    n = n_recorded(smoothed, test.stop_factor)
    return RangeTest(
        test,
        lrs,
        losses,
        smoothed,
        n,
        suggest(lrs[:n], smoothed[:n], test.num_steps),
        time.perf_counter() - start,
    )


def _ramp_losses(setup: Setup, state: TrainState, data_key, num_steps: int) -> np.ndarray:
    """The batch losses of num_steps steps, batches in the run's order (epoch after epoch)."""
    runner, _ = build_runner(setup, data_key, norms=Norms.off)  # losses only: less to compile
    per_epoch = setup.plan.steps_per_epoch
    losses = []
    for epoch in range(-(-num_steps // per_epoch)):
        state, metrics = runner(state, epoch, min(per_epoch, num_steps - epoch * per_epoch))
        losses.append(metrics.loss)
    return np.concatenate(jax.device_get(losses)).astype(np.float64)


def choose_lr(cfg: Config) -> tuple[Config, RangeTest]:
    """``optimizer.lr=auto``: the config with the range test's chosen LR, and the test."""
    result = run_range_test(cfg)
    if result.chosen is None:
        raise ConfigError(
            "optimizer.lr",
            "auto",
            f"the range test diverged after {result.n_recorded} of {cfg.lr_find.num_steps} "
            "steps, too early to suggest; lower lr_find.min_lr or lr_find.max_lr",
        )
    return replace(cfg, optimizer=replace(cfg.optimizer, lr=result.chosen.lr)), result
