"""Dataset registry: ``dataset.name`` (image sets: ``dataset.source``) -> loader returning a
``Dataset``."""

from __future__ import annotations

from collections.abc import Callable

from lrbench.config import DatasetConfig
from lrbench.data.dataset import Dataset, DataSpec, model_input
from lrbench.data.idx import load_idx
from lrbench.data.image_folder import load_image_folder
from lrbench.data.tabular import load_breast_cancer, load_digits, load_synthetic
from lrbench.data.tfds import load_tfds
from lrbench.errors import ConfigError

LOADERS: dict[str, Callable[..., Dataset]] = {
    "synthetic": load_synthetic,
    "digits": load_digits,
    "breast_cancer": load_breast_cancer,
    "tfds": load_tfds,
    "idx": load_idx,
    "image_folder": load_image_folder,
}


def load(cfg: DatasetConfig) -> Dataset:
    try:
        loader = LOADERS[cfg.loader]
    except KeyError:
        raise ConfigError("dataset.name", cfg.name, f"one of {sorted(LOADERS)}") from None
    return loader(cfg)


__all__ = ["LOADERS", "DataSpec", "Dataset", "load", "model_input"]
