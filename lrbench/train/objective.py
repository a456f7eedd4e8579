"""Loss and accuracy: sigmoid cross-entropy for one logit, softmax cross-entropy otherwise."""

from __future__ import annotations

import jax.numpy as jnp
import optax


def cross_entropy(logits: jnp.ndarray, labels: jnp.ndarray) -> jnp.ndarray:
    """Per-example loss."""
    if logits.shape[-1] == 1:
        return optax.sigmoid_binary_cross_entropy(logits[:, 0], labels.astype(logits.dtype))
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels)


def correct(logits: jnp.ndarray, labels: jnp.ndarray) -> jnp.ndarray:
    """Per-example 1.0 where the prediction is right."""
    predicted = (
        (logits[:, 0] > 0).astype(labels.dtype)
        if logits.shape[-1] == 1
        else (jnp.argmax(logits, axis=-1))
    )
    return (predicted == labels).astype(logits.dtype)


def l2_penalty(params, weight_decay: float) -> jnp.ndarray:
    """0.5 * wd * ||params||^2, whose gradient is the coupled weight decay wd * params."""
    return 0.5 * weight_decay * optax.tree.norm(params, squared=True)
