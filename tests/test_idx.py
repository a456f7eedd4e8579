"""The IDX loader: byte-exact parsing against an independent writer, every corruption a
one-line error (exit 2), and real MNIST trained to >= 97% from the original files."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from image_files import MNIST, idx_bytes, write_idx, write_mnist_like

from lrbench.cli import main
from lrbench.data.idx import read_idx
from lrbench.errors import ConfigError
from lrbench.runs import read_summary


def train_args(folder, run_dir, *extra: str) -> list[str]:
    return [
        "train",
        "dataset=mnist",
        "dataset.source=idx",
        f"dataset.path={folder}",
        f"hydra.run.dir={run_dir}",
        *extra,
    ]


@pytest.mark.parametrize("compress", [True, False])
def test_read_idx_returns_the_written_array(tmp_path, compress):
    images = np.random.default_rng(0).integers(0, 256, (7, 5, 3), dtype=np.uint8)
    path = write_idx(tmp_path / ("x.gz" if compress else "x"), images, compress)
    np.testing.assert_array_equal(read_idx(path, ndim=3), images)
    labels = np.arange(7, dtype=np.uint8)
    path = write_idx(tmp_path / ("y.gz" if compress else "y"), labels, compress)
    np.testing.assert_array_equal(read_idx(path, ndim=1), labels)


CORRUPTIONS = [
    ("truncated data", lambda raw: raw[:-10], "is truncated: 95 data bytes for shape (7, 5, 3)"),
    ("trailing bytes", lambda raw: raw + b"\0", "has trailing bytes"),
    ("truncated header", lambda raw: raw[:6], "is truncated: 6 bytes, shorter than the IDX"),
    ("wrong magic", lambda raw: b"\0\0\x0d\x03" + raw[4:], "is not a uint8 IDX file of 3 dim"),
    ("labels as images", lambda raw: b"\0\0\x08\x01" + raw[4:], "is not a uint8 IDX file"),
]


@pytest.mark.parametrize(
    ("case", "corrupt", "message"), CORRUPTIONS, ids=[case for case, _, _ in CORRUPTIONS]
)  # ids without the lambdas' addresses: the same in every xdist worker
def test_corrupt_idx_file_raises_config_error_naming_the_file(tmp_path, case, corrupt, message):
    raw = idx_bytes(np.zeros((7, 5, 3), np.uint8))
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(corrupt(raw)))
    with pytest.raises(ConfigError) as error:
        read_idx(path, ndim=3)
    assert error.value.key == "dataset.path"
    assert f"train-images-idx3-ubyte.gz {message}" in str(error.value)


def test_truncated_gzip_is_a_config_error(tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros(100, np.uint8)))[:-20])
    with pytest.raises(ConfigError, match=r"t10k-labels-idx1-ubyte\.gz is not a valid gzip file"):
        read_idx(path, ndim=1)


def test_idx_run_trains_on_small_files_raw_or_gzip_and_reports_load_time(tmp_path):
    folder = write_mnist_like(tmp_path / "data", compress=False)
    run_dir = tmp_path / "run"
    assert (
        main(
            train_args(
                folder,
                run_dir,
                "train.epochs=3",
                "train.batch_size=32",
                "dataset.mean=null",
                "dataset.std=null",
            )
        )
        == 0
    )
    summary = read_summary(run_dir)
    assert summary["status"] == "completed"
    assert summary["n_train"] == 360  # 400 minus the stratified 10% validation split
    assert summary["final"]["test_accuracy"] > 0.9
    for key in ("load_s", "setup_s", "compile_s", "train_s"):
        assert summary[key] >= 0


CLI_ERRORS = [
    ("truncated", "dataset.path={folder}: t10k-images-idx3-ubyte.gz is not a valid gzip file"),
    (
        "missing",
        "dataset.test_split=test: none of test-labels-idx1-ubyte.gz, test-labels-idx1-"
        "ubyte, t10k-labels-idx1-ubyte.gz, t10k-labels-idx1-ubyte in {folder}",
    ),
    ("mismatch", "dataset.path={folder}: split 'train' has 400 images but 399 labels"),
    ("no folder", "dataset.path={folder}/nowhere: no such folder"),
]


@pytest.mark.parametrize(("case", "message"), CLI_ERRORS, ids=lambda v: str(v))
def test_bad_idx_data_is_one_line_exit_2_and_no_run_dir(tmp_path, capsys, case, message):
    folder = write_mnist_like(tmp_path / "data")
    if case == "truncated":
        path = folder / "t10k-images-idx3-ubyte.gz"
        path.write_bytes(path.read_bytes()[:-50])
    elif case == "missing":
        (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    elif case == "mismatch":
        write_idx(folder / "train-labels-idx1-ubyte.gz", np.zeros(399, np.uint8))
    path = folder / "nowhere" if case == "no folder" else folder
    run_dir = tmp_path / "run"
    assert main(train_args(path, run_dir)) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"lrbench: error: {message.format(folder=folder)}"), err
    assert err.count("\n") == 1
    assert not run_dir.exists()


def test_idx_source_without_a_path_names_the_key(tmp_path, capsys):
    args = ["train", "dataset=mnist", "dataset.source=idx", f"hydra.run.dir={tmp_path}/r"]
    assert main(args) == 2
    assert "dataset.path=None: needed with dataset.source=idx" in capsys.readouterr().err


needs_mnist = pytest.mark.skipif(
    not (MNIST / "train-images-idx3-ubyte.gz").is_file(),
    reason=f"the original MNIST IDX files are not at {MNIST} (CI machines have them there)",
)


@needs_mnist
def test_real_mnist_train_statistics_match_the_published_constants():
    """The shared data's README: train pixel mean 33.318 and std 78.567 (0.1307 / 0.3081)."""
    from lrbench.data.images import fitted_statistics

    images = read_idx(MNIST / "train-images-idx3-ubyte.gz", ndim=3)
    assert images.shape == (60000, 28, 28)
    (mean,), (std,) = fitted_statistics(images[..., None])
    assert mean == pytest.approx(images.mean(dtype=np.float64) / 255, rel=1e-12)
    assert std == pytest.approx(images.std(dtype=np.float64) / 255, rel=1e-12)
    assert (mean * 255, std * 255) == pytest.approx((33.318, 78.567), abs=1e-3)


@needs_mnist
def test_real_mnist_mlp_from_idx_files_reaches_97_percent_test_accuracy(tmp_path):
    run_dir = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "experiment=mnist_mlp",
                "dataset.source=idx",
                f"dataset.path={MNIST}",
                "train.epochs=2",
                f"hydra.run.dir={run_dir}",
            ]
        )
        == 0
    )
    summary = read_summary(run_dir)
    assert summary["n_train"] == 54001  # 60,000 minus a stratified 10% validation split
    assert summary["final"]["test_accuracy"] >= 0.97
    # Reading and decoding the files is not the bottleneck (docs/data.md "Image datasets").
    assert summary["load_s"] < summary["compile_s"] + summary["train_s"]
