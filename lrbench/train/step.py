"""One optimizer step, as a pure function of (state, batch): the unit every loop compiles."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from lrbench.optim import current_loss_scale, current_lr
from lrbench.train.objective import correct, cross_entropy, l2_penalty
from lrbench.train.state import TrainState


class StepMetrics(NamedTuple):
    """What one step tells the host, stacked per step on device (metrics.csv's columns)."""

    loss: jax.Array  # mean train loss of the batch, before the update
    accuracy: jax.Array
    lr: jax.Array  # the learning rate this update applied
    # Global L2 norms, on each epoch's last step (NaN on the others: ``norms_unless_skipped``)
    grad_norm: jax.Array  # of the loss's gradient: unscaled, before clipping
    update_norm: jax.Array  # of the update applied (optax's ``updates``)
    param_norm: jax.Array  # of the parameters the step started from


def norms(grads, updates, params, loss_scale: jax.Array | None = None):
    """(grad_norm, update_norm, param_norm): global L2 norms over all leaves. The gradient
    is that of a loss multiplied by ``loss_scale`` (float16 loss scaling; a power of two, so
    dividing the norm unscales it exactly); not finite when the gradient is not."""
    grad_norm = optax.tree.norm(grads)
    if loss_scale is not None:
        grad_norm = grad_norm / loss_scale
    return grad_norm, optax.tree.norm(updates), optax.tree.norm(params)


def norms_unless_skipped(with_norms: bool, grads, updates, params, loss_scale=None):
    """``norms``, or NaN in their place when not ``with_norms`` (a Python bool: the runners
    compute them on each epoch's last step only; on XLA:CPU the three passes over the
    parameters cost ~8% of the digits MLP's steps/s when every step pays them, and a
    ``lax.cond`` choosing steps at run time measured as costly as computing them)."""
    args = (grads, updates, params, loss_scale)
    if with_norms:
        return norms(*args)
    shapes = jax.eval_shape(lambda: norms(*args))
    return tuple(jnp.full(s.shape, jnp.nan, s.dtype) for s in shapes)


# (state, x, y, with_norms=True) -> (new state, metrics): ``norms_unless_skipped``
TrainStep = Callable[..., tuple[TrainState, StepMetrics]]


def _forward(model: nn.Module, state: TrainState, params, x: jax.Array):
    """Training-mode forward pass: batch statistics for BatchNorm, a fresh dropout key."""
    variables = {"params": params}
    if state.batch_stats:
        variables["batch_stats"] = state.batch_stats
    rngs = {"dropout": jax.random.fold_in(state.dropout_key, state.step)}
    logits, updated = model.apply(variables, x, train=True, rngs=rngs, mutable=["batch_stats"])
    return logits, updated.get("batch_stats", state.batch_stats)


def make_train_step(model: nn.Module, tx: optax.GradientTransformation) -> TrainStep:
    """A minibatch step: gradient of the mean cross-entropy, then the optax update.

    The model computes in its compute dtype; the loss is float32 (``objective``). With
    dynamic loss scaling (float16: ``optim/loss_scale.py``) the gradient is that of the loss
    times the scale held in the optimizer state, which unscales it and skips the update when
    it is not finite; the loss recorded is the unscaled one, finite on a skipped step, and
    so is the gradient norm (a skipped step's is not finite, its update's norm 0).
    ``with_norms``: whether this step computes the norms (``norms_unless_skipped``)."""

    def train_step(state: TrainState, x: jax.Array, y: jax.Array, with_norms=True):
        scale = current_loss_scale(state.opt_state)  # None: no loss scaling

        def loss_fn(params):
            logits, batch_stats = _forward(model, state, params, x)
            loss = cross_entropy(logits, y).mean()
            if scale is None:
                return loss, (logits, batch_stats)
            return loss * scale, (logits, batch_stats, loss)

        (loss, (logits, batch_stats, *unscaled)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state.params
        )
        if unscaled:
            (loss,) = unscaled
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        new_state = state.replace(
            step=state.step + 1,
            params=optax.apply_updates(state.params, updates),
            batch_stats=batch_stats,
            opt_state=opt_state,
        )
        metrics = StepMetrics(
            loss,
            correct(logits, y).mean(),
            current_lr(opt_state),
            *norms_unless_skipped(with_norms, grads, updates, state.params, scale),
        )
        return new_state, metrics

    return train_step


def lbfgs_objective(model: nn.Module, params, x, y, weight_decay: float):
    """Mean cross-entropy + L2 of a deterministic model, with (data loss, logits) as aux."""
    logits = model.apply({"params": params}, x, train=False)
    data_loss = cross_entropy(logits, y).mean()
    return data_loss + l2_penalty(params, weight_decay), (data_loss, logits)


def make_lbfgs_step(
    model: nn.Module, tx: optax.GradientTransformation, weight_decay: float
) -> TrainStep:
    """A full-batch L-BFGS iteration; its line search re-evaluates the objective. Each
    step ends an epoch: it always computes the norms.

    The model must be deterministic (no dropout, no BatchNorm): config checks ensure it.
    """

    def train_step(state: TrainState, x: jax.Array, y: jax.Array):
        def value_fn(params):
            return lbfgs_objective(model, params, x, y, weight_decay)[0]

        (value, (data_loss, logits)), grads = jax.value_and_grad(
            lbfgs_objective, argnums=1, has_aux=True
        )(model, state.params, x, y, weight_decay)
        updates, opt_state = tx.update(
            grads, state.opt_state, state.params, value=value, grad=grads, value_fn=value_fn
        )
        new_state = state.replace(
            step=state.step + 1,
            params=optax.apply_updates(state.params, updates),
            opt_state=opt_state,
        )
        metrics = StepMetrics(
            data_loss,
            correct(logits, y).mean(),
            current_lr(opt_state),
            *norms(grads, updates, state.params),  # the update: the line search's step
        )
        return new_state, metrics

    return train_step


__all__ = [
    "StepMetrics",
    "TrainStep",
    "lbfgs_objective",
    "make_lbfgs_step",
    "make_train_step",
    "norms",
    "norms_unless_skipped",
]
