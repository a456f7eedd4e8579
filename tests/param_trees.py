"""The small parameter tree the optimizer reference tests share, and flat numpy views of it."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

SHAPES = {"w": (3, 4), "b": (4,)}


def to_tree(flat, dtype) -> dict[str, jax.Array]:
    out, start = {}, 0
    for key, shape in SHAPES.items():
        n = int(np.prod(shape))
        out[key] = jnp.asarray(np.reshape(flat[start : start + n], shape), dtype)
        start += n
    return out


def to_flat(tree) -> np.ndarray:
    return np.concatenate([np.asarray(tree[key], np.float64).ravel() for key in SHAPES])
