"""Dense networks: ``widths=()`` is logistic / softmax regression."""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from lrbench.models.layers import dense_block


class MLP(nn.Module):
    widths: tuple[int, ...]
    n_outputs: int
    activation: str = "relu"
    batch_norm: bool = False
    dropout: float = 0.0
    dtype: jnp.dtype = jnp.float32  # computation (train.compute_dtype)
    param_dtype: jnp.dtype = jnp.float32  # parameters (train.dtype)

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
        x = x.reshape((x.shape[0], -1))
        x = dense_block(
            x,
            self.widths,
            train=train,
            activation=self.activation,
            batch_norm=self.batch_norm,
            dropout=self.dropout,
            dtype=self.dtype,
            param_dtype=self.param_dtype,
        )
        return nn.Dense(self.n_outputs, dtype=self.dtype, param_dtype=self.param_dtype)(x)
