"""Typed configuration: the schemas Hydra checks at composition, and their value checks.

Each config-group option (``conf/optimizer/adam.yaml``, ...) starts from one of these
dataclasses (``defaults: [adam_schema]``), so a wrong type or an unknown key is rejected
while Hydra composes. The yaml files hold the values and their documentation; the
dataclasses hold types and ranges. ``to_run_config`` is the one place a composed config
becomes typed values: ``OmegaConf.to_object`` builds these dataclasses, and their
``__post_init__`` checks ranges, raising ``ConfigError`` with the full key.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, fields
from typing import ClassVar

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from lrbench.errors import ConfigError


class Activation(enum.Enum):
    relu = "relu"
    gelu = "gelu"
    tanh = "tanh"
    sigmoid = "sigmoid"
    silu = "silu"
    elu = "elu"
    leaky_relu = "leaky_relu"


class DType(enum.Enum):
    float32 = "float32"
    float64 = "float64"


class Loop(enum.Enum):
    """How the steps of an epoch are compiled (README: "Loop strategies")."""

    auto = "auto"
    scan = "scan"
    unrolled = "unrolled"
    step = "step"


class Device(enum.Enum):
    auto = "auto"
    cpu = "cpu"
    gpu = "gpu"
    tpu = "tpu"


class BoundaryUnit(enum.Enum):
    fraction = "fraction"
    epoch = "epoch"
    step = "step"


class _Checked:
    """Range checks shared by the schemas; ``group`` prefixes the key in messages."""

    group: ClassVar[str] = ""

    def _fail(self, key: str, allowed: str) -> None:
        prefix = f"{self.group}." if self.group else ""
        raise ConfigError(prefix + key, getattr(self, key), allowed)

    def _positive(self, *keys: str) -> None:
        for key in keys:
            if not getattr(self, key) > 0:
                self._fail(key, "must be > 0")

    def _non_negative(self, *keys: str) -> None:
        for key in keys:
            if not getattr(self, key) >= 0:
                self._fail(key, "must be >= 0")

    def _unit_interval(self, *keys: str, closed_right: bool = False) -> None:
        for key in keys:
            value = getattr(self, key)
            inside = 0 <= value <= 1 if closed_right else 0 <= value < 1
            if not inside:
                self._fail(key, "must be in [0, 1]" if closed_right else "must be in [0, 1)")


# ----------------------------------------------------------------------------- models
@dataclass
class ModelConfig(_Checked):
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


# --------------------------------------------------------------------------- datasets
@dataclass
class DatasetConfig(_Checked):
    group: ClassVar[str] = "dataset"
    name: str = MISSING
    val_fraction: float = MISSING
    test_fraction: float = MISSING
    split_seed: int = MISSING

    def __post_init__(self) -> None:
        self._unit_interval("val_fraction", "test_fraction")
        if self.val_fraction + self.test_fraction >= 1:
            self._fail("test_fraction", "val_fraction + test_fraction must be < 1")


@dataclass
class SyntheticConfig(DatasetConfig):
    n_samples: int = MISSING
    n_features: int = MISSING
    n_classes: int = MISSING
    noise: float = MISSING
    seed: int = MISSING

    def __post_init__(self) -> None:
        super().__post_init__()
        self._positive("n_samples", "n_features")
        if self.n_classes < 2:
            self._fail("n_classes", "must be >= 2")
        if self.n_classes > 2**self.n_features:
            self._fail("n_classes", f"must be <= 2**n_features = {2**self.n_features}")
        self._unit_interval("noise", closed_right=True)


@dataclass
class SklearnConfig(DatasetConfig):
    """digits and breast_cancer: real data shipped inside scikit-learn."""


# ------------------------------------------------------------------------- optimizers
@dataclass
class OptimizerConfig(_Checked):
    group: ClassVar[str] = "optimizer"
    name: str = MISSING
    lr: float = MISSING
    weight_decay: float = MISSING
    grad_clip_norm: float | None = None

    def __post_init__(self) -> None:
        self._positive("lr")
        self._non_negative("weight_decay")
        if self.grad_clip_norm is not None:
            self._positive("grad_clip_norm")


@dataclass
class SGDConfig(OptimizerConfig):
    pass


@dataclass
class MomentumConfig(OptimizerConfig):
    momentum: float = MISSING
    nesterov: bool = MISSING

    def __post_init__(self) -> None:
        super().__post_init__()
        self._unit_interval("momentum")


@dataclass
class AdamConfig(OptimizerConfig):
    """adam (L2 weight decay) and adamw (decoupled weight decay)."""

    b1: float = MISSING
    b2: float = MISSING
    eps: float = MISSING

    def __post_init__(self) -> None:
        super().__post_init__()
        self._unit_interval("b1", "b2")
        self._non_negative("eps")


@dataclass
class LionConfig(OptimizerConfig):
    b1: float = MISSING
    b2: float = MISSING

    def __post_init__(self) -> None:
        super().__post_init__()
        self._unit_interval("b1", "b2")


@dataclass
class RMSpropConfig(OptimizerConfig):
    decay: float = MISSING
    eps: float = MISSING
    eps_in_sqrt: bool = MISSING
    centered: bool = MISSING
    momentum: float = MISSING

    def __post_init__(self) -> None:
        super().__post_init__()
        self._unit_interval("decay", "momentum")
        self._non_negative("eps")


@dataclass
class AdagradConfig(OptimizerConfig):
    initial_accumulator_value: float = MISSING
    eps: float = MISSING

    def __post_init__(self) -> None:
        super().__post_init__()
        self._non_negative("initial_accumulator_value", "eps")


@dataclass
class LBFGSConfig(OptimizerConfig):
    memory_size: int = MISSING
    max_linesearch_steps: int = MISSING

    def __post_init__(self) -> None:
        super().__post_init__()
        self._positive("memory_size", "max_linesearch_steps")


# -------------------------------------------------------------------------- schedules
@dataclass
class ScheduleConfig(_Checked):
    """A schedule is a multiplier of ``optimizer.lr``: 1.0 at its peak."""

    group: ClassVar[str] = "schedule"
    name: str = MISSING


@dataclass
class ConstantConfig(ScheduleConfig):
    pass


@dataclass
class StepConfig(ScheduleConfig):
    boundaries: list[float] = MISSING
    unit: BoundaryUnit = MISSING
    factor: float = MISSING

    def __post_init__(self) -> None:
        self._positive("factor")
        if any(b <= 0 for b in self.boundaries):
            self._fail("boundaries", "every boundary must be > 0")


@dataclass
class ExponentialConfig(ScheduleConfig):
    decay_rate: float = MISSING
    staircase: bool = MISSING

    def __post_init__(self) -> None:
        self._positive("decay_rate")


@dataclass
class CosineConfig(ScheduleConfig):
    end_factor: float = MISSING

    def __post_init__(self) -> None:
        self._non_negative("end_factor")


@dataclass
class WarmupCosineConfig(ScheduleConfig):
    warmup: float = MISSING
    init_factor: float = MISSING
    end_factor: float = MISSING

    def __post_init__(self) -> None:
        self._unit_interval("warmup")
        self._non_negative("init_factor", "end_factor")


@dataclass
class LinearScheduleConfig(ScheduleConfig):
    end_factor: float = MISSING

    def __post_init__(self) -> None:
        self._non_negative("end_factor")


@dataclass
class PolynomialConfig(ScheduleConfig):
    power: float = MISSING
    end_factor: float = MISSING

    def __post_init__(self) -> None:
        self._positive("power")
        self._non_negative("end_factor")


@dataclass
class OneCycleConfig(ScheduleConfig):
    pct_start: float = MISSING
    div_factor: float = MISSING
    final_div_factor: float = MISSING

    def __post_init__(self) -> None:
        self._unit_interval("pct_start")
        self._positive("div_factor", "final_div_factor")


# ----------------------------------------------------------------------------- train
@dataclass
class TrainConfig(_Checked):
    group: ClassVar[str] = "train"
    epochs: int = MISSING
    steps: int | None = None
    batch_size: int = MISSING
    eval_every: int = MISSING
    eval_batch_size: int = MISSING
    log_every: int = MISSING
    dtype: DType = MISSING
    loop: Loop = MISSING
    unroll: int = MISSING

    def __post_init__(self) -> None:
        self._positive("epochs", "batch_size", "eval_every", "eval_batch_size", "log_every")
        self._positive("unroll")
        if self.steps is not None:
            self._positive("steps")


@dataclass
class Config(_Checked):
    """The whole run: what ``lrbench train`` composes from ``conf/``."""

    name: str = MISSING
    seed: int = MISSING
    device: Device = MISSING
    model: ModelConfig = MISSING
    dataset: DatasetConfig = MISSING
    optimizer: OptimizerConfig = MISSING
    schedule: ScheduleConfig = MISSING
    train: TrainConfig = MISSING


SCHEMAS: dict[str, dict[str, type]] = {
    "model": {"linear": LinearConfig, "mlp": MLPConfig, "cnn": CNNConfig},
    "dataset": {"synthetic": SyntheticConfig, "sklearn": SklearnConfig},
    "optimizer": {
        "sgd": SGDConfig,
        "momentum": MomentumConfig,
        "adam": AdamConfig,
        "lion": LionConfig,
        "rmsprop": RMSpropConfig,
        "adagrad": AdagradConfig,
        "lbfgs": LBFGSConfig,
    },
    "schedule": {
        "constant": ConstantConfig,
        "step": StepConfig,
        "exponential": ExponentialConfig,
        "cosine": CosineConfig,
        "warmup_cosine": WarmupCosineConfig,
        "linear": LinearScheduleConfig,
        "polynomial": PolynomialConfig,
        "one_cycle": OneCycleConfig,
    },
}


def register_schemas() -> None:
    """Store the schemas so yaml files can start from them (``defaults: [adam_schema]``)."""
    store = ConfigStore.instance()
    store.store(name="config_schema", node=Config)
    for group, schemas in SCHEMAS.items():
        for name, schema in schemas.items():
            store.store(group=group, name=f"{name}_schema", node=schema)


def to_run_config(cfg: DictConfig) -> Config:
    """Turn Hydra's composed config into typed, range-checked dataclasses."""
    run_config = OmegaConf.to_object(cfg)
    assert isinstance(run_config, Config)
    return run_config


