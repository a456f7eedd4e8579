"""What the models share: activation by name, and the normalize-activate-drop block.

Every layer computes in ``dtype`` (``train.compute_dtype``) and keeps its parameters in
``param_dtype`` (``train.dtype``): flax casts them to ``dtype`` where they are used, so the
gradients come back in ``param_dtype``. BatchNorm computes its statistics and keeps its
running averages in float32 at least: flax's ``force_float32_reductions`` below float64, and
float64 itself in float64 runs (with the flag on, flax keeps float32 running averages, and
their first update makes them float64: a compiled loop's state cannot change dtype)."""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

ACTIVATIONS = {
    "relu": nn.relu,
    "gelu": nn.gelu,
    "tanh": jnp.tanh,
    "sigmoid": nn.sigmoid,
    "silu": nn.silu,
    "elu": nn.elu,
    "leaky_relu": nn.leaky_relu,
}


def normalize_activate(
    x: jnp.ndarray,
    *,
    train: bool,
    activation: str,
    batch_norm: bool,
    dtype: jnp.dtype,
    param_dtype: jnp.dtype,
) -> jnp.ndarray:
    """(BatchNorm, batch statistics in training, running averages at evaluation) -> activation."""
    if batch_norm:
        x = batch_normalize(x, train=train, dtype=dtype, param_dtype=param_dtype)
    return ACTIVATIONS[activation](x)


def batch_normalize(
    x: jnp.ndarray, *, train: bool, dtype: jnp.dtype, param_dtype: jnp.dtype
) -> jnp.ndarray:
    """BatchNorm with running averages updated as PyTorch's momentum=0.1 does."""
    return nn.BatchNorm(
        use_running_average=not train,
        momentum=0.9,
        dtype=dtype,
        param_dtype=param_dtype,
        force_float32_reductions=jnp.dtype(dtype) != jnp.float64,
    )(x)


def dense_block(
    x: jnp.ndarray,
    widths: tuple[int, ...],
    *,
    train: bool,
    activation: str,
    batch_norm: bool,
    dropout: float,
    dtype: jnp.dtype,
    param_dtype: jnp.dtype,
) -> jnp.ndarray:
    """Dense -> (BatchNorm) -> activation -> dropout per width; called inside a compact
    ``__call__``, so its layers are the caller's (MLP's body, the CNN's head)."""
    for width in widths:
        x = nn.Dense(width, dtype=dtype, param_dtype=param_dtype)(x)
        x = normalize_activate(
            x,
            train=train,
            activation=activation,
            batch_norm=batch_norm,
            dtype=dtype,
            param_dtype=param_dtype,
        )
        x = nn.Dropout(dropout, deterministic=not train)(x)
    return x
