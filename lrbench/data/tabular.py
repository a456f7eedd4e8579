"""Offline datasets: scikit-learn's shipped digits and breast-cancer sets, and a synthetic set.

All three are scikit-learn's numbers, produced without importing scikit-learn
(``lrbench.data.sklearn_free``): its import was most of a tabular run's time to its first step.
"""

from __future__ import annotations

import numpy as np

from lrbench.config import DatasetConfig, SyntheticConfig
from lrbench.data import sklearn_free
from lrbench.data.dataset import Dataset, DataSpec, split_and_standardize


def _split(cfg: DatasetConfig, x: np.ndarray, y: np.ndarray, spec: DataSpec) -> Dataset:
    return split_and_standardize(
        x,
        y,
        val_fraction=cfg.val_fraction,
        test_fraction=cfg.test_fraction,
        split_seed=cfg.split_seed,
        spec=spec,
    )


def load_digits(cfg: DatasetConfig) -> Dataset:
    """scikit-learn's ``load_digits()``: 1,797 8x8 images, 10 classes."""
    x, y = sklearn_free.digits()
    spec = DataSpec(input_shape=(64,), n_classes=10, image_shape=(8, 8, 1))
    return _split(cfg, x.astype(np.float64), y, spec)


def load_breast_cancer(cfg: DatasetConfig) -> Dataset:
    """scikit-learn's ``load_breast_cancer()``: 569 examples, 30 features, 2 classes."""
    x, y = sklearn_free.breast_cancer()
    spec = DataSpec(input_shape=(x.shape[1],), n_classes=2)
    return _split(cfg, x.astype(np.float64), y, spec)


def load_synthetic(cfg: SyntheticConfig) -> Dataset:
    """scikit-learn's ``make_classification`` with every feature informative and one cluster
    per class (the same numbers for the same seed)."""
    x, y = sklearn_free.make_classification(
        n_samples=cfg.n_samples,
        n_features=cfg.n_features,
        n_classes=cfg.n_classes,
        flip_y=cfg.noise,
        seed=cfg.seed,
    )
    spec = DataSpec(input_shape=(cfg.n_features,), n_classes=cfg.n_classes)
    return _split(cfg, x, y, spec)
