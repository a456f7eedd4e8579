"""Finding run directories under the paths a user gives: a run, a sweep, or ``runs/``."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from lrbench.errors import ConfigError

RUN_MARKER = "config.yaml"  # written by every run once its config is valid


def _natural_key(path: Path) -> list:
    """Sweep jobs 0, 1, ..., 10 in numeric order, not 0, 1, 10, 2."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(path))]


def find_runs(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Every directory holding a config.yaml, in natural path order, without duplicates.

    Hidden folders are skipped (``.hydra/`` holds Hydra's own config.yaml), and a run's
    folder is not searched further.
    """
    found: set[Path] = set()
    for given in paths:
        root = Path(given)
        if not root.is_dir():
            allowed = "not a directory" if root.exists() else "no such directory"
            raise ConfigError("path", str(given), allowed)
        runs = _runs_under(root)
        if not runs:
            raise ConfigError("path", str(given), "no run directories (with config.yaml) under it")
        found.update(runs)
    return sorted(found, key=_natural_key)


def _is_range_test(files: list[str]) -> bool:
    """`lrbench find-lr` directories: lr_find.csv without training metrics (a run with
    optimizer.lr=auto has both, and is a run)."""
    return "lr_find.csv" in files and "metrics.csv" not in files


def _runs_under(root: Path) -> list[Path]:
    runs = []
    for folder, subfolders, files in os.walk(root):
        if RUN_MARKER in files:
            if not _is_range_test(files):
                runs.append(Path(folder))
            subfolders.clear()
        else:
            subfolders[:] = [d for d in subfolders if not d.startswith(".")]
    return runs
