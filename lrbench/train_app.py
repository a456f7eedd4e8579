"""``lrbench train``: the Hydra application (every Hydra flag and override works)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from lrbench.config import Config, register_schemas, resolved_dict, to_run_config
from lrbench.config.train import WhenDone
from lrbench.errors import BadInputExit, ConfigError
from lrbench.paths import conf_dir
from lrbench.runs import remove_unused_run_dir
from lrbench.summary import Summary
from lrbench.sweep import member_dir
from lrbench.train.progress import label, result_line, varying_keys

register_schemas()


# The arguments ``train`` put before the user's (``resume=<run dir>``: the run's group
# choices), which are not the user's overrides.
_RUN_CHOICES: list[str] = []


def train() -> float | None:
    """``lrbench train`` (arguments in ``sys.argv``). With ``resume=<run dir>`` Hydra
    composes the run's groups (``lrbench.train.resume.with_run_choices``)."""
    _RUN_CHOICES.clear()
    if any(arg.startswith("resume=") for arg in sys.argv[1:]):
        from lrbench.train.resume import with_run_choices

        sys.argv[1:], inserted = with_run_choices(sys.argv[1:])
        _RUN_CHOICES.extend(inserted)
    return _train_app()


@hydra.main(version_base="1.3", config_path=str(conf_dir()), config_name="config")
def _train_app(cfg: DictConfig) -> float:
    """Train one configuration (or a vmap sweep); returns ``objective`` for sweepers."""
    hydra_cfg = HydraConfig.get()
    out_dir = Path(hydra_cfg.runtime.output_dir)
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    try:
        cfg, typed = _on_the_run(cfg, hydra_cfg, multirun)
        run_config = to_run_config(cfg)
        use_compile_cache(run_config.compile_cache)
        if run_config.sweep is None:
            summary, run_dir = _one_run(run_config, resolved_dict(cfg), out_dir, multirun, typed)
            summaries, run_dirs = [summary], [run_dir]
        else:
            from lrbench.sweep.vmap import run_vmap_sweep

            resume = run_config.resume is not None
            sweep_dir = Path(run_config.resume) if resume else out_dir
            try:
                summaries = run_vmap_sweep(run_config, resolved_dict(cfg), sweep_dir, resume=resume)
            finally:
                if sweep_dir.absolute() != out_dir.absolute():
                    remove_unused_run_dir(out_dir)  # Hydra's new folder, unused
            run_dirs = [member_dir(sweep_dir, k) for k in range(len(summaries))]
    except (ConfigError, OmegaConfBaseException) as error:  # bad input, found after composing
        remove_unused_run_dir(out_dir)
        raise BadInputExit(error) from error
    if not multirun or run_config.sweep is not None:  # a multirun job's: the sweep callback
        _print_results(run_dirs, summaries, vmap=run_config.sweep is not None)
    objective = run_config.objective
    return objective.best_of(objective.read(summary) for summary in summaries)


def _on_the_run(cfg: DictConfig, hydra_cfg, multirun: bool):
    """``resume=<run dir>`` (one run): the run's config.yaml with the overrides the user
    typed, and those keys (``lrbench.train.resume.on_the_run``); otherwise ``cfg``, None."""
    resume = cfg.get("resume")
    if multirun or resume is None or resume == "auto" or cfg.get("sweep") is not None:
        return cfg, None  # (a vmap sweep is resumed with its overrides given again)
    from lrbench.train.resume import on_the_run

    typed = list(hydra_cfg.overrides.task)
    for inserted in _RUN_CHOICES:
        if inserted in typed:
            typed.remove(inserted)
    return on_the_run(cfg, typed, str(resume))


def _one_run(
    cfg: Config, record: dict, out_dir: Path, multirun: bool, typed=None
) -> tuple[dict, Path]:
    """A fresh run in Hydra's folder, or (``resume``) a stopped one going on in its own
    folder, or a finished one (``resume=auto``) skipped: its summary as it is. A run that
    finished (completed, diverged) loses its checkpoints with
    ``train.checkpoints_when_done=delete``."""
    from lrbench.train.resume import plan_resume

    resume = plan_resume(cfg, record, out_dir, multirun, typed)
    if resume is None:
        summary, run_dir = _train(cfg, record, out_dir, quiet=multirun), out_dir
    else:
        try:
            if resume.summary is not None:
                summary, run_dir = resume.summary, resume.run_dir
            else:
                summary = _train(cfg, record, resume.run_dir, quiet=multirun, resume=resume)
                run_dir = resume.run_dir
        finally:
            if resume.run_dir.absolute() != out_dir.absolute():
                remove_unused_run_dir(out_dir)  # Hydra's folder: the run's log went on in its own
    _checkpoints_when_done(cfg, run_dir, summary)
    return summary, run_dir


def _checkpoints_when_done(cfg: Config, run_dir: Path, summary: dict) -> None:
    """``train.checkpoints_when_done=delete``: a finished run needs no checkpoint (a
    resume of it trains nothing); interrupted and failed runs keep theirs."""
    from lrbench.train.resume import FINISHED

    if cfg.train.checkpoints_when_done == WhenDone.delete and summary.get("status") in FINISHED:
        shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)  # checkpoint.FOLDER: no JAX


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


def _print_results(run_dirs: list[Path], summaries: list[Summary], vmap: bool) -> None:
    """One line per run; a vmap sweep's members named by the values that vary between them
    (``<sweep dir>/3 (lr=0.01 seed=1): completed, ...``)."""
    values = [summary.get("sweep", {}).get("values", {}) for summary in summaries]
    keys = varying_keys(values) if vmap else []
    for run_dir, summary, member in zip(run_dirs, summaries, values, strict=True):
        print(result_line(run_dir, summary, label(member, keys)), flush=True)
