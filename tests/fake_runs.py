"""Hand-made run directories with known numbers, in the layout ``lrbench train`` writes
(docs/design.md "The run directory"): the config is the real composed one, the outcome is ours."""

from __future__ import annotations

import copy
import csv
import functools
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import yaml
from hydra import compose, initialize_config_dir

from lrbench.config import register_schemas, resolved_dict
from lrbench.paths import conf_dir
from lrbench.runs import HEARTBEAT_FILE, METRIC_COLUMNS


@functools.cache
def _composed(overrides: tuple[str, ...]) -> dict:
    register_schemas()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        return resolved_dict(compose("config", overrides=list(overrides)))


def config(*overrides: str) -> dict:
    """config.yaml's content for ``lrbench train <overrides>``."""
    return copy.deepcopy(_composed(tuple(overrides)))


def summary(
    status: str = "completed",
    val_accuracy: float | None = 0.9,
    best_val_accuracy: float | None = None,
    steps: int = 90,
    **top_level,
) -> dict:
    """summary.json with the given outcome; unset numbers follow from the given ones."""
    best = val_accuracy if best_val_accuracy is None else best_val_accuracy
    return {
        "status": status,
        "diverged_at_step": steps if status == "diverged" else None,
        "steps": steps,
        "epochs": steps / 9,
        "final": {
            "lr": 0.001,
            "train_loss": None if status == "diverged" else 0.1,
            "train_accuracy": 0.95,
            "val_loss": 0.3,
            "val_accuracy": val_accuracy,
            "test_loss": 0.3,
            "test_accuracy": val_accuracy,
        },
        "final_eval_step": steps,
        "best": {
            "val_accuracy": best,
            "val_accuracy_step": steps,
            "val_loss": 0.25,
            "val_loss_step": steps,
        },
        "wall_s": 2.0,
        "steps_per_s": 500.0,
        **({"pruned_at_step": steps} if status == "pruned" else {}),
    } | top_level


def make_run(
    path: Path, run_config: dict, run_summary: dict | None, rows: list[dict] | None = None
) -> Path:
    """A run directory: config.yaml, a .hydra/ like Hydra's, metrics.csv if ``rows``, and
    summary.json unless ``run_summary`` is None (a run still going)."""
    (path / ".hydra").mkdir(parents=True)
    (path / ".hydra" / "config.yaml").write_text(yaml.safe_dump(run_config))
    (path / "config.yaml").write_text(yaml.safe_dump(run_config, sort_keys=False))
    if rows is not None:
        with open(path / "metrics.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, METRIC_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
    if run_summary is not None:
        (path / "summary.json").write_text(json.dumps(run_summary))
    return path


def curve_rows(steps: int, lr: float, loss_start: float = 2.0) -> list[dict]:
    """metrics.csv rows: loss decaying as 1/step, evaluated every 9 steps."""
    rows = []
    for step in range(1, steps + 1):
        row = {
            "step": step,
            "epoch": round(step / 9, 6),
            "lr": lr,
            "elapsed_s": step * 0.01,
            "train_loss": loss_start / step,
            "train_accuracy": 1 - 1 / (step + 1),
        }
        if step % 9 == 0:
            row |= {
                "val_loss": loss_start / step,
                "val_accuracy": 1 - 1 / step,
                "test_loss": loss_start / step,
                "test_accuracy": 1 - 1 / step,
            }
        rows.append(row)
    return rows


def beat(path: Path, status: str) -> None:
    """A heartbeat.json that ``compare`` reads as ``status`` for a run without summary.json:
    ``running`` (this process, alive), ``killed`` (a process of this host that has exited),
    ``stale`` (another host, silent since 1970)."""
    record = {"pid": os.getpid(), "host": socket.gethostname(), "updated_unix": 0.0}
    if status == "killed":
        exited = subprocess.Popen([sys.executable, "-c", "pass"])
        exited.wait()
        record["pid"] = exited.pid
    if status == "stale":
        record["host"] = f"{socket.gethostname()}-elsewhere"
    (path / HEARTBEAT_FILE).write_text(json.dumps(record))
