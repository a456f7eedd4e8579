"""Loss and accuracy: sigmoid cross-entropy for one logit, softmax cross-entropy otherwise.

Half-precision logits (``train.compute_dtype``) are cast to float32 first, so the softmax,
the loss, its gradient's first step and every sum over examples are float32; float32 and
float64 logits are used as they are.
"""

from __future__ import annotations

import jax.numpy as jnp
import optax


def at_least_float32(logits: jnp.ndarray) -> jnp.ndarray:
    dtype = jnp.promote_types(logits.dtype, jnp.float32)
    return logits if logits.dtype == dtype else logits.astype(dtype)


def cross_entropy(logits: jnp.ndarray, labels: jnp.ndarray) -> jnp.ndarray:
    """Per-example loss."""
    logits = at_least_float32(logits)
    if logits.shape[-1] == 1:
        return optax.sigmoid_binary_cross_entropy(logits[:, 0], labels.astype(logits.dtype))
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels)


def correct(logits: jnp.ndarray, labels: jnp.ndarray) -> jnp.ndarray:
    """Per-example 1.0 where the prediction is right."""
    logits = at_least_float32(logits)
    predicted = (
        (logits[:, 0] > 0).astype(labels.dtype)
        if logits.shape[-1] == 1
        else (jnp.argmax(logits, axis=-1))
    )
    return (predicted == labels).astype(logits.dtype)


def l2_penalty(params, weight_decay: float) -> jnp.ndarray:
    """0.5 * wd * ||params||^2, whose gradient is the coupled weight decay wd * params."""
    return 0.5 * weight_decay * optax.tree.norm(params, squared=True)
