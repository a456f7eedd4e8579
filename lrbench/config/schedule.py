"""``conf/schedule/``: the learning-rate schedules' schemas (built by ``lrbench.optim``)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import ClassVar

from omegaconf import MISSING

from lrbench.config.base import Checked

# A schedule multiplies optimizer.lr with 1.0 at its peak: what a decay ends at, or a warmup
# starts from, is a fraction of the peak.
END = "the decay ends at end_factor * optimizer.lr"


class BoundaryUnit(enum.Enum):
    fraction = "fraction"
    epoch = "epoch"
    step = "step"


@dataclass
class ScheduleConfig(Checked):
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
        self._in("(0, 1]", "decay_rate", why="the LR's factor per epoch")


@dataclass
class CosineConfig(ScheduleConfig):
    end_factor: float = MISSING

    def __post_init__(self) -> None:
        self._in("[0, 1]", "end_factor", why=END)


@dataclass
class WarmupCosineConfig(ScheduleConfig):
    warmup: float = MISSING
    init_factor: float = MISSING
    end_factor: float = MISSING

    def __post_init__(self) -> None:
        self._unit_interval("warmup")
        self._in("[0, 1]", "init_factor", why="the warmup starts at init_factor * optimizer.lr")
        self._in("[0, 1]", "end_factor", why=END)


@dataclass
class LinearScheduleConfig(ScheduleConfig):
    end_factor: float = MISSING

    def __post_init__(self) -> None:
        self._in("[0, 1]", "end_factor", why=END)


@dataclass
class PolynomialConfig(ScheduleConfig):
    power: float = MISSING
    end_factor: float = MISSING

    def __post_init__(self) -> None:
        self._positive("power")
        self._in("[0, 1]", "end_factor", why=END)


@dataclass
class OneCycleConfig(ScheduleConfig):
    pct_start: float = MISSING
    div_factor: float = MISSING
    final_div_factor: float = MISSING

    def __post_init__(self) -> None:
        self._unit_interval("pct_start")
        self._at_least("div_factor", low=1, why="the cycle starts at optimizer.lr / div_factor")
        self._at_least(
            "final_div_factor",
            low=1,
            why="the cycle ends at optimizer.lr / (div_factor * final_div_factor)",
        )


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
        self._non_negative("rtol", "atol", "cooldown")
        self._in("[0, 1]", "min_scale", why="the LR never goes below min_scale * optimizer.lr")
        if self.rtol > 1:
            self._fail("rtol", "must be <= 1")
        if self.rtol == 0 and self.atol == 0:
            self._fail("atol", "rtol and atol cannot both be 0")


# schedule.name -> its schema.
SCHEDULE_SCHEMAS: dict[str, type[ScheduleConfig]] = {
    "constant": ConstantConfig,
    "step": StepConfig,
    "exponential": ExponentialConfig,
    "cosine": CosineConfig,
    "warmup_cosine": WarmupCosineConfig,
    "linear": LinearScheduleConfig,
    "polynomial": PolynomialConfig,
    "one_cycle": OneCycleConfig,
    "reduce_on_plateau": ReduceOnPlateauConfig,
}
