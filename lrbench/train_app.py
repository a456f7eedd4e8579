"""``lrbench train``: the Hydra application (every Hydra flag and override works)."""

from __future__ import annotations

import shutil
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from lrbench.config import register_schemas, resolved_dict, to_run_config
from lrbench.errors import BadInputExit, ConfigError
from lrbench.paths import conf_dir

register_schemas()


@hydra.main(version_base="1.3", config_path=str(conf_dir()), config_name="config")
def train(cfg: DictConfig) -> float | None:
    """Train one configuration; returns the best validation accuracy (for sweepers)."""
    from lrbench.train.run import run  # JAX loads only when a run really starts

    hydra_cfg = HydraConfig.get()
    out_dir = Path(hydra_cfg.runtime.output_dir)
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    try:
        summary = run(to_run_config(cfg), resolved_dict(cfg), out_dir, quiet=multirun)
    except ConfigError as error:
        _remove_unused(out_dir)
        raise BadInputExit(error) from error
    if not multirun:
        print(_one_line(out_dir, summary))
    return summary["best"]["val_accuracy"]


def _remove_unused(out_dir: Path) -> None:
    """Bad input leaves no run directory: remove Hydra's, since no file of ours is in it."""
    if not (out_dir / "config.yaml").exists():
        shutil.rmtree(out_dir, ignore_errors=True)
        try:
            out_dir.parent.rmdir()  # runs/<name>/ if this was its only run
        except OSError:
            pass


def _one_line(out_dir: Path, summary: dict) -> str:
    final = summary["final"]
    parts = [f"{summary['status']}", f"{summary['steps']} steps",
             f"{summary['steps_per_s']:.0f} steps/s"]
    for key in ("val_accuracy", "test_accuracy"):
        if final.get(key) is not None:
            parts.append(f"{key} {final[key]:.4f}")
    if summary["diverged_at_step"] is not None:
        parts.append(f"diverged at step {summary['diverged_at_step']}")
    return f"{out_dir}: " + ", ".join(parts)
