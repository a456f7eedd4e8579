"""Conv nets for image inputs (flat inputs are viewed as ``image_shape``)."""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from lrbench.models.layers import dense_block, normalize_activate


class CNN(nn.Module):
    image_shape: tuple[int, int, int]
    channels: tuple[int, ...]
    kernel_size: int
    dense: tuple[int, ...]
    n_outputs: int
    activation: str = "relu"
    batch_norm: bool = False
    dropout: float = 0.0
    pool: bool = True
    dtype: jnp.dtype = jnp.float32  # computation (train.compute_dtype)
    param_dtype: jnp.dtype = jnp.float32  # parameters (train.dtype)

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
        x = x.reshape((x.shape[0], *self.image_shape))
        for features in self.channels:
            x = nn.Conv(
                features,
                (self.kernel_size, self.kernel_size),
                dtype=self.dtype,
                param_dtype=self.param_dtype,
            )(x)
            x = normalize_activate(
                x,
                train=train,
                activation=self.activation,
                batch_norm=self.batch_norm,
                dtype=self.dtype,
                param_dtype=self.param_dtype,
            )
            if self.pool and min(x.shape[1:3]) >= 2:
                x = nn.max_pool(x, (2, 2), strides=(2, 2))
        x = x.reshape((x.shape[0], -1))
        x = dense_block(
            x,
            self.dense,
            train=train,
            activation=self.activation,
            batch_norm=self.batch_norm,
            dropout=self.dropout,
            dtype=self.dtype,
            param_dtype=self.param_dtype,
        )
        return nn.Dense(self.n_outputs, dtype=self.dtype, param_dtype=self.param_dtype)(x)
