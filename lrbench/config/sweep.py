"""``conf/sweep/``: the vectorized in-process sweep (``lrbench.sweep``)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, ClassVar

from omegaconf import MISSING

from lrbench.config.base import Checked


class Pruning(enum.Enum):
    none = "none"
    halving = "halving"  # successive halving (Jamieson & Talwalkar 2016; Li et al. 2018)


# The validation metrics a pruned sweep ranks its members on; True: higher is better.
RANK_METRICS = {"val_accuracy": True, "val_loss": False}


@dataclass
class PruneConfig(Checked):
    """Successive halving inside the vectorized sweep: at rungs (``lrbench.sweep.halving.
    rung_epochs``) the live settings (members with the same values but the seed) are ranked
    on the mean of ``metric`` over their seeds, and the best 1/eta train on, in a smaller
    program."""

    group: ClassVar[str] = "sweep.prune"
    name: Pruning = Pruning.none
    eta: int = 3
    metric: str = "val_loss"

    def __post_init__(self) -> None:
        if self.eta < 2:
            self._fail("eta", "must be an integer >= 2 (the fraction 1/eta of settings goes on)")
        if self.metric not in RANK_METRICS:
            self._fail("metric", f"must be one of {', '.join(RANK_METRICS)}")


@dataclass
class VmapSweepConfig(Checked):
    """Members = lr x weight_decay x every hparams list x seeds, trained by one program."""

    group: ClassVar[str] = "sweep"
    name: str = MISSING
    lr: list[float] = MISSING
    weight_decay: list[float] = MISSING
    hparams: Any = None  # {name: [values]}; typed Any so `sweep.hparams={b1:[...]}` replaces it
    seeds: int = MISSING
    max_members: int = MISSING
    min_lanes: int = 0
    prune: PruneConfig = field(default_factory=PruneConfig)

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
        if self.min_lanes < 0:
            self._fail("min_lanes", "must be >= 0 (0: as many program lanes as members)")


SWEEP_SCHEMAS: dict[str, type[VmapSweepConfig]] = {"vmap": VmapSweepConfig}
