"""The ``train`` and ``lr_find`` sections of ``conf/config.yaml``, and the top-level
``device``: how a run trains, on what, and the LR range test."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import ClassVar

from omegaconf import MISSING

from lrbench.config.base import Checked


class DType(enum.Enum):
    float32 = "float32"
    float64 = "float64"


class ComputeDType(enum.Enum):
    """What the model computes in (``train.compute_dtype``; docs/running.md "Mixed precision"):
    activations, matmuls, convolutions. Parameters, optimizer state and the LR stay in
    ``train.dtype``; the loss, softmax and BatchNorm statistics in float32 at least."""

    float32 = "float32"
    bfloat16 = "bfloat16"
    float16 = "float16"  # with dynamic loss scaling (lrbench.optim.loss_scale)


class Loop(enum.Enum):
    """How the steps of an epoch are compiled (docs/design.md "Loop strategies, by measurement")."""

    auto = "auto"
    scan = "scan"
    unrolled = "unrolled"
    step = "step"


class Norms(enum.Enum):
    """Which steps compute the gradient, update and parameter norms (``train.norms``)."""

    epoch_end = "epoch_end"  # each epoch's last step, traced apart from the scan (+compile)
    every_step = "every_step"  # in the scan's step: the smaller program, ~8% of a tiny step
    off = "off"  # none: metrics.csv's norm columns stay empty


class Device(enum.Enum):
    auto = "auto"
    cpu = "cpu"
    gpu = "gpu"
    tpu = "tpu"


class WhenDone(enum.Enum):
    """What becomes of a run's checkpoints once it has finished (completed or diverged)."""

    keep = "keep"
    delete = "delete"


class ProgressMode(enum.Enum):
    """What the console shows while a run trains (``train.progress``; docs/running.md "Progress and
    logs"): auto (a bar on a terminal, lines elsewhere), bar, lines, off (the result line
    only). train.log gets the lines whatever this says."""

    auto = "auto"
    bar = "bar"
    lines = "lines"
    off = "off"


class Ramp(enum.Enum):
    """How the LR range test moves from min_lr to max_lr."""

    exponential = "exponential"
    linear = "linear"


class LRSuggestion(enum.Enum):
    """The LR range test's rules (fastai's): valley, steepest slope, minimum / 10."""

    valley = "valley"
    steepest = "steepest"
    minimum = "minimum"


@dataclass
class LRFindConfig(Checked):
    """The LR range test of ``lrbench find-lr`` and ``optimizer.lr=auto``."""

    group: ClassVar[str] = "lr_find"
    min_lr: float = MISSING
    max_lr: float = MISSING
    num_steps: int = MISSING
    ramp: Ramp = MISSING
    smoothing: float = MISSING
    stop_factor: float = MISSING
    suggestion: LRSuggestion = MISSING

    def __post_init__(self) -> None:
        self._positive("min_lr")
        if not self.max_lr > self.min_lr:
            self._fail("max_lr", f"must be > lr_find.min_lr ({self.min_lr})")
        if self.num_steps < 20:
            self._fail("num_steps", "must be >= 20 (the first 10% and last 5 are not used)")
        self._unit_interval("smoothing")
        if not self.stop_factor > 1:
            self._fail("stop_factor", "must be > 1")


# The metrics a target can be set on (as metrics.csv names them), higher is better or not.
TARGET_METRICS = ("val_accuracy", "val_loss", "test_accuracy", "test_loss")


@dataclass
class TargetConfig(Checked):
    """A validation target (AlgoPerf's time-to-target): the first evaluation that reaches
    ``value`` on ``metric`` is recorded in summary.json's ``target`` (step and seconds);
    ``stop``: the run ends there."""

    group: ClassVar[str] = "train.target"
    metric: str | None = None  # None: no target
    value: float | None = None
    stop: bool = False

    def __post_init__(self) -> None:
        if self.metric is None:
            if self.value is not None or self.stop:
                self._fail(
                    "metric",
                    f"must be set with a target value or stop: one of {', '.join(TARGET_METRICS)}",
                )
            return
        if self.metric not in TARGET_METRICS:
            self._fail("metric", f"must be one of {', '.join(TARGET_METRICS)}")
        if self.value is None:
            self._fail("value", f"must be set with train.target.metric={self.metric}")
        self._finite("value")
        if self.metric.endswith("accuracy"):
            self._in("[0, 1]", "value")

    @property
    def higher_is_better(self) -> bool:
        return bool(self.metric and self.metric.endswith("accuracy"))

    def reached(self, value: float) -> bool:
        return value >= self.value if self.higher_is_better else value <= self.value


@dataclass
class TrainConfig(Checked):
    group: ClassVar[str] = "train"
    epochs: int = MISSING
    steps: int | None = None
    batch_size: int = MISSING
    eval_every: int = MISSING
    eval_batch_size: int = MISSING
    log_every: int = MISSING
    dtype: DType = MISSING
    compute_dtype: ComputeDType | None = None  # None: train.dtype
    loop: Loop = MISSING
    unroll: int = MISSING
    norms: Norms = Norms.epoch_end
    checkpoint_every: int = MISSING  # epochs; 0: not by count
    checkpoint_interval_s: float = MISSING  # seconds; 0: not by time
    keep_checkpoints: int = MISSING
    checkpoints_when_done: WhenDone = WhenDone.keep
    progress: ProgressMode = ProgressMode.auto
    target: TargetConfig = field(default_factory=TargetConfig)

    def __post_init__(self) -> None:
        self._positive("epochs", "batch_size", "eval_every", "eval_batch_size", "log_every")
        self._positive("unroll", "keep_checkpoints")
        self._non_negative("checkpoint_every", "checkpoint_interval_s")
        if self.steps is not None:
            self._positive("steps")
