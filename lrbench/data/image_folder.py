"""Class-per-subfolder images: ``<path>/<split>/<class>/*.jpg|png|...``, decoded with Pillow.

Classes are the subfolders of the train split, in sorted order (label 0 = the first).
Images are converted to RGB and resized to ``image_size`` x ``image_size`` (Pillow's
antialiased bilinear; JPEGs are first decoded at a reduced scale with ``draft``, several
times faster for large photos); without ``image_size`` they must all have one size.
Decoding runs on a thread pool (Pillow releases the GIL while decoding and resizing).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from lrbench.config import ImageDatasetConfig
from lrbench.data.dataset import Dataset
from lrbench.data.images import RawImages, Split, build_image_dataset
from lrbench.errors import ConfigError

EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"}


def load_image_folder(cfg: ImageDatasetConfig) -> Dataset:
    root = Path(cfg.path).expanduser()
    if not root.is_dir():
        raise ConfigError(
            "dataset.path", cfg.path, "no such folder (expected <path>/<split>/<class>/*.jpg|png)"
        )
    train_dir = _split_dir(root, cfg.train_split, "train")
    classes = tuple(
        sorted(p.name for p in train_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    )
    if not classes:
        raise ConfigError(
            "dataset.path",
            cfg.path,
            f"no class folders in {train_dir} (expected <path>/<split>/<class>/*.jpg|png)",
        )
    decode = _decoder(root, cfg.image_size)
    splits = {
        which: None if name is None else _read_split(_split_dir(root, name, which), classes, decode)
        for which, name in (
            ("train", cfg.train_split),
            ("val", cfg.val_split),
            ("test", cfg.test_split),
        )
    }
    _check_sizes([s for s in splits.values() if s is not None], root)
    return build_image_dataset(
        cfg, RawImages(splits["train"], splits["val"], splits["test"], classes)
    )


def _split_dir(root: Path, name: str, which: str) -> Path:
    folder = root / name
    if not folder.is_dir():
        hint = "" if which == "train" else f" (or dataset.{which}_split=null: carve it from train)"
        raise ConfigError(f"dataset.{which}_split", name, f"no folder {folder}{hint}")
    return folder


def _read_split(folder: Path, classes: tuple[str, ...], decode: Callable) -> Split:
    files, labels = [], []
    for child in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if child.name not in classes:
            raise ConfigError(
                "dataset.path",
                str(folder.parent),
                f"{folder.name}/{child.name} "
                f"is not a class of the train split ({', '.join(classes)})",
            )
        images = sorted(p for p in child.iterdir() if p.suffix.lower() in EXTENSIONS)
        files += images
        labels += [classes.index(child.name)] * len(images)
    if not files:
        raise ConfigError(
            "dataset.path",
            str(folder.parent),
            f"no images in {folder} (expected {folder}/<class>/*.jpg|png)",
        )
    with ThreadPoolExecutor(max_workers=os.cpu_count()) as pool:
        images = list(pool.map(decode, files))
    if len({image.shape for image in images}) > 1:
        _differing_sizes(images, files)
    return Split(np.stack(images), np.asarray(labels, np.int32))


def _decoder(root: Path, size: int | None) -> Callable[[Path], np.ndarray]:
    from PIL import Image

    def decode(path: Path) -> np.ndarray:
        try:
            with Image.open(path) as image:
                if size is not None:
                    image.draft("RGB", (size, size))
                image = image.convert("RGB")
                if size is not None:
                    image = image.resize((size, size), Image.Resampling.BILINEAR)
                return np.asarray(image, np.uint8)
        except (OSError, ValueError, Image.DecompressionBombError) as error:
            raise ConfigError(
                "dataset.path",
                str(root),
                f"cannot read image {path.relative_to(root)} ({error}): remove or replace it",
            ) from None

    return decode


def _check_sizes(splits: list[Split], root: Path) -> None:
    shapes = {s.x.shape[1:] for s in splits}
    if len(shapes) > 1:
        raise ConfigError(
            "dataset.image_size",
            None,
            f"the splits under {root} differ in image "
            f"size ({sorted(shapes)}): set dataset.image_size to resize them",
        )


def _differing_sizes(images: list[np.ndarray], files: list[Path]) -> None:
    first = images[0].shape
    other = next(i for i, image in enumerate(images) if image.shape != first)
    raise ConfigError(
        "dataset.image_size",
        None,
        f"images differ in size ({files[0].name}: "
        f"{first[1]}x{first[0]}, {files[other].name}: {images[other].shape[1]}x"
        f"{images[other].shape[0]}): set dataset.image_size to resize them",
    )
