"""The in-memory dataset every loader returns and the trainer consumes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from lrbench.data.stratified import stratified_split
from lrbench.errors import ConfigError

if TYPE_CHECKING:
    from lrbench.data.augment import Preprocess


@dataclass(frozen=True)
class DataSpec:
    """What a model needs to know about its inputs and outputs."""

    input_shape: tuple[int, ...]  # one example, as stored (flat features or H, W, C)
    n_classes: int
    image_shape: tuple[int, int, int] | None = None  # (H, W, C) view for conv nets
    # Image sets store uint8 pixels; the model's first (parameter-free) stage scales,
    # standardizes and augments them on device (lrbench.data.augment).
    preprocess: Preprocess | None = None

    @property
    def n_outputs(self) -> int:
        """One logit for binary problems (sigmoid cross-entropy), else one per class."""
        return 1 if self.n_classes == 2 else self.n_classes


@dataclass(frozen=True)
class Dataset:
    """Train/val/test splits as numpy arrays (x: float32 features, or uint8 images
    (N, H, W, C) with ``spec.preprocess``; y: int32)."""

    spec: DataSpec
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def n_train(self) -> int:
        return len(self.y_train)


def model_input(x: np.ndarray, dtype) -> np.ndarray:
    """Features in the run's dtype; integer pixels stay integers (4x less memory and
    transfer than float32: the model's input stage converts them on device)."""
    return x if np.issubdtype(x.dtype, np.integer) else x.astype(dtype)


def split_and_standardize(
    x: np.ndarray,
    y: np.ndarray,
    *,
    val_fraction: float,
    test_fraction: float,
    split_seed: int,
    spec: DataSpec,
) -> Dataset:
    """Stratified train/val/test split from ``split_seed`` (scikit-learn's
    ``train_test_split``, twice: train vs held-out, then held-out into val and test; computed
    by ``lrbench.data.stratified``, same indices); features standardized with statistics of
    the train split only (a constant feature keeps scale 1)."""
    held_out = val_fraction + test_fraction
    n_classes = len(np.unique(y))
    for key, fraction in (
        ("dataset.val_fraction", val_fraction),
        ("dataset.test_fraction", test_fraction),
    ):
        if int(fraction * len(y)) < n_classes:
            raise ConfigError(
                key,
                fraction,
                f"leaves {int(fraction * len(y))} examples "
                f"for {n_classes} classes: at least one per class is needed",
            )
    train, rest = stratified_split(y, held_out, split_seed)
    x_train, x_rest, y_train, y_rest = x[train], x[rest], y[train], y[rest]
    val, test = stratified_split(y_rest, test_fraction / held_out, split_seed)
    x_val, x_test, y_val, y_test = x_rest[val], x_rest[test], y_rest[val], y_rest[test]
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0)
    std = np.where(std > 0, std, 1.0)

    def scale(a: np.ndarray) -> np.ndarray:
        return ((a - mean) / std).astype(np.float32)

    return Dataset(
        spec=spec,
        x_train=scale(x_train),
        y_train=y_train.astype(np.int32),
        x_val=scale(x_val),
        y_val=y_val.astype(np.int32),
        x_test=scale(x_test),
        y_test=y_test.astype(np.int32),
    )
