"""``lrbench train``: the Hydra application (every Hydra flag and override works)."""

from __future__ import annotations

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from lrbench.config import Config, register_schemas, resolved_dict, to_run_config
from lrbench.errors import BadInputExit, ConfigError
from lrbench.paths import conf_dir
from lrbench.runs import remove_unused_run_dir
from lrbench.summary import Summary, final
from lrbench.sweep import member_dir

register_schemas()


@hydra.main(version_base="1.3", config_path=str(conf_dir()), config_name="config")
def train(cfg: DictConfig) -> float:
    """Train one configuration (or a vmap sweep); returns ``objective`` for sweepers."""
    hydra_cfg = HydraConfig.get()
    out_dir = Path(hydra_cfg.runtime.output_dir)
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    try:
        run_config = to_run_config(cfg)
        use_compile_cache(run_config.compile_cache)
        if run_config.sweep is None:
            summary, run_dir = _one_run(run_config, resolved_dict(cfg), out_dir, multirun)
            summaries, run_dirs = [summary], [run_dir]
        else:
            from lrbench.sweep.vmap import run_vmap_sweep

            summaries = run_vmap_sweep(run_config, resolved_dict(cfg), out_dir)
            run_dirs = [member_dir(out_dir, k) for k in range(len(summaries))]
    except (ConfigError, OmegaConfBaseException) as error:  # bad input, found after composing
        remove_unused_run_dir(out_dir)
        raise BadInputExit(error) from error
    if not multirun:
        for run_dir, summary in zip(run_dirs, summaries, strict=True):
            print(_one_line(run_dir, summary))
    objective = run_config.objective
    return objective.best_of(objective.read(summary) for summary in summaries)


def _one_run(cfg: Config, record: dict, out_dir: Path, multirun: bool) -> tuple[dict, Path]:
    """A fresh run in Hydra's folder, or (``resume``) a stopped one going on in its own
    folder, or a finished one (``resume=auto``) skipped: its summary as it is."""
    from lrbench.train.resume import plan_resume

    resume = plan_resume(cfg, record, out_dir, multirun)
    if resume is None:
        return _train(cfg, record, out_dir, quiet=multirun), out_dir
    try:
        if resume.summary is not None:
            return resume.summary, resume.run_dir
        return _train(cfg, record, resume.run_dir, quiet=multirun, resume=resume), resume.run_dir
    finally:
        if resume.run_dir.absolute() != out_dir.absolute():
            remove_unused_run_dir(out_dir)  # Hydra's new folder: the run's log went on in its own


def _train(cfg: Config, record: dict, run_dir: Path, *, quiet: bool, resume=None) -> dict:
    """One run (JAX loads only now); ``optimizer.lr=auto`` runs the LR range test first
    and trains with its suggestion."""
    from lrbench.train.run import run

    lr_find = None
    if cfg.optimizer.lr_auto:
        from lrbench.lr_find.range_test import choose_lr

        cfg, lr_find = choose_lr(cfg)
    return run(cfg, record, run_dir, quiet=quiet, resume=resume, lr_find=lr_find)


def use_compile_cache(path: str | None) -> None:
    """JAX's persistent compilation cache: the jobs of a sweep compile each program once.

    Set once per process (JAX reads it at the first compile); every program is cached,
    however quick its compile, since a sweep repeats the same small programs.
    """
    if path is None:
        return
    import jax

    if jax.config.jax_compilation_cache_dir is None:
        jax.config.update("jax_compilation_cache_dir", str(Path(path).absolute()))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def _one_line(out_dir: Path, summary: Summary) -> str:
    parts = [
        f"{summary['status']}",
        f"{summary['steps']} steps",
        f"{summary['steps_per_s']:.0f} steps/s",
    ]
    for key in ("val_accuracy", "test_accuracy"):
        if final(summary, key) is not None:
            parts.append(f"{key} {final(summary, key):.4f}")
    if summary["diverged_at_step"] is not None:
        parts.append(f"diverged at step {summary['diverged_at_step']}")
    return f"{out_dir}: " + ", ".join(parts)
