"""Hydra callback: each multirun job appends its row to the sweep index as it finishes, and
prints its result line; the sweep prints where it writes, first, and where its results went,
last."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode

from lrbench.runs import read_summary
from lrbench.sweep.index import SweepIndex
from lrbench.train.progress import result_line

OPTUNA_RESULTS = "optimization_results.yaml"  # hydra-optuna-sweeper's, in the sweep dir


class SweepIndexCallback(Callback):
    """Writes <sweep dir>/sweep.csv; a job that failed or diverged is recorded too."""

    def on_multirun_start(self, config: Any, **kwargs: Any) -> None:
        # alembic (imported with optuna) logs its plugins at INFO through Hydra's console
        logging.getLogger("alembic").setLevel(logging.WARNING)
        if "optuna" in str(config.hydra.sweeper.get("_target_", "")):
            _plain_optuna_logs()
        sweep_dir = Path(config.hydra.sweep.dir).absolute()
        print(f"sweep {sweep_dir}: one run directory per job", flush=True)

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir).absolute()
        print(f"sweep index: {sweep_dir / 'sweep.csv'}", flush=True)
        if (sweep_dir / OPTUNA_RESULTS).exists():
            print(f"optuna results: {sweep_dir / OPTUNA_RESULTS}", flush=True)

    def on_job_end(self, config: Any, job_return: Any, **kwargs: Any) -> None:
        hydra_cfg = HydraConfig.get()
        if hydra_cfg.mode != RunMode.MULTIRUN:
            return
        run_dir = hydra_cfg.runtime.output_dir
        try:
            summary = read_summary(run_dir)
        except ValueError:  # a summary cut short by a kill: index it as failed
            summary = None
        overrides = list(job_return.overrides or [])
        SweepIndex(hydra_cfg.sweep.dir).append(hydra_cfg.job.num, run_dir, overrides, summary)
        if summary is None and (Path(run_dir) / "0").is_dir():
            return  # a vmap sweep as a job: its members' lines are printed by the job
        print(result_line(run_dir, summary, " ".join(overrides)), flush=True)


def _plain_optuna_logs() -> None:
    """Optuna's log lines without colorlog's ANSI codes where stderr is no terminal."""
    if sys.stderr.isatty():
        return
    import optuna

    root = logging.getLogger("optuna")
    if any(isinstance(h, _PlainStderr) for h in root.handlers):
        return
    optuna.logging.disable_default_handler()
    handler = _PlainStderr()
    handler.setFormatter(logging.Formatter("[%(levelname)1.1s %(asctime)s] %(message)s"))
    root.addHandler(handler)


class _PlainStderr(logging.StreamHandler):
    """Writes to the sys.stderr of the moment (in-process sweeps, tests: it is replaced)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)
