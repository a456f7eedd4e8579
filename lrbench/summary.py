"""summary.json: a run's outcome, the one contract every reader goes through.

A run writes it once, when it ends (docs/design.md "The run directory"); a directory without it
is a run still going, or killed. This module says what it holds (``Summary``), reads it
(``read_summary``, ``read_checked_summary``) and looks numbers up in it (``final``,
``best``, ``field``, ``Objective``): the CLI's one-line result, the objective a sweeper
gets, the sweep index and ``lrbench compare`` read it here only.

Light on purpose: ``lrbench compare`` imports it, and must not load JAX or TensorFlow.
"""

from __future__ import annotations

import enum
import json
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypedDict

from lrbench.errors import ConfigError

SUMMARY_FILE = "summary.json"

# What a summary's ``status`` says.
COMPLETED = "completed"
DIVERGED = "diverged"  # a non-finite training loss stopped it (``diverged_at_step``)
FAILED = "failed"  # an error stopped it (``error``)
INTERRUPTED = "interrupted"  # SIGTERM or Ctrl-C, after a checkpoint (``interrupted_by``)
PRUNED = "pruned"  # a study's successive halving stopped it early (``pruned_at_step``)
STATUSES = (COMPLETED, DIVERGED, FAILED, INTERRUPTED, PRUNED)
RUNNING = "running"  # no summary.json: the run is going, or was killed (never written)

# The metrics of ``final`` and ``best`` (as metrics.csv names them): True when higher is
# better.
HIGHER_IS_BETTER: dict[str, bool] = {
    "train_loss": False,
    "train_accuracy": True,
    "val_loss": False,
    "val_accuracy": True,
    "test_loss": False,
    "test_accuracy": True,
}


class Final(TypedDict, total=False):
    """The last metrics.csv row's lr and train metrics, and the last evaluation's."""

    lr: float | None
    train_loss: float | None
    train_accuracy: float | None
    val_loss: float | None
    val_accuracy: float | None
    test_loss: float | None
    test_accuracy: float | None


class Best(TypedDict, total=False):
    """The best evaluation of each validation metric, and its step (null: none finite)."""

    val_accuracy: float | None
    val_accuracy_step: int | None
    val_loss: float | None
    val_loss_step: int | None


class SweepMember(TypedDict):
    """A vmap sweep member's place in its sweep."""

    member: int
    members: int  # in its compiled program (chunk)
    values: dict[str, float]  # dotted key -> value, e.g. {"optimizer.lr": 0.001, "seed": 1}


class RangeTest(TypedDict, total=False):
    """The LR range test's result (``lrbench find-lr`` and ``optimizer.lr=auto``)."""

    suggestion: str
    lr: float | None  # the suggestion's learning rate
    suggestions: dict[str, dict[str, Any] | None]
    min_lr: float
    max_lr: float
    ramp: str
    num_steps: int
    steps: int
    stopped_at_step: int | None
    best_smoothed_loss: float
    wall_s: float


class Summary(TypedDict, total=False):
    """Every key a training run's summary.json may hold. Non-finite numbers are written as
    null. A failed run writes only ``status`` and ``error``; ``lrbench find-lr`` writes
    ``status``, ``kind: lr_find``, the ``RangeTest`` keys and ``versions``."""

    status: str  # one of STATUSES
    error: str  # failed: "<exception type>: <message>"
    kind: str  # "lr_find": a range test's directory, not a training run
    diverged_at_step: int | None
    pruned_at_step: int  # pruned: the step successive halving stopped it at
    target: dict  # train.target: metric, value, reached, step, metric_value, loop_s, process_s
    steps: int
    epochs: float
    final: Final
    final_eval_step: int | None
    best: Best
    wall_s: float  # seconds, loading the data included
    load_s: float
    setup_s: float
    compile_s: float
    train_s: float  # the epoch loop less compiling
    steps_per_s: float  # steps / train_s (vmap members: steps / (train_s / members))
    program_steps_per_s: float  # vmap members: the program's steps / train_s
    loop: str  # the loop strategy (vmap sweeps: "vmap/<loop>")
    loop_started_unix: float  # metrics.csv's elapsed_s counts from here
    first_step_unix: float  # this process's first training step under way (docs/design.md)
    n_params: int
    n_train: int
    versions: dict[str, str]
    backend: str
    device: str
    devices: int  # devices the run's program used (members x data of its mesh)
    processes: int  # processes (hosts) of the job
    mesh: dict[str, int] | None  # {"members": M, "data": D}; None: one device, no mesh
    sweep: SweepMember  # vmap sweep members only
    lr_find: RangeTest  # optimizer.lr=auto: the range test that chose optimizer.lr
    resumed_from: list[int]  # steps this run went on from, one per resume
    resume_changes: dict[str, list]  # key -> [before, now] allowed by resume_allow_changes
    interrupted_by: str  # interrupted: the signal's name (SIGTERM, SIGINT)


