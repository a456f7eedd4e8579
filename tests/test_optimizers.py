"""Every optimizer ``lrbench.optim.build`` makes, checked against its update rule in numpy.

The references below are written from the papers and the PyTorch documentation (float64
numpy, no optax), one function per method. Both sides run the same problem: a 3x4 matrix
and a 4-vector as a params dict, gradients of a fixed diagonal quadratic plus a fixed
sequence of noise, evaluated at each side's own parameters, so a wrong step changes every
later gradient. lrbench runs jitted (``init`` and ``update``), as the training loop does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from param_trees import SHAPES, to_flat, to_tree

from lrbench import optim
from lrbench.config import (
    AdagradConfig,
    AdamConfig,
    CosineConfig,
    LionConfig,
    MomentumConfig,
    OptimizerConfig,
    RMSpropConfig,
    SGDConfig,
)

N_STEPS = 8
SIZE = sum(int(np.prod(s)) for s in SHAPES.values())

_rng = np.random.default_rng(20240607)
P0 = _rng.normal(size=SIZE)
P_STAR = _rng.normal(size=SIZE)
CURVATURE = _rng.uniform(0.5, 2.0, size=SIZE)
NOISE = _rng.normal(scale=0.3, size=(N_STEPS, SIZE))


def gradient(p: np.ndarray, t: int) -> np.ndarray:
    """Gradient at step t (1-based) of 0.5 * sum(h * (p - p*)^2) plus fixed noise."""
    return CURVATURE * (p - P_STAR) + NOISE[t - 1]


def inverse_time(count):
    """A non-constant multiplier (jnp-traceable), so each step's LR must be the right one."""
    return 1.0 / (1.0 + 0.3 * count)


def inverse_time_np(count: int) -> float:
    return 1.0 / (1.0 + 0.3 * count)


# ------------------------------------------------------------------- numpy references
# Each reference step takes (state, p, g, lr, t, cfg) with g the (clipped) raw gradient,
# keeps its buffers in `state`, and returns the new parameters. Elementwise, so the params
# dict is handled as one flat float64 vector.


def sgd_step(state, p, g, lr, t, cfg):
    """PyTorch SGD(momentum=0): g <- g + wd * p; p <- p - lr * g."""
    return p - lr * (g + cfg.weight_decay * p)


def momentum_step(state, p, g, lr, t, cfg):
    """PyTorch SGD(momentum, dampening=0, nesterov): b <- mu * b + g (b_1 = g);
    p <- p - lr * b, or with Nesterov p <- p - lr * (g + mu * b)."""
    g = g + cfg.weight_decay * p
    b = cfg.momentum * state["b"] + g if "b" in state else g
    state["b"] = b
    direction = g + cfg.momentum * b if cfg.nesterov else b
    return p - lr * direction


def _adam_direction(state, g, t, cfg):
    """Kingma & Ba (2015), Algorithm 1: bias-corrected moments, eps outside the sqrt."""
    m = cfg.b1 * state.get("m", 0.0) + (1 - cfg.b1) * g
    v = cfg.b2 * state.get("v", 0.0) + (1 - cfg.b2) * g**2
    state["m"], state["v"] = m, v
    m_hat = m / (1 - cfg.b1**t)
    v_hat = v / (1 - cfg.b2**t)
    return m_hat / (np.sqrt(v_hat) + cfg.eps)


def adam_step(state, p, g, lr, t, cfg):
    """PyTorch Adam: L2 weight decay added to the gradient before the moments."""
    return p - lr * _adam_direction(state, g + cfg.weight_decay * p, t, cfg)


def adamw_step(state, p, g, lr, t, cfg):
    """Loshchilov & Hutter (2019) / PyTorch AdamW: p <- p - lr * (adam_step + wd * p)."""
    return p - lr * (_adam_direction(state, g, t, cfg) + cfg.weight_decay * p)


def lion_step(state, p, g, lr, t, cfg):
    """Chen et al. (2023), Algorithm 2: c = b1 * m + (1 - b1) * g;
    p <- p - lr * (sign(c) + wd * p); m <- b2 * m + (1 - b2) * g."""
    m = state.get("m", np.zeros_like(p))
    c = cfg.b1 * m + (1 - cfg.b1) * g
    state["m"] = cfg.b2 * m + (1 - cfg.b2) * g
    return p - lr * (np.sign(c) + cfg.weight_decay * p)


