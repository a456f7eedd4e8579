"""Baseline (a): a minimal hand-written JAX + optax training loop, the practical ceiling.

Pure functions, one ``lax.scan`` per epoch, donated buffers, batches from an on-device
permutation: the loop a careful researcher writes by hand. Shares nothing with lrbench.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def init_mlp(key, sizes):
    params = []
    for k, (n_in, n_out) in zip(jax.random.split(key, len(sizes) - 1), zip(sizes[:-1], sizes[1:])):
        w = jax.random.normal(k, (n_in, n_out)) * jnp.sqrt(1.0 / n_in)
        params.append((w, jnp.zeros(n_out)))
    return params


def mlp(params, x):
    for w, b in params[:-1]:
        x = jax.nn.relu(x @ w + b)
    w, b = params[-1]
    return x @ w + b


def make_epoch(tx, batch_size, steps):
    def loss_fn(params, x, y):
        return optax.softmax_cross_entropy_with_integer_labels(mlp(params, x), y).mean()

    def step(carry, rows):
        params, opt_state, x, y = carry
        loss, grads = jax.value_and_grad(loss_fn)(params, x[rows], y[rows])
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state, x, y), loss

    def epoch(params, opt_state, x, y, key):
        rows = jax.random.permutation(key, x.shape[0])[: steps * batch_size]
        (params, opt_state, _, _), losses = jax.lax.scan(
            step, (params, opt_state, x, y), rows.reshape(steps, batch_size)
        )
        return params, opt_state, losses

    return jax.jit(epoch, donate_argnums=(0, 1))
