"""Data for the baselines, read without lrbench: MNIST IDX files and scikit-learn's digits.

The baselines must share nothing with the code they measure, so this reader is separate
from lrbench/data/idx.py on purpose.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

# ../shared/data/mnist beside the project, or $LRBENCH_MNIST (e.g. on a GPU machine).
MNIST = Path(
    os.environ.get("LRBENCH_MNIST", Path(__file__).resolve().parents[2] / "shared/data/mnist")
)


def read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def mnist(flat: bool = True):
    """(x_train, y_train, x_test, y_test): float32 standardized with the usual constants."""

    def images(name):
        x = read_idx(MNIST / f"{name}-images-idx3-ubyte.gz").astype(np.float32) / 255.0
        x = (x - 0.1307) / 0.3081
        return x.reshape(len(x), -1) if flat else x[..., None]

    def labels(name):
        return read_idx(MNIST / f"{name}-labels-idx1-ubyte.gz").astype(np.int32)

    return images("train"), labels("train"), images("t10k"), labels("t10k")


def digits():
    """scikit-learn's digits, standardized, as (x_train, y_train): 1,257 rows like lrbench's."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = bunch.data.astype(np.float32)
    x = (x - x.mean(0)) / np.where(x.std(0) > 0, x.std(0), 1)
    return x[:1257], bunch.target[:1257].astype(np.int32)
