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
import math
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, ClassVar

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


class MechanizeBase(enum.Enum):
    """The base optimizers mechanize can wrap (optax's default hyperparameters)."""

    sgd = "sgd"
    momentum = "momentum"
    adam = "adam"
    lion = "lion"


class Ramp(enum.Enum):
    """How the LR range test moves from min_lr to max_lr."""

    exponential = "exponential"
    linear = "linear"


class LRSuggestion(enum.Enum):
    """The LR range test's rules (fastai's): valley, steepest slope, minimum / 10."""

    valley = "valley"
    steepest = "steepest"
    minimum = "minimum"


AUTO_LR = "auto"  # optimizer.lr=auto: the LR range test picks the learning rate


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
            self._finite(key)

    def _non_negative(self, *keys: str) -> None:
        for key in keys:
            if not getattr(self, key) >= 0:
                self._fail(key, "must be >= 0")
            self._finite(key)

    def _finite(self, key: str) -> None:
        if not math.isfinite(getattr(self, key)):
            self._fail(key, "must be a finite number")

    def _seed(self, *keys: str) -> None:
        """Seeds are unsigned 32-bit: JAX and scikit-learn would wrap or reject others."""
        for key in keys:
            if not 0 <= getattr(self, key) < 2**32:
                self._fail(key, "must be in [0, 2**32 - 1]")

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


# --------------------------------------------------------------------------- datasets
@dataclass
class DatasetConfig(_Checked):
    group: ClassVar[str] = "dataset"
    name: str = MISSING
    val_fraction: float = MISSING
    test_fraction: float = MISSING
    split_seed: int = MISSING

    def __post_init__(self) -> None:
        for key in ("val_fraction", "test_fraction"):
            if not 0 < getattr(self, key) < 1:
                self._fail(key, "must be in (0, 1): every run is validated and tested")
        if self.val_fraction + self.test_fraction >= 1:
            self._fail("test_fraction", "val_fraction + test_fraction must be < 1")
        self._seed("split_seed")

    @property
    def loader(self) -> str:
        """The data registry's key for this config."""
        return self.name


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
        self._seed("seed")


@dataclass
class SklearnConfig(DatasetConfig):
    """digits and breast_cancer: real data shipped inside scikit-learn."""


class DataSource(enum.Enum):
    """Where an image set is read from (README: "Image datasets")."""

    tfds = "tfds"
    idx = "idx"
    image_folder = "image_folder"


@dataclass
class AugmentConfig(_Checked):
    """Training-time augmentation, drawn on device from the run's RNG."""

    group: ClassVar[str] = "dataset.augment"
    crop_padding: int = MISSING
    flip: bool = MISSING

    def __post_init__(self) -> None:
        self._non_negative("crop_padding")


@dataclass
class ImageDatasetConfig(DatasetConfig):
    """mnist, fashion_mnist, cifar10, cats_vs_dogs, any TFDS set, IDX files, image folders."""

    source: DataSource = MISSING
    path: str | None = None
    download: bool = True
    train_split: str = MISSING
    val_split: str | None = None
    test_split: str | None = None
    image_size: int | None = None
    standardize: bool = MISSING
    mean: list[float] | None = None
    std: list[float] | None = None
    augment: AugmentConfig = MISSING
    max_device_bytes: int = MISSING

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.source is not DataSource.tfds and not self.path:
            self._fail("path", f"needed with dataset.source={self.source.value}: the data's folder")
        if self.image_size is not None:
            self._positive("image_size")
        if (self.mean is None) != (self.std is None):
            self._fail("std", "set dataset.mean and dataset.std together (or neither: fitted)")
        if self.std is not None:
            if len(self.std) != len(self.mean):
                self._fail("std", f"one value per channel, as dataset.mean ({len(self.mean)})")
            if any(s <= 0 for s in self.std):
                self._fail("std", "every value must be > 0")
        self._non_negative("max_device_bytes")

    @property
    def loader(self) -> str:
        return self.source.value


# ------------------------------------------------------------------------- optimizers
@dataclass
class OptimizerConfig(_Checked):
    group: ClassVar[str] = "optimizer"
    name: str = MISSING
    # A number > 0, or "auto". Typed Any: structured configs allow no float-or-str union.
    lr: Any = MISSING
    weight_decay: float = MISSING
    grad_clip_norm: float | None = None

    def __post_init__(self) -> None:
        self._learning_rate()
        self._non_negative("weight_decay")
        if self.grad_clip_norm is not None:
            self._positive("grad_clip_norm")

    @property
    def lr_auto(self) -> bool:
        return self.lr == AUTO_LR

    def _learning_rate(self) -> None:
        if self.lr_auto:
            return
        try:
            if isinstance(self.lr, bool):
                raise TypeError
            self.lr = float(self.lr)
        except (TypeError, ValueError):
            self._fail("lr", f"must be a number > 0 or {AUTO_LR}")
        self._positive("lr")


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


