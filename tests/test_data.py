"""Datasets: deterministic stratified splits, train-only standardization, and their specs;
scikit-learn's numbers without importing scikit-learn."""

from __future__ import annotations

import itertools
import subprocess
import sys

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from sklearn.datasets import load_breast_cancer, load_digits, make_classification
from sklearn.model_selection import train_test_split

from lrbench import data
from lrbench.config import Config, SklearnConfig, register_schemas, to_run_config
from lrbench.data import Dataset, sklearn_free
from lrbench.data.stratified import stratified_split
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


# ------------------------------------------------- scikit-learn's numbers, without scikit-learn
def assert_identical(mine: np.ndarray, theirs: np.ndarray, what: str = "") -> None:
    """Same dtype, shape and bytes: bit for bit, not merely close."""
    mine, theirs = np.asarray(mine), np.asarray(theirs)
    assert (mine.dtype, mine.shape) == (theirs.dtype, theirs.shape), what
    assert mine.tobytes() == np.ascontiguousarray(theirs).tobytes(), what


@pytest.mark.parametrize(
    ("ours", "sklearns"),
    [(sklearn_free.digits, load_digits), (sklearn_free.breast_cancer, load_breast_cancer)],
)
def test_bundled_files_read_without_sklearn_equal_sklearns_loaders(ours, sklearns):
    x, y = ours()
    x_ref, y_ref = sklearns(return_X_y=True)
    assert_identical(x, x_ref, "data")
    assert_identical(y, y_ref, "target")


SYNTHETIC_CASES = [
    # (n_samples, n_features, n_classes, flip_y, seed): the default, odd sizes, the three ways
    # scikit-learn draws the class vertices (2^features vs classes: permutation, tracking
    # selection, reservoir sampling) and features beyond 30
    (2000, 5, 2, 0.01, 0),
    *(
        case
        for case in itertools.product([601], [1, 3, 7], [2, 3], [0.0, 0.3], [1, 7])
        if case[2] <= 2 ** case[1]  # no more classes than vertices (the config's rule)
    ),
    (500, 2, 4, 0.05, 3),  # every vertex is a class: reservoir sampling
    (500, 12, 5, 0.05, 2),  # 5 of 4096 vertices: tracking selection
    (300, 33, 3, 0.1, 4),  # > 30 features: random bits, then 30 by tracking selection
    (50, 4, 3, 1.0, 5),  # every label redrawn
]


@pytest.mark.parametrize(
    ("n_samples", "n_features", "n_classes", "flip_y", "seed"), SYNTHETIC_CASES
)
def test_synthetic_set_equals_make_classification(n_samples, n_features, n_classes, flip_y, seed):
    x, y = sklearn_free.make_classification(n_samples, n_features, n_classes, flip_y, seed)
    x_ref, y_ref = make_classification(
        n_samples=n_samples,
        n_features=n_features,
        n_informative=n_features,
        n_redundant=0,
        n_repeated=0,
        n_classes=n_classes,
        n_clusters_per_class=1,
        flip_y=flip_y,
        random_state=seed,
    )
    assert_identical(x, x_ref, "x")
    assert_identical(y, y_ref, "y")


def _random_labels(rng: np.random.RandomState) -> np.ndarray:
    n_classes = rng.randint(2, 11)
    counts = rng.randint(2, 60, size=n_classes)  # unbalanced classes, every one >= 2
    return rng.permutation(np.repeat(np.arange(n_classes), counts))


@pytest.mark.parametrize("case", range(40))
def test_stratified_split_gives_train_test_splits_indices(case):
    rng = np.random.RandomState(case)
    y = _random_labels(rng)
    if case % 4 == 0:
        y = np.sort(y)  # ordered labels, as make_classification's before its shuffle
    test_size, seed = float(rng.uniform(0.05, 0.7)), int(rng.randint(0, 1000))
    try:
        expected = train_test_split(
            np.arange(len(y)), test_size=test_size, random_state=seed, stratify=y
        )
    except ValueError:
        with pytest.raises(ValueError):
            stratified_split(y, test_size, seed)
        return
    train, test = stratified_split(y, test_size, seed)
    assert_identical(train, expected[0], "train")
    assert_identical(test, expected[1], "test")


