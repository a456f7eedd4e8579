"""Model registry: ``model.name`` -> flax module built for a dataset's ``DataSpec``.

Every module has the signature ``__call__(x, train: bool)``; BatchNorm keeps running
statistics in the ``batch_stats`` collection and dropout draws from the ``dropout`` RNG.
Modules compute in ``compute`` (``train.compute_dtype``) and keep their parameters in
``dtype`` (``train.dtype``); the logits come out in ``compute``.
"""

from __future__ import annotations

from collections.abc import Callable

import flax.linen as nn
import jax.numpy as jnp

from lrbench.config import CNNConfig, LinearConfig, MLPConfig, ModelConfig, ResNetConfig
from lrbench.config.train import ComputeDType
from lrbench.data import DataSpec
from lrbench.errors import ConfigError
from lrbench.models.cnn import CNN
from lrbench.models.input_stage import WithInputStage
from lrbench.models.mlp import MLP
from lrbench.models.resnet import ResNet


def _linear(cfg: LinearConfig, spec: DataSpec, dtype: jnp.dtype, compute: jnp.dtype) -> nn.Module:
    return MLP(widths=(), n_outputs=spec.n_outputs, dtype=compute, param_dtype=dtype)


def _mlp(cfg: MLPConfig, spec: DataSpec, dtype: jnp.dtype, compute: jnp.dtype) -> nn.Module:
    return MLP(
        widths=tuple(cfg.widths),
        n_outputs=spec.n_outputs,
        activation=cfg.activation.value,
        batch_norm=cfg.batch_norm,
        dropout=cfg.dropout,
        dtype=compute,
        param_dtype=dtype,
    )


def _image_shape(name: str, spec: DataSpec) -> tuple[int, int, int]:
    if spec.image_shape is None:
        raise ConfigError("model", name, "needs an image dataset (digits, mnist, ...)")
    return spec.image_shape


def _cnn(cfg: CNNConfig, spec: DataSpec, dtype: jnp.dtype, compute: jnp.dtype) -> nn.Module:
    return CNN(
        image_shape=_image_shape("cnn", spec),
        channels=tuple(cfg.channels),
        kernel_size=cfg.kernel_size,
        dense=tuple(cfg.dense),
        n_outputs=spec.n_outputs,
        activation=cfg.activation.value,
        batch_norm=cfg.batch_norm,
        dropout=cfg.dropout,
        pool=cfg.pool,
        dtype=compute,
        param_dtype=dtype,
    )


def _resnet(cfg: ResNetConfig, spec: DataSpec, dtype: jnp.dtype, compute: jnp.dtype) -> nn.Module:
    return ResNet(
        image_shape=_image_shape("resnet", spec),
        stage_blocks=tuple(cfg.stage_blocks),
        width=cfg.width,
        n_outputs=spec.n_outputs,
        batch_norm=cfg.batch_norm,
        dtype=compute,
        param_dtype=dtype,
    )


BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "linear": _linear,
    "mlp": _mlp,
    "cnn": _cnn,
    "resnet": _resnet,
}
# The loop strategy depends on it (docs/design.md "Design", "Loop strategies, by measurement").
CONVOLUTIONAL = {"cnn", "resnet"}


def build(
    cfg: ModelConfig,
    spec: DataSpec,
    dtype: jnp.dtype = jnp.float32,
    compute_dtype: ComputeDType | None = None,
) -> nn.Module:
    """The network for ``spec``, behind the dataset's input stage when it has one:
    parameters in ``dtype``, computing in ``compute_dtype`` (None: ``dtype``). The input
    stage preprocesses in ``dtype``; the first layer casts its output."""
    try:
        builder = BUILDERS[cfg.name]
    except KeyError:
        raise ConfigError("model.name", cfg.name, f"one of {sorted(BUILDERS)}") from None
    network = builder(cfg, spec, dtype, compute_jnp_dtype(compute_dtype, dtype))
    if spec.preprocess is None:
        return network
    return WithInputStage(network=network, preprocess=spec.preprocess, dtype=dtype)


def compute_jnp_dtype(compute_dtype: ComputeDType | None, dtype: jnp.dtype) -> jnp.dtype:
    """``train.compute_dtype`` as a JAX dtype; None: the parameters' ``dtype``."""
    return dtype if compute_dtype is None else jnp.dtype(compute_dtype.value)


def is_convolutional(cfg: ModelConfig) -> bool:
    return cfg.name in CONVOLUTIONAL


__all__ = ["BUILDERS", "build", "compute_jnp_dtype", "is_convolutional"]