@dataclass
class SGDHDConfig(OptimizerConfig):
    """sgd_hd: SGD, momentum or Nesterov with hypergradient descent on the LR."""

    momentum: float = MISSING
    nesterov: bool = MISSING
    hypergrad_lr: float = MISSING

    def __post_init__(self) -> None:
        super().__post_init__()
        self._unit_interval("momentum")
        self._non_negative("hypergrad_lr")


@dataclass
class AdamHDConfig(AdamConfig):
    hypergrad_lr: float = MISSING

    def __post_init__(self) -> None:
        super().__post_init__()
        self._non_negative("hypergrad_lr")


@dataclass
class ProdigyConfig(AdamConfig):
    estim_lr0: float = MISSING
    estim_lr_coef: float = MISSING
    safeguard_warmup: bool = MISSING

    def __post_init__(self) -> None:
        super().__post_init__()
        self._positive("estim_lr0", "estim_lr_coef")


@dataclass
class DAdaptAdamWConfig(AdamConfig):
    estim_lr0: float = MISSING

    def __post_init__(self) -> None:
        super().__post_init__()
        self._positive("estim_lr0")


@dataclass
class CocobConfig(OptimizerConfig):
    alpha: float = MISSING
    eps: float = MISSING

    def __post_init__(self) -> None:
        super().__post_init__()
        self._positive("alpha")
        self._non_negative("eps")


@dataclass
class DoGConfig(OptimizerConfig):
    init_distance: float = MISSING
    eps: float = MISSING

    def __post_init__(self) -> None:
        super().__post_init__()
        self._positive("init_distance")
        self._non_negative("eps")


@dataclass
class ScheduleFreeAdamWConfig(AdamConfig):
    weight_lr_power: float = MISSING

    def __post_init__(self) -> None:
        super().__post_init__()
        self._non_negative("weight_lr_power")


@dataclass
class ScheduleFreeSGDConfig(OptimizerConfig):
    b1: float = MISSING
    weight_lr_power: float = MISSING

    def __post_init__(self) -> None:
        super().__post_init__()
        self._unit_interval("b1")
        self._non_negative("weight_lr_power")


@dataclass
class MechanizeConfig(OptimizerConfig):
    base: MechanizeBase = MISSING
    eps: float = MISSING
    s_init: float = MISSING
    num_betas: int = MISSING

    def __post_init__(self) -> None:
        super().__post_init__()
        self._positive("s_init", "num_betas")
        self._non_negative("eps")


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


@dataclass
class ReduceOnPlateauConfig(ScheduleConfig):
    """Multiply the LR by ``factor`` when the validation loss stops improving."""

    factor: float = MISSING
    patience: int = MISSING
    rtol: float = MISSING
    atol: float = MISSING
    cooldown: int = MISSING
    min_scale: float = MISSING

    def __post_init__(self) -> None:
        if not 0 < self.factor < 1:
            self._fail("factor", "must be in (0, 1)")
        self._positive("patience")
        self._non_negative("rtol", "atol", "cooldown", "min_scale")
        if self.rtol > 1:
            self._fail("rtol", "must be <= 1")
        if self.rtol == 0 and self.atol == 0:
            self._fail("atol", "rtol and atol cannot both be 0")


# ----------------------------------------------------------------------- LR range test
@dataclass
class LRFindConfig(_Checked):
    """The LR range test of ``lrbench find-lr`` and ``optimizer.lr=auto``."""

    group: ClassVar[str] = "lr_find"
    min_lr: float = MISSING
    max_lr: float = MISSING
    num_steps: int = MISSING
    ramp: Ramp = MISSING
    smoothing: float = MISSING
    stop_factor: float = MISSING
    suggestion: LRSuggestion = MISSING

    def __post_init__(self) -> None:
        self._positive("min_lr")
        if not self.max_lr > self.min_lr:
            self._fail("max_lr", f"must be > lr_find.min_lr ({self.min_lr})")
        if self.num_steps < 20:
            self._fail("num_steps", "must be >= 20 (the first 10% and last 5 are not used)")
        self._unit_interval("smoothing")
        if not self.stop_factor > 1:
            self._fail("stop_factor", "must be > 1")


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
    checkpoint_every: int = MISSING  # epochs; 0: not by count
    checkpoint_interval_s: float = MISSING  # seconds; 0: not by time
    keep_checkpoints: int = MISSING

    def __post_init__(self) -> None:
        self._positive("epochs", "batch_size", "eval_every", "eval_batch_size", "log_every")
        self._positive("unroll", "keep_checkpoints")
        self._non_negative("checkpoint_every", "checkpoint_interval_s")
        if self.steps is not None:
            self._positive("steps")


class Objective(enum.Enum):
    """What a run returns to a sweeper (Optuna): a summary.json number."""

    best_val_accuracy = "best_val_accuracy"
    best_val_loss = "best_val_loss"
    final_val_accuracy = "final_val_accuracy"
    final_val_loss = "final_val_loss"
    final_test_accuracy = "final_test_accuracy"

    def read(self, summary: dict) -> float:
        """The value in a summary (NaN when absent, e.g. a diverged run: sweepers skip it)."""
        section, metric = self.value.split("_", 1)
        value = summary.get(section, {}).get(metric)
        return float("nan") if value is None else float(value)


