"""``conf/sweep/``: the vectorized in-process sweep (``lrbench.sweep``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from omegaconf import MISSING

from lrbench.config.base import Checked


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


SWEEP_SCHEMAS: dict[str, type[VmapSweepConfig]] = {"vmap": VmapSweepConfig}
