"""CIFAR-style ResNet (He et al. 2016, "Deep Residual Learning", section 4.2).

A 3x3 conv of ``width`` channels, then stages of basic blocks (two 3x3 convs) whose
channels double and whose first block halves the resolution (stride 2), then global
average pooling and the classifier. ``stage_blocks=[3, 3, 3]``, ``width=16`` is ResNet-20
(6n + 2 layers, ~0.27M parameters). Where a block changes shape its shortcut is a 1x1
strided conv + BatchNorm (the paper's option B; its CIFAR nets used zero-padded identity,
option A, which it found slightly weaker).
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from lrbench.models.layers import batch_normalize

HE_NORMAL = nn.initializers.variance_scaling(2.0, "fan_out", "normal")  # He et al. 2015


class BasicBlock(nn.Module):
    features: int
    stride: int
    batch_norm: bool
    dtype: jnp.dtype  # computation (train.compute_dtype)
    param_dtype: jnp.dtype  # parameters (train.dtype)

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
        residual = self._conv(x, self.features, 3, self.stride, train)
        residual = self._conv(nn.relu(residual), self.features, 3, 1, train)
        shortcut = x
        if self.stride != 1 or x.shape[-1] != self.features:
            shortcut = self._conv(x, self.features, 1, self.stride, train)
        return nn.relu(residual + shortcut)

    def _conv(self, x, features: int, kernel: int, stride: int, train: bool) -> jnp.ndarray:
        """conv -> BatchNorm (no bias when normalized: BatchNorm's shift replaces it)."""
        x = nn.Conv(
            features,
            (kernel, kernel),
            strides=stride,
            use_bias=not self.batch_norm,
            kernel_init=HE_NORMAL,
            dtype=self.dtype,
            param_dtype=self.param_dtype,
        )(x)
        if not self.batch_norm:
            return x
        return batch_normalize(x, train=train, dtype=self.dtype, param_dtype=self.param_dtype)


class ResNet(nn.Module):
    image_shape: tuple[int, int, int]
    stage_blocks: tuple[int, ...]
    width: int
    n_outputs: int
    batch_norm: bool = True
    dtype: jnp.dtype = jnp.float32  # computation (train.compute_dtype)
    param_dtype: jnp.dtype = jnp.float32  # parameters (train.dtype)

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
        x = x.reshape((x.shape[0], *self.image_shape))
        x = nn.Conv(
            self.width,
            (3, 3),
            use_bias=not self.batch_norm,
            kernel_init=HE_NORMAL,
            dtype=self.dtype,
            param_dtype=self.param_dtype,
        )(x)
        if self.batch_norm:
            x = batch_normalize(x, train=train, dtype=self.dtype, param_dtype=self.param_dtype)
        x = nn.relu(x)
        for stage, n_blocks in enumerate(self.stage_blocks):
            for block in range(n_blocks):
                stride = 2 if stage > 0 and block == 0 else 1
                block_features = self.width * 2**stage
                x = BasicBlock(
                    block_features, stride, self.batch_norm, self.dtype, self.param_dtype
                )(x, train)
        x = x.mean(axis=(1, 2))
        return nn.Dense(self.n_outputs, dtype=self.dtype, param_dtype=self.param_dtype)(x)
