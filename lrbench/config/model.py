"""``conf/model/``: the network's schemas (built by ``lrbench.models``)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import ClassVar

from omegaconf import MISSING

from lrbench.config.base import Checked


class Activation(enum.Enum):
    """The names ``lrbench.models.layers.ACTIVATIONS`` implements (a test checks both agree)."""

    relu = "relu"
    gelu = "gelu"
    tanh = "tanh"
    sigmoid = "sigmoid"
    silu = "silu"
    elu = "elu"
    leaky_relu = "leaky_relu"


@dataclass
class ModelConfig(Checked):
    group: ClassVar[str] = "model"
    name: str = MISSING


@dataclass
class LinearConfig(ModelConfig):
    pass


@dataclass
class MLPConfig(ModelConfig):
    widths: list[int] = MISSING
    activation: Activation = MISSING
    batch_norm: bool = MISSING
    dropout: float = MISSING

    def __post_init__(self) -> None:
        if any(w <= 0 for w in self.widths):
            self._fail("widths", "every width must be > 0")
        self._unit_interval("dropout")


@dataclass
class CNNConfig(ModelConfig):
    channels: list[int] = MISSING
    kernel_size: int = MISSING
    dense: list[int] = MISSING
    activation: Activation = MISSING
    batch_norm: bool = MISSING
    dropout: float = MISSING
    pool: bool = MISSING

    def __post_init__(self) -> None:
        if not self.channels or any(c <= 0 for c in self.channels):
            self._fail("channels", "a non-empty list of positive channel counts")
        if any(w <= 0 for w in self.dense):
            self._fail("dense", "every width must be > 0")
        self._positive("kernel_size")
        self._unit_interval("dropout")


@dataclass
class ResNetConfig(ModelConfig):
    """CIFAR-style residual net (He et al. 2016, section 4.2): stages of basic blocks."""

    stage_blocks: list[int] = MISSING
    width: int = MISSING
    batch_norm: bool = MISSING

    def __post_init__(self) -> None:
        if not self.stage_blocks or any(b <= 0 for b in self.stage_blocks):
            self._fail("stage_blocks", "a non-empty list of positive block counts")
        self._positive("width")


# model.name -> its schema (the registry ``lrbench.models.BUILDERS`` has the same names).
MODEL_SCHEMAS: dict[str, type[ModelConfig]] = {
    "linear": LinearConfig,
    "mlp": MLPConfig,
    "cnn": CNNConfig,
    "resnet": ResNetConfig,
}
