"""TensorFlow Datasets image-classification sets (mnist, fashion_mnist, cifar10,
cats_vs_dogs, any TFDS name), read whole into host memory as uint8 arrays.

TensorFlow is imported here only, when a TFDS set is loaded: ``lrbench --help``, ``list``,
``compare`` and runs on other data never pay its ~3 s import. A set not yet in
``data_dir`` is downloaded when the network is reachable; offline, the run stops with one
line saying which set, where it looked and how to get it.
"""

from __future__ import annotations

import logging
import os
import socket

import numpy as np

from lrbench.config import ImageDatasetConfig
from lrbench.data.dataset import Dataset
from lrbench.data.images import RawImages, Split, build_image_dataset
from lrbench.errors import ConfigError
from lrbench.quiet import quiet_logger

# TFDS reads its data from Google Cloud Storage first: if that host cannot be reached in a
# few seconds, a download would only retry for minutes (measured: 205 s for mnist) and fail.
DOWNLOAD_HOST = ("storage.googleapis.com", 443)
PROBE_TIMEOUT_S = 5.0
READ_BATCH = 1024


def load_tfds(cfg: ImageDatasetConfig) -> Dataset:
    tfds = import_tfds()
    # TFDS logs deprecations and metadata notices through absl at WARNING: noise on the
    # user's terminal.
    with quiet_logger("absl", logging.ERROR):
        raw = _read(tfds, cfg)
    return build_image_dataset(cfg, raw)


def _read(tfds, cfg: ImageDatasetConfig) -> RawImages:
    builder = _builder(tfds, cfg)
    image_key, label_key = _supervised_keys(builder, cfg.name)
    if None in builder.info.features[image_key].shape[:2] and cfg.image_size is None:
        raise ConfigError(
            "dataset.image_size",
            None,
            f"{cfg.name}'s images vary in size: set dataset.image_size (e.g. 128) to resize them",
        )
    names = {"train": cfg.train_split, "val": cfg.val_split, "test": cfg.test_split}
    datasets = {
        which: _open_split(tfds, builder, cfg, which, name)
        for which, name in names.items()
        if name is not None
    }
    splits = {which: _to_numpy(tfds, ds, cfg.image_size) for which, ds in datasets.items()}
    classes = tuple(builder.info.features[label_key].names)
    return RawImages(splits["train"], splits.get("val"), splits.get("test"), classes)


def import_tfds():
    """tensorflow_datasets, with TensorFlow kept quiet and off the GPU (JAX uses it)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # TF only decodes and resizes here: without oneDNN's kernels it prints no notice at import.
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    try:
        import tensorflow as tf
        import tensorflow_datasets as tfds
    except ImportError as error:
        hint = "pip install 'lrbench[tfds]', or use dataset.source=idx|image_folder"
        raise ConfigError(
            "dataset.source", "tfds", f"needs TensorFlow Datasets ({error}): {hint}"
        ) from None
    tf.config.set_visible_devices([], "GPU")
    return tfds


def network_available(
    host: tuple[str, int] = DOWNLOAD_HOST, timeout: float = PROBE_TIMEOUT_S
) -> bool:
    try:
        with socket.create_connection(host, timeout=timeout):
            return True
    except OSError:
        return False


def _builder(tfds, cfg: ImageDatasetConfig):
    try:
        return tfds.builder(cfg.name, data_dir=cfg.path)
    except tfds.core.registered.DatasetNotFoundError:
        raise ConfigError(
            "dataset.name",
            cfg.name,
            "not a TFDS dataset (see tfds.list_builders(); or dataset.source=idx|image_folder)",
        ) from None


def _supervised_keys(builder, name: str) -> tuple[str, str]:
    from tensorflow_datasets.core import features as tfds_features

    keys = builder.info.supervised_keys
    features = builder.info.features
    if (
        not keys
        or len(keys) != 2
        or not isinstance(features[keys[0]], tfds_features.Image)
        or not isinstance(features[keys[1]], tfds_features.ClassLabel)
    ):
        raise ConfigError(
            "dataset.name",
            name,
            "not an image-classification set (its "
            "supervised keys must be an image and a class label)",
        )
    return keys


def _open_split(tfds, builder, cfg: ImageDatasetConfig, which: str, split: str):
    """The split as (image, label) pairs, downloading the set first if it is missing."""
    try:
        return _load(tfds, cfg, which, split)
    except AssertionError:  # TFDS's "could not find data in <data_dir>"
        _download(builder, cfg)
        return _load(tfds, cfg, which, split)


def _load(tfds, cfg: ImageDatasetConfig, which: str, split: str):
    try:
        return tfds.load(
            cfg.name,
            split=split,
            data_dir=cfg.path,
            as_supervised=True,
            shuffle_files=False,
            download=False,
        )
    except (ValueError, KeyError) as error:
        raise ConfigError(
            f"dataset.{which}_split", split, f"not a split of {cfg.name} ({error})"
        ) from None


def _download(builder, cfg: ImageDatasetConfig) -> None:
    where = f"not in data_dir={builder.data_dir_root}"
    get_it = (
        "run once with network access to download it there, or read local files with "
        "dataset.source=idx dataset.path=<folder> or dataset=image_folder"
    )
    if not cfg.download:
        raise ConfigError("dataset.name", cfg.name, f"{where} and dataset.download=false: {get_it}")
    if not network_available():
        raise ConfigError(
            "dataset.name", cfg.name, f"{where} and no network to download it: {get_it}"
        )
    try:
        builder.download_and_prepare()
    except Exception as error:  # network and archive errors surface as many types
        raise ConfigError(
            "dataset.name", cfg.name, f"download failed ({type(error).__name__}: {error}): {get_it}"
        ) from None


def _to_numpy(tfds, ds, image_size: int | None) -> Split:
    """Decode (and resize, antialiased) on TensorFlow's threads; gather uint8 arrays."""
    import tensorflow as tf

    if image_size is not None:

        def resize(image, label):
            resized = tf.image.resize(image, (image_size, image_size), antialias=True)
            return tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8), label

        ds = ds.map(resize, num_parallel_calls=tf.data.AUTOTUNE)
    batches = list(tfds.as_numpy(ds.batch(READ_BATCH).prefetch(tf.data.AUTOTUNE)))
    if not batches:
        shape = ds.element_spec[0].shape
        return Split(np.zeros((0, *shape), np.uint8), np.zeros(0, np.int64))
    return Split(np.concatenate([x for x, _ in batches]), np.concatenate([y for _, y in batches]))
