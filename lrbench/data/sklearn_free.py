"""scikit-learn's offline data without importing scikit-learn (its import, 1-2 s of scipy.stats
and pandas, was most of a tabular run's time to its first step).

- ``digits`` and ``breast_cancer`` are read from the files scikit-learn ships
  (``sklearn/datasets/data/digits.csv.gz``, ``breast_cancer.csv``), located with
  ``importlib.util.find_spec("sklearn")``, which finds the package without executing it,
  and parsed as ``load_digits()`` / ``load_breast_cancer()`` parse them;
- ``make_classification`` is scikit-learn 1.9's algorithm for the arguments the synthetic
  set uses, drawing the same numbers from the same ``np.random.RandomState(seed)``.

tests/test_data.py checks every array against scikit-learn's own functions, bit for bit.
"""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np


def _data_file(name: str) -> Path | None:
    """``sklearn/datasets/data/<name>``, or None where scikit-learn is not laid out as files."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / name
    return path if path.is_file() else None


def digits() -> tuple[np.ndarray, np.ndarray]:
    """(data float64 (1797, 64), target int64): ``load_digits(return_X_y=True)``."""
    path = _data_file("digits.csv.gz")
    if path is None:  # an unusual install (zipped): scikit-learn's own reader
        from sklearn.datasets import load_digits

        return load_digits(return_X_y=True)
    with gzip.open(path, mode="rt", encoding="utf-8") as f:
        data = np.loadtxt(f, delimiter=",")
    return data[:, :-1], data[:, -1].astype(int, copy=False)


def breast_cancer() -> tuple[np.ndarray, np.ndarray]:
    """(data float64 (569, 30), target int64): ``load_breast_cancer(return_X_y=True)``.
    The file's first line is ``n_samples,n_features,<class names>``."""
    path = _data_file("breast_cancer.csv")
    if path is None:
        from sklearn.datasets import load_breast_cancer

        return load_breast_cancer(return_X_y=True)
    with open(path, encoding="utf-8") as f:
        n_samples, n_features = (int(v) for v in f.readline().split(",")[:2])
        table = np.loadtxt(f, delimiter=",", dtype=np.float64, ndmin=2)
    if table.shape != (n_samples, n_features + 1):
        raise ValueError(f"{path}: expected {n_samples} rows of {n_features + 1} values")
    return table[:, :-1].copy(), table[:, -1].astype(int)


def _sample_without_replacement(n_population: int, n_samples: int, rng) -> np.ndarray:
    """scikit-learn's ``utils.random.sample_without_replacement`` (method "auto")."""
    ratio = n_samples / n_population
    if 0.01 < ratio < 0.99:
        return rng.permutation(n_population)[:n_samples]
    out = np.empty(n_samples, dtype=int)
    if ratio < 0.2:  # tracking selection
        selected: set[int] = set()
        for i in range(n_samples):
            j = rng.randint(n_population)
            while j in selected:
                j = rng.randint(n_population)
            selected.add(j)
            out[i] = j
        return out
    out[:] = np.arange(n_samples)  # reservoir sampling
    for i in range(n_samples, n_population):
        j = rng.randint(0, i + 1)
        if j < n_samples:
            out[j] = i
    return out


def _hypercube(samples: int, dimensions: int, rng) -> np.ndarray:
    """``_generate_hypercube``: distinct binary vectors of length ``dimensions``."""
    if dimensions > 30:
        return np.hstack(
            [rng.randint(2, size=(samples, dimensions - 30)), _hypercube(samples, 30, rng)]
        )
    out = _sample_without_replacement(2**dimensions, samples, rng).astype(">u4", copy=False)
    return np.unpackbits(out.view(">u1")).reshape((-1, 32))[:, -dimensions:]


def make_classification(
    n_samples: int, n_features: int, n_classes: int, flip_y: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """``make_classification(n_samples, n_features, n_informative=n_features,
    n_redundant=0, n_repeated=0, n_classes, n_clusters_per_class=1, flip_y,
    random_state=seed)`` (class_sep 1, hypercube, no shift or scale, shuffled): one Gaussian
    cluster with a random covariance per class, centred on a distinct vertex of the
    [-1, 1] hypercube; a ``flip_y`` share of labels redrawn at random."""
    if not 2 <= n_classes <= 2**n_features:
        raise ValueError(f"n_classes={n_classes}: needs 2 <= n_classes <= 2**n_features")
    rng = np.random.RandomState(seed)
    per_class = [int(n_samples * (1.0 / n_classes) / 1) for _ in range(n_classes)]
    for i in range(n_samples - sum(per_class)):
        per_class[i % n_classes] += 1
    x = np.zeros((n_samples, n_features))
    y = np.zeros(n_samples, dtype=int)
    centroids = _hypercube(n_classes, n_features, rng).astype(float, copy=False)
    centroids *= 2 * 1.0
    centroids -= 1.0
    x[:, :] = rng.standard_normal(size=(n_samples, n_features))
    stop = 0
    for k, centroid in enumerate(centroids):
        start, stop = stop, stop + per_class[k]
        y[start:stop] = k % n_classes
        x_k = x[start:stop, :]
        a = 2 * rng.uniform(size=(n_features, n_features)) - 1
        x_k[...] = np.dot(x_k, a)  # random covariance
        x_k += centroid
    flip_mask = rng.uniform(size=n_samples) < flip_y
    y[flip_mask] = rng.randint(n_classes, size=flip_mask.sum())
    x += 0.0  # scikit-learn's shift and scale (0 and 1): kept, as they turn -0.0 into 0.0
    x *= 1.0
    rows = np.arange(n_samples)
    rng.shuffle(rows)
    x, y = x[rows], y[rows]
    columns = np.arange(n_features)
    rng.shuffle(columns)
    x[:, :] = x[:, columns]
    return x, y
