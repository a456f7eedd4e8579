"""Hypergradient descent (Baydin et al., "Online Learning Rate Adaptation with Hypergradient
Descent", ICLR 2018): the learning rate learns by gradient descent on the loss.

For any update rule theta_t = theta_{t-1} - alpha * u_t (u_t: the SGD gradient, the momentum
buffer, Adam's bias-corrected m_hat / (sqrt(v_hat) + eps)), the derivative of the loss at
theta_{t-1} with respect to alpha is -g_t . u_{t-1}, so one step of gradient descent on alpha
with hypergradient learning rate beta is

    h_t = g_t . u_{t-1}            (dot product over the whole parameter tree; u_0 = 0)
    alpha_t = alpha_{t-1} + beta * h_t

which is the paper's SGD-HD (u = g), SGDN-HD (u = g + mu * v) and Adam-HD. optax has no
hypergradient transformation, hence this one. With a schedule, the update is
alpha_t * multiplier(t) * u_t and u_{t-1} carries its multiplier (the exact derivative).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from lrbench.optim.learning_rate import register_lr_state


class HypergradientState(NamedTuple):
    count: jax.Array  # updates applied so far
    base_lr: jax.Array  # alpha: the peak LR, adapted by the hypergradient at every update
    lr: jax.Array  # alpha * multiplier(count) applied by the last update
    hypergrad_lr: jax.Array  # beta
    previous: optax.Updates  # multiplier * u of the last update: -d(theta)/d(alpha)
    inner: optax.OptState  # the direction's state


def hypergradient_descent(
    direction: optax.GradientTransformation,
    base_lr: float,
    hypergrad_lr: float,
    multiplier: optax.Schedule,
    dtype: jnp.dtype = jnp.float32,
) -> optax.GradientTransformation:
    """Scale ``direction`` (an optax optimizer at learning rate 1, so its output is -u) by a
    learning rate that hypergradient descent adapts; in place of ``scale_by_scheduled_lr``."""

    def init(params: optax.Params) -> HypergradientState:
        alpha = jnp.asarray(base_lr, dtype)
        return HypergradientState(
            count=jnp.zeros([], jnp.int32),
            base_lr=alpha,
            lr=alpha * multiplier(0),
            hypergrad_lr=jnp.asarray(hypergrad_lr, dtype),
            previous=optax.tree.zeros_like(params),
            inner=direction.init(params),
        )

    def update(grads, state: HypergradientState, params=None):
        h = optax.tree.vdot(grads, state.previous)
        alpha = (state.base_lr + state.hypergrad_lr * h).astype(state.base_lr.dtype)
        scale = jnp.asarray(multiplier(state.count.astype(alpha.dtype)), alpha.dtype)
        negative_u, inner = direction.update(grads, state.inner, params)
        lr = alpha * scale
        updates = jax.tree.map(lambda d: (lr * d).astype(d.dtype), negative_u)
        previous = jax.tree.map(lambda d: (-scale * d).astype(d.dtype), negative_u)
        return updates, HypergradientState(
            count=state.count + 1,
            base_lr=alpha,
            lr=lr,
            hypergrad_lr=state.hypergrad_lr,
            previous=previous,
            inner=inner,
        )

    return optax.GradientTransformation(init, update)


register_lr_state(HypergradientState, lambda state: state.lr)


# ---------------------------------------------------------- directions (learning rate 1)
# Weight decay is decoupled (inside the direction, as AdamW): the hypergradient is then that
# of the data loss, and with weight_decay = 0 (the default) these are the paper's methods.
def sgd_direction(weight_decay, momentum, nesterov) -> optax.GradientTransformation:
    """-(v_t + wd * p), v_t = momentum * v_{t-1} + g_t (Nesterov: g_t + momentum * v_t)."""
    return optax.chain(
        optax.trace(decay=momentum, nesterov=nesterov),
        optax.add_decayed_weights(weight_decay),
        optax.scale(-1.0),
    )


def adam_direction(weight_decay, b1, b2, eps) -> optax.GradientTransformation:
    """-(m_hat / (sqrt(v_hat) + eps) + wd * p)."""
    return optax.adamw(1.0, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay)


def hypergradient_stage(
    inject: Callable[..., optax.GradientTransformation],
    hyperparams: dict,
    cfg: Any,
    multiplier: optax.Schedule,
    dtype: jnp.dtype,
) -> optax.GradientTransformation:
    """The LR build stage of the *_hd optimizers (see ``OptimizerEntry``)."""
    return hypergradient_descent(inject(**hyperparams), cfg.lr, cfg.hypergrad_lr, multiplier, dtype)
