"""Offline datasets: scikit-learn's shipped digits and breast-cancer sets, and a synthetic set."""

from __future__ import annotations

import numpy as np

from lrbench.config import DatasetConfig, SyntheticConfig
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
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    spec = DataSpec(input_shape=(64,), n_classes=10, image_shape=(8, 8, 1))
    return _split(cfg, bunch.data.astype(np.float64), bunch.target, spec)


def load_breast_cancer(cfg: DatasetConfig) -> Dataset:
    from sklearn.datasets import load_breast_cancer as sklearn_breast_cancer

    bunch = sklearn_breast_cancer()
    spec = DataSpec(input_shape=(bunch.data.shape[1],), n_classes=2)
    return _split(cfg, bunch.data.astype(np.float64), bunch.target, spec)


def load_synthetic(cfg: SyntheticConfig) -> Dataset:
    """``make_classification`` with every feature informative and one cluster per class."""
    from sklearn.datasets import make_classification

    x, y = make_classification(
        n_samples=cfg.n_samples,
        n_features=cfg.n_features,
        n_informative=cfg.n_features,
        n_redundant=0,
        n_repeated=0,
        n_classes=cfg.n_classes,
        n_clusters_per_class=1,
        flip_y=cfg.noise,
        random_state=cfg.seed,
    )
    spec = DataSpec(input_shape=(cfg.n_features,), n_classes=cfg.n_classes)
    return _split(cfg, x, y, spec)
