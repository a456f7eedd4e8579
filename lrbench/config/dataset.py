"""``conf/dataset/``: the data's schemas (loaded by ``lrbench.data``)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import ClassVar

from omegaconf import MISSING

from lrbench.config.base import Checked


@dataclass
class DatasetConfig(Checked):
    group: ClassVar[str] = "dataset"
    name: str = MISSING
    val_fraction: float = MISSING
    test_fraction: float = MISSING
    split_seed: int = MISSING

    def __post_init__(self) -> None:
        for key in ("val_fraction", "test_fraction"):
            if not 0 < getattr(self, key) < 1:
                self._fail(key, "must be in (0, 1): every run is validated and tested")
        if self.val_fraction + self.test_fraction >= 1:
            self._fail("test_fraction", "val_fraction + test_fraction must be < 1")
        self._seed("split_seed")

    @property
    def loader(self) -> str:
        """The data registry's key for this config."""
        return self.name


@dataclass
class SyntheticConfig(DatasetConfig):
    n_samples: int = MISSING
    n_features: int = MISSING
    n_classes: int = MISSING
    noise: float = MISSING
    seed: int = MISSING

    def __post_init__(self) -> None:
        super().__post_init__()
        self._positive("n_samples", "n_features")
        if self.n_classes < 2:
            self._fail("n_classes", "must be >= 2")
        if self.n_classes > 2**self.n_features:
            self._fail("n_classes", f"must be <= 2**n_features = {2**self.n_features}")
        self._unit_interval("noise", closed_right=True)
        self._seed("seed")


@dataclass
class SklearnConfig(DatasetConfig):
    """digits and breast_cancer: real data shipped inside scikit-learn."""


class DataSource(enum.Enum):
    """Where an image set is read from (docs/data.md "Image datasets")."""

    tfds = "tfds"
    idx = "idx"
    image_folder = "image_folder"


@dataclass
class AugmentConfig(Checked):
    """Training-time augmentation, drawn on device from the run's RNG."""

    group: ClassVar[str] = "dataset.augment"
    crop_padding: int = MISSING
    flip: bool = MISSING

    def __post_init__(self) -> None:
        self._non_negative("crop_padding")


@dataclass
class ImageDatasetConfig(DatasetConfig):
    """mnist, fashion_mnist, cifar10, cats_vs_dogs, any TFDS set, IDX files, image folders."""

    source: DataSource = MISSING
    path: str | None = None
    download: bool = True
    train_split: str = MISSING
    val_split: str | None = None
    test_split: str | None = None
    image_size: int | None = None
    standardize: bool = MISSING
    mean: list[float] | None = None
    std: list[float] | None = None
    augment: AugmentConfig = MISSING
    max_device_bytes: int = MISSING

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.source is not DataSource.tfds and not self.path:
            self._fail("path", f"needed with dataset.source={self.source.value}: the data's folder")
        if self.image_size is not None:
            self._positive("image_size")
        if (self.mean is None) != (self.std is None):
            self._fail("std", "set dataset.mean and dataset.std together (or neither: fitted)")
        if self.std is not None:
            if len(self.std) != len(self.mean):
                self._fail("std", f"one value per channel, as dataset.mean ({len(self.mean)})")
            if any(s <= 0 for s in self.std):
                self._fail("std", "every value must be > 0")
        self._non_negative("max_device_bytes")

    @property
    def loader(self) -> str:
        return self.source.value


# The schemas dataset yaml files start from (``defaults: [image_schema]``); the loader is
# chosen by ``DatasetConfig.loader``.
DATASET_SCHEMAS: dict[str, type[DatasetConfig]] = {
    "synthetic": SyntheticConfig,
    "sklearn": SklearnConfig,
    "image": ImageDatasetConfig,
}
