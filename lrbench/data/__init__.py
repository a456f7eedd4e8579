"""Dataset registry: ``dataset.name`` -> loader returning a ``Dataset``."""

from __future__ import annotations

from collections.abc import Callable

from lrbench.config import DatasetConfig
from lrbench.data.dataset import Dataset, DataSpec
from lrbench.data.tabular import load_breast_cancer, load_digits, load_synthetic
from lrbench.errors import ConfigError

LOADERS: dict[str, Callable[..., Dataset]] = {
    "synthetic": load_synthetic,
    "digits": load_digits,
    "breast_cancer": load_breast_cancer,
}


def load(cfg: DatasetConfig) -> Dataset:
    try:
        loader = LOADERS[cfg.name]
    except KeyError:
        raise ConfigError("dataset.name", cfg.name, f"one of {sorted(LOADERS)}") from None
    return loader(cfg)


__all__ = ["LOADERS", "DataSpec", "Dataset", "load"]