@pytest.mark.parametrize(
    ("y", "test_size"),
    [
        (np.array([0, 0, 0, 1, 1, 1, 2]), 0.4),  # a class with one example
        (np.repeat(np.arange(5), 4), 0.1),  # 2 test examples for 5 classes
        (np.repeat(np.arange(5), 4), 0.9),  # 2 train examples for 5 classes
    ],
)
def test_stratified_split_refuses_what_train_test_split_refuses(y, test_size):
    with pytest.raises(ValueError):
        train_test_split(y, test_size=test_size, random_state=0, stratify=y)
    with pytest.raises(ValueError):
        stratified_split(y, test_size, 0)


def sklearn_dataset(cfg) -> dict[str, np.ndarray]:
    """The arrays the loaders gave when they called scikit-learn (before they read its files
    and split with numpy): its loaders or make_classification, two train_test_splits,
    train-only standardization."""
    if cfg.name == "synthetic":
        x, y = make_classification(
            n_samples=cfg.n_samples,
            n_features=cfg.n_features,
            n_informative=cfg.n_features,
            n_redundant=0,
            n_repeated=0,
            n_classes=cfg.n_classes,
            n_clusters_per_class=1,
            flip_y=cfg.noise,
            random_state=cfg.seed,
        )
    else:
        bunch = RAW[cfg.name]()
        x, y = bunch.data.astype(np.float64), bunch.target
    held_out = cfg.val_fraction + cfg.test_fraction
    seed = cfg.split_seed
    x_train, x_rest, y_train, y_rest = train_test_split(
        x, y, test_size=held_out, random_state=seed, stratify=y
    )
    x_val, x_test, y_val, y_test = train_test_split(
        x_rest, y_rest, test_size=cfg.test_fraction / held_out, random_state=seed, stratify=y_rest
    )
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    arrays = {"x_train": x_train, "x_val": x_val, "x_test": x_test}
    return {k: ((v - mean) / std).astype(np.float32) for k, v in arrays.items()} | {
        "y_train": y_train.astype(np.int32),
        "y_val": y_val.astype(np.int32),
        "y_test": y_test.astype(np.int32),
    }


@pytest.mark.parametrize(
    "overrides",
    [
        ["dataset=digits"],
        ["dataset=digits", "dataset.split_seed=5", "dataset.val_fraction=0.2"],
        ["dataset=breast_cancer"],
        ["dataset=breast_cancer", "dataset.split_seed=11", "dataset.test_fraction=0.3"],
        ["experiment=toy"],
        ["dataset=synthetic", "dataset.n_classes=3", "dataset.seed=4", "dataset.split_seed=2"],
        ["dataset=synthetic", "dataset.n_samples=333", "dataset.n_features=9", "dataset.noise=0.2"],
    ],
)
def test_loaded_splits_are_those_scikit_learn_gave(overrides):
    """Runs from before the loaders stopped importing scikit-learn see the same data: every
    split, bit for bit."""
    cfg = make_config(*overrides).dataset
    dataset = data.load(cfg)
    for name, expected in sklearn_dataset(cfg).items():
        assert_identical(getattr(dataset, name), expected, name)


def test_default_run_and_tabular_loaders_do_not_import_scikit_learn(tmp_path):
    """scikit-learn's import (scipy.stats, pandas: 1-2 s) was most of the time to a tabular
    run's first step. Neither `lrbench train` (the default run) nor loading the other
    tabular sets imports it; nor does the run's event file import tensorboardX's S3 client
    (boto3, ~0.2 s)."""
    run_dir = tmp_path / "run"
    code = f"""
import sys
from hydra import compose, initialize_config_dir
from lrbench import data
from lrbench.cli import main
from lrbench.config import register_schemas, to_run_config
from lrbench.paths import conf_dir

overrides = ["train.epochs=1", "compile_cache=null", "hydra/job_logging=disabled"]
assert main(["train", *overrides, "hydra.run.dir={run_dir}"]) == 0
register_schemas()
for name in ("breast_cancer", "synthetic"):
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        cfg = to_run_config(compose("config", overrides=[f"dataset={{name}}"]))
    data.load(cfg.dataset)
print(sorted(m for m in ("sklearn", "scipy", "pandas", "boto3") if m in sys.modules))
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (run_dir / "summary.json").exists()
    assert result.stdout.strip().splitlines()[-1] == "[]"