@dataclass
class VmapSweepConfig(_Checked):
    """Members = lr x weight_decay x every hparams list x seeds, trained by one program."""

    group: ClassVar[str] = "sweep"
    name: str = MISSING
    lr: list[float] = MISSING
    weight_decay: list[float] = MISSING
    hparams: Any = None  # {name: [values]}; typed Any so `sweep.hparams={b1:[...]}` replaces it
    seeds: int = MISSING
    max_members: int = MISSING

    def __post_init__(self) -> None:
        if any(not lr > 0 for lr in self.lr):
            self._fail("lr", "every learning rate must be > 0")
        if any(not wd >= 0 for wd in self.weight_decay):
            self._fail("weight_decay", "every weight decay must be >= 0")
        hparams = self.hparams or {}
        if not isinstance(hparams, dict) or not all(
            isinstance(values, list)
            and values
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
            for values in hparams.values()
        ):
            self._fail("hparams", "a mapping of hyperparameter name to a list of numbers")
        self._positive("seeds", "max_members")


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
    lr_find: LRFindConfig = MISSING
    objective: Objective = MISSING
    compile_cache: str | None = None
    sweep: VmapSweepConfig | None = None
    # A run directory to go on with, or "auto" (README "Checkpoints and resuming"); a string
    # and a list of its own, not one `resume` group: Hydra cannot take both `resume=<path>`
    # and `resume.allow_changes=[...]` for one key.
    resume: str | None = None
    resume_allow_changes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._seed("seed")
        if self.resume is not None and self.sweep is not None:
            self._fail(
                "resume",
                "not with sweep=vmap (its members train as one program): run the sweep again",
            )
        if self.resume_allow_changes and self.resume is None:
            raise ConfigError(
                "resume_allow_changes",
                "[" + ",".join(self.resume_allow_changes) + "]",
                "only with resume=<run dir> or resume=auto",
            )


SCHEMAS: dict[str, dict[str, type]] = {
    "sweep": {"vmap": VmapSweepConfig},
    "model": {"linear": LinearConfig, "mlp": MLPConfig, "cnn": CNNConfig, "resnet": ResNetConfig},
    "dataset": {
        "synthetic": SyntheticConfig,
        "sklearn": SklearnConfig,
        "image": ImageDatasetConfig,
    },
    "optimizer": {
        "sgd": SGDConfig,
        "momentum": MomentumConfig,
        "adam": AdamConfig,
        "lion": LionConfig,
        "rmsprop": RMSpropConfig,
        "adagrad": AdagradConfig,
        "lbfgs": LBFGSConfig,
        "sgd_hd": SGDHDConfig,
        "adam_hd": AdamHDConfig,
        "prodigy": ProdigyConfig,
        "dadapt_adamw": DAdaptAdamWConfig,
        "cocob": CocobConfig,
        "dog": DoGConfig,
        "schedule_free_adamw": ScheduleFreeAdamWConfig,
        "schedule_free_sgd": ScheduleFreeSGDConfig,
        "mechanize": MechanizeConfig,
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
        "reduce_on_plateau": ReduceOnPlateauConfig,
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
    for name, value in vars(run_config).items():
        if is_dataclass(value):
            _reject_added_keys(value, name)
    return run_config


def _reject_added_keys(node: Any, prefix: str) -> None:
    """Keys added with ``+`` inside a group (``+train.epoch=3``, a typo Hydra lets through:
    OmegaConf sets them as plain attributes). Top-level ones (``+tag=x``) label runs."""
    allowed = allowed_keys(type(node))
    for name, value in vars(node).items():
        if name not in allowed:
            raise ConfigError(
                f"{prefix}.{name}", value, f"unknown key (allowed: {', '.join(allowed)})"
            )
        if is_dataclass(value):
            _reject_added_keys(value, f"{prefix}.{name}")


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
    deterministic = "with optimizer=lbfgs (its line search needs a deterministic loss)"
    if getattr(cfg.model, "dropout", 0.0) > 0:
        raise ConfigError("model.dropout", cfg.model.dropout, f"must be 0 {deterministic}")
    if getattr(cfg.model, "batch_norm", False):
        raise ConfigError("model.batch_norm", True, f"must be false {deterministic}")
    if cfg.schedule.name != "constant":
        raise ConfigError(
            "schedule",
            cfg.schedule.name,
            "must be constant with optimizer=lbfgs (the line search sets the step)",
        )
    if cfg.optimizer.grad_clip_norm is not None:
        raise ConfigError(
            "optimizer.grad_clip_norm",
            cfg.optimizer.grad_clip_norm,
            "must be null with optimizer=lbfgs",
        )
    augment = getattr(cfg.dataset, "augment", None)
    if augment is not None and (augment.crop_padding or augment.flip):
        raise ConfigError(
            "dataset.augment",
            f"{{crop_padding: {augment.crop_padding}, flip: {str(augment.flip).lower()}}}",
            "must be off with optimizer=lbfgs (its line search needs a deterministic loss)",
        )
