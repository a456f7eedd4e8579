"""``conf/optimizer/``: the optimizers' schemas (built by ``lrbench.optim``)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, ClassVar

from omegaconf import MISSING

from lrbench.config.base import Checked

AUTO_LR = "auto"  # optimizer.lr=auto: the LR range test picks the learning rate
# eps keeps denominators from 0: Adam's sqrt(v) + eps is 0 wherever the gradients have been 0
# (dead units, constant inputs), and 0/0 is NaN; COCOB's and Mechanic's start at eps.
ZERO_OVER_ZERO = "at 0 the update is 0/0 wherever the gradients have been 0"
FIRST_STEPS = "at 0 the first steps divide by 0"


class MechanizeBase(enum.Enum):
    """The base optimizers mechanize can wrap (optax's default hyperparameters); the names
    of ``lrbench.optim.contrib.MECHANIZE_BASES`` (a test checks both agree)."""

    sgd = "sgd"
    momentum = "momentum"
    adam = "adam"
    lion = "lion"


@dataclass
class OptimizerConfig(Checked):
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
        self._positive("eps", why=ZERO_OVER_ZERO)


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
        self._positive("eps", why=ZERO_OVER_ZERO)


@dataclass
class AdagradConfig(OptimizerConfig):
    initial_accumulator_value: float = MISSING
    eps: float = MISSING

    def __post_init__(self) -> None:
        super().__post_init__()
        self._non_negative("initial_accumulator_value", "eps")
        if self.initial_accumulator_value == 0 and self.eps == 0:
            self._fail("eps", f"must be > 0 when initial_accumulator_value is 0 ({ZERO_OVER_ZERO})")


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
        self._positive("eps", why=FIRST_STEPS)


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
        self._positive("eps", why=FIRST_STEPS)


# Every optimizer.name -> its schema: the names of ``lrbench.optim.optimizers.OPTIMIZERS``
# and ``FULL_BATCH`` (a test checks they agree). A schema shared by two names (adamw's is
# adam's) is stored once, as the first name's: conf/optimizer/adamw.yaml starts from
# adam_schema.
OPTIMIZER_SCHEMAS: dict[str, type[OptimizerConfig]] = {
    "sgd": SGDConfig,
    "momentum": MomentumConfig,
    "adam": AdamConfig,
    "adamw": AdamConfig,
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
}
