"""scikit-learn's stratified ``train_test_split``, in numpy: the same indices for the same
labels, fraction and seed (tests/test_data.py compares them), without importing
scikit-learn (1-2 s of imports: scipy.stats, pandas) before a run's first step.

Follows scikit-learn 1.9's ``train_test_split(..., stratify=y, random_state=seed)``, that is
``StratifiedShuffleSplit`` with integer sizes: ``n_test = ceil(test_size * n)``, each class's
share of train and test by ``_approximate_mode`` (ties broken by the seed's RandomState),
then a permutation per class and one of each split, all drawn from one
``np.random.RandomState(seed)`` in scikit-learn's order.
"""

from __future__ import annotations

import math

import numpy as np


def approximate_mode(class_counts: np.ndarray, n_draws: int, rng: np.random.RandomState):
    """scikit-learn's ``utils.extmath._approximate_mode``: per-class counts summing to
    ``n_draws``, proportional to ``class_counts``, remainders given out largest first
    (ties drawn from ``rng``)."""
    continuous = class_counts / class_counts.sum() * n_draws
    floored = np.floor(continuous)
    need_to_add = int(n_draws - floored.sum())
    if need_to_add > 0:
        remainder = continuous - floored
        for value in np.sort(np.unique(remainder))[::-1]:
            (inds,) = np.where(remainder == value)
            add_now = min(len(inds), need_to_add)
            inds = rng.choice(inds, size=add_now, replace=False)
            floored[inds] += 1
            need_to_add -= add_now
            if need_to_add == 0:
                break
    return floored.astype(int)


def stratified_split(y: np.ndarray, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, test indices) of ``train_test_split(arange(len(y)), test_size=test_size,
    random_state=seed, stratify=y)``. Raises ValueError where scikit-learn does (a class with
    one example, fewer train or test examples than classes)."""
    n_samples = len(y)
    if not 0 < test_size < 1:
        raise ValueError(f"test_size={test_size} should be a float in the (0, 1) range")
    n_test = math.ceil(test_size * n_samples)
    n_train = n_samples - n_test
    if n_train <= 0:
        raise ValueError(f"With n_samples={n_samples} and test_size={test_size}, train is empty")
    classes, y_indices, class_counts = np.unique(y, return_inverse=True, return_counts=True)
    n_classes = len(classes)
    if class_counts.min() < 2:
        raise ValueError(
            f"The least populated classes in y have only 1 member: {classes[class_counts < 2]}"
        )
    for name, n in (("train", n_train), ("test", n_test)):
        if n < n_classes:
            raise ValueError(f"{name} size {n} is smaller than the number of classes {n_classes}")
    class_indices = np.split(np.argsort(y_indices, kind="stable"), np.cumsum(class_counts)[:-1])
    rng = np.random.RandomState(seed)
    n_i = approximate_mode(class_counts, n_train, rng)
    t_i = approximate_mode(class_counts - n_i, n_test, rng)
    train, test = [], []
    for i in range(n_classes):
        permuted = class_indices[i].take(rng.permutation(class_counts[i]), mode="clip")
        train.extend(permuted[: n_i[i]])
        test.extend(permuted[n_i[i] : n_i[i] + t_i[i]])
    return rng.permutation(train), rng.permutation(test)
