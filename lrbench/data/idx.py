"""MNIST-format IDX files (MNIST, Fashion-MNIST, KMNIST, ...), gzip-compressed or raw.

A folder holds ``<split>-images-idx3-ubyte[.gz]`` and ``<split>-labels-idx1-ubyte[.gz]``
for the configured split names; the test split is also found under MNIST's file prefix
``t10k``. IDX: big-endian magic (0x0803 images, 0x0801 labels in its last two bytes: type
code 0x08 = uint8, then the number of dimensions), the dimension sizes as big-endian
uint32, then the data. Parsed with numpy: no TensorFlow needed.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from lrbench.config import ImageDatasetConfig
from lrbench.data.dataset import Dataset
from lrbench.data.images import RawImages, Split, build_image_dataset
from lrbench.errors import ConfigError

UBYTE = 0x08
PREFIXES = {"test": ("test", "t10k")}  # split name -> file prefixes to look for


def load_idx(cfg: ImageDatasetConfig) -> Dataset:
    folder = Path(cfg.path).expanduser()
    if not folder.is_dir():
        raise ConfigError(
            "dataset.path",
            cfg.path,
            "no such folder (the IDX files' folder: "
            "train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-...)",
        )
    train = read_split(folder, cfg.train_split, "dataset.train_split")
    val = None if cfg.val_split is None else read_split(folder, cfg.val_split, "dataset.val_split")
    test = (
        None if cfg.test_split is None else read_split(folder, cfg.test_split, "dataset.test_split")
    )
    labels = np.concatenate([s.y for s in (train, val, test) if s is not None])
    n_classes = int(labels.max()) + 1
    raw = RawImages(train, val, test, tuple(str(c) for c in range(n_classes)))
    return build_image_dataset(cfg, raw)


def read_split(folder: Path, split: str, key: str) -> Split:
    images = read_idx(_find(folder, split, "images-idx3-ubyte", key), ndim=3)
    labels = read_idx(_find(folder, split, "labels-idx1-ubyte", key), ndim=1)
    if len(images) != len(labels):
        raise ConfigError(
            "dataset.path",
            str(folder),
            f"split {split!r} has {len(images)} images but {len(labels)} labels",
        )
    return Split(images[..., None], labels)


def _find(folder: Path, split: str, kind: str, key: str) -> Path:
    candidates = [
        folder / f"{prefix}-{kind}{suffix}"
        for prefix in PREFIXES.get(split, (split,))
        for suffix in (".gz", "")
    ]
    for path in candidates:
        if path.is_file():
            return path
    names = ", ".join(path.name for path in candidates)
    raise ConfigError(key, split, f"none of {names} in {folder}")


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """The uint8 array of an IDX file with ``ndim`` dimensions; ConfigError if it is not one
    (wrong magic, truncated, corrupt gzip)."""
    raw = _read_bytes(path)
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise _corrupt(path, f"is truncated: {len(raw)} bytes, shorter than the IDX header")
    magic = int.from_bytes(raw[:4], "big")
    if magic != (UBYTE << 8 | ndim):
        raise _corrupt(
            path,
            f"is not a uint8 IDX file of {ndim} dimensions (magic "
            f"0x{magic:08x}, expected 0x{UBYTE << 8 | ndim:08x})",
        )
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", ndim, 4))
    expected = int(np.prod(shape))
    found = len(raw) - header
    if found != expected:
        state = "is truncated" if found < expected else "has trailing bytes"
        raise _corrupt(path, f"{state}: {found} data bytes for shape {shape} ({expected})")
    return np.frombuffer(raw, np.uint8, expected, header).reshape(shape)


def _read_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    if path.suffix != ".gz":
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as error:
        raise _corrupt(path, f"is not a valid gzip file ({error})") from None


def _corrupt(path: Path, reason: str) -> ConfigError:
    return ConfigError("dataset.path", str(path.parent), f"{path.name} {reason}")
