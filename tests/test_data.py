"""Datasets: deterministic stratified splits, train-only standardization, and their specs."""

from __future__ import annotations

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.model_selection import train_test_split

from lrbench import data
from lrbench.config import Config, SklearnConfig, register_schemas, to_run_config
from lrbench.data import Dataset
from lrbench.errors import ConfigError
from lrbench.paths import conf_dir

SPLITS = ("train", "val", "test")


def make_config(*overrides: str) -> Config:
    """The typed config ``lrbench train <overrides>`` runs."""
    register_schemas()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        return to_run_config(compose("config", overrides=list(overrides)))


def load(*overrides: str) -> Dataset:
    return data.load(make_config(*overrides).dataset)


def split_arrays(dataset: Dataset, split: str) -> tuple[np.ndarray, np.ndarray]:
    return getattr(dataset, f"x_{split}"), getattr(dataset, f"y_{split}")


RAW = {"digits": load_digits, "breast_cancer": load_breast_cancer}


def reference_split(name: str, val_fraction: float, test_fraction: float, seed: int):
    """The documented split, redone on sklearn's raw data: stratified train vs held-out, then
    the held-out part stratified into val and test, both from ``split_seed``."""
    bunch = RAW[name]()
    held_out = val_fraction + test_fraction
    x_train, x_rest, y_train, y_rest = train_test_split(
        bunch.data, bunch.target, test_size=held_out, random_state=seed, stratify=bunch.target
    )
    x_val, x_test, y_val, y_test = train_test_split(
        x_rest, y_rest, test_size=test_fraction / held_out, random_state=seed, stratify=y_rest
    )
    return {"train": (x_train, y_train), "val": (x_val, y_val), "test": (x_test, y_test)}


# -------------------------------------------------------------------------------- splits
@pytest.mark.parametrize("name", ["digits", "breast_cancer", "synthetic"])
def test_split_is_the_same_for_the_same_split_seed_and_differs_for_another(name):
    first = load(f"dataset={name}", "dataset.split_seed=3")
    again = load(f"dataset={name}", "dataset.split_seed=3")
    other = load(f"dataset={name}", "dataset.split_seed=4")
    for split in SPLITS:
        x, y = split_arrays(first, split)
        x_again, y_again = split_arrays(again, split)
        np.testing.assert_array_equal(x, x_again)
        np.testing.assert_array_equal(y, y_again)
        x_other, _ = split_arrays(other, split)
        assert x.shape == x_other.shape
        assert not np.array_equal(x, x_other), f"{split} is the same for split_seed 3 and 4"
    # Another seed draws other examples, not just another order of the same ones.
    rows = {r.tobytes() for r in np.round(first.x_test, 3)}
    other_rows = {r.tobytes() for r in np.round(other.x_test, 3)}
    assert rows != other_rows


def test_synthetic_data_depends_on_its_seed_and_not_only_on_the_split_seed():
    first = load("dataset=synthetic", "dataset.seed=0")
    other = load("dataset=synthetic", "dataset.seed=1")
    assert not np.allclose(first.x_train, other.x_train)


@pytest.mark.parametrize(
    ("name", "n_samples", "n_classes"),
    [("digits", 1797, 10), ("breast_cancer", 569, 2), ("synthetic", 2000, 2)],
)
def test_stratified_split_sizes_add_up_and_keep_each_class_share(name, n_samples, n_classes):
    cfg = make_config(f"dataset={name}", "dataset.val_fraction=0.2", "dataset.test_fraction=0.1")
    dataset = data.load(cfg.dataset)
    sizes = {split: len(split_arrays(dataset, split)[1]) for split in SPLITS}
    assert sum(sizes.values()) == n_samples
    for split in SPLITS:
        x, y = split_arrays(dataset, split)
        assert len(x) == len(y)
    assert dataset.n_train == sizes["train"]
    assert sizes["val"] == pytest.approx(0.2 * n_samples, abs=2)
    assert sizes["test"] == pytest.approx(0.1 * n_samples, abs=2)
    # Stratified: every split holds each class in (about) its share of the whole set.
    all_y = np.concatenate([split_arrays(dataset, s)[1] for s in SPLITS])
    share = np.bincount(all_y, minlength=n_classes) / n_samples
    for split in SPLITS:
        y = split_arrays(dataset, split)[1]
        counts = np.bincount(y, minlength=n_classes)
        assert len(counts) == n_classes
        np.testing.assert_allclose(counts, share * len(y), atol=1.5, err_msg=split)


def test_splits_are_disjoint_and_together_are_the_whole_raw_dataset():
    dataset = load("dataset=digits")
    x = np.concatenate([split_arrays(dataset, s)[0] for s in SPLITS])
    y = np.concatenate([split_arrays(dataset, s)[1] for s in SPLITS])
    # Undo the (shared) standardization with the raw data's own per-feature affine map:
    # the multiset of (features, label) rows must be sklearn's, each row exactly once.
    raw = load_digits()
    raw_keys = sorted(
        np.append(r, t).tobytes()
        for r, t in zip(raw.data.astype(np.int64), raw.target, strict=True)
    )
    train_raw = reference_split("digits", 0.15, 0.15, 0)["train"][0]
    mean, std = train_raw.mean(axis=0), train_raw.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    restored = np.rint(x.astype(np.float64) * std + mean).astype(np.int64)
    keys = sorted(np.append(r, t).tobytes() for r, t in zip(restored, y, strict=True))
    assert keys == raw_keys


