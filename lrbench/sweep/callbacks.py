"""Hydra callback: each multirun job appends its row to the sweep index as it finishes."""

from __future__ import annotations

from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode

from lrbench.runs import read_summary
from lrbench.sweep.index import SweepIndex


class SweepIndexCallback(Callback):
    """Writes <sweep dir>/sweep.csv; a job that failed or diverged is recorded too."""

    def on_job_end(self, config: Any, job_return: Any, **kwargs: Any) -> None:
        hydra_cfg = HydraConfig.get()
        if hydra_cfg.mode != RunMode.MULTIRUN:
            return
        run_dir = hydra_cfg.runtime.output_dir
        try:
            summary = read_summary(run_dir)
        except ValueError:  # a summary cut short by a kill: index it as failed
            summary = None
        SweepIndex(hydra_cfg.sweep.dir).append(
            hydra_cfg.job.num, run_dir, list(job_return.overrides or []), summary
        )