def allowed_keys(schema: type) -> list[str]:
    """Field names of a schema, for 'unknown key' messages."""
    return [f.name for f in fields(schema)]


def resolved_dict(cfg: DictConfig) -> dict:
    """The composed config, resolved, as plain values for config.yaml (keys added with
    ``+key=value`` included: they label runs for ``compare``)."""
    return OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)


def check_combination(cfg: Config) -> None:
    """Rules that span groups: full-batch L-BFGS needs a deterministic, unclipped objective."""
    if cfg.optimizer.name != "lbfgs":
        return
    if getattr(cfg.model, "dropout", 0.0) > 0:
        raise ConfigError("model.dropout", cfg.model.dropout,
                          "must be 0 with optimizer=lbfgs (its line search needs a deterministic loss)")
    if getattr(cfg.model, "batch_norm", False):
        raise ConfigError("model.batch_norm", True,
                          "must be false with optimizer=lbfgs (its line search needs a deterministic loss)")
    if cfg.schedule.name != "constant":
        raise ConfigError("schedule", cfg.schedule.name,
                          "must be constant with optimizer=lbfgs (the line search sets the step)")
    if cfg.optimizer.grad_clip_norm is not None:
        raise ConfigError("optimizer.grad_clip_norm", cfg.optimizer.grad_clip_norm,
                          "must be null with optimizer=lbfgs")