def rmsprop_step(state, p, g, lr, t, cfg):
    """PyTorch RMSprop(alpha=decay, eps, centered, momentum, weight_decay), square_avg
    starting at 0, with eps either outside the sqrt (PyTorch) or inside it (eps_in_sqrt):
    v <- a v + (1 - a) g^2;  centered: gbar <- a gbar + (1 - a) g, v~ = v - gbar^2;
    d = g / (sqrt(v~) + eps) or g / sqrt(v~ + eps);
    momentum > 0: buf <- mu buf + d, p <- p - lr buf;  else p <- p - lr d."""
    g = g + cfg.weight_decay * p
    a = cfg.decay
    v = a * state.get("v", 0.0) + (1 - a) * g**2
    state["v"] = v
    if cfg.centered:
        gbar = a * state.get("gbar", 0.0) + (1 - a) * g
        state["gbar"] = gbar
        v = v - gbar**2
    d = g / np.sqrt(v + cfg.eps) if cfg.eps_in_sqrt else g / (np.sqrt(v) + cfg.eps)
    if cfg.momentum > 0:
        d = cfg.momentum * state.get("buf", 0.0) + d
        state["buf"] = d
    return p - lr * d


def adagrad_step(state, p, g, lr, t, cfg):
    """Duchi et al. (2011) diagonal Adagrad, in optax's form (lrbench's adagrad.yaml):
    s_0 = initial_accumulator_value; s <- s + g^2; p <- p - lr * g / sqrt(s + eps).
    (PyTorch puts eps outside: g / (sqrt(s) + eps).) L2 decay added to g first."""
    g = g + cfg.weight_decay * p
    s = state.get("s", cfg.initial_accumulator_value) + g**2
    state["s"] = s
    return p - lr * g / np.sqrt(s + cfg.eps)


REFERENCE_STEPS: dict[str, Callable] = {
    "sgd": sgd_step,
    "momentum": momentum_step,
    "adam": adam_step,
    "adamw": adamw_step,
    "lion": lion_step,
    "rmsprop": rmsprop_step,
    "adagrad": adagrad_step,
}


def run_reference(cfg: OptimizerConfig, multiplier_np: Callable[[int], float]):
    """The reference trajectory (one row per step), the LRs used, and the clipped steps."""
    step_fn = REFERENCE_STEPS[cfg.name]
    p, state = P0.copy(), {}
    trajectory, lrs, n_clipped = [], [], 0
    for t in range(1, N_STEPS + 1):
        g = gradient(p, t)
        if cfg.grad_clip_norm is not None:
            # Pascanu et al. (2013): rescale the whole gradient to norm c if it exceeds c.
            norm = np.linalg.norm(g)
            if norm > cfg.grad_clip_norm:
                g = g * (cfg.grad_clip_norm / norm)
                n_clipped += 1
        lr = cfg.lr * multiplier_np(t - 1)  # the t-th update sees count = t - 1
        p = step_fn(state, p, g, lr, t, cfg)
        trajectory.append(p)
        lrs.append(lr)
    return np.array(trajectory), np.array(lrs), n_clipped


def run_lrbench(cfg: OptimizerConfig, multiplier, dtype):
    """lrbench's trajectory and current_lr after each update, init and update jitted."""
    tx = optim.build(cfg, multiplier, dtype)
    params = to_tree(P0, dtype)
    state = jax.jit(tx.init)(params)
    update = jax.jit(tx.update)
    trajectory, lrs = [], []
    for t in range(1, N_STEPS + 1):
        grads = to_tree(gradient(to_flat(params), t), dtype)
        updates, state = update(grads, state, params)
        params = optax.apply_updates(params, updates)
        assert all(leaf.dtype == dtype for leaf in jax.tree.leaves(params))
        trajectory.append(to_flat(params))
        lrs.append(float(optim.current_lr(state)))
    return np.array(trajectory), np.array(lrs)


# --------------------------------------------------------------------------------- cases
def _adam(name="adam", weight_decay=0.0):
    # eps = 1e-3 (not 1e-8) so that eps inside vs outside the sqrt would be visible.
    return AdamConfig(name=name, lr=0.05, weight_decay=weight_decay, b1=0.9, b2=0.99, eps=1e-3)


def _rmsprop(eps_in_sqrt=True, centered=False, momentum=0.0, weight_decay=0.0):
    # eps = 0.1 so that eps inside vs outside the sqrt changes the step clearly.
    return RMSpropConfig(
        name="rmsprop",
        lr=0.02,
        weight_decay=weight_decay,
        decay=0.9,
        eps=0.1,
        eps_in_sqrt=eps_in_sqrt,
        centered=centered,
        momentum=momentum,
    )


def _momentum(nesterov, weight_decay=0.0, grad_clip_norm=None):
    return MomentumConfig(
        name="momentum",
        lr=0.05,
        weight_decay=weight_decay,
        momentum=0.9,
        nesterov=nesterov,
        grad_clip_norm=grad_clip_norm,
    )


