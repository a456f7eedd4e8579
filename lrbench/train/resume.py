"""``resume=<run dir>|auto``: which run goes on, and from which checkpoint.

Everything is checked before any work (bad input: one line, exit 2, nothing touched): the
folder is a run directory whose files read, and the config equals the run's but for keys
that change no number (``FREE``) and those in ``resume_allow_changes``. A resumed run goes
on in its own directory from its newest usable checkpoint, or from step 0 if it has none.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from lrbench.config import Config
from lrbench.errors import ConfigError
from lrbench.flat_config import flatten
from lrbench.runs import read_config
from lrbench.summary import COMPLETED, DIVERGED, read_summary

AUTO = "auto"
FINISHED = (COMPLETED, DIVERGED)  # resume=auto skips these; the others go on
# Keys that change no number of a run: a resumed run may differ in them.
FREE = (
    "resume",
    "resume_allow_changes",
    "compile_cache",
    "train.checkpoint_every",
    "train.checkpoint_interval_s",
    "train.keep_checkpoints",
)
_ABSENT = "<absent>"


@dataclass(frozen=True)
class Resume:
    run_dir: Path
    summary: dict | None = None  # the run had finished: nothing to train
    changes: dict[str, tuple] = field(default_factory=dict)  # key -> (the run's, now)


def plan_resume(cfg: Config, record: dict, out_dir: Path, multirun: bool) -> Resume | None:
    """The run to go on with, or None for a fresh run in ``out_dir`` (Hydra's folder)."""
    if cfg.resume is None:
        return None
    if cfg.resume == AUTO:
        if not (out_dir / "config.yaml").exists():
            return None
        run_dir = out_dir
    elif multirun:
        raise ConfigError(
            "resume",
            cfg.resume,
            "one run's directory, not with -m: re-launch a "
            "sweep with resume=auto and the same hydra.sweep.dir",
        )
    else:
        run_dir = Path(cfg.resume)
        if not run_dir.is_dir():
            raise ConfigError("resume", cfg.resume, "no such run directory")
        if not (run_dir / "config.yaml").is_file():
            raise ConfigError("resume", cfg.resume, "not a run directory (no config.yaml)")
    changes = _compare(cfg, record, _read_config(cfg, run_dir), run_dir)
    summary = _read_summary(cfg, run_dir)
    if summary is not None and summary.get("status") in FINISHED:
        return Resume(run_dir, summary=summary)
    return Resume(run_dir, changes=changes)


def _problem(cfg: Config, run_dir: Path, text: str) -> ConfigError:
    where = "" if cfg.resume != AUTO else f"{run_dir}: "
    return ConfigError("resume", cfg.resume, where + text)


def _read_config(cfg: Config, run_dir: Path) -> dict:
    try:
        config = read_config(run_dir)
    except (yaml.YAMLError, ValueError) as error:
        raise _problem(cfg, run_dir, f"config.yaml is not valid YAML ({_first(error)})") from None
    if not isinstance(config, dict):
        raise _problem(cfg, run_dir, "config.yaml is not a mapping of keys to values")
    return config


def _read_summary(cfg: Config, run_dir: Path) -> dict | None:
    try:
        summary = read_summary(run_dir)
    except ValueError as error:  # JSONDecodeError, UnicodeDecodeError
        raise _problem(cfg, run_dir, f"summary.json is not valid JSON ({_first(error)})") from None
    if summary is not None and not isinstance(summary, dict):
        raise _problem(cfg, run_dir, "summary.json is not a JSON object")
    return summary


def _compare(cfg: Config, record: dict, original: dict, run_dir: Path) -> dict[str, tuple]:
    """The allowed differences; raises on any other (naming every differing key)."""
    now, then = flatten(record), flatten(original)
    keys = [k for k in dict.fromkeys([*then, *now]) if k not in FREE]
    allowed = cfg.resume_allow_changes
    for entry in allowed:
        if not any(_covers(entry, key) for key in keys):
            raise ConfigError(
                "resume_allow_changes",
                _list(allowed),
                f"{entry} is not a key or group of the config (e.g. train.epochs)",
            )
    differ = {
        k: (then.get(k, _ABSENT), now.get(k, _ABSENT))
        for k in keys
        if then.get(k, _ABSENT) != now.get(k, _ABSENT)
    }
    refused = {k: v for k, v in differ.items() if not any(_covers(e, k) for e in allowed)}
    if refused:
        shown = ", ".join(f"{k} (run: {a}, now: {b})" for k, (a, b) in refused.items())
        raise _problem(
            cfg,
            run_dir,
            f"the config differs from the run's in {shown}: "
            f"give the run's overrides again, or resume_allow_changes={_list(refused)}",
        )
    return differ


def _covers(entry: str, key: str) -> bool:
    return key == entry or key.startswith(entry + ".")


def _list(values) -> str:
    return "[" + ",".join(values) + "]"


def _first(error: Exception) -> str:
    return " ".join(str(error).split())[:200]


def files_fit(run_dir: Path):
    """A checkpoint is usable when each file it counted holds at least its bytes then."""

    def problem(progress: dict) -> str | None:
        for name, size in progress["files"].items():
            file = run_dir / name
            have = file.stat().st_size if file.exists() else None
            if have is None or have < size:
                return f"{name} has {have or 0} bytes, fewer than the {size} it had then"
        return None

    return problem


def log_into(run_dir: Path) -> None:
    """Hydra opened the job's log in a new folder of its own; a run resumed elsewhere logs
    on in its own train.log (appended)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if not isinstance(handler, logging.FileHandler):
            continue
        target = (run_dir / Path(handler.baseFilename).name).absolute()
        if Path(handler.baseFilename) == target:
            continue
        moved = logging.FileHandler(target, mode="a")
        moved.setFormatter(handler.formatter)
        moved.setLevel(handler.level)
        root.removeHandler(handler)
        handler.close()
        root.addHandler(moved)
