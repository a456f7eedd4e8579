"""``conf/study.yaml`` and ``conf/study/``: ``lrbench study``, the optimizer-benchmark
protocol (docs/study.md): per (problem, optimizer) unit, a vectorized LR grid x tune seeds,
the best LR by ``select``, then that LR x confirm seeds."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, ClassVar

from omegaconf import MISSING

from lrbench.config.base import Checked
from lrbench.config.sweep import RANK_METRICS, PruneConfig
from lrbench.config.train import TARGET_METRICS, Norms


class SelectMode(enum.Enum):
    final = "final"  # the last evaluation's value (DeepOBS)
    best = "best"  # the best evaluation's value over training


@dataclass
class SelectConfig(Checked):
    """Which validation value picks the best LR: its mean over the tune seeds."""

    group: ClassVar[str] = "study.select"
    metric: str = "val_accuracy"
    mode: SelectMode = SelectMode.final

    def __post_init__(self) -> None:
        if self.metric not in RANK_METRICS:
            self._fail("metric", f"must be one of {', '.join(RANK_METRICS)}")

    @property
    def higher_is_better(self) -> bool:
        return RANK_METRICS[self.metric]


class ConfirmLanes(enum.Enum):
    """The confirmation program's lanes (``lrbench.study.runner.confirm_lanes``)."""

    seeds = "seeds"  # one per confirmation seed: its own, smaller program
    tune = "tune"  # the tuning program's count: its compiled program, from the compile cache


@dataclass
class StudyPruneConfig(PruneConfig):
    """Successive halving of the tuning phase: its vmap sweep's ``sweep.prune``."""

    group: ClassVar[str] = "study.prune"


@dataclass
class StudyConfig(Checked):
    group: ClassVar[str] = "study"
    name: str = MISSING
    problems: list[str] = MISSING  # experiment presets (conf/experiment/)
    problem_overrides: Any = None  # {problem: [override, ...]}
    optimizers: list[str] = MISSING  # conf/optimizer/ options, or names in `variants`
    variants: Any = (
        None  # {name: [override, ...]}, e.g. adam_auto: [optimizer=adam, optimizer.lr=auto]
    )
    lr_free: list[str] = MISSING  # optimizers that skip the grid (their own LR estimate)
    lr_min: float = MISSING
    lr_max: float = MISSING
    points: int = MISSING
    tune_seeds: int = MISSING
    confirm_seeds: int = MISSING
    confirm_seed: int = MISSING  # the first confirmation seed (apart from the tuning seeds)
    select: SelectConfig = field(default_factory=SelectConfig)
    target_metric: str = "val_accuracy"
    targets: Any = None  # {problem: value of target_metric}
    prune: StudyPruneConfig = field(default_factory=StudyPruneConfig)
    norms: Norms = Norms.every_step  # the members' train.norms
    confirm_lanes: ConfirmLanes = ConfirmLanes.seeds

    def __post_init__(self) -> None:
        self._positive("lr_min", "points", "tune_seeds", "confirm_seeds")
        self._seed("confirm_seed")
        if not self.lr_max > self.lr_min:
            self._fail("lr_max", f"must be > study.lr_min ({self.lr_min})")
        if self.points < 2:
            self._fail("points", "must be >= 2 (a grid from lr_min to lr_max)")
        for key in ("problems", "optimizers"):
            values = getattr(self, key)
            if not values or len(set(values)) != len(values):
                self._fail(key, "a non-empty list of distinct names")
        if self.target_metric not in TARGET_METRICS:
            self._fail("target_metric", f"must be one of {', '.join(TARGET_METRICS)}")
        self._mapping_of("problem_overrides", list)
        self._mapping_of("variants", list)
        self._mapping_of("targets", float)

    def _mapping_of(self, key: str, kind: type) -> None:
        """``key`` is a mapping of names to ``kind`` values (lists of strings, or numbers);
        (problems may be named that this study leaves out: a preset covers several)."""
        value = getattr(self, key) or {}
        if not isinstance(value, dict):
            self._fail(key, "a mapping of name to value")
        for name, item in value.items():
            fits = (
                isinstance(item, list) and all(isinstance(o, str) for o in item)
                if kind is list
                else isinstance(item, int | float) and not isinstance(item, bool)
            )
            if not fits:
                what = "a list of overrides" if kind is list else "a number"
                self._fail(key, f"{name}: must be {what}")

    def overrides_of_problem(self, problem: str) -> list[str]:
        return list((self.problem_overrides or {}).get(problem, []))

    def overrides_of_optimizer(self, entry: str) -> list[str]:
        """A variant's overrides, or ``optimizer=<entry>``."""
        variants = self.variants or {}
        return list(variants[entry]) if entry in variants else [f"optimizer={entry}"]

    def target_of(self, problem: str) -> float | None:
        return (self.targets or {}).get(problem)


@dataclass
class StudyAppConfig(Checked):
    """The whole ``lrbench study`` config (``conf/study.yaml``)."""

    study: StudyConfig = MISSING
    seed: int = 0  # the first tuning seed
    unit: str | None = None  # problem/optimizer: set by lrbench study for each of its jobs
    resume: str | None = None  # a study directory, or auto (the newest of this study's name)
    compile_cache: str | None = None

    def __post_init__(self) -> None:
        self._seed("seed")