# A summary's values under flat names (compare's columns, the sweep index): final values
# named as metrics.csv's columns (val_accuracy is the last evaluation's), best ones with a
# best_ prefix. Name -> where it is in summary.json.
FIELDS: dict[str, tuple[str, ...]] = {
    "status": ("status",),
    "steps": ("steps",),
    "epochs": ("epochs",),
    "diverged_at_step": ("diverged_at_step",),
    "pruned_at_step": ("pruned_at_step",),
    "target_step": ("target", "step"),  # train.target first reached here (null: never)
    "target_s": ("target", "loop_s"),  # ... this many seconds into the training loop
    "lr": ("final", "lr"),
    **{metric: ("final", metric) for metric in HIGHER_IS_BETTER},
    "eval_step": ("final_eval_step",),
    "best_val_accuracy": ("best", "val_accuracy"),
    "best_val_accuracy_step": ("best", "val_accuracy_step"),
    "best_val_loss": ("best", "val_loss"),
    "best_val_loss_step": ("best", "val_loss_step"),
    "wall_s": ("wall_s",),
    "steps_per_s": ("steps_per_s",),
    "error": ("error",),
}


def read_summary(run_dir: str | os.PathLike) -> Summary | None:
    """The run's summary, or None while it runs (or if it was killed). A file that is not
    JSON raises ValueError (JSONDecodeError, UnicodeDecodeError): callers decide."""
    file = Path(run_dir) / SUMMARY_FILE
    return json.loads(file.read_text()) if file.exists() else None


def read_checked_summary(run_dir: str | os.PathLike) -> Summary | None:
    """``read_summary``, checked: a corrupt file (not JSON, not an object, an unknown
    status) is bad input (``ConfigError`` naming the file), not a run to skip."""
    where = str(Path(run_dir) / SUMMARY_FILE)
    try:
        summary = read_summary(run_dir)
    except ValueError as error:
        raise ConfigError(where, "corrupt", f"not valid JSON ({_one_line(error)})") from None
    if summary is not None and (
        not isinstance(summary, dict) or summary.get("status") not in STATUSES
    ):
        status = summary.get("status") if isinstance(summary, dict) else summary
        raise ConfigError(
            where, "corrupt", f"status {status!r} is not one of {', '.join(STATUSES)}"
        )
    return summary


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())


def lookup(summary: Mapping | None, *path: str) -> Any:
    """The value at ``path`` (``"best", "val_loss"``); None where any part is missing."""
    value: Any = summary
    for key in path:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


def field(summary: Mapping | None, name: str) -> Any:
    """A value by its flat name (``FIELDS``): ``field(s, "best_val_loss")``."""
    return lookup(summary, *FIELDS[name])


def flat(summary: Mapping | None) -> dict[str, Any]:
    """Every ``FIELDS`` value of the summary (None where absent)."""
    return {name: lookup(summary, *path) for name, path in FIELDS.items()}


def final(summary: Mapping | None, metric: str) -> Any:
    """The last value of ``metric`` (``val_accuracy``: the last evaluation's)."""
    return lookup(summary, "final", metric)


def best(summary: Mapping | None, metric: str) -> Any:
    """The best evaluation of ``metric`` (val_accuracy, val_loss)."""
    return lookup(summary, "best", metric)


class Objective(enum.Enum):
    """What a run returns to a sweeper (Optuna): a summary.json number."""

    best_val_accuracy = "best_val_accuracy"
    best_val_loss = "best_val_loss"
    final_val_accuracy = "final_val_accuracy"
    final_val_loss = "final_val_loss"
    final_test_accuracy = "final_test_accuracy"

    @property
    def section(self) -> str:
        """Where it is in summary.json: ``best`` or ``final``."""
        return self.value.split("_", 1)[0]

    @property
    def metric(self) -> str:
        """The metric, as metrics.csv names it: ``val_accuracy``."""
        return self.value.split("_", 1)[1]

    @property
    def higher_is_better(self) -> bool:
        """Accuracies are maximized, losses minimized (a sweeper's ``direction``)."""
        return HIGHER_IS_BETTER[self.metric]

    def read(self, summary: Mapping) -> float:
        """The value in a summary (NaN when absent, e.g. a diverged run: sweepers skip it)."""
        value = lookup(summary, self.section, self.metric)
        return float("nan") if value is None else float(value)

    def best_of(self, values: Iterable[float]) -> float:
        """The best finite value (NaN when none is): a vmap sweep's return to a sweeper."""
        finite = [v for v in values if math.isfinite(v)]
        if not finite:
            return float("nan")
        return max(finite) if self.higher_is_better else min(finite)
