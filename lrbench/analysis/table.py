"""Run directories as one table: a row per run, its config as dotted columns, its outcome.

Reads only config.yaml and summary.json (and metrics.csv's last row for runs still
going), through ``lrbench.runs``'s readers, so a thousand runs load in well under a second.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from lrbench.analysis.discover import KILLED, STALE, find_runs, live_status
from lrbench.errors import ConfigError
from lrbench.flat_config import flatten
from lrbench.runs import read_config, read_metrics
from lrbench.summary import (
    FIELDS,
    HIGHER_IS_BETTER,
    RUNNING,
    STATUSES,
    flat,
    lookup,
    read_checked_summary,
)

# Every status a run table holds, in the order counts list them: summary.json's, then
# live_status's for a run without one (its process died, it went silent, it is going).
EVERY_STATUS = (*STATUSES, KILLED, STALE, RUNNING)
LR_KEY = "optimizer.lr"
AUTO = "auto"  # optimizer.lr=auto: the range test chose the LR (config.yaml keeps "auto")
AUTO_LR = "auto_lr"  # the LR it chose: summary.json's lr_find.lr
# The outcome columns: summary.json's values by their flat names (lrbench.summary.FIELDS),
# and after the final lr the one optimizer.lr=auto chose.
_NAMES = list(FIELDS)
OUTCOMES = (*_NAMES[: _NAMES.index("lr") + 1], AUTO_LR, *_NAMES[_NAMES.index("lr") + 1 :])
TEXT_OUTCOMES = ("status", "error")
INTEGER_OUTCOMES = (
    "steps",
    "diverged_at_step",
    "pruned_at_step",
    "target_step",
    "eval_step",
    "best_val_accuracy_step",
    "best_val_loss_step",
)
OPTIONAL_OUTCOMES = (
    "diverged_at_step",
    "pruned_at_step",
    "target_step",
    "target_s",
    AUTO_LR,
    "error",
)  # shown only when a run has one
# Metrics that runs are ranked by: True when higher is better.
METRICS: dict[str, bool] = {
    **HIGHER_IS_BETTER,
    "best_val_accuracy": HIGHER_IS_BETTER["val_accuracy"],
    "best_val_loss": HIGHER_IS_BETTER["val_loss"],
    "wall_s": False,
    "steps_per_s": True,
}
DEFAULT_METRIC = "val_accuracy"
# What the terminal table shows of the outcome (CSV has every column).
BRIEF = (
    "status",
    AUTO_LR,
    "steps",
    "val_loss",
    "val_accuracy",
    "test_accuracy",
    "best_val_accuracy",
    "wall_s",
    "steps_per_s",
)


def check_metric(metric: str, flag: str = "--metric") -> str:
    if metric not in METRICS:
        raise ConfigError(flag, metric, f"one of {', '.join(METRICS)}")
    return metric


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())


def _read_config(run: Path) -> dict:
    try:
        config = read_config(run)
    except (yaml.YAMLError, ValueError) as error:
        raise ConfigError(
            str(run / "config.yaml"), "corrupt", f"not valid YAML ({_one_line(error)})"
        ) from None
    if not isinstance(config, dict):
        raise ConfigError(str(run / "config.yaml"), "corrupt", "not a mapping of keys to values")
    return config


def _progress(run: Path) -> dict:
    """A run without summary.json: how far metrics.csv got."""
    rows = read_metrics(run) if (run / "metrics.csv").exists() else []
    last = rows[-1] if rows else {}
    return {"status": live_status(run), "steps": last.get("step"), "epochs": last.get("epoch")}


def _row(run: Path) -> dict:
    summary = read_checked_summary(run)  # a corrupt one is bad input, not a run to skip
    outcome = _progress(run) if summary is None else flat(summary)
    outcome[AUTO_LR] = lookup(summary, "lr_find", "lr")
    return {"run": str(run)} | flatten(_read_config(run)) | outcome


def load_table(paths: Iterable[str | os.PathLike]) -> pd.DataFrame:
    """One row per run found under ``paths``: ``run``, the config's dotted keys, outcomes."""
    rows = [_row(run) for run in find_runs(paths)]
    frame = pd.DataFrame.from_records(rows)
    config = [c for c in frame.columns if c != "run" and c not in OUTCOMES]
    for name in OUTCOMES:
        if name not in frame:
            frame[name] = None
        if name not in TEXT_OUTCOMES:
            numbers = pd.to_numeric(frame[name], errors="coerce").astype("float64")
            frame[name] = numbers.astype("Int64") if name in INTEGER_OUTCOMES else numbers
    return frame[["run", *config, *OUTCOMES]]


def config_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c != "run" and c not in OUTCOMES]


def varying_columns(frame: pd.DataFrame) -> list[str]:
    """Config columns with more than one value (a key missing from some runs counts)."""
    return [c for c in config_columns(frame) if frame[c].nunique(dropna=False) > 1]


def x_values(frame: pd.DataFrame, key: str) -> pd.Series:
    """``key`` as numbers (NaN where a run's value is not one); for optimizer.lr, a run
    that used ``optimizer.lr=auto`` has the LR its range test chose."""
    xs = pd.to_numeric(frame[key], errors="coerce").astype("float64")
    if key == LR_KEY:
        chosen = pd.to_numeric(frame[AUTO_LR], errors="coerce").astype("float64")
        xs = xs.where(~is_auto(frame[key]), chosen)
    return xs


def is_auto(values: pd.Series) -> pd.Series:
    """Which values are ``auto`` (optimizer.lr=auto)."""
    return values.map(lambda v: isinstance(v, str) and v == AUTO).astype(bool)


def outcome_columns(frame: pd.DataFrame, brief: bool) -> list[str]:
    names = BRIEF if brief else tuple(OUTCOMES)
    return [n for n in names if n not in OPTIONAL_OUTCOMES or frame[n].notna().any()]


def shorten_runs(table: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Run paths relative to their common folder (returned too), for people to read."""
    runs = table["run"].tolist()
    root = os.path.commonpath(runs) if runs else ""
    if len(runs) == 1:
        root = os.path.dirname(root)
    short = [os.path.relpath(run, root) if root else run for run in runs]
    return table.assign(run=short), root


def independent_columns(frame: pd.DataFrame, columns: list[str]) -> list[str]:
    """``columns`` less those fixed by the others (optimizer.b1 by optimizer.name): the
    keys a sweep really varied. Later columns are dropped first."""
    kept = list(columns)
    text = frame[kept].map(config_text)
    for column in reversed(columns):
        others = [c for c in kept if c != column]
        if others and (text.groupby(others)[column].nunique() <= 1).all():
            kept.remove(column)
    return kept


def status_counts(frame: pd.DataFrame) -> str:
    """Counts of the statuses present, in a fixed order: 3 completed, 1 pruned, 1 killed."""
    counts = frame["status"].value_counts()
    return ", ".join(f"{counts[s]} {s}" for s in EVERY_STATUS if s in counts)


def is_missing(value) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def config_text(value) -> str:
    """A cell as config.yaml and Hydra overrides write it (true, null, 0.001)."""
    if is_missing(value):
        return "null"
    if isinstance(value, bool | np.bool_):
        return str(bool(value)).lower()
    return str(value)