CASES = {
    "sgd": SGDConfig(name="sgd", lr=0.1, weight_decay=0.0),
    "sgd_l2": SGDConfig(name="sgd", lr=0.1, weight_decay=0.3),
    "momentum_heavy_ball": _momentum(nesterov=False),
    "momentum_nesterov": _momentum(nesterov=True),
    "momentum_nesterov_l2": _momentum(nesterov=True, weight_decay=0.2),
    "adam": _adam(),
    "adam_l2": _adam(weight_decay=0.3),
    "adamw_decoupled": _adam(name="adamw", weight_decay=0.3),
    "lion_decoupled": LionConfig(name="lion", lr=0.02, weight_decay=0.5, b1=0.9, b2=0.99),
    "rmsprop_eps_in_sqrt": _rmsprop(eps_in_sqrt=True),
    "rmsprop_eps_outside_sqrt": _rmsprop(eps_in_sqrt=False),
    "rmsprop_centered_eps_in_sqrt": _rmsprop(centered=True),
    "rmsprop_centered_eps_outside_sqrt": _rmsprop(eps_in_sqrt=False, centered=True),
    "rmsprop_momentum": _rmsprop(momentum=0.8),
    "rmsprop_centered_momentum_l2": _rmsprop(centered=True, momentum=0.8, weight_decay=0.2),
    "adagrad": AdagradConfig(
        name="adagrad", lr=0.2, weight_decay=0.0, initial_accumulator_value=0.1, eps=0.05
    ),
    "adagrad_l2_zero_init": AdagradConfig(
        name="adagrad", lr=0.2, weight_decay=0.2, initial_accumulator_value=0.0, eps=1e-10
    ),
}


@pytest.mark.parametrize("cfg", CASES.values(), ids=CASES.keys())
def test_optimizer_matches_reference_formula(x64, cfg):
    """Parameters after each of 8 steps and the LR of each step, float64, rtol 1e-10."""
    expected, expected_lrs, _ = run_reference(cfg, inverse_time_np)
    got, got_lrs = run_lrbench(cfg, inverse_time, jnp.float64)
    np.testing.assert_allclose(got_lrs, expected_lrs, rtol=1e-12)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


FLOAT32_CASES = [
    "momentum_nesterov_l2",
    "adam_l2",
    "adamw_decoupled",
    "rmsprop_centered_momentum_l2",
    "adagrad",
]


@pytest.mark.parametrize("case", FLOAT32_CASES)
def test_float32_optimizer_matches_reference_to_float32_precision(case):
    """The default dtype (no x64): same trajectory as the float64 reference, rtol 1e-5."""
    cfg = CASES[case]
    expected, expected_lrs, _ = run_reference(cfg, inverse_time_np)
    got, got_lrs = run_lrbench(cfg, inverse_time, jnp.float32)
    np.testing.assert_allclose(got_lrs, expected_lrs, rtol=1e-6)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


CLIP_CASES = {
    "sgd_l2_clipped": replace(CASES["sgd_l2"], grad_clip_norm=6.0),
    "momentum_nesterov_l2_clipped": _momentum(nesterov=True, weight_decay=0.2, grad_clip_norm=6.0),
}


@pytest.mark.parametrize("cfg", CLIP_CASES.values(), ids=CLIP_CASES.keys())
def test_grad_clip_norm_rescales_global_norm_before_weight_decay(x64, cfg):
    """Clipping uses the norm over all leaves, before L2 decay is added (PyTorch's order:
    clip_grad_norm_ on p.grad, then optimizer.step adds wd * p)."""
    expected, _, n_clipped = run_reference(cfg, inverse_time_np)
    assert 0 < n_clipped < N_STEPS, "the problem must exercise both clipped and unclipped steps"
    got, _ = run_lrbench(cfg, inverse_time, jnp.float64)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


def test_current_lr_is_lr_times_schedule_multiplier_at_every_step(x64):
    """With a schedule from build_multiplier (cosine to 0.1), the state reports
    lr * (0.1 + 0.9 * 0.5 * (1 + cos(pi * (t - 1) / T))) after update t, and the
    parameters move by exactly that LR."""
    cfg = CASES["momentum_heavy_ball"]

    def cosine_np(count):
        return 0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * count / N_STEPS))

    multiplier = optim.build_multiplier(CosineConfig(name="cosine", end_factor=0.1), N_STEPS, 4)
    expected, expected_lrs, _ = run_reference(cfg, cosine_np)
    got, got_lrs = run_lrbench(cfg, multiplier, jnp.float64)
    assert len(set(np.round(expected_lrs, 12))) == N_STEPS  # the LR changes every step
    np.testing.assert_allclose(got_lrs, expected_lrs, rtol=1e-12)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
