"""The TFDS loader, driven by tfds.testing.mock_data (random examples with each set's real
features: mnist, fashion_mnist, cifar10 and cats_vs_dogs, whose images vary in size),
end to end through ``lrbench train``; and the offline and bad-name errors."""

from __future__ import annotations

import time

import numpy as np
import pytest

tfds = pytest.importorskip("tensorflow_datasets", reason="the tfds extra is not installed")

from lrbench import data  # noqa: E402
from lrbench.cli import main  # noqa: E402
from lrbench.data import tfds as tfds_loader  # noqa: E402
from lrbench.errors import ConfigError  # noqa: E402
from lrbench.runs import read_summary  # noqa: E402
from tests.conftest import compose_config  # noqa: E402

N_MOCK = 120  # examples per split: every class appears in each (labels are uniform)

SETS = {
    # name: (extra overrides, stored image shape, classes, train examples)
    "mnist": ([], (28, 28, 1), 10, N_MOCK - 12),
    "fashion_mnist": (["model.widths=[16]"], (28, 28, 1), 10, N_MOCK - 12),
    "cifar10": (
        [
            "model=resnet",
            "model.stage_blocks=[1]",
            "model.width=4",
            "dataset.augment.crop_padding=4",
            "dataset.augment.flip=true",
        ],
        (32, 32, 3),
        10,
        N_MOCK - 12,
    ),
    # Only a train split: val and test are carved from it; images resized from 5..50 px.
    "cats_vs_dogs": (
        [
            "dataset.image_size=20",
            "model=cnn",
            "model.channels=[4]",
            "model.dense=[8]",
            "model.batch_norm=true",
            "dataset.augment.flip=true",
        ],
        (20, 20, 3),
        2,
        N_MOCK - 24,
    ),
}


@pytest.mark.parametrize("name", SETS)
def test_tfds_set_trains_one_epoch_through_the_cli(name, tmp_path):
    extra, _, _, n_train = SETS[name]
    run_dir = tmp_path / "run"
    with tfds.testing.mock_data(num_examples=N_MOCK):
        assert (
            main(
                [
                    "train",
                    f"dataset={name}",
                    "train.epochs=1",
                    "train.batch_size=16",
                    *extra,
                    f"hydra.run.dir={run_dir}",
                ]
            )
            == 0
        )
    summary = read_summary(run_dir)
    assert summary["status"] == "completed"
    assert summary["n_train"] == n_train
    assert summary["steps"] == n_train // 16
    assert summary["load_s"] > 0
    # Conv nets (cnn, resnet) take one jitted step per dispatch on CPU (docs/design.md).
    assert summary["loop"] == ("step" if "model=" in " ".join(extra) else "scan")


@pytest.mark.parametrize("name", SETS)
def test_tfds_set_loads_uint8_images_with_every_class_in_every_split(name):
    extra, shape, n_classes, n_train = SETS[name]
    dataset_overrides = [o for o in extra if o.startswith("dataset.")]
    cfg = compose_config(f"dataset={name}", *dataset_overrides)
    with tfds.testing.mock_data(num_examples=N_MOCK):
        dataset = data.load(cfg.dataset)
    assert dataset.spec.input_shape == dataset.spec.image_shape == shape
    assert dataset.spec.n_classes == n_classes
    assert dataset.x_train.dtype == np.uint8 and dataset.x_train.shape == (n_train, *shape)
    for split in ("train", "val", "test"):
        labels = getattr(dataset, f"y_{split}")
        assert set(labels) == set(range(n_classes)), split
    preprocess = dataset.spec.preprocess
    if name == "mnist":  # dataset constants
        assert (preprocess.mean, preprocess.std) == ((0.1307,), (0.3081,))
    else:  # fitted on the train split
        reference = dataset.x_train.astype(np.float64) / 255
        np.testing.assert_allclose(preprocess.mean, reference.mean(axis=(0, 1, 2)), rtol=1e-9)


def test_any_tfds_name_loads_with_dataset_tfds():
    cfg = compose_config("dataset=tfds", "dataset.name=kmnist")
    with tfds.testing.mock_data(num_examples=N_MOCK):
        dataset = data.load(cfg.dataset)
    assert dataset.spec.input_shape == (28, 28, 1)
    assert dataset.n_train == N_MOCK - 12


def test_varying_image_sizes_need_an_image_size(tmp_path, capsys):
    with tfds.testing.mock_data(num_examples=N_MOCK):
        assert (
            main(
                [
                    "train",
                    "dataset=cats_vs_dogs",
                    "dataset.image_size=null",
                    f"hydra.run.dir={tmp_path}/r",
                ]
            )
            == 2
        )
    err = capsys.readouterr().err
    assert err.startswith(
        "lrbench: error: dataset.image_size=None: cats_vs_dogs's images vary "
        "in size: set dataset.image_size"
    )


def test_offline_and_not_downloaded_is_one_line_naming_set_data_dir_and_remedy(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.setattr(tfds_loader, "network_available", lambda: False)
    run_dir = tmp_path / "run"
    assert (
        main(
            ["train", "dataset=mnist", f"dataset.path={tmp_path}/tfds", f"hydra.run.dir={run_dir}"]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert err == (
        f"lrbench: error: dataset.name=mnist: not in data_dir={tmp_path}/tfds and no "
        "network to download it: run once with network access to download it there, "
        "or read local files with dataset.source=idx dataset.path=<folder> or "
        "dataset=image_folder\n"
    )
    assert not run_dir.exists()


def test_offline_error_is_the_processs_only_output(cli, tmp_path):
    """No TensorFlow or TFDS log line around it either (they write to the process's stderr)."""
    result = cli(
        "train", "dataset=mnist", f"dataset.path={tmp_path}", "dataset.download=false", cwd=tmp_path
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(
        f"lrbench: error: dataset.name=mnist: not in data_dir={tmp_path}"
    )


def test_download_false_never_touches_the_network(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(tfds_loader, "network_available", lambda: pytest.fail("probed"))
    assert (
        main(
            [
                "train",
                "dataset=cifar10",
                f"dataset.path={tmp_path}",
                "dataset.download=false",
                f"hydra.run.dir={tmp_path}/r",
            ]
        )
        == 2
    )
    assert "dataset.name=cifar10: not in data_dir=" in capsys.readouterr().err


def test_network_probe_fails_fast_for_an_unreachable_host():
    start = time.perf_counter()
    assert not tfds_loader.network_available(("lrbench-offline.invalid", 443), timeout=2.0)
    assert time.perf_counter() - start < 5


def test_unknown_tfds_name_is_one_line_exit_2(tmp_path, capsys):
    assert (
        main(
            ["train", "dataset=tfds", "dataset.name=no_such_set_xyz", f"hydra.run.dir={tmp_path}/r"]
        )
        == 2
    )
    assert capsys.readouterr().err.startswith(
        "lrbench: error: dataset.name=no_such_set_xyz: not a TFDS dataset"
    )


def test_unknown_split_name_names_the_split_key(monkeypatch):
    """Mock data serves any split name; a prepared set raises TFDS's ValueError, mapped here."""

    def load(name, split, **kwargs):
        raise ValueError(f"Unknown split '{split}'. Should be one of ['test', 'train'].")

    monkeypatch.setattr(tfds, "load", load)
    cfg = compose_config("dataset=mnist", "dataset.train_split=nope")
    with pytest.raises(ConfigError) as error:
        data.load(cfg.dataset)
    assert str(error.value).startswith("dataset.train_split=nope: not a split of mnist (Unknown")