# ------------------------------------------------------------------------ standardization
@pytest.mark.parametrize("name", ["digits", "breast_cancer"])
def test_standardization_is_fitted_on_train_only_and_applied_to_val_and_test(name):
    cfg = make_config(f"dataset={name}", "dataset.split_seed=7")
    dataset = data.load(cfg.dataset)
    reference = reference_split(
        name, cfg.dataset.val_fraction, cfg.dataset.test_fraction, cfg.dataset.split_seed
    )
    raw_train = reference["train"][0]
    mean = raw_train.mean(axis=0)
    std = raw_train.std(axis=0)
    varying = std > 0
    scale = np.where(varying, std, 1.0)  # a feature constant on train keeps scale 1

    x_train = dataset.x_train.astype(np.float64)
    np.testing.assert_allclose(x_train[:, varying].mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(x_train[:, varying].std(axis=0), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(x_train[:, ~varying], 0.0)
    for split in SPLITS:
        raw_x, raw_y = reference[split]
        x, y = split_arrays(dataset, split)
        np.testing.assert_array_equal(y, raw_y, err_msg=f"{split}: not the documented split")
        assert x.dtype == np.float32 and y.dtype == np.int32
        assert np.isfinite(x).all()
        np.testing.assert_allclose(x, (raw_x - mean) / scale, rtol=1e-5, atol=1e-5, err_msg=split)
    # val and test were not standardized with their own statistics.
    for split in ("val", "test"):
        x = split_arrays(dataset, split)[0][:, varying]
        assert np.abs(x.mean(axis=0)).max() > 0.05
        assert np.abs(x.std(axis=0) - 1).max() > 0.05


def test_feature_constant_on_train_keeps_scale_one_and_stays_finite_elsewhere():
    dataset = load("dataset=digits")
    constant = dataset.x_train.std(axis=0) == 0
    assert constant.any()  # digits has always-blank border pixels
    for split in SPLITS:
        assert np.isfinite(split_arrays(dataset, split)[0]).all()
    # Pixels blank on train but inked somewhere in val/test: raw values, shifted by a 0 mean.
    held_out = np.concatenate([dataset.x_val, dataset.x_test])[:, constant]
    raw = load_digits().data
    assert np.isin(held_out, np.unique(raw)).all()


# ------------------------------------------------------------------------------- specs
def test_digits_spec_is_64_features_viewable_as_8x8x1_images_with_10_classes():
    dataset = load("dataset=digits")
    assert dataset.spec.input_shape == (64,)
    assert dataset.spec.image_shape == (8, 8, 1)
    assert dataset.spec.n_classes == 10
    assert dataset.spec.n_outputs == 10
    assert dataset.x_train.shape[1:] == (64,)
    assert set(np.unique(dataset.y_train)) == set(range(10))


def test_breast_cancer_spec_is_30_flat_features_and_one_logit():
    dataset = load("dataset=breast_cancer")
    assert dataset.spec.input_shape == (30,)
    assert dataset.spec.image_shape is None
    assert dataset.spec.n_classes == 2
    assert dataset.spec.n_outputs == 1
    assert set(np.unique(dataset.y_train)) == {0, 1}


@pytest.mark.parametrize(("n_features", "n_classes"), [(7, 3), (4, 2), (12, 5)])
def test_synthetic_dataset_has_the_configured_features_and_classes(n_features, n_classes):
    dataset = load(
        "dataset=synthetic",
        f"dataset.n_features={n_features}",
        f"dataset.n_classes={n_classes}",
        "dataset.n_samples=600",
    )
    assert dataset.spec.input_shape == (n_features,)
    assert dataset.spec.n_classes == n_classes
    assert dataset.spec.n_outputs == (1 if n_classes == 2 else n_classes)
    assert dataset.spec.image_shape is None
    total = 0
    for split in SPLITS:
        x, y = split_arrays(dataset, split)
        assert x.shape == (len(y), n_features)
        assert set(np.unique(y)) == set(range(n_classes))
        total += len(y)
    assert total == 600


def test_unknown_dataset_name_raises_config_error_naming_the_key():
    cfg = SklearnConfig(name="mnist", val_fraction=0.1, test_fraction=0.1, split_seed=0)
    with pytest.raises(ConfigError) as error:
        data.load(cfg)
    assert error.value.key == "dataset.name"


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (["dataset.val_fraction=0.5", "dataset.test_fraction=0.5"], "dataset.test_fraction"),
        (["dataset.val_fraction=-0.1"], "dataset.val_fraction"),
    ],
)
def test_split_fractions_that_leave_no_train_split_raise_config_error(overrides, key):
    with pytest.raises(ConfigError) as error:
        make_config("dataset=digits", *overrides)
    assert error.value.key == key


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (["dataset.test_fraction=0.0"], "dataset.test_fraction"),
        (["dataset.val_fraction=0.0"], "dataset.val_fraction"),
        (["dataset.val_fraction=0.002"], "dataset.val_fraction"),  # 3 val examples, 10 classes
    ],
)
def test_split_fraction_too_small_for_a_stratified_split_raises_config_error(overrides, key):
    """The schema accepts any fraction in [0, 1); one that leaves val or test with fewer
    examples than classes cannot be split (stratified), nor evaluated when empty. It must
    be refused as bad input naming the key (exit code 2), not crash inside scikit-learn."""
    with pytest.raises(ConfigError) as error:
        load("dataset=digits", *overrides)
    assert error.value.key == key
