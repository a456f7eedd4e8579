"""The LR a configuration would apply at every step, before training it.

Uses the training code itself (Hydra composition, the data split size, the step plan, the
schedule's multiplier), so the preview is what ``lrbench train`` with the same overrides
logs in metrics.csv's ``lr`` column. Imports JAX.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lrbench.config import Config


@dataclass(frozen=True)
class SchedulePreview:
    config: Config
    steps: np.ndarray  # 1, 2, ..., total steps
    lrs: np.ndarray  # the LR applied by the update at each step
    steps_per_epoch: int

    def title(self) -> str:
        return (
            f"schedule={self.config.schedule.name}, optimizer.lr={self.config.optimizer.lr:g}, "
            f"{len(self.steps)} steps ({self.steps_per_epoch} per epoch)"
        )

    def describe(self) -> str:
        peak = int(np.argmax(self.lrs))
        return (
            f"schedule={self.config.schedule.name}, optimizer.lr={self.config.optimizer.lr:g}: "
            f"{len(self.steps)} steps ({self.steps_per_epoch} per epoch), lr {self.lrs[0]:.3g} "
            f"at step 1, peak {self.lrs[peak]:.3g} at step {peak + 1}, {self.lrs[-1]:.3g} "
            f"at step {len(self.steps)}"
        )


def compose(overrides: list[str]) -> Config:
    """The typed config ``lrbench train <overrides>`` would run."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from lrbench.config import check_combination, register_schemas, to_run_config
    from lrbench.paths import conf_dir

    register_schemas()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        cfg = to_run_config(hydra_compose("config", overrides=overrides))
    check_combination(cfg)
    return cfg


def preview(overrides: list[str]) -> SchedulePreview:
    import jax

    from lrbench import data, optim
    from lrbench.train.plan import make_plan

    cfg = compose(overrides)
    dataset = data.load(cfg.dataset)  # the number of steps depends on the train split size
    plan = make_plan(cfg.train, dataset.n_train, optim.is_full_batch(cfg.optimizer))
    multiplier = optim.build_multiplier(cfg.schedule, plan.total_steps, plan.steps_per_epoch)
    counts = np.arange(plan.total_steps)
    # The update at step s applies the schedule at count s - 1 (docs/design.md, metrics.csv's lr).
    lrs = cfg.optimizer.lr * np.asarray(jax.vmap(multiplier)(counts), np.float64)
    return SchedulePreview(cfg, counts + 1, lrs, plan.steps_per_epoch)
