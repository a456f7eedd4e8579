"""Finding run directories under the paths a user gives: a run, a sweep, or ``runs/``;
and what became of a run without summary.json (``live_status``)."""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Iterable
from pathlib import Path

from lrbench.errors import ConfigError
from lrbench.runs import process_start, read_heartbeat
from lrbench.summary import RUNNING

RUN_MARKER = "config.yaml"  # written by every run once its config is valid
# A run without summary.json whose process is gone (its heartbeat's pid, on this host), or
# that has given no sign of life for a while (another host: no pid to check).
KILLED = "killed"
STALE = "stale"
STALE_AFTER_S = 600.0  # at least; or 3x the longest gap between the run's own heartbeats


def live_status(run: Path, now: float | None = None) -> str:
    """``running``, ``killed`` or ``stale`` for a run without summary.json, from its
    heartbeat.json (lrbench.runs.Heartbeat). A run from before heartbeats: ``running``."""
    beat = read_heartbeat(run)
    if beat is None:
        return RUNNING
    if beat.get("host") == socket.gethostname():
        return RUNNING if _alive(beat.get("pid"), beat.get("process_start")) else KILLED
    updated, gap = beat.get("updated_unix"), beat.get("longest_gap_s") or 0.0
    if not isinstance(updated, int | float) or not isinstance(gap, int | float):
        return RUNNING
    silent = (time.time() if now is None else now) - updated
    return STALE if silent > max(STALE_AFTER_S, 3 * gap) else RUNNING


def _alive(pid, started) -> bool:
    """Process ``pid`` exists and is the one that started at ``started`` (when known)."""
    if not isinstance(pid, int) or pid <= 0:
        return True  # nothing to check: not ours to call dead
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process holds that pid: it exists
    now = process_start(pid)
    return started is None or now is None or now == started


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
