"""Real image-set files written for tests: IDX files (struct-packed, independently of the
reader) and class-per-folder JPEG/PNG images (Pillow)."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
MNIST = REPO.parent / "shared" / "data" / "mnist"  # CI and developer machines have it there


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of a uint8 array: magic 0x0000_08_<ndim>, big-endian sizes, data."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx(path: Path, array: np.ndarray, compress: bool = True) -> Path:
    data = idx_bytes(array)
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def class_pattern_images(n: int, n_classes: int, size: int, seed: int):
    """Images whose class is learnable: class c is bright in its own band of rows."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % n_classes
    x = rng.integers(0, 60, (n, size, size), dtype=np.uint8)
    band = size // n_classes
    for c in range(n_classes):
        x[y == c, c * band : (c + 1) * band] += 150
    return x, y.astype(np.uint8)


def write_mnist_like(
    folder: Path,
    n_train: int = 400,
    n_test: int = 100,
    size: int = 10,
    n_classes: int = 4,
    compress: bool = True,
) -> Path:
    """train-* and t10k-* IDX files of a small learnable set."""
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if compress else ""
    for prefix, n, seed in (("train", n_train, 0), ("t10k", n_test, 1)):
        x, y = class_pattern_images(n, n_classes, size, seed)
        write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", x, compress)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", y, compress)
    return folder


def solid_image(color: tuple[int, int, int], size: tuple[int, int]):
    from PIL import Image

    return Image.new("RGB", size, color)


def write_image_folder(
    root: Path, splits: dict[str, int], classes=("cat", "dog"), sizes=((20, 16), (33, 25), (16, 16))
) -> Path:
    """<root>/<split>/<class>/<i>.jpg|png: alternating JPEG and PNG files of ``sizes``;
    class k is a noisy image of one dominant color (learnable)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    colors = [(200, 40, 40), (40, 40, 200), (40, 200, 40)]
    for split, per_class in splits.items():
        for k, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                w, h = sizes[i % len(sizes)]
                pixels = np.clip(np.array(colors[k]) + rng.normal(0, 20, (h, w, 3)), 0, 255)
                image = Image.fromarray(pixels.astype(np.uint8))
                image.save(folder / f"{i}.{'jpg' if i % 2 else 'png'}")
    return root
