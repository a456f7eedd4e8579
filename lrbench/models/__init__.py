"""Model registry: ``model.name`` -> flax module built for a dataset's ``DataSpec``.

Every module has the signature ``__call__(x, train: bool)``; BatchNorm keeps running
statistics in the ``batch_stats`` collection and dropout draws from the ``dropout`` RNG.
"""

from __future__ import annotations

from collections.abc import Callable

import flax.linen as nn
import jax.numpy as jnp

from lrbench.config import CNNConfig, LinearConfig, MLPConfig, ModelConfig
from lrbench.data import DataSpec
from lrbench.errors import ConfigError
from lrbench.models.cnn import CNN
from lrbench.models.mlp import MLP


def _linear(cfg: LinearConfig, spec: DataSpec, dtype: jnp.dtype) -> nn.Module:
    return MLP(widths=(), n_outputs=spec.n_outputs, dtype=dtype)


def _mlp(cfg: MLPConfig, spec: DataSpec, dtype: jnp.dtype) -> nn.Module:
    return MLP(
        widths=tuple(cfg.widths),
        n_outputs=spec.n_outputs,
        activation=cfg.activation.value,
        batch_norm=cfg.batch_norm,
        dropout=cfg.dropout,
        dtype=dtype,
    )


def _cnn(cfg: CNNConfig, spec: DataSpec, dtype: jnp.dtype) -> nn.Module:
    if spec.image_shape is None:
        raise ConfigError("model", "cnn", "needs an image dataset (digits, mnist, ...)")
    return CNN(
        image_shape=spec.image_shape,
        channels=tuple(cfg.channels),
        kernel_size=cfg.kernel_size,
        dense=tuple(cfg.dense),
        n_outputs=spec.n_outputs,
        activation=cfg.activation.value,
        batch_norm=cfg.batch_norm,
        dropout=cfg.dropout,
        pool=cfg.pool,
        dtype=dtype,
    )


BUILDERS: dict[str, Callable[..., nn.Module]] = {"linear": _linear, "mlp": _mlp, "cnn": _cnn}


def build(cfg: ModelConfig, spec: DataSpec, dtype: jnp.dtype = jnp.float32) -> nn.Module:
    try:
        builder = BUILDERS[cfg.name]
    except KeyError:
        raise ConfigError("model.name", cfg.name, f"one of {sorted(BUILDERS)}") from None
    return builder(cfg, spec, dtype)


def uses_batch_norm(cfg: ModelConfig) -> bool:
    return bool(getattr(cfg, "batch_norm", False))


def uses_dropout(cfg: ModelConfig) -> bool:
    return getattr(cfg, "dropout", 0.0) > 0


__all__ = ["BUILDERS", "build", "uses_batch_norm", "uses_dropout"]
