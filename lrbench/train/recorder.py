"""Turns each epoch's stacked step metrics into metrics.csv rows, progress and outcomes.

Runs on the host once per epoch, one epoch behind the device (the loop dispatches the next
epoch first), so writing rows never stalls training.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from lrbench.config.train import Norms, TargetConfig
from lrbench.runs import RunDir

NORMS = ("grad_norm", "update_norm", "param_norm", "update_ratio")


def shortest(value: np.floating) -> float:
    """The shortest decimal that round-trips in the value's own precision (0.001, not
    0.0010000000474974513 for a float32)."""
    return float(str(value))


def flatten_evaluation(evaluation: dict | None) -> dict | None:
    """{"val": EvalMetrics(loss, accuracy), ...} -> {"val_loss": ..., "val_accuracy": ...}."""
    if evaluation is None:
        return None
    return {
        f"{split}_{name}": shortest(value)
        for split, values in evaluation.items()
        for name, value in values._asdict().items()
    }


def step_norms(metrics, index: int = -1) -> dict[str, float]:
    """StepMetrics' grad_norm, update_norm, param_norm of one step (default: the epoch's
    last, the one that computes them with ``train.norms=epoch_end``: the epoch's last row's,
    the other rows leave them empty), and update_ratio = update_norm / param_norm."""
    grad, update, param = (np.float64(np.asarray(m)[index]) for m in metrics[3:6])
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = update / param
    values = (grad, update, param, ratio)
    return dict(zip(NORMS, map(float, values), strict=True))


@dataclass
class Best:
    value: float | None = None
    step: int | None = None

    def offer(self, value: float, step: int, higher_is_better: bool) -> None:
        if not math.isfinite(value):
            return
        better = self.value is None or (
            value > self.value if higher_is_better else value < self.value
        )
        if better:
            self.value, self.step = value, step


@dataclass
class Recorder:
    run_dir: RunDir
    steps_per_epoch: int
    log_every: int
    progress: object | None = None  # lrbench.train.progress: the bar and lines (None: silent)
    target: TargetConfig | None = None  # train.target (None or metric None: no target)
    norms: Norms = Norms.epoch_end  # train.norms: which rows get them
    diverged_at: int | None = None
    pruned_at: int | None = None  # a study's successive halving stopped it here
    target_reached: dict | None = None  # {"step", "value", "loop_s"}: the first evaluation at it
    steps_done: int = 0
    last_row: dict = field(default_factory=dict)
    last_eval: dict = field(default_factory=dict)
    best_val_accuracy: Best = field(default_factory=Best)
    best_val_loss: Best = field(default_factory=Best)
    _last_time: float = 0.0
    clock_offset: float = 0.0  # a resumed run's clock goes on from its checkpoint's

    def record(self, metrics, evaluation: dict | None, elapsed_s: float) -> bool:
        """Record one epoch fetched from the device; True when training must stop (a
        non-finite loss, or a target that stops the run)."""
        return self.record_epoch(
            metrics, flatten_evaluation(evaluation), elapsed_s + self.clock_offset
        )

    def bookkeeping(self) -> dict:
        """What a checkpoint keeps of the recorder (plain JSON values), so that a resumed
        run goes on with the same step count, last row and evaluation, bests and clock."""
        return {
            "steps_done": self.steps_done,
            "last_row": self.last_row,
            "last_eval": self.last_eval,
            "best_val_accuracy": asdict(self.best_val_accuracy),
            "best_val_loss": asdict(self.best_val_loss),
            "elapsed_s": self._last_time,
            "diverged_at": self.diverged_at,  # a sweep member may diverge before its chunk ends
            "pruned_at": self.pruned_at,
            "target_reached": self.target_reached,
        }

    def restore(self, bookkeeping: dict) -> None:
        """Go on from a checkpoint's ``bookkeeping()``."""
        self.steps_done = bookkeeping["steps_done"]
        self.last_row = dict(bookkeeping["last_row"])
        self.last_eval = dict(bookkeeping["last_eval"])
        self.best_val_accuracy = Best(**bookkeeping["best_val_accuracy"])
        self.best_val_loss = Best(**bookkeeping["best_val_loss"])
        self._last_time = self.clock_offset = bookkeeping["elapsed_s"]
        self.diverged_at = bookkeeping.get("diverged_at")
        self.pruned_at = bookkeeping.get("pruned_at")
        self.target_reached = bookkeeping.get("target_reached")

    @property
    def done(self) -> bool:
        """No more rows: it diverged, was pruned, or reached a target that stops it."""
        stopped_at_target = self.target_reached is not None and self.target.stop
        return self.diverged_at is not None or self.pruned_at is not None or stopped_at_target

    @property
    def status(self) -> str:
        if self.diverged_at is not None:
            return "diverged"
        return "pruned" if self.pruned_at is not None else "completed"

    def outcome(self, plan) -> dict:
        """The summary.json fields this recorder knows: status, steps, final and best."""
        return {
            "status": self.status,
            "diverged_at_step": self.diverged_at,
            **({"pruned_at_step": self.pruned_at} if self.pruned_at is not None else {}),
            "steps": self.steps_done,
            "epochs": round(self.steps_done / plan.steps_per_epoch, 6),
            "final": {k: self.last_row.get(k) for k in ("lr", "train_loss", "train_accuracy")}
            | {k: v for k, v in self.last_eval.items() if k != "step"},
            "final_eval_step": self.last_eval.get("step"),
            "best": {
                "val_accuracy": self.best_val_accuracy.value,
                "val_accuracy_step": self.best_val_accuracy.step,
                "val_loss": self.best_val_loss.value,
                "val_loss_step": self.best_val_loss.step,
            },
            **self._target_outcome(),
        }

    def _target_outcome(self) -> dict:
        """summary.json's ``target``: where it was first reached (``reached`` false: never)."""
        if self.target is None or self.target.metric is None:
            return {}
        where = self.target_reached or {"step": None, "value": None, "loop_s": None}
        return {
            "target": {
                "metric": self.target.metric,
                "value": self.target.value,
                "reached": self.target_reached is not None,
                "step": where["step"],
                "metric_value": where["value"],
                "loop_s": where["loop_s"],
            }
        }

    def _offer_target(self, evaluation: dict, elapsed_s: float) -> None:
        target = self.target
        if target is None or target.metric is None or self.target_reached is not None:
            return
        value = evaluation.get(target.metric)
        if value is not None and math.isfinite(value) and target.reached(value):
            self.target_reached = {
                "step": self.steps_done,
                "value": value,
                "loop_s": round(elapsed_s, 4),
            }

    def record_epoch(self, metrics, evaluation: dict | None, elapsed_s: float) -> bool:
        """Write the epoch's rows; return True when training must stop (a non-finite loss).

        Rows end at multiples of log_every and at the epoch's last step, so a row's train
        loss/accuracy window never spans two epochs. The norms are on the epoch's last row
        only (``step_norms``), or with ``train.norms=every_step`` on each row (its last
        step's), or (``off``) on none.

        Vectorized: the host work per epoch must stay small next to the device's (on two
        cores, Python time is taken from XLA's threads).
        """
        loss, accuracy = (np.asarray(m, np.float64) for m in metrics[:2])
        lr = np.asarray(metrics[2])
        bad = np.flatnonzero(~np.isfinite(loss))
        n = len(loss) if bad.size == 0 else int(bad[0]) + 1
        first = self.steps_done
        steps = np.arange(first + 1, first + n + 1)
        ends = np.flatnonzero((steps % self.log_every == 0) | (np.arange(n) == n - 1))
        loss_sums = np.diff(np.cumsum(loss[:n])[ends], prepend=0.0)
        acc_sums = np.diff(np.cumsum(accuracy[:n])[ends], prepend=0.0)
        counts = np.diff(ends + 1, prepend=0).astype(np.float64)
        span = elapsed_s - self._last_time
        rows = [
            {
                "step": int(steps[i]),
                "epoch": round(int(steps[i]) / self.steps_per_epoch, 6),
                "lr": shortest(lr[i]),
                "train_loss": float(loss_sum / count),
                "train_accuracy": float(acc_sum / count),
                "elapsed_s": round(self._last_time + span * (i + 1) / len(loss), 6),
            }
            for i, loss_sum, acc_sum, count in zip(ends, loss_sums, acc_sums, counts, strict=True)
        ]
        if self.norms is Norms.every_step:
            for i, row in zip(ends, rows, strict=True):
                row.update(step_norms(metrics, i))
        elif self.norms is Norms.epoch_end and n == len(loss):
            rows[-1].update(step_norms(metrics))
        self.steps_done = first + n
        self._last_time = elapsed_s
        if bad.size:
            self.diverged_at = first + n
        elif evaluation is not None:
            rows[-1].update(evaluation)
            self.last_eval = dict(evaluation, step=self.steps_done)
            self.best_val_accuracy.offer(evaluation["val_accuracy"], self.steps_done, True)
            self.best_val_loss.offer(evaluation["val_loss"], self.steps_done, False)
            self._offer_target(evaluation, elapsed_s)
        self.run_dir.append_metrics(rows)
        self.last_row = rows[-1]
        self._show(rows[-1])
        return self.done

    def _show(self, row: dict) -> None:
        """The epoch's bar step and lines (an evaluation, a divergence), from what this
        fetch group brought: nothing is read from the device for them."""
        if self.progress is not None:
            self.progress.recorded(self, row)
