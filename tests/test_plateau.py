"""schedule=reduce_on_plateau: the LR held in state drops when the validation loss stalls.

The reference is the rule as documented (optax.contrib.reduce_on_plateau; PyTorch's
ReduceLROnPlateau in mode "min" counts patience one later): an evaluation improves when
v < (1 - rtol) * best - atol; after ``patience`` evaluations in a row without improvement
the scale is multiplied by ``factor`` (never below ``min_scale``) and the next ``cooldown``
evaluations are not counted.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import compose_config

from lrbench import optim
from lrbench.cli import main
from lrbench.optim.plateau import PlateauState
from lrbench.optim.state_tree import find_states
from lrbench.runs import read_metrics, read_summary
from lrbench.train.objective import cross_entropy


def reference_scales(values, factor, patience, rtol, atol, cooldown, min_scale):
    best, bad, cooling, scale, scales = math.inf, 0, 0, 1.0, []
    for value in values:
        if value < (1 - rtol) * best - atol:
            best, bad = value, 0
        else:
            bad += 1
        if cooling > 0:
            cooling, bad = cooling - 1, 0
        elif bad == patience:
            scale, bad, cooling = max(scale * factor, min_scale), 0, cooldown
        scales.append(scale)
    return scales


def _lrs_after_each_evaluation(optimizer: str, schedule: list[str], values) -> list[float]:
    """The LR the next update applies after each validation loss is observed."""
    cfg = compose_config(f"optimizer={optimizer}", "schedule=reduce_on_plateau", *schedule)
    tx = optim.watch_validation(
        optim.build(cfg.optimizer, optax.constant_schedule(1.0)), cfg.schedule, jnp.float32
    )
    params = {"w": jnp.ones(3)}
    state = tx.init(params)
    observe = jax.jit(optim.validation_observer(cfg.schedule, jnp.float32))
    update = jax.jit(tx.update)
    lrs = []
    for value in values:
        state = observe(state, jnp.float32(value))
        _, after = update({"w": jnp.zeros(3)}, state, params)
        lrs.append(float(optim.current_lr(after)))
    return lrs


def test_the_lr_halves_after_each_two_stalled_evaluations():
    losses = [1.0, 0.9, 0.9, 0.9, 0.9, 0.9, 0.5, 0.5, 0.5]
    expected = [1, 1, 1, 0.5, 0.5, 0.25, 0.25, 0.25, 0.125]
    lrs = _lrs_after_each_evaluation("adam", ["schedule.patience=2", "schedule.factor=0.5"], losses)
    np.testing.assert_allclose(lrs, 0.001 * np.array(expected), rtol=1e-6)


SETTINGS = {
    "factor": 0.3,
    "patience": 2,
    "rtol": 0.05,
    "atol": 0.01,
    "cooldown": 1,
    "min_scale": 0.05,
}
LOSSES = [2.0, 1.5, 1.49, 1.2, 1.19, 1.18, 1.17, 1.0, 0.99, 0.99, 0.99, 0.99, 0.99, 0.99]


@pytest.mark.parametrize(
    "optimizer", ["sgd", "adam_hd", "prodigy", "schedule_free_adamw", "mechanize"]
)
def test_reductions_follow_the_rule_and_scale_every_kind_of_lr(optimizer):
    """Tolerances, cooldown and min_scale, with the LR held in different states (scheduled,
    hypergradient alpha, an LR-free method's argument, schedule-free, mechanize's base)."""
    schedule = [f"schedule.{key}={value}" for key, value in SETTINGS.items()]
    lrs = np.array(_lrs_after_each_evaluation(optimizer, schedule, LOSSES))
    scales = reference_scales(LOSSES, **SETTINGS)
    assert min(scales) == SETTINGS["min_scale"]  # the case reaches the floor
    base = lrs[0] / scales[0]
    np.testing.assert_allclose(lrs / base, scales, rtol=1e-5)


class TorchReduceLROnPlateau:
    """PyTorch's ReduceLROnPlateau(mode="min", threshold_mode="rel") step by step, transcribed
    from torch/optim/lr_scheduler.py (its patience counts one later than ours), in numpy."""

    def __init__(self, lr, factor, patience, threshold, cooldown, min_lr, eps=1e-8):
        self.lr, self.factor, self.patience, self.threshold = lr, factor, patience, threshold
        self.cooldown, self.min_lr, self.eps = cooldown, min_lr, eps
        self.best, self.num_bad_epochs, self.cooldown_counter = np.inf, 0, 0

    def step(self, metric: float) -> float:
        if metric < self.best * (1.0 - self.threshold):
            self.best, self.num_bad_epochs = metric, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            new_lr = max(self.lr * self.factor, self.min_lr)
            if self.lr - new_lr > self.eps:
                self.lr = new_lr
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0
        return self.lr


def test_reductions_match_pytorch_reduce_lr_on_plateau_with_patience_one_later():
    """docs/lr-tools.md: PyTorch's patience p is our p + 1. On a noisy validation curve that
    falls, then stalls, the LR lrbench applies after each evaluation is PyTorch's, reduction
    by reduction."""
    rng = np.random.default_rng(0)
    epochs = np.arange(80)
    losses = 0.3 + 2.0 * np.exp(-epochs / 8) + rng.normal(scale=0.01, size=epochs.size)
    losses = losses.astype(np.float32).astype(np.float64)  # what the observer sees
    factor, patience, rtol, cooldown, min_scale = 0.5, 3, 0.01, 2, 0.05
    overrides = [
        f"schedule.factor={factor}",
        f"schedule.patience={patience}",
        f"schedule.rtol={rtol}",
        "schedule.atol=0",
        f"schedule.cooldown={cooldown}",
        f"schedule.min_scale={min_scale}",
        "optimizer.lr=0.1",
    ]
    lrs = np.array(_lrs_after_each_evaluation("sgd", overrides, losses))
    torch_rule = TorchReduceLROnPlateau(0.1, factor, patience - 1, rtol, cooldown, 0.1 * min_scale)
    expected = np.array([torch_rule.step(v) for v in losses])

    # Robust to float32 rounding: no loss lies next to the threshold it is compared with.
    best = np.minimum.accumulate(np.concatenate([[np.inf], losses]))[:-1]
    finite = np.isfinite(best)
    assert np.abs(losses[finite] - (1 - rtol) * best[finite]).min() > 1e-5
    # The case is not trivial: several reductions once the curve flattens, down to the floor.
    reductions = np.flatnonzero(np.diff(expected) < 0) + 1
    assert len(reductions) >= 4 and expected.min() == pytest.approx(0.1 * min_scale)
    np.testing.assert_array_equal(np.flatnonzero(np.diff(lrs) < 0) + 1, reductions)
    np.testing.assert_allclose(lrs, expected, rtol=1e-5)


def test_the_monitored_validation_loss_cannot_be_negative():
    """Cross-entropy (softmax or sigmoid) is >= 0, so optax 0.2.8's restriction for a negative
    best value (lrbench/optim/plateau.py) cannot arise."""
    rng = np.random.default_rng(0)
    for classes in (1, 10):
        logits = jnp.asarray(rng.normal(scale=30, size=(1000, classes)), jnp.float32)
        labels = jnp.asarray(rng.integers(0, max(classes, 2), size=1000))
        assert float(cross_entropy(logits, labels).min()) >= 0


def test_a_run_reduces_its_lr_from_its_validation_losses(tmp_path):
    """End to end: the lr column of each epoch is lr x the rule's scale after the previous
    epochs' validation losses (read back from metrics.csv)."""
    schedule = [
        "schedule=reduce_on_plateau",
        "schedule.patience=1",
        "schedule.factor=0.5",
        "schedule.rtol=0.2",
    ]
    args = ["optimizer=momentum", *schedule, "train.epochs=8", f"hydra.run.dir={tmp_path}"]
    assert main(["train", *args]) == 0
    rows = read_metrics(tmp_path)
    per_epoch = 1257 // 128
    val_losses = [row["val_loss"] for row in rows if row["val_loss"] is not None]
    scales = reference_scales(val_losses, 0.5, 1, 0.2, 0.0, 0, 0.0)
    assert scales[-2] < 0.5, "the run must stall and be reduced at least twice"
    for row in rows:
        epoch = math.ceil(row["step"] / per_epoch) - 1  # the epoch this step belongs to
        expected = 0.01 * (1.0 if epoch == 0 else scales[epoch - 1])
        assert row["lr"] == pytest.approx(expected, rel=1e-6), row
    assert read_summary(tmp_path)["status"] == "completed"


def test_without_reduce_on_plateau_there_is_no_monitor():
    cfg = compose_config()
    tx = optim.watch_validation(
        optim.build(cfg.optimizer, optax.constant_schedule(1.0)), cfg.schedule, jnp.float32
    )
    assert optim.validation_observer(cfg.schedule, jnp.float32) is None
    assert find_states(tx.init({"w": jnp.ones(3)}), PlateauState) == []


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["schedule.factor=1.0"], "schedule.factor=1.0: must be in (0, 1)"),
        (["schedule.rtol=0"], "schedule.atol=0.0: rtol and atol cannot both be 0"),
        (["schedule.patience=0"], "schedule.patience=0: must be > 0"),
    ],
)
def test_bad_settings_are_one_line_exit_2(overrides, message, tmp_path, capsys):
    run_dir = tmp_path / "run"
    args = ["train", "schedule=reduce_on_plateau", *overrides, f"hydra.run.dir={run_dir}"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err == f"lrbench: error: {message}\n"
    assert not run_dir.exists()
