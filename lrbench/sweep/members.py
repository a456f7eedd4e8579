"""Expanding ``sweep=vmap`` into members: one typed config and one config record each."""

from __future__ import annotations

import copy
import dataclasses
import itertools
from dataclasses import dataclass

from lrbench.config import Config
from lrbench.errors import ConfigError
from lrbench.optim import is_full_batch
from lrbench.optim.hyperparams import sweepable


@dataclass(frozen=True)
class Member:
    index: int
    values: dict[str, float]  # dotted key -> value, e.g. {"optimizer.lr": 1e-3, "seed": 1}
    config: Config  # the single-run config this member reproduces
    record: dict  # its config.yaml


def sweep_axes(cfg: Config) -> dict[str, list]:
    """Dotted key -> values; the members are their cartesian product."""
    sweep, optimizer = cfg.sweep, cfg.optimizer
    hparams = sweep.hparams or {}
    if is_full_batch(optimizer):
        raise ConfigError("sweep", "vmap", f"optimizer={optimizer.name} is full-batch: use -m")
    allowed = sweepable(optimizer.name)
    unknown = [name for name in hparams if name not in allowed[2:]]
    if unknown:
        raise ConfigError(
            "sweep.hparams",
            unknown[0],
            f"a float hyperparameter of {optimizer.name}: {', '.join(allowed[2:])}",
        )
    if optimizer.lr_auto and not sweep.lr:
        raise ConfigError(
            "optimizer.lr",
            "auto",
            "not with sweep=vmap: give sweep.lr (lrbench find-lr suggests one)",
        )
    axes = {
        "optimizer.lr": list(sweep.lr) or [optimizer.lr],
        "optimizer.weight_decay": list(sweep.weight_decay) or [optimizer.weight_decay],
    }
    axes |= {f"optimizer.{name}": list(values) for name, values in hparams.items()}
    axes["seed"] = [cfg.seed + i for i in range(sweep.seeds)]
    return axes


def expand(cfg: Config, config_record: dict) -> list[Member]:
    """Every combination of the sweep axes, as configs checked like a single run's."""
    axes = sweep_axes(cfg)
    members = []
    for index, combo in enumerate(itertools.product(*axes.values())):
        values = dict(zip(axes, combo, strict=True))
        optimizer_values = {
            key.split(".", 1)[1]: value for key, value in values.items() if key != "seed"
        }
        config = dataclasses.replace(
            cfg,
            seed=values["seed"],
            optimizer=dataclasses.replace(cfg.optimizer, **optimizer_values),  # range-checked
            sweep=None,
        )
        members.append(Member(index, values, config, _record(config_record, values)))
    return members


def _record(config_record: dict, values: dict[str, float]) -> dict:
    """The member's config.yaml: the sweep's with its values set, as a single run records it."""
    record = copy.deepcopy(config_record)
    record["sweep"] = None
    for key, value in values.items():
        *parents, leaf = key.split(".")
        node = record
        for parent in parents:
            node = node[parent]
        node[leaf] = value
    return record
