"""Every schedule ``lrbench.optim.build_multiplier`` makes, checked against its formula.

The references are closed forms in numpy float64 (from the papers, optax's documented
formulas and PyTorch's scheduler documentation), evaluated at every step 0..T of a run of
T = 100 steps (10 epochs of 10 steps), boundaries included. The multiplier is 1.0 at the
peak; step t (0-based, the count in the optimizer state) trains with lr * multiplier(t).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lrbench.config import (
    BoundaryUnit,
    ConstantConfig,
    CosineConfig,
    ExponentialConfig,
    LinearScheduleConfig,
    OneCycleConfig,
    PolynomialConfig,
    StepConfig,
    WarmupCosineConfig,
)
from lrbench.errors import ConfigError
from lrbench.optim import build_multiplier, scale_by_scheduled_lr

TOTAL = 100
PER_EPOCH = 10


def evaluate(cfg, total=TOTAL, per_epoch=PER_EPOCH) -> np.ndarray:
    """lrbench's multiplier at steps 0..total (call under x64). int64 counts, so that this
    checks the formula at float64 precision; the int32 count the optimizer state really
    passes is checked by test_float64_run_applies_schedule_at_float64_precision."""
    multiplier = build_multiplier(cfg, total, per_epoch)
    counts = jnp.arange(total + 1, dtype=jnp.int64)
    return np.asarray(jax.vmap(lambda c: jnp.asarray(multiplier(c), jnp.float64))(counts))


def lrs_from_optimizer_state(cfg, total=TOTAL, per_epoch=PER_EPOCH) -> np.ndarray:
    """ScheduledLRState.lr after each of `total` updates of a float64 run with lr = 1,
    i.e. the multiplier at counts 0..total-1 exactly as training applies it."""
    tx = scale_by_scheduled_lr(1.0, build_multiplier(cfg, total, per_epoch), jnp.float64)
    params = jnp.zeros((), jnp.float64)

    def one_update(state, _):
        _, state = tx.update(params, state)
        return state, state.lr

    _, lrs = jax.lax.scan(one_update, tx.init(params), None, length=total)
    return np.asarray(lrs)


def steps(total=TOTAL) -> np.ndarray:
    return np.arange(total + 1, dtype=np.float64)


def anneal_cos(start, end, pct):
    """Cosine from start (pct=0) to end (pct=1): end + (start - end) / 2 * (1 + cos(pi pct))."""
    return end + (start - end) * 0.5 * (1 + np.cos(np.pi * pct))


# ------------------------------------------------------------------- numpy references
def constant_ref(cfg, t, total, per_epoch):
    return np.ones_like(t)


def step_ref(cfg, t, total, per_epoch):
    """PyTorch MultiStepLR: factor ** (number of boundaries b with t >= b)."""
    per_unit = {"fraction": total, "epoch": per_epoch, "step": 1}[cfg.unit.value]
    positions = [b * per_unit for b in cfg.boundaries]
    return cfg.factor ** sum((t >= b).astype(np.float64) for b in positions)


def exponential_ref(cfg, t, total, per_epoch):
    """decay_rate ** (t / steps_per_epoch), floored with staircase (ExponentialLR per epoch)."""
    epochs = t / per_epoch
    return cfg.decay_rate ** (np.floor(epochs) if cfg.staircase else epochs)


def cosine_ref(cfg, t, total, per_epoch):
    """SGDR / CosineAnnealingLR(T_max=T, eta_min=end): end + (1 - end) (1 + cos(pi t / T)) / 2."""
    return anneal_cos(1.0, cfg.end_factor, np.minimum(t, total) / total)


def warmup_cosine_ref(cfg, t, total, per_epoch):
    """Linear from init_factor to 1 over W = round(warmup * T) steps, then cosine from 1 to
    end_factor over the remaining T - W steps (optax: decay_steps counts the warmup too)."""
    w = round(cfg.warmup * total)
    warm = cfg.init_factor + (1 - cfg.init_factor) * t / max(w, 1)
    decay = anneal_cos(1.0, cfg.end_factor, np.clip(t - w, 0, total - w) / (total - w))
    return np.where(t < w, warm, decay)


def linear_ref(cfg, t, total, per_epoch):
    """PyTorch LinearLR(start_factor=1, end_factor, total_iters=T)."""
    return 1.0 + (cfg.end_factor - 1.0) * np.minimum(t, total) / total


def polynomial_ref(cfg, t, total, per_epoch):
    """(1 - end) (1 - t / T) ** power + end (PyTorch PolynomialLR when end = 0)."""
    return (1 - cfg.end_factor) * (1 - np.minimum(t, total) / total) ** cfg.power + cfg.end_factor


def one_cycle_ref(cfg, t, total, per_epoch):
    """optax.cosine_onecycle_schedule as documented (Smith & Topin 2018): cosine from
    1/div_factor up to 1 over the first P = pct_start * T steps (P rounded to a whole
    step), then cosine down to 1/(div_factor * final_div_factor) at step T."""
    start = 1.0 / cfg.div_factor
    final = start / cfg.final_div_factor
    peak = round(cfg.pct_start * total)
    up = anneal_cos(start, 1.0, t / peak)
    down = anneal_cos(1.0, final, np.minimum(t - peak, total - peak) / (total - peak))
    return np.where(t < peak, up, down)


REFERENCES = {
    "constant": constant_ref,
    "step": step_ref,
    "exponential": exponential_ref,
    "cosine": cosine_ref,
    "warmup_cosine": warmup_cosine_ref,
    "linear": linear_ref,
    "polynomial": polynomial_ref,
    "one_cycle": one_cycle_ref,
}


def _step(boundaries, unit, factor):
    return StepConfig(name="step", boundaries=boundaries, unit=BoundaryUnit(unit), factor=factor)


def _warmup_cosine(warmup, init_factor, end_factor):
    return WarmupCosineConfig(
        name="warmup_cosine", warmup=warmup, init_factor=init_factor, end_factor=end_factor
    )


def _one_cycle(pct_start, div_factor, final_div_factor):
    return OneCycleConfig(
        name="one_cycle",
        pct_start=pct_start,
        div_factor=div_factor,
        final_div_factor=final_div_factor,
    )


CASES = {
    "constant": ConstantConfig(name="constant"),
    "step_fraction": _step([0.3, 0.75], "fraction", 0.1),
    "step_epoch": _step([3, 7.5], "epoch", 0.5),
    "step_step": _step([30, 75], "step", 0.2),
    "step_first_and_last_step": _step([1, 99], "step", 0.3),
    "exponential_smooth": ExponentialConfig(name="exponential", decay_rate=0.8, staircase=False),
    "exponential_staircase": ExponentialConfig(name="exponential", decay_rate=0.8, staircase=True),
    "cosine_to_zero": CosineConfig(name="cosine", end_factor=0.0),
    "cosine_to_end_factor": CosineConfig(name="cosine", end_factor=0.1),
    "warmup_cosine_default": _warmup_cosine(0.05, 0.0, 0.0),
    "warmup_cosine_factors": _warmup_cosine(0.25, 0.2, 0.05),
    "warmup_cosine_no_warmup": _warmup_cosine(0.0, 0.3, 0.1),
    "linear_to_zero": LinearScheduleConfig(name="linear", end_factor=0.0),
    "linear_to_end_factor": LinearScheduleConfig(name="linear", end_factor=0.25),
    "polynomial_square": PolynomialConfig(name="polynomial", power=2.0, end_factor=0.0),
    "polynomial_sqrt_to_end_factor": PolynomialConfig(name="polynomial", power=0.5, end_factor=0.1),
    "one_cycle_default": _one_cycle(0.3, 25.0, 1e4),
    "one_cycle_short_warmup": _one_cycle(0.15, 10.0, 100.0),
    # 0.29 * 100 == 28.999999999999996 in binary: the peak still belongs at step 29.
    "one_cycle_pct_start_not_exact_in_binary": _one_cycle(0.29, 25.0, 1e4),
}


@pytest.mark.parametrize("cfg", CASES.values(), ids=CASES.keys())
def test_schedule_matches_reference_formula(x64, cfg):
    expected = REFERENCES[cfg.name](cfg, steps(), TOTAL, PER_EPOCH)
    np.testing.assert_allclose(evaluate(cfg), expected, rtol=1e-10, atol=1e-12)


PRECISION_CASES = [
    "step_fraction",
    "exponential_smooth",
    "cosine_to_end_factor",
    "warmup_cosine_factors",
    "linear_to_end_factor",
    "polynomial_sqrt_to_end_factor",
    "one_cycle_default",
]


@pytest.mark.parametrize("case", PRECISION_CASES)
def test_float64_run_applies_schedule_at_float64_precision(x64, case):
    """train.dtype=float64 (x64 on, hyperparameters float64) must not compute the LR
    multiplier in float32: the LR in the state matches the formula to 1e-12."""
    cfg = CASES[case]
    got = lrs_from_optimizer_state(cfg)
    expected = REFERENCES[cfg.name](cfg, steps(TOTAL - 1), TOTAL, PER_EPOCH)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)


def test_exponential_staircase_counts_whole_epochs_when_epochs_do_not_divide_steps(x64):
    """With 7 steps per epoch the staircase drops at steps 7, 14, ... (not at 10, 20)."""
    cfg = CASES["exponential_staircase"]
    expected = exponential_ref(cfg, steps(), TOTAL, 7)
    np.testing.assert_allclose(evaluate(cfg, per_epoch=7), expected, rtol=1e-10)
    assert np.flatnonzero(np.diff(expected))[:3].tolist() == [6, 13, 20]


def pytorch_one_cycle(cfg, t, total):
    """torch.optim.lr_scheduler.OneCycleLR(anneal_strategy='cos', three_phase=False) / max_lr
    after t scheduler steps: phase ends at float(pct_start * T) - 1 and T - 1."""
    initial = 1.0 / cfg.div_factor
    minimum = initial / cfg.final_div_factor
    end_up = float(cfg.pct_start * total) - 1
    up = anneal_cos(initial, 1.0, t / end_up)
    down = anneal_cos(1.0, minimum, (t - end_up) / (total - 1 - end_up))
    return np.where(t <= end_up, up, down)


@pytest.mark.parametrize("case", ["one_cycle_default", "one_cycle_short_warmup"])
def test_one_cycle_agrees_with_pytorch_one_cycle_lr_one_step_late(x64, case):
    """Does one_cycle match PyTorch OneCycleLR(anneal_strategy='cos'), as one_cycle.yaml says?
    Same start (1/div), peak (1) and final (1/(div * final_div)) values and the same cosine
    shapes, but not the same steps: PyTorch maps its two phases onto steps 0..P-1 and
    P-1..T-1 (the last training step gets the final value), optax onto 0..P and P..T. So
    lrbench warms up over P steps instead of P - 1, and from the peak on it is PyTorch's
    schedule one step late: multiplier(t + 1) == OneCycleLR(t). Training uses counts
    0..T-1, so lrbench's last step is at PyTorch's second-to-last value, not the final one.
    This test checks where the two agree."""
    cfg = CASES[case]
    got = evaluate(cfg)
    torch_lr = pytorch_one_cycle(cfg, steps(TOTAL - 1), TOTAL)
    peak = cfg.pct_start * TOTAL - 1  # PyTorch's peak step
    assert got[0] == pytest.approx(torch_lr[0], rel=1e-12)
    annealing = np.arange(math.ceil(peak), TOTAL)
    np.testing.assert_allclose(got[annealing + 1], torch_lr[annealing], rtol=1e-10, atol=1e-14)
    assert got[TOTAL] == pytest.approx(1 / (cfg.div_factor * cfg.final_div_factor), rel=1e-10)


BAD_BOUNDARIES = {
    "fraction_at_end_of_training": ([1.0], "fraction"),
    "fraction_past_end": ([0.5, 1.2], "fraction"),
    "fraction_decreasing": ([0.7, 0.3], "fraction"),
    "epoch_at_end_of_training": ([10], "epoch"),
    "epoch_decreasing": ([4, 2], "epoch"),
    "step_at_end_of_training": ([TOTAL], "step"),
    "step_decreasing": ([60, 40], "step"),
    "step_rounds_to_zero": ([0.2], "step"),
    "step_zero": ([0], "step"),
    "step_negative": ([-5], "step"),
}


@pytest.mark.parametrize(("boundaries", "unit"), BAD_BOUNDARIES.values(), ids=BAD_BOUNDARIES.keys())
def test_step_boundaries_outside_training_or_decreasing_raise_config_error(boundaries, unit):
    with pytest.raises(ConfigError, match=r"^schedule\.boundaries=") as excinfo:
        build_multiplier(_step(boundaries, unit, 0.1), TOTAL, PER_EPOCH)
    assert excinfo.value.key == "schedule.boundaries"


@pytest.mark.parametrize(
    ("boundaries", "unit"),
    [([0.5, 0.5], "fraction"), ([49.8, 50.2], "step")],
    ids=["same_position_twice", "positions_rounding_to_the_same_step"],
)
def test_repeated_step_boundary_is_rejected_or_applied_twice(x64, boundaries, unit):
    """Two boundaries landing on step 50 must not silently become one: either ConfigError
    on schedule.boundaries, or the factor applied twice (as PyTorch MultiStepLR does with a
    repeated milestone)."""
    cfg = _step(boundaries, unit, 0.1)
    try:
        got = evaluate(cfg)
    except ConfigError as error:
        assert error.key == "schedule.boundaries"
        return
    np.testing.assert_allclose(got[[49, 50, TOTAL]], [1.0, 0.01, 0.01], rtol=1e-10)


def test_warmup_that_reaches_the_end_of_training_raises_config_error():
    with pytest.raises(ConfigError) as excinfo:
        build_multiplier(_warmup_cosine(0.96, 0.0, 0.0), 10, 5)
    assert excinfo.value.key == "schedule.warmup"
