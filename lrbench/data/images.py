"""What every image source shares: carving missing splits, checking classes, and the
per-channel statistics, turning a source's uint8 splits into the trainer's ``Dataset``.

Sources (TFDS, IDX files, image folders) return ``RawImages``: the splits they have (None
where the source has none, e.g. cats_vs_dogs has no test split) and the class names.
Missing splits are carved from train, stratified and fixed by ``dataset.split_seed``, as
for the scikit-learn sets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lrbench.config import DataSource, ImageDatasetConfig
from lrbench.data.augment import Preprocess
from lrbench.data.dataset import Dataset, DataSpec
from lrbench.errors import ConfigError


@dataclass(frozen=True)
class Split:
    x: np.ndarray  # uint8 (N, H, W, C)
    y: np.ndarray  # integer labels (N,)


@dataclass(frozen=True)
class RawImages:
    train: Split
    val: Split | None
    test: Split | None
    class_names: tuple[str, ...]


def source_key(cfg: ImageDatasetConfig) -> tuple[str, str]:
    """The key and value that locate the data, for error messages."""
    if cfg.source is DataSource.tfds:
        return "dataset.name", cfg.name
    return "dataset.path", str(cfg.path)


def build_image_dataset(cfg: ImageDatasetConfig, raw: RawImages) -> Dataset:
    train, val, test = _complete_splits(cfg, raw)
    n_classes = len(raw.class_names)
    splits = {"train": train, "val": val, "test": test}
    _check_classes(cfg, splits, raw.class_names)
    mean, std = _statistics(cfg, train.x)
    image_shape = tuple(int(d) for d in train.x.shape[1:])
    preprocess = Preprocess(
        mean=mean, std=std, crop_padding=cfg.augment.crop_padding, flip=cfg.augment.flip
    )
    spec = DataSpec(
        input_shape=image_shape, n_classes=n_classes, image_shape=image_shape, preprocess=preprocess
    )
    label = np.int32
    return Dataset(
        spec=spec,
        x_train=train.x,
        y_train=train.y.astype(label),
        x_val=val.x,
        y_val=val.y.astype(label),
        x_test=test.x,
        y_test=test.y.astype(label),
    )


def _complete_splits(cfg: ImageDatasetConfig, raw: RawImages) -> tuple[Split, Split, Split]:
    """Carve test, then val, from train where the source lacks them (val_fraction and
    test_fraction stay fractions of the whole train split)."""
    train, val, test = raw.train, raw.val, raw.test
    remaining = 1.0
    if test is None:
        train, test = carve(train, cfg.test_fraction, cfg.split_seed, "dataset.test_fraction")
        remaining -= cfg.test_fraction
    if val is None:
        share = cfg.val_fraction / remaining
        train, val = carve(
            train, share, cfg.split_seed, "dataset.val_fraction", shown=cfg.val_fraction
        )
    return train, val, test


def carve(
    split: Split, fraction: float, seed: int, key: str, shown: float | None = None
) -> tuple[Split, Split]:
    """(rest, carved): a stratified ``fraction`` of ``split``, the same for the same seed.

    Each class gives round(fraction * its size) examples, at least one, and keeps one.
    Written with numpy rather than sklearn's train_test_split: importing scikit-learn
    takes 1-2 s, several times the whole read of MNIST's IDX files.
    """
    shown = fraction if shown is None else shown
    rng = np.random.default_rng(seed)
    labels, counts = np.unique(split.y, return_counts=True)
    if counts.min() < 2:
        raise ConfigError(
            key,
            shown,
            f"class {labels[counts.argmin()]} has a single example: a stratified split needs two",
        )
    order = np.argsort(split.y, kind="stable")
    carved = []
    for members in np.split(order, np.cumsum(counts)[:-1]):
        k = min(max(1, round(fraction * len(members))), len(members) - 1)
        carved.append(rng.permutation(members)[:k])
    carved = np.sort(np.concatenate(carved))
    rest = np.setdiff1d(np.arange(len(split.y)), carved, assume_unique=True)
    return Split(split.x[rest], split.y[rest]), Split(split.x[carved], split.y[carved])


def _check_classes(
    cfg: ImageDatasetConfig, splits: dict[str, Split], class_names: tuple[str, ...]
) -> None:
    key, value = source_key(cfg)
    n_classes = len(class_names)
    for name, split in splits.items():
        if len(split.y) == 0:
            raise ConfigError(key, value, f"the {name} split is empty")
        counts = np.bincount(split.y, minlength=n_classes)
        if len(counts) > n_classes:
            raise ConfigError(
                key,
                value,
                f"the {name} split has label {len(counts) - 1}, beyond the {n_classes} classes",
            )
        missing = [class_names[c] for c in np.flatnonzero(counts == 0)]
        if missing:
            raise ConfigError(
                key,
                value,
                f"the {name} split has no examples of class "
                f"{', '.join(map(repr, missing))} (every split needs every class)",
            )


def _statistics(cfg: ImageDatasetConfig, x: np.ndarray) -> tuple[tuple[float, ...], ...]:
    """Per-channel mean and std in [0, 1] units: the config's constants, fitted on the
    train split, or (0, 1) without standardization (pixels scaled to [0, 1] only)."""
    channels = x.shape[-1]
    if not cfg.standardize:
        return (0.0,) * channels, (1.0,) * channels
    if cfg.mean is not None:
        if len(cfg.mean) != channels:
            raise ConfigError(
                "dataset.mean", list(cfg.mean), f"one value per channel: the images have {channels}"
            )
        return tuple(map(float, cfg.mean)), tuple(map(float, cfg.std))
    return fitted_statistics(x)


def fitted_statistics(x: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Exact per-channel mean and std of uint8 pixels / 255, from a 256-bin histogram per
    channel (float64, one pass, no float copy of the images). A constant channel keeps std 1."""
    flat = x.reshape(-1, x.shape[-1])
    values = np.arange(256, dtype=np.float64) / 255.0
    means, stds = [], []
    for c in range(flat.shape[1]):
        counts = np.bincount(flat[:, c], minlength=256).astype(np.float64)
        mean = counts @ values / counts.sum()
        std = float(np.sqrt(counts @ (values - mean) ** 2 / counts.sum()))
        means.append(float(mean))
        stds.append(std if std > 0 else 1.0)
    return tuple(means), tuple(stds)
